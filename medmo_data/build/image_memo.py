"""Images a shard task has already normalized, by their exact bytes.

A VQA source asks several questions of one image (VQA-RAD: 2,248 questions on 315 images; SLAKE: 14,028
on 642; PathVQA: 32,799 on 4,998), so its records name the same file again and again. What normalizing a
file gives (member bytes, size, derivation, fingerprints) depends only on its bytes, the ImageSource's
options and the build's options, so a file met a third time in the same task is not decoded, resized,
encoded or fingerprinted again: its entry is looked up by xxh3-128 of the bytes and confirmed by comparing
the bytes themselves (a hash collision can never hand back another image, nor skip the validating decode
of a file that was never decoded). Only files met a second time are kept (the first time only the key is
noted), so a source whose images all differ holds no image in memory and pays one hash (~1.5 us per 40 KB
file); kept entries are dropped oldest first beyond `max_bytes`. One memo per shard task: nothing carries
over between tasks or builds. A shard's bytes are the same with or without it (tests/test_image_memo.py).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import xxhash

from medmo_data.recipe import ImageSource

MAX_BYTES = 64 << 20  # images kept per shard task
MAX_SEEN = 200_000  # keys noted per task before the note starts over


@dataclass(frozen=True)
class NormalizedImage:
    """One image's result, without its member index: the member bytes and extension, its images[] fields,
    the x/y scale applied to its boxes, its source size and its fingerprints."""

    data: bytes
    fmt: str
    width: int
    height: int
    source_width: int
    source_height: int
    derivation: dict[str, Any]
    scale: tuple[float, float]
    fingerprint: dict[str, Any]

    def meta(self, index: int) -> dict[str, Any]:
        return {"member": f"{index}.{self.fmt}", "width": self.width, "height": self.height,
                "source_width": self.source_width, "source_height": self.source_height,
                "derivation": copy.deepcopy(self.derivation)}  # nested (resize, window): no record shares it


def memoizable(src: ImageSource) -> bool:
    """A file or bytes source; arrays and NIfTI volumes (read by slice, never whole) are left alone."""
    return src.array is None and src.kind != "nifti" and not (
        src.kind == "auto" and (src.path or "").lower().endswith((".nii", ".nii.gz")))


def source_options(src: ImageSource) -> tuple[Any, ...]:
    """The ImageSource fields besides its bytes that decoding reads, as part of a key."""
    window = tuple(src.window) if isinstance(src.window, (list, tuple)) else src.window
    rescale = tuple(src.rescale) if isinstance(src.rescale, (list, tuple)) else src.rescale
    # The file name matters: with kind "auto", `.dcm` and `.nii(.gz)` choose the decoder by name.
    suffix = (src.path or "").lower().rsplit("/", 1)[-1].partition(".")[2]
    return (src.kind, suffix, window, src.value_offset, rescale, src.slice_index, src.axis, src.frame, src.mode,
            src.normalize)


class ImageMemo:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self.seen: set[tuple[Any, ...]] = set()
        self.entries: OrderedDict[tuple[Any, ...], tuple[bytes, NormalizedImage]] = OrderedDict()
        self.hits = 0

    @staticmethod
    def key(data: bytes, options: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The entry key of `data` under `options`; None when an option value cannot be part of a key."""
        key = xxhash.xxh3_128_digest(data), len(data), options
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def get(self, key: tuple[Any, ...], data: bytes) -> NormalizedImage | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] != data:
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: tuple[Any, ...], data: bytes, result: NormalizedImage) -> None:
        """Note `key` the first time; keep the result from the second time on (within `max_bytes`)."""
        if key not in self.seen:
            if len(self.seen) >= MAX_SEEN:
                self.seen.clear()
            self.seen.add(key)
            return
        size = _size(data, result)
        if size > self.max_bytes:
            return
        old = self.entries.pop(key, None)
        if old is not None:
            self.held -= _size(*old)
        self.entries[key] = (data, result)
        self.held += size
        while self.held > self.max_bytes:
            _, old = self.entries.popitem(last=False)
            self.held -= _size(*old)


def _size(data: bytes, result: NormalizedImage) -> int:
    """Bytes an entry holds: the file, and the member when it is not the file itself (pass-through)."""
    return len(data) + (0 if result.data is data else len(result.data))
