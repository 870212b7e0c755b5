"""`medmo-data build --engine ray [--address ADDR]`: one source built across a Ray cluster.

The driver streams the recipe's records through the same `plan_chunks` as the local engine, so the
partitions (shard name, members, chunk digest) are cut by input order alone, never by arrival order.
Each partition is one Ray task that runs the same `write_shard`; the driver gathers the per-shard stats
into the same manifest. Shards, indexes, rejects and the manifest are therefore byte-identical to
`--engine local` with the same options, for any number of workers or nodes (only `created` in the
manifest and `elapsed_s` in each stats file are timings).

Fault tolerance comes from Ray: a task whose worker or node dies is re-run (`max_retries`); a rerun of
a shard rewrites it from scratch under temporary names, so a half-written attempt is never visible.
If the driver dies, rerunning the command skips every shard whose stats file matches, as locally.

Output: a local or NFS folder every node mounts (tasks write in place, atomic renames), or an fsspec
URL (`s3://bucket/data`, `gs://...`, `file:///...`): each task writes its shard on local disk and
commits the files with the stats file last (`medmo_data.shards.storage`). Needs `pip install medmo-data[ray]`
and medmo-data installed on every node.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medmo_data.recipe import Recipe, SourceError, SourceInfo
from medmo_data.shards.storage import RemoteDir, as_url, staged
from medmo_data.shards.writer import finished

from . import manifest as manifest_mod
from .distributor import (
    BuildOptions,
    BuildResult,
    Chunk,
    _Lock,
    _remove_stale,
    input_fingerprint,
    plan_chunks,
    scrubber,
)
from .outcome import check as check_outcome
from .shard import write_shard

MAX_RETRIES = 3


@dataclass
class RayBuildResult(BuildResult):
    shards_by_node: dict[str, int] = field(default_factory=dict)  # Ray node id -> shards it wrote this run


def _die_after(n: int) -> None:
    """Test hook: make this worker process exit hard after normalizing n samples (a crash mid-shard)."""
    from . import shard

    real, count = shard.normalize, [0]

    def dying(*args: Any, **kw: Any):
        count[0] += 1
        if count[0] > n:
            os._exit(1)
        return real(*args, **kw)

    shard.normalize = dying


def _task(chunk: Chunk, info: SourceInfo, out: str, remote: bool, opts: BuildOptions,
          fault: tuple[str, int] | None) -> tuple[dict[str, Any], str]:
    """One partition -> one shard (runs on a Ray worker); returns its stats and the node that wrote it."""
    import ray

    if fault is not None:
        marker = Path(fault[0]) / f"{chunk.task.name}.killed"
        if not marker.exists():  # first attempt of this shard dies; Ray's retry finds the marker
            marker.touch()
            _die_after(fault[1])

    def write(folder: Path) -> dict[str, Any]:
        return write_shard(chunk.task, chunk.samples, info, folder, opts.normalize, opts.max_shard_bytes,
                           chunk.root, chunk.redact_key)

    stats = staged(write, RemoteDir(out)) if remote else write(Path(out))
    return stats, ray.get_runtime_context().get_node_id()


def _connect(address: str | None, workers: int) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), or start a local one; True if we started it."""
    try:
        import ray
    except ImportError as exc:
        raise SourceError("--engine ray needs Ray: pip install 'medmo-data[ray]'") from exc
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
    if address is None and not os.environ.get("RAY_ADDRESS") and workers > 1:
        kw["num_cpus"] = workers  # a local cluster sized like --workers
    ray.init(address=address, **kw)
    return True


