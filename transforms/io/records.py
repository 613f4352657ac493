"""Turning raw input records into documents, or into rejects that say why (pure functions, no Beam)."""

from __future__ import annotations

import json
from typing import NamedTuple

import orjson


class Document(NamedTuple):
    id: str
    text: str
    source: str
    line: int  # 1-based line (JSONL), row (Parquet) or 1 (a .txt file)


# Documents as columns, (ids, texts, sources, lines) in Document's field order: how batches of documents travel
# from the reader (Beam sizes a column of strings in one call, a list of records one record at a time).
DocumentColumns = tuple


class Reject(NamedTuple):
    source: str
    line: int
    reason: str
    detail: str
    raw: bytes

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
            "raw": self.raw.decode("utf-8", errors="backslashreplace"),
        }


class Filtered(NamedTuple):
    """A well-formed record with nothing to train on: counted, not written to rejects."""

    reason: str


def derived_id(source: str, line: int) -> str:
    """The stable id of a record that has none: its source path and line."""
    return f"{source}:{line}"


# orjson's nesting limit: a record nested deeper is a reject of its own kind.
MAX_DEPTH = 1024


def _json_reason(raw: str) -> tuple[str, str]:
    try:
        json.loads(raw)
    except json.JSONDecodeError as e:
        return ("trailing_garbage" if e.msg == "Extra data" else "malformed_json"), str(e)
    return "malformed_json", "rejected by the strict JSON parser"  # e.g. NaN, accepted by json but not orjson


def parse_json_lines(
    lines: list[bytes], first_line: int, source: str, text_field: str, id_field: str
) -> tuple[DocumentColumns, list]:
    """Consecutive JSONL lines, the first numbered `first_line`, to (the Documents as columns, the Rejects and
    Filtereds in line order); blank lines are not records. The common record, an object with a non-blank string
    text and a non-empty string id, is taken in one orjson call and a few type checks; any other goes through
    parse_json_record, which says what it is."""
    ids, texts, numbers, others = [], [], [], []
    for line, raw in enumerate(lines, first_line):
        try:
            record = orjson.loads(raw)  # no raw NUL byte can be in a line orjson accepts
        except orjson.JSONDecodeError:
            record = None
        if type(record) is dict:
            text, doc_id = record.get(text_field), record.get(id_field)
            if (
                type(text) is str
                and type(doc_id) is str
                and doc_id
                and text
                and not text.isspace()
                and "\x00" not in text
            ):
                ids.append(doc_id)
                texts.append(text)
                numbers.append(line)
                continue
        if raw.strip():
            record = parse_json_record(raw.rstrip(b"\r"), source, line, text_field, id_field)
            if type(record) is Document:
                ids.append(record.id)
                texts.append(record.text)
                numbers.append(line)
            else:
                others.append(record)
    return (ids, texts, [source] * len(ids), numbers), others


def split_records(records: list) -> tuple[DocumentColumns, list]:
    """Parsed records to (the Documents as columns, the other records in order)."""
    documents = [record for record in records if type(record) is Document]
    others = [record for record in records if type(record) is not Document]
    return tuple(map(list, zip(*documents))) if documents else ([], [], [], []), others


def parse_json_record(raw: bytes, source: str, line: int, text_field: str, id_field: str):
    """One JSONL line to a Document, a Reject or a Filtered."""
    if b"\x00" in raw:
        return Reject(source, line, "nul_byte", "raw NUL byte in record", raw)
    try:
        record = orjson.loads(raw)  # validates UTF-8 itself: no separate decode on the good path
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit exceeded"):  # Python's own parser would overflow its stack on it
            return Reject(source, line, "too_deeply_nested", f"JSON nested deeper than {MAX_DEPTH} levels", raw)
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return Reject(source, line, "invalid_utf8", str(e), raw)
        reason, detail = _json_reason(decoded)
        return Reject(source, line, reason, detail, raw)
    if not isinstance(record, dict):
        return Reject(source, line, "not_an_object", f"a JSON {type(record).__name__}, not an object", raw)
    return document_from_fields(
        record.get(text_field), record.get(id_field), text_field in record, source, line, raw, text_field, id_field
    )


def document_from_fields(
    text, id_value, has_text: bool, source: str, line: int, raw: bytes, text_field: str, id_field: str
):
    """Validate a record's text and id fields (shared by JSONL and Parquet)."""
    if not has_text or text is None:
        return Reject(source, line, "missing_text", f"no {text_field!r} field", raw)
    if not isinstance(text, str):
        return Reject(source, line, "text_not_string", f"{text_field!r} is a {type(text).__name__}", raw)
    if "\x00" in text:
        return Reject(source, line, "nul_byte", f"NUL character in {text_field!r}", raw)
    if id_value is None:
        doc_id = derived_id(source, line)
    elif isinstance(id_value, int) and not isinstance(id_value, bool):
        doc_id = str(id_value)
    elif isinstance(id_value, str) and id_value:
        doc_id = id_value
    else:
        return Reject(source, line, "bad_id", f"{id_field!r} must be a non-empty string or an integer", raw)
    if not text or text.isspace():
        return Filtered("empty_text")
    return Document(doc_id, text, source, line)


def parse_text_file(raw: bytes, source: str):
    """A whole .txt file is one document; its id is its path."""
    if b"\x00" in raw:
        return Reject(source, 1, "nul_byte", "raw NUL byte in file", raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Reject(source, 1, "invalid_utf8", str(e), raw)
    if not text.strip():
        return Filtered("empty_text")
    return Document(source, text, source, 1)
