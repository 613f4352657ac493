"""manifest.json: what a training job and `vocaloom verify` rely on (SPEC "manifest.json")."""
from __future__ import annotations

import json

FORMAT = "vocaloom/1"
MANIFEST = "manifest.json"
REQUIRED_KEYS = ("format", "config", "inputs", "tokenizer", "speech", "vocab", "buckets", "counts", "ordering")


class ManifestError(ValueError):
    """A manifest this version cannot read."""


def parse_manifest(text: str | bytes, where: str = MANIFEST) -> dict:
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{where}: not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"{where}: unknown format {manifest.get('format')!r}, this version reads {FORMAT!r}")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{where}: missing keys {', '.join(missing)}")
    return manifest


def dump_manifest(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def accounting_errors(counts: dict) -> list[str]:
    """The two identities SPEC demands of every build; empty when they hold."""
    errors = []
    records = (counts["documents_kept"] + sum(counts["rejected"].values()) + sum(counts["filtered"].values())
               + counts["duplicates"])
    if counts["records_read"] != records:
        errors.append(f"records_read {counts['records_read']} != kept + rejected + filtered + duplicates {records}")
    produced = counts["text_tokens"] + counts["speech_tokens"]
    if produced != counts["tokens_written"] + counts["tokens_dropped"]:
        errors.append(f"tokens produced {produced} != written {counts['tokens_written']} "
                      f"+ dropped {counts['tokens_dropped']}")
    return errors
