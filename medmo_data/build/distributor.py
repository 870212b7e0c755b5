"""Distributor: stream a recipe's records, cut them into deterministic chunks, write chunks as shards.

Chunks are cut by input order only (per shard group: split, plus image count when it differs from the
source's usual count), never by completion order, so the bytes do not depend on `--workers` or on the
engine. The driver holds at most a few chunks in memory at a time; memory stays flat as a source grows.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from medmo_data.keys import is_safe_key, make_key
from medmo_data.recipe import RawSample, Recipe, Reject, SourceError, SourceInfo
from medmo_data.schema import SPLITS
from medmo_data.shards.storage import as_url
from medmo_data.shards.writer import ShardTask, finished

from . import manifest as manifest_mod
from . import outcome
from .options import BuildOptions
from .outcome import RECIPE_ERROR
from .rejects import RejectLog, Scrubber, redaction_key
from .shard import write_shard


@dataclass
class BuildResult:
    manifest: dict[str, Any]
    path: Path
    seconds: float
    shards_reused: int


class OutputLocked(SourceError):
    pass


class _Lock:
    """One build per output folder: a second concurrent build gets a clear error, not corrupt output."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".build.lock"
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.fd)
            raise OutputLocked(f"{self.path.parent}: another build is writing this folder (lock {self.path})") \
                from exc
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.fd is not None
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _array_bytes(raw: RawSample) -> int:
    """Pixels and file bytes a record carries in memory (npz tiles, hub parquet cells, zip members)."""
    return sum(int(s.array.nbytes) if s.array is not None else len(s.data or b"") for s in raw.images)


@dataclass
class Chunk:
    task: ShardTask
    samples: list[RawSample]
    root: str = ""  # the input folder: reject rows name files relative to it
    redact_key: bytes | None = None  # --redact-paths: ... or by keyed hash


def plan_chunks(recipe: Recipe, root: Path, opts: BuildOptions, recipe_rejects: RejectLog | list[dict[str, str]],
                counters: Counter[str]) -> Iterator[Chunk]:
    """Stream records into chunks. Recipe-level rejects and duplicates go to `recipe_rejects`."""
    info = recipe.info_for(opts.recipe_options)
    boxes_source = bool({"grounding", "detection"} & set(info.tasks))
    # Image paths built from annotation files must stay inside the input (or a folder the user named in
    # an option): `../../etc/...` in a metadata file never reaches a shard. Lexical check, so symlinked
    # image folders inside the input still work.
    allowed = [os.path.abspath(root)] + [os.path.abspath(v) for v in opts.recipe_options.values()
                                         if isinstance(v, str) and v and os.path.exists(v)]
    options_digest = opts.digest(recipe)
    key = redact_key(opts)
    seen: set[int] = set()
    open_chunks: dict[str, list[RawSample]] = {}
    open_bytes: Counter[str] = Counter()
    next_index: Counter[str] = Counter()

    def close(group: str) -> Chunk:
        samples = open_chunks.pop(group)
        open_bytes.pop(group, None)
        h = hashlib.sha256()
        for s in samples:
            h.update(f"{s.key}\0{s.id}\0".encode("utf-8", "surrogatepass"))
        name = f"{group}-{next_index[group]:06d}"
        next_index[group] += 1
        return Chunk(ShardTask(name, samples[0].split, group, h.hexdigest()[:32], options_digest), samples,
                     os.path.abspath(root), key)

    for item in _guarded(recipe.records(root, dict(opts.recipe_options)), info.name):
        if isinstance(item, RawSample) and opts.split and item.split != opts.split:
            continue
        if opts.limit is not None and counters["read"] >= opts.limit:
            break
        counters["read"] += 1
        if isinstance(item, Reject):
            recipe_rejects.append({"id": str(item.id), "reason": item.reason, "detail": str(item.detail)[:500]})
            continue
        try:  # whatever a recipe yields, a record is admitted or rejected, never a crash
            problem = _admit(item, seen, allowed)
            size = _array_bytes(item)
        except Exception as exc:  # noqa: BLE001 - e.g. images that are not ImageSources
            problem = {"id": str(getattr(item, "id", repr(item)[:80])), "reason": "bad_record",
                       "detail": f"{type(exc).__name__}: {exc}"[:500]}
        if problem:
            recipe_rejects.append(problem)
            continue
        # Shard series: every sample of a series has the same members and the same JSON shape, because HF
        # `datasets` types columns from the first samples (an all-empty `objects` list types as null and
        # the first box after it fails to load). Other image counts and box-less samples of a box source
        # (negatives, VQA beside grounding) therefore get their own series.
        n = len(item.images)
        group = item.split if n == info.images_per_sample else f"{item.split}-{n}img"
        if boxes_source and not item.objects:
            group += "-noboxes"
        if n:
            formats = [s.member_format or info.image_format for s in item.images]
            if any(f != info.image_format for f in formats):  # e.g. JPEG passed through in a PNG source
                group += "-" + "_".join(formats)
        open_chunks.setdefault(group, []).append(item)
        open_bytes[group] += size
        if len(open_chunks[group]) >= opts.shard_samples or open_bytes[group] >= opts.max_chunk_array_bytes:
            yield close(group)
    for group in sorted(open_chunks):
        yield close(group)


