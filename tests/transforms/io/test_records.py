import json

from hypothesis import given
from hypothesis import strategies as st

from vocaloom.transforms.io.records import (
    Document,
    Filtered,
    Reject,
    parse_json_lines,
    parse_json_record,
    parse_text_file,
)


def parse(raw: bytes):
    return parse_json_record(raw, "in.jsonl", 7, "text", "id")


def test_valid_record_with_and_without_id():
    assert parse(b'{"id": "a", "text": "hi", "lang": "en"}') == Document("a", "hi", "in.jsonl", 7)
    assert parse(b'{"text": "hi"}') == Document("in.jsonl:7", "hi", "in.jsonl", 7)
    assert parse(b'{"id": 12, "text": "hi"}') == Document("12", "hi", "in.jsonl", 7)


def test_reject_reasons():
    cases = {
        b'{"text": "a"': "malformed_json",
        b'{"text": "a"} trailing': "trailing_garbage",
        b'["text", "a"]': "not_an_object",
        b'{"body": "a"}': "missing_text",
        b'{"text": null}': "missing_text",
        b'{"text": 5}': "text_not_string",
        b'{"text": "a\xff"}': "invalid_utf8",
        b'{"text": "a\x00"}': "nul_byte",
        b'{"text": "a\\u0000b"}': "nul_byte",
        b'{"text": "a", "id": [1]}': "bad_id",
        b'{"text": "a", "id": ""}': "bad_id",
        b'{"text": NaN}': "malformed_json",
    }
    for raw, reason in cases.items():
        result = parse(raw)
        assert isinstance(result, Reject) and result.reason == reason, (raw, result)
        assert (result.source, result.line, result.raw) == ("in.jsonl", 7, raw)


def test_empty_text_is_filtered_not_rejected():
    assert parse(b'{"text": "  \\n\\t "}') == Filtered("empty_text")


def test_text_file():
    assert parse_text_file("caf\u00e9\n".encode(), "a.txt") == Document("a.txt", "caf\u00e9\n", "a.txt", 1)
    assert parse_text_file(b"\xc3", "a.txt").reason == "invalid_utf8"
    assert parse_text_file(b"  ", "a.txt") == Filtered("empty_text")


@given(st.binary(max_size=200))
def test_any_bytes_give_exactly_one_outcome(raw):
    result = parse(raw)
    assert isinstance(result, (Document, Reject, Filtered))
    if isinstance(result, Reject):
        assert result.raw == raw and result.reason


@given(st.text(max_size=300), st.one_of(st.none(), st.text(min_size=1, max_size=20)))
def test_valid_records_round_trip(text, doc_id):
    record = {"text": text} if doc_id is None else {"text": text, "id": doc_id}
    result = parse(json.dumps(record).encode())
    if "\x00" in text:
        assert result.reason == "nul_byte"
    elif not text.strip():
        assert result == Filtered("empty_text")
    else:
        assert result == Document(doc_id or "in.jsonl:7", text, "in.jsonl", 7)


LINE_PARTS = [
    b'{"text": "a b"',
    b', "id": "x"',
    b', "id": 3',
    b', "id": ""',
    b', "id": null',
    b', "text": "  "',
    b"}",
    b'"\\u0000"',
    b"\x00",
    b"\xff",
    b"\r",
    b" ",
    b"[1]",
    b"{}",
    b"NaN",
    b'"t\\u00e9"',
]


@given(st.lists(st.lists(st.sampled_from(LINE_PARTS), max_size=5).map(b"".join), max_size=8))
def test_lines_parse_as_each_line_alone(lines):
    """The fast path for common records gives what parse_json_record gives; blank lines are no record."""
    expected = [
        parse_json_record(raw.rstrip(b"\r"), "in.jsonl", n, "text", "id")
        for n, raw in enumerate(lines, 7)
        if raw.strip()
    ]
    (ids, texts, sources, numbers), others = parse_json_lines(lines, 7, "in.jsonl", "text", "id")
    assert [Document(*fields) for fields in zip(ids, texts, sources, numbers)] == [
        r for r in expected if type(r) is Document
    ]
    assert [(type(r), r) for r in others] == [(type(r), r) for r in expected if type(r) is not Document]
