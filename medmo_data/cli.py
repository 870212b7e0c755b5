"""The `medmo-data` command line. Exit codes: 0 ok, 1 the run failed, 2 bad usage or bad input."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from . import __version__
from .recipe import Recipe, SourceError, all_recipes, get_recipe

PROG = "medmo-data"
app = typer.Typer(name=PROG, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Turn medical imaging and text sources into clean WebDataset shards.")
console = Console(stderr=True)
out = Console()

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def fail(message: str, code: int = 2) -> None:
    """One line naming the file and the field, then exit (the same `PROG: message` as medmo-train)."""
    console.print(f"{PROG}: {message}", highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        out.print(f"{PROG} {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool | None, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                       help="Print the version and exit.")] = None) -> None:
    """Turn medical imaging and text sources into clean WebDataset shards."""


def progress_bar(description: str, total: int | None) -> tuple[Progress, Callable[[int], None]]:
    """A bar that shows done/total and the time left when the total is known, else a running count; the
    returned callback redraws at most ten times a second (it may be called once per record)."""
    cols = [TextColumn("[bold]{task.description}"), BarColumn()]
    cols += [MofNCompleteColumn(), TextColumn("records"), TimeElapsedColumn(), TextColumn("eta"),
             TimeRemainingColumn()] if total else [TextColumn("{task.completed} records"), TimeElapsedColumn()]
    bar = Progress(*cols, console=console, transient=True)
    tid = bar.add_task(description, total=total)
    last = [0.0]

    def update(n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.1 or (total and n >= total):
            last[0] = now
            bar.update(tid, completed=n)

    return bar, update


def resolve_input(value: str, recipe: Recipe, options: dict[str, str]) -> Path:
    """A local folder, or a Hugging Face dataset id downloaded once into the hub cache (the only time
    anything is fetched: when the user names a hub id), only the files the recipe reads with `options`."""
    p = Path(value)
    if p.exists():
        return p
    if not p.is_absolute() and len(p.parts) > 1 and Path(p.parts[0]).is_dir():  # `Downloads/DeepLesion`: a typo
        fail(f"{value}: input folder does not exist ({p.parts[0]}/ exists here, so this is a local path, "
             "not a Hugging Face dataset id)")
    if HUB_ID.match(value) and not value.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download
        except ImportError:  # pragma: no cover - huggingface_hub comes with datasets
            fail(f"{value}: not a folder, and huggingface_hub is not installed to fetch it")
        try:
            patterns = recipe.hub_patterns(options)
        except SourceError as exc:  # a bad --option: said before anything is downloaded
            fail(str(exc))
        try:
            return Path(snapshot_download(value, repo_type="dataset", allow_patterns=patterns))
        except Exception as exc:  # noqa: BLE001 - network and auth errors all mean "cannot get it"
            fail(f"{value}: not a local folder, and the hub download failed ({type(exc).__name__}: {exc})")
    fail(f"{value}: input folder does not exist")
    raise AssertionError  # unreachable


def _parse_options(values: list[str]) -> dict[str, str]:
    opts = {}
    for v in values:
        if "=" not in v:
            fail(f"--option {v!r}: expected KEY=VALUE")
        k, val = v.split("=", 1)
        opts[k.strip()] = val
    return opts


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Every source: name, stages, tasks, modality, access, licence, status."""
    recipes = all_recipes()
    rows = [r.info for r in recipes.values()]
    if as_json:
        from medmo_data.build.manifest import info_json

        out.print_json(json.dumps([info_json(i) for i in rows]))
        return
    from medmo_data.publish.source_info import sources_table

    out.print(sources_table(rows, wide=out.width >= 120))