def build_ray(recipe: Recipe, root: Path, opts: BuildOptions, address: str | None = None,
              progress: Callable[[int], None] | None = None, max_retries: int = MAX_RETRIES,
              window: int | None = None, _fault: tuple[str, int] | None = None) -> BuildResult:
    """Build one source on Ray into `opts.output / recipe.info.name` (a path or an fsspec URL).

    window: partitions in flight (default 2 per cluster CPU); the driver holds at most that many.
    _fault: (marker_dir, n) makes each shard's first attempt kill its worker after n samples (tests).
    """
    if not root.exists():
        raise SourceError(f"{root}: input folder does not exist")
    t0 = time.perf_counter()
    import ray

    started = _connect(address, opts.workers)
    try:
        info = recipe.info_for(opts.recipe_options)
        url = as_url(opts.output)
        if url is not None:
            if url.startswith("memory://"):
                raise SourceError(f"--output {url}: an in-memory filesystem lives in one process and Ray "
                                  "tasks run in others; use a shared path, file:// or an object store URL")
            out = f"{url.rstrip('/')}/{recipe.info.name}"
            remote_dir: RemoteDir | None = RemoteDir(out)
            result = _drive(ray, recipe, info, root, opts, out, remote_dir, progress, max_retries, window, _fault)
        else:
            out_dir = Path(opts.output) / recipe.info.name
            out_dir.mkdir(parents=True, exist_ok=True)
            with _Lock(out_dir):
                result = _drive(ray, recipe, info, root, opts, str(out_dir), None, progress, max_retries, window,
                                _fault)
    finally:
        if started:
            ray.shutdown()
    man, path, reused, nodes = result
    from medmo_data.publish.card import write_card_at  # the one upward arrow: the folder's card (#17)

    write_card_at(f"{url.rstrip('/')}/{recipe.info.name}" if url else Path(opts.output) / recipe.info.name)
    check_outcome(man, recipe, opts)
    return RayBuildResult(man, path, time.perf_counter() - t0, reused, dict(sorted(nodes.items())))


def _drive(ray: Any, recipe: Recipe, info: SourceInfo, root: Path, opts: BuildOptions, out: str,
           remote: RemoteDir | None, progress: Callable[[int], None] | None, max_retries: int,
           window: int | None, fault: tuple[str, int] | None) -> tuple[dict[str, Any], Path, int, Counter[str]]:
    task = ray.remote(_task).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)
    window = window or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    # Source info and options go to the object store once, not pickled again into every task.
    info_ref, opts_ref = ray.put(info), ray.put(opts)
    recipe_rejects: list[dict[str, str]] = []
    counters: Counter[str] = Counter()
    stats: list[dict[str, Any]] = []
    reused = 0
    pending: list[Any] = []
    nodes: Counter[str] = Counter()

    def collect(refs: list[Any]) -> None:
        for st, node in ray.get(refs):
            stats.append(st)
            nodes[node] += 1

    for chunk in plan_chunks(recipe, root, opts, recipe_rejects, counters):
        done = remote.finished(chunk.task) if remote else finished(Path(out), chunk.task)
        if done is not None:
            stats.append(done)
            reused += 1
            continue
        pending.append(task.remote(chunk, info_ref, out, remote is not None, opts_ref, fault))
        while len(pending) >= window:
            ready, pending = ray.wait(pending, num_returns=1)
            collect(ready)
            if progress:
                progress(counters["read"])
    collect(pending)
    if progress:
        progress(counters["read"])
    man = manifest_mod.make_source_manifest(info, opts, root, input_fingerprint(root), stats, recipe_rejects,
                                            counters["read"])
    if remote is None:
        path = manifest_mod.write(Path(out), man, stats, recipe_rejects, scrubber(root, opts))
        _remove_stale(Path(out), stats)
        return man, path, reused, nodes
    import shutil
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix="medmo-manifest-"))
    try:
        manifest_mod.write(staging, man, stats, recipe_rejects, scrubber(root, opts))
        remote.commit(staging / manifest_mod.REJECTS)
        remote.commit(staging / manifest_mod.MANIFEST)  # last: a manifest names only committed shards
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    keep = {manifest_mod.MANIFEST, manifest_mod.REJECTS}
    for s in stats:
        keep.update(t["path"] for t in s["tars"])
        keep.update((s["index"]["path"], f"{s['name']}.stats.json"))
    remote.remove_stale(keep)
    return man, Path(out), reused, nodes
