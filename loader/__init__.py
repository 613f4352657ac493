"""The training side of vocaloom: a PyTorch reader of its datasets (SPEC "Reader"). Imports no Beam."""
from loader.attention import cu_seqlens, loss_mask, position_ids, speech_token_mask
from loader.bucket_loader import BucketLoader
from loader.shards import ShardIntegrityError
from schemas.manifest import ManifestError

__all__ = ["BucketLoader", "ManifestError", "ShardIntegrityError", "cu_seqlens", "loss_mask", "position_ids",
           "speech_token_mask"]