@app.command()
def build(
    recipe: Annotated[str, typer.Option(help="Source name, see `medmo-data list`.")],
    input: Annotated[str, typer.Option("--input", help="Raw release folder, or a Hugging Face dataset id.")],
    output: Annotated[Path, typer.Option(help="Output root; writes OUTPUT/RECIPE/.")] = Path("data"),
    workers: Annotated[int, typer.Option(min=1, help="Processes.")] = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after N records.")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split (train, val or test).")] = None,
    shard_samples: Annotated[int, typer.Option(min=1, help="Records per shard.")] = 1000,
    max_side: Annotated[int, typer.Option(help="Cap on the stored images' longest side (0: none).")] = 1280,
    png_level: Annotated[int, typer.Option(min=0, max=9, help="PNG zlib level.")] = 4,
    drop_burned_in: Annotated[bool, typer.Option(help="Reject DICOMs whose header flags burned-in text.")] = False,
    redact_paths: Annotated[bool, typer.Option(
        "--redact-paths", help="rejects.jsonl names files by keyed hash (key: $MEDMO_REDACT_KEY or "
        "OUTPUT/.redact-key).")] = False,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Succeed even if no sample is written.")] = False,
    max_reject_rate: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Fail when one reject reason covers more than this share of the records read.")] = 0.5,
    option: Annotated[list[str], typer.Option("--option", "-o", help="Recipe option KEY=VALUE.")] = [],  # noqa: B006
    engine: Annotated[str, typer.Option(help="local, or ray for a cluster.")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (engine ray).")] = None,
) -> None:
    """Build one source into WebDataset shards plus a manifest. Re-running resumes."""
    from medmo_data.build.distributor import BuildOptions, expected_records
    from medmo_data.build.distributor import build as run_build
    from medmo_data.build.normalize import NormalizeOptions
    from medmo_data.build.outcome import BuildFailed

    from .schema import SPLITS

    if split is not None and split not in SPLITS:
        fail(f"--split {split!r}: must be one of {', '.join(SPLITS)}")
    try:
        rec = get_recipe(recipe)
    except SourceError as exc:
        fail(str(exc))
    recipe_options = _parse_options(option)
    root = resolve_input(input, rec, recipe_options)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:/", str(output)) and engine == "local":  # Path collapses "//"
        fail(f"--output {output}: URL outputs need --engine ray (the local engine writes to a folder)")
    opts = BuildOptions(
        output=output, workers=workers, limit=limit, split=split, shard_samples=shard_samples,
        normalize=NormalizeOptions(max_side=max_side or None, png_level=png_level, drop_burned_in=drop_burned_in),
        recipe_options=recipe_options, redact_paths=redact_paths, allow_empty=allow_empty,
        max_reject_rate=max_reject_rate,
    )
    try:
        bar, step = progress_bar(f"building {recipe}", expected_records(output / recipe, root, limit, split))
        with bar:
            if engine == "ray":
                from medmo_data.build.ray_engine import build_ray

                result = build_ray(rec, root, opts, address=address, progress=step)
            elif engine == "local":
                result = run_build(rec, root, opts, progress=step)
            else:
                fail(f"--engine {engine!r}: must be local or ray")
    except BuildFailed as exc:  # manifest.json and rejects.jsonl are written: one line, exit 1
        fail(str(exc), 1)
    except SourceError as exc:
        fail(str(exc))
    except OSError as exc:  # disk full, permission denied: the run failed; nothing partial is visible
        fail(f"{exc.filename or output}: {exc.strerror or exc} (finished shards are kept; rerun to resume)", 1)
    m = result.manifest
    t = Table(title=f"{recipe} -> {result.path.parent}")
    for col in ("read", "written", "rejected", "shards", "reused", "seconds", "samples/s"):
        t.add_column(col, justify="right")
    c = m["counts"]
    rate = c["read"] / result.seconds if result.seconds else 0.0
    t.add_row(str(c["read"]), str(c["written"]), str(c["rejected"]), str(len(m["shards"])),
              str(result.shards_reused), f"{result.seconds:.2f}", f"{rate:.1f}")
    out.print(t)
    if m["rejects_by_reason"]:
        out.print("rejects: " + ", ".join(f"{k}={v}" for k, v in m["rejects_by_reason"].items()))


@app.command()
def verify(
    folder: Annotated[Path, typer.Argument(help="A built source: OUT/NAME.")],
    no_images: Annotated[bool, typer.Option("--no-images", help="Skip decoding images.")] = False,
) -> None:
    """Re-hash shards and check every sample against the schema and the manifest."""
    from medmo_data.build.verify import verify as run_verify

    if not (folder / "manifest.json").exists():
        fail(f"{folder}/manifest.json: not found (build the source first)")
    from medmo_data.build.manifest import load

    bar, step = progress_bar(f"verifying {folder.name}", load(folder)["counts"]["written"] or None)
    with bar:
        rep = run_verify(folder, decode_images=not no_images, progress=step)
    for p in rep.problems[:50]:
        console.print(f"[red]x[/red] {p}", highlight=False)
    if len(rep.problems) > 50:
        console.print(f"... and {len(rep.problems) - 50} more problems")
    status = "[green]ok[/green]" if rep.ok else f"[red]{len(rep.problems)} problems[/red]"
    out.print(f"{folder}: {rep.shards} shards, {rep.samples} samples, {status}")
    if not rep.ok:
        raise typer.Exit(1)


