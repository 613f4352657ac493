"""The training side of vocaloom: a PyTorch reader of its datasets (docs/training.md). Imports no Beam."""

from vocaloom.loader.arrow_dataset import arrow_dataset
from vocaloom.loader.attention import cu_seqlens, loss_mask, position_ids, speech_token_mask
from vocaloom.loader.bucket_loader import BucketLoader
from vocaloom.loader.shards import ShardIntegrityError
from vocaloom.schemas.manifest import ManifestError

__all__ = [
    "BucketLoader",
    "ManifestError",
    "ShardIntegrityError",
    "arrow_dataset",
    "cu_seqlens",
    "loss_mask",
    "position_ids",
    "speech_token_mask",
]
