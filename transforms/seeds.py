"""Seeds and orderings hashed from names, never from worker order or time, so every runner agrees."""
from __future__ import annotations

import hashlib


def derive(seed: int, *parts: str | bytes | int) -> int:
    """A 64-bit value determined only by the seed and the given names."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(seed).encode())
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return int.from_bytes(h.digest(), "little")