@app.command()
def show(
    folder: Annotated[Path, typer.Argument(help="A built source: OUT/NAME.")],
    out_path: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("grid.png"),
    n: Annotated[int, typer.Option("-n", min=1, help="Samples to draw.")] = 16,
) -> None:
    """Draw samples with their boxes and text into one PNG grid."""
    from .show import show as run_show

    if not (folder / "manifest.json").exists():
        fail(f"{folder}/manifest.json: not found (build the source first)")
    try:
        k = run_show(folder, out_path, n)
    except ValueError as exc:
        fail(str(exc), 1)
    out.print(f"wrote {out_path} ({k} samples)")


@app.command("mix")
def mix_cmd(
    stage: Annotated[int | None, typer.Option(min=1, max=4, help="Stage 1-4: uses manifests/stageN.yaml.")] = None,
    spec: Annotated[Path | None, typer.Option(help="A stage spec YAML (a copied and edited stageN.yaml).")] = None,
    data: Annotated[Path, typer.Option(help="Folder of built sources (OUT of `build`).")] = Path("data"),
    out_path: Annotated[Path | None, typer.Option("--out", help="Stage manifest to write.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed recorded for the trainer.")] = 42,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Mix without unbuilt sources.")] = False,
    split: Annotated[list[str], typer.Option("--split", help="Splits to mix (default: train).")] = [],  # noqa: B006
    benchmark: Annotated[list[str], typer.Option("--benchmark", help="Benchmark test file NAME=PATH.")] = [],  # noqa: B006
    exclude_access: Annotated[list[str], typer.Option("--exclude-access", help="open|registered|credentialed")] = [],  # noqa: B006
    exclude_licence: Annotated[list[str], typer.Option("--exclude-licence", "--exclude-license",
                                                       help="non-commercial|no-derivatives|share-alike|"
                                                            "no-redistribution|unknown")] = [],  # noqa: B006
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer/processor folder for exact prompt tokens.")] = None,
    no_decontam: Annotated[bool, typer.Option("--no-decontam", help="Skip decontamination.")] = False,
    no_dedup: Annotated[bool, typer.Option("--no-dedup", help="Skip dedup.")] = False,
) -> None:
    """Resolve a stage spec against built sources: decontaminate, dedup, filter; write the stage manifest."""
    from medmo_data.mix.mixer import MixOptions
    from medmo_data.mix.mixer import mix as run_mix
    from medmo_data.mix.publish import PublishError
    from medmo_data.mix.spec import MixError, find_spec

    if (stage is None) == (spec is None):
        fail("pass exactly one of --stage N or --spec FILE")
    try:
        spec_path = spec or find_spec(int(stage))  # type: ignore[arg-type]
        opts = MixOptions(data=data, out=out_path, seed=seed, allow_missing=allow_missing, splits=split or None,
                          benchmarks={k: Path(v) for k, v in _parse_options(benchmark).items()},
                          exclude_access=exclude_access, exclude_licence=exclude_licence, tokenizer=tokenizer,
                          decontaminate=not no_decontam, deduplicate=not no_dedup)
        with console.status(f"mixing {spec_path} (decontaminate, dedup, filter)"):
            man, path = run_mix(spec_path, opts)
    except MixError as exc:
        fail(str(exc))
    except PublishError as exc:  # a full disk: nothing replaced, one line, exit 1
        fail(str(exc), 1)
    f = man["filters"]
    t = Table(title=f"stage {man['stage']} ({man['kind']}) -> {path}")
    for col in ("source", "samples", "weight", "excluded"):
        t.add_column(col, justify="right" if col != "source" else "left")
    for s in man["sources"]:
        t.add_row(s["name"], f"{s['samples']:,}", f"{s['weight']:.4f}", str(f["by_source"].get(s["name"], 0)))
    out.print(t)
    out.print("excluded: " + (", ".join(f"{k}={v}" for k, v in f["by_reason"].items()) or "none")
              + f"; {man['samples']:,} samples in {man['_seconds']:.1f}s")
    if man.get("tasks") is not None:
        by_src = ", ".join(f"{k} {v:,}" for k, v in f["tasks"]["by_source"].items())
        out.print(f"tasks: {', '.join(man['tasks'])}; {f['tasks']['rows_filtered']:,} rows of other tasks left out"
                  + (f" ({by_src})" if by_src else ""))
    for m in f["missing_sources"]:
        console.print(f"[yellow]missing[/yellow] {m['name']}: {m['reason']} -> {m['build']}", highlight=False)
    for b in f["decontam"]["benchmark_files"]:
        if b.get("images_unreadable"):
            console.print(f"[yellow]unreadable[/yellow] {b['images_unreadable']} of {b['images']} images of benchmark "
                          f"{b['name']} ({b['path']}), e.g. {', '.join(b['unreadable_examples'])}: those items are "
                          "matched by text only (image paths are relative to the benchmark file)", highlight=False)


