import pyarrow as pa

from vocaloom.schemas.shard import any_bucket_schema, bucket_lengths, num_shards, shard_path, shard_schema
from vocaloom.schemas.vocab import Vocabulary


def test_bucket_lengths():
    assert bucket_lengths(8, 13) == [256, 512, 1024, 2048, 4096, 8192]


def test_num_shards_is_tokens_over_shard_size_rounded_up():
    assert num_shards(rows=4, length=256, shard_tokens=1 << 20) == 1
    assert num_shards(rows=8192, length=255, shard_tokens=1 << 20) == 2  # exactly 2^21 tokens
    assert num_shards(rows=8193, length=255, shard_tokens=1 << 20) == 3


def test_num_shards_never_exceeds_rows():
    assert num_shards(rows=3, length=8191, shard_tokens=100) == 3


def test_shard_names():
    assert shard_path(256, 3, 12) == "data/bucket-00256/shard-00003-of-00012.arrow"


def test_schema_has_fixed_rows_of_length_plus_one():
    schema = shard_schema(512)
    assert schema.field("input_ids").type == pa.list_(pa.int32(), 513)
    assert schema.field("doc_starts").type == pa.list_(pa.int32())
    assert schema.field("doc_ids").type == pa.list_(pa.string())


def test_any_bucket_schema_holds_every_buckets_rows():
    rows = pa.table(
        {"input_ids": [[1, 2, 3]], "doc_starts": [[0]], "doc_ids": [["a"]], "source": [0]}, schema=shard_schema(2)
    )
    assert rows.cast(any_bucket_schema()).column("input_ids").type == pa.list_(pa.int32())


def test_vocabulary_layout():
    with_eos = Vocabulary.build(8000, text_eos=2)
    assert with_eos.specials == {"begin_of_audio": 8000, "end_of_audio": 8001, "eos": 2}
    assert (with_eos.speech_offset, with_eos.size) == (8002, 8002)
    without = Vocabulary.build(100, text_eos=None, speech_size=16)
    assert without.specials == {"begin_of_audio": 100, "end_of_audio": 101, "eos": 102}
    assert (without.speech_offset, without.size) == (103, 119)
    assert Vocabulary.from_json(without.to_json()) == without