def _admit(item: RawSample, seen: set[int], allowed: list[str]) -> dict[str, str] | None:
    """The reject row of a record the driver refuses (split, id, key, duplicate, path), else None."""
    if item.split not in SPLITS:
        return {"id": str(item.id), "reason": "bad_split", "detail": f"split {item.split!r}"}
    if not item.key:
        try:
            item.key = make_key(item.id)  # safe by construction
        except ValueError as exc:
            return {"id": repr(item.id), "reason": "bad_id", "detail": str(exc)}
    elif not is_safe_key(item.key):  # a key the recipe chose
        return {"id": item.id, "reason": "bad_key", "detail": f"key {item.key!r}"}
    kh = int.from_bytes(hashlib.blake2b(item.key.encode(), digest_size=8).digest(), "little")
    if kh in seen:
        return {"id": item.id, "reason": "duplicate_id", "detail": f"key {item.key!r} repeats"}
    seen.add(kh)
    escaping = item.images and [s.path for s in item.images
                                if isinstance(s.path, str) and not _inside(s.path, allowed)]
    if escaping:
        return {"id": item.id, "reason": "bad_path", "file": escaping[0], "detail": "image path leaves the input folder"}
    return None


def _guarded(records: Iterator[RawSample | Reject], name: str) -> Iterator[RawSample | Reject]:
    """The recipe's records; if its reader raises (a bug, or a record it did not expect), the error becomes
    one `recipe_error` reject and reading stops there (a generator cannot go on after raising). The build
    then writes its manifest and fails (outcome.check): what was read is kept for inspection."""
    while True:
        try:
            item = next(records)
        except StopIteration:
            return
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - RecursionError, KeyError, ...: never a traceback
            yield Reject(f"{name}:reader", RECIPE_ERROR,
                         f"the recipe's reader raised {type(exc).__name__}: {str(exc)[:300]}; records after "
                         "this point were not read")
            return
        yield item


