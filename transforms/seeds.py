"""Seeds and orderings hashed from names, never from worker order or time, so every runner agrees."""

from __future__ import annotations

import hashlib


def derive(seed: int, *parts: str | bytes | int) -> int:
    """A 64-bit value determined only by the seed and the given names (str, bytes and int parts)."""
    return int.from_bytes(hashlib.blake2b(repr((seed, parts)).encode(), digest_size=8).digest(), "little")
