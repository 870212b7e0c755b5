"""Sample keys: `[a-z0-9_-]` only (a dot would split a WebDataset key), stable, unique per source."""

from __future__ import annotations

import hashlib
import re

_BAD = re.compile(r"[^a-z0-9_-]+")
MAX_KEY = 96


def make_key(source_id: str) -> str:
    """A key derived from the source id alone, so it is stable across rebuilds.

    Ids that are already safe are used as they are; any other id gets a slug plus 10 hex digits of its
    SHA-1, so two ids that slug alike (`a.b` and `a/b`) still get different keys.
    """
    if not isinstance(source_id, str) or not source_id:
        raise ValueError(f"sample id must be a non-empty string, got {source_id!r}")
    low = source_id.lower()
    if low == source_id and not _BAD.search(low) and len(low) <= MAX_KEY:
        return low
    slug = _BAD.sub("_", low).strip("_")[: MAX_KEY - 11] or "id"
    return f"{slug}-{hashlib.sha1(source_id.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def is_safe_key(key: str) -> bool:
    return bool(key) and not _BAD.search(key) and len(key) <= MAX_KEY and key == key.lower()