def _inside(path: str, roots: list[str]) -> bool:
    p = os.path.abspath(path)
    return any(p == r or p.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _run_task(chunk: Chunk, info: SourceInfo, out_dir: Path, opts: BuildOptions) -> dict[str, Any]:
    return write_shard(chunk.task, chunk.samples, info, out_dir, opts.normalize, opts.max_shard_bytes, chunk.root,
                       chunk.redact_key)


def input_fingerprint(root: Path) -> str:
    """Hash of relative paths and sizes under the input (mtimes differ between copies; sizes do not)."""
    h = hashlib.sha256()
    if root.is_file():
        h.update(f"{root.name}\0{root.stat().st_size}\n".encode())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for fn in sorted(filenames):
            try:
                size = os.stat(os.path.join(dirpath, fn)).st_size
            except OSError:
                size = -1
            h.update(f"{rel}/{fn}\0{size}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def expected_records(folder: Path, root: Path, limit: int | None, split: str | None) -> int | None:
    """A progress bar's total where it is cheap: `limit`, or what the last build into `folder` read from this
    same input (same `input_fingerprint`; records as the recipe yields them, so none with a split filter)."""
    if split is not None:
        return None
    prev = None
    try:
        man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if man["options"]["split"] is None and man["input"]["fingerprint"] == input_fingerprint(root):
            prev = int(man["counts"]["read"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if limit is not None:
        return min(limit, prev) if prev is not None else limit
    return prev


def build(recipe: Recipe, root: Path, opts: BuildOptions,
          progress: Callable[[int], None] | None = None) -> BuildResult:
    """Build one source into `opts.output / recipe.info.name`; resumes finished shards."""
    if not root.exists():
        raise SourceError(f"{root}: input folder does not exist")
    t0 = time.perf_counter()
    if progress is not None:  # per record as the recipe yields them, not per finished chunk (#17)
        recipe, progress = replace(recipe, records=_reporting(recipe.records, progress)), None
    out_dir = opts.output / recipe.info.name
    out_dir.mkdir(parents=True, exist_ok=True)
    info = recipe.info_for(opts.recipe_options)
    with _Lock(out_dir), _frozen_heap():
        recipe_rejects = RejectLog(out_dir)
        try:
            counters: Counter[str] = Counter()
            stats: list[dict[str, Any]] = []
            reused = 0
            chunks = plan_chunks(recipe, root, opts, recipe_rejects, counters)
            if opts.workers <= 1:
                for chunk in chunks:
                    done = finished(out_dir, chunk.task)
                    reused += done is not None
                    stats.append(done or _run_task(chunk, info, out_dir, opts))
                    if progress:
                        progress(counters["read"])
            else:
                stats, reused = _run_parallel(chunks, info, out_dir, opts, counters, progress)
            man = manifest_mod.make_source_manifest(info, opts, root, input_fingerprint(root), stats,
                                                    recipe_rejects, counters["read"])
            path = manifest_mod.write(out_dir, man, stats, recipe_rejects, scrubber(root, opts))
        finally:
            recipe_rejects.close()
        from medmo_data.publish.card import write_card  # the one upward arrow: the folder's card (#17)

        write_card(out_dir)
        _remove_stale(out_dir, stats)
    outcome.check(man, recipe, opts)
    return BuildResult(man, path, time.perf_counter() - t0, reused)


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """The objects that exist before the build (imported modules: ~100k) are left out of the cyclic garbage
    collector's full passes while it runs: a build's records trigger those passes, and scanning the module
    heap was ~10% of a text build's CPU. Refcounting still frees everything; the heap is unfrozen after.
    A caller that froze its own heap (gc.freeze before forking workers) is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _reporting(records: Callable[..., Iterator[Any]], progress: Callable[[int], None]) -> Callable[..., Iterator[Any]]:
    def counted(root: Path, options: dict[str, Any]) -> Iterator[Any]:
        for n, item in enumerate(records(root, options), 1):
            progress(n)
            yield item
    return counted


def redact_key(opts: BuildOptions) -> bytes | None:
    """The `--redact-paths` HMAC key (None without the option); URL outputs need $MEDMO_REDACT_KEY."""
    if not opts.redact_paths:
        return None
    try:
        return redaction_key(None if as_url(opts.output) else Path(opts.output))
    except ValueError as exc:
        raise SourceError(str(exc)) from exc


def scrubber(root: Path, opts: BuildOptions) -> Scrubber:
    """How reject rows name files: relative to the input, or keyed hashes with `redact_paths`."""
    return Scrubber(root, redact_key(opts))


def _remove_stale(out_dir: Path, stats: list[dict[str, Any]]) -> None:
    """Drop shards, indexes and stats of earlier builds with other options (and temp files of killed
    runs), so the folder holds exactly what the manifest lists."""
    keep = {"manifest.json", "rejects.jsonl", ".build.lock"}
    for s in stats:
        keep.update(t["path"] for t in s["tars"])
        keep.update((s["index"]["path"], f"{s['name']}.stats.json"))
    for p in out_dir.iterdir():
        if p.is_file() and p.name not in keep and (
                p.name.endswith((".tar", ".index.parquet", ".stats.json")) or ".tmp-" in p.name):
            p.unlink()


def _run_parallel(chunks: Iterator[Chunk], info: SourceInfo, out_dir: Path, opts: BuildOptions,
                  counters: Counter[str], progress: Callable[[int], None] | None) -> tuple[list[dict], int]:
    stats: list[dict[str, Any]] = []
    reused = 0
    window = 2 * opts.workers  # bounded in-flight chunks keep the driver's memory flat
    pending: set[Future] = set()
    with ProcessPoolExecutor(max_workers=opts.workers, mp_context=get_context("spawn")) as pool:
        for chunk in chunks:
            done = finished(out_dir, chunk.task)
            if done is not None:
                stats.append(done)
                reused += 1
                continue
            pending.add(pool.submit(_run_task, chunk, info, out_dir, opts))
            if len(pending) >= window:
                # Refill as soon as ANY chunk finishes (waiting in submission order idles a worker behind
                # one slow chunk). Order does not matter: the manifest sorts stats by shard name.
                done_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                stats.extend(f.result() for f in done_now)
                if progress:
                    progress(counters["read"])
        stats.extend(f.result() for f in pending)
    if progress:
        progress(counters["read"])
    return stats, reused