@app.command()
def stats(
    manifest: Annotated[Path, typer.Argument(help="A stage manifest (manifests/stageN.json).")],
    out_path: Annotated[Path, typer.Option("--out", help="HTML report to write (PNGs go beside it).")] = Path(
        "report.html"),
) -> None:
    """An HTML report (and PNG plots) of a stage mixture: composition, sizes, tokens, boxes, filters."""
    from medmo_data.mix.stage import StageManifestError
    from medmo_data.mix.stats_report import report

    try:
        files = report(manifest, out_path)
    except (StageManifestError, FileNotFoundError) as exc:
        fail(str(exc))
    out.print(f"wrote {files[0]} and {len(files) - 1} PNG plots")


@app.command()
def info(name: Annotated[str, typer.Argument(help="Source name, see `medmo-data list`.")],
         as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False) -> None:
    """Where to download a source, the files it reads, its build command and its -o options."""
    from medmo_data.publish.source_info import describe, markdown

    try:
        d = describe(get_recipe(name))
    except SourceError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps({k: v for k, v in d.items() if k != "doc"}))
    else:
        out.print(markdown(d), markup=False, highlight=False, soft_wrap=True)


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="A built source (OUT/NAME) or a stage manifest (stageN.json).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="llamafactory, sharegpt, swift or parquet.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (exports of several sources add up).")],
    box_format: Annotated[str | None, typer.Option(help="Boxes as text: qwen3, pixel or json (default: the "
                                                        "stage manifest's, else qwen3).")] = None,
) -> None:
    """Write a source or a stage for LLaMA-Factory, ms-swift, sharegpt tools or `load_dataset("parquet")`."""
    from medmo_data.mix.stage import StageManifestError
    from medmo_data.publish.export import ExportError, total_samples
    from medmo_data.publish.export import export as run_export
    from medmo_data.shards.reader import ShardError

    try:
        bar, step = progress_bar(f"exporting {source.name}", total_samples(source) if source.exists() else None)
        with bar:
            res = run_export(source, fmt, out_dir, box_format, progress=step)
    except (ExportError, StageManifestError) as exc:
        fail(str(exc))
    except ShardError as exc:
        fail(str(exc), 1)
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(res.samples.items())) or "no samples"
    out.print(f"{fmt}: {counts}; {res.images:,} images copied as stored", highlight=False)
    for f in res.files:
        out.print(f"  {f}", highlight=False)


@app.command()
def push(
    source: Annotated[Path, typer.Argument(help="A built source: OUT/NAME.")],
    repo: Annotated[str, typer.Option(help="Hub dataset repo OWNER/NAME (created if missing).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; upload nothing.")] = False,
    rejects: Annotated[bool, typer.Option("--rejects", help="Upload rejects.jsonl too.")] = False,
    i_have_the_right: Annotated[bool, typer.Option(
        "--i-have-the-right", help="Upload a registered/credentialed source: you hold the right to share it.")] = False,
) -> None:
    """Upload a built source (shards, index, stats, dataset card, manifest) to a Hugging Face dataset repo."""
    from medmo_data.publish.push import PushError, plan
    from medmo_data.publish.push import push as run_push

    try:
        p = plan(source, repo, include_rejects=rejects, i_have_the_right=i_have_the_right)
    except PushError as exc:
        fail(str(exc))
    if p.access != "open":
        console.print(f"{PROG}: {source} is {p.access}; licence: {p.license}", highlight=False, markup=False)
    if dry_run:
        out.print(f"would upload {len(p.files)} files to datasets/{repo}" + (" (private)" if private else ""),
                  highlight=False)
        for f in p.files:
            out.print(f"  {f}", highlight=False)
        return
    try:
        url = run_push(p, private=private)
    except Exception as exc:  # noqa: BLE001 - auth, network, quota: the upload failed, one line
        fail(f"{repo}: upload failed ({type(exc).__name__}: {exc})", 1)
    out.print(f"uploaded {len(p.files)} files: {url}", highlight=False)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
