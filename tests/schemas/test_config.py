import pytest

from vocaloom.schemas.config import ArgumentParser, BuildConfig, ConfigError, add_build_arguments, config_from_args


def parse(argv):
    parser = ArgumentParser()
    add_build_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    return config_from_args(args), rest


def test_defaults_follow_spec():
    config, rest = parse(["--output", "out"])
    assert config == BuildConfig(output="out")
    assert (config.speech_ratio, config.span_lambda, config.min_bucket, config.max_bucket) == (0.3, 10.0, 8, 13)
    assert (config.shard_tokens, config.seed, config.context) == (1048576, 0, "document")
    assert rest == []


def test_unknown_flags_are_left_for_beam():
    _, rest = parse(["--output", "out", "--runner=FnApiRunner", "--direct_num_workers=2"])
    assert rest == ["--runner=FnApiRunner", "--direct_num_workers=2"]


def test_repeated_inputs():
    config, _ = parse(["--output", "o", "--input", "a.jsonl", "--input", "b/*.parquet"])
    assert config.inputs == ("a.jsonl", "b/*.parquet")


def test_named_sources_and_their_speech_ratios(tmp_path):
    config, _ = parse(
        [
            "--output",
            "o",
            "--input",
            "web=crawl/*.jsonl",
            "--input",
            "code=src/",
            "--input",
            "x.txt",
            "--speech-ratio",
            "0.2",
            "--speech-ratio",
            "code=0",
        ]
    )
    assert config.sources == ("code", "default", "web")
    assert [config.source_speech_ratio(s) for s in config.sources] == [0.0, 0.2, 0.2]
    assert config.to_json()["speech_ratio_by_source"] == {"code": 0.0} and config.speaks
    toml = tmp_path / "mix.toml"
    toml.write_text(
        'output = "o"\ninput = ["web=a.jsonl", "books=b/"]\nspeech-ratio = 0\n'
        "[speech-ratio-by-source]\nbooks = 0.4\nweb = 0.1\n"
    )
    config, _ = parse(["--config", str(toml), "--speech-ratio", "web=0"])  # the command line wins, name by name
    assert config.speech_ratio_by_source == (("books", 0.4), ("web", 0.0))
    assert parse(["--output", "o", "--speech-ratio", "0"])[0].speaks is False


def test_a_pattern_with_an_equals_sign_is_named_or_prefixed():
    config, _ = parse(["--output", "o", "--input", "./a=b.jsonl", "--input", "gs://bucket/k=v/*.jsonl"])
    assert config.sources == ("default",)


def test_command_line_overrides_config_file(tmp_path):
    toml = tmp_path / "build.toml"
    toml.write_text('output = "from-file"\ninput = ["x.jsonl"]\nseed = 7\nmin-bucket = 9\nshard_tokens = 4096\n')
    config, _ = parse(["--config", str(toml), "--seed", "3"])
    assert (config.output, config.inputs, config.seed, config.min_bucket, config.shard_tokens) == (
        "from-file",
        ("x.jsonl",),
        3,
        9,
        4096,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "--output is required"),
        (["--output", "o", "--context", "sentence"], "argument --context: invalid choice: 'sentence'"),
        (
            ["--output", "o", "--min-bucket", "12", "--max-bucket", "10"],
            "--min-bucket (12) is larger than --max-bucket",
        ),
        (["--output", "o", "--max-bucket", "40"], "--max-bucket must be between"),
        (["--output", "o", "--shard-tokens", "0"], "--shard-tokens must be positive"),
        (["--output", "o", "--long-documents", "-1"], "--long-documents must be 0 (none) or positive"),
        (["--output", "o", "--speech-ratio", "1.5"], "--speech-ratio must be in [0, 1)"),
        (["--output", "o", "--span-lambda", "0"], "--span-lambda must be positive"),
        (["--output", "o", "--compression", "lz4"], "argument --compression: invalid choice: 'lz4'"),
        (["--output", "o", "--min-bucket", "x"], "argument --min-bucket: invalid int value: 'x'"),
        (["--output", "o", "--knn", "0"], "--knn must be positive"),
        (["--output", "o", "--context", "related", "--semantic-dedup", "2"], "--semantic-dedup is a cosine similarity"),
        (["--output", "o", "--semantic-dedup", "0.9"], "works on the kNN graph of --context related"),
        (["--output", "o", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
        (
            ["--output", "o", "--input", "web=a", "--speech-ratio", "code=0"],
            "--speech-ratio code=0.0: no --input names source 'code' (sources: web)",
        ),
        (["--output", "o", "--input", "web=a", "--speech-ratio", "web=1"], "--speech-ratio web=1.0: must be in [0, 1)"),
        (["--output", "o", "--speech-ratio", "a lot"], "--speech-ratio a lot: expected a number R or NAME=R"),
        (["--output", "o", "--input", "web="], "--input web=: no pattern after the source name"),
    ],
)
def test_bad_options_fail_in_one_line(argv, message):
    with pytest.raises(ConfigError) as e:
        parse(argv)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        parse(["--config", str(tmp_path / "none.toml")])
    bad = tmp_path / "bad.toml"
    bad.write_text("output = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse(["--config", str(bad)])
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('output = "o"\nshard_size = 3\n')
    with pytest.raises(ConfigError, match="unknown option 'shard_size'"):
        parse(["--config", str(unknown)])
    typed = tmp_path / "typed.toml"
    typed.write_text('output = "o"\nseed = "zero"\n')
    with pytest.raises(ConfigError, match="--seed: expected int"):
        parse(["--config", str(typed)])


@pytest.mark.parametrize(
    "toml, message",
    [
        ('context = "sentence"', "--context must be one of document, related"),
        ('compression = "lz4"', "--compression must be one of none, zstd"),
        ('device = "tpu"', "--device must be one of cpu, cuda"),
        ('speech-source = "say"', "--speech-source must be one of text-to-token, tts"),
    ],
)
def test_a_config_files_choices_are_checked_too(tmp_path, toml, message):
    config = tmp_path / "build.toml"
    config.write_text(f'output = "o"\n{toml}\n')
    with pytest.raises(ConfigError, match=message):
        parse(["--config", str(config)])


def test_no_abbreviations():
    config, rest = parse(["--output", "o", "--over"])  # a typo, left for the Beam flag check to name
    assert (config.overwrite, rest) == (False, ["--over"])


def test_a_config_file_that_is_a_directory_fails_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a directory, not a regular file"):
        parse(["--config", str(tmp_path)])
