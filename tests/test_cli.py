"""The pinned command line: exit codes, one-line errors naming the file/field, list/build/verify/show,
and the rough edges of issue #17 (version/-h/completion, names never cut, progress, info, export)."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medmo_data import __version__, cli
from medmo_data.build.distributor import expected_records
from medmo_data.recipe import all_recipes
from tests.fixtures import available, make

CLI = [sys.executable, "-m", "medmo_data.cli"]
TRAIN = [sys.executable, "-m", "medmo_train.cli"]
REPO = Path(__file__).resolve().parent.parent


def run(*args, cmd=CLI, columns="250", **kw):
    """The CLI in a pipe, from a scratch folder: default outputs (`data/`, `grid.png`) never land in the repo."""
    env = {**os.environ, "COLUMNS": columns, "HF_HUB_OFFLINE": "1"}
    kw.setdefault("cwd", tempfile.mkdtemp(prefix="medmo-cli-"))
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, **kw)


def test_list_shows_sources():
    r = run("list")
    assert r.returncode == 0
    for name in ("deeplesion", "nih_chestxray_bbox", "nih_vqa", "vqa_rad", "medqa", "folder"):
        assert name in r.stdout
    js = run("list", "--json")
    assert js.returncode == 0 and '"name": "deeplesion"' in js.stdout


def test_bad_usage_exit_2(tmp_path):
    r = run("build", "--recipe", "deeplesion", "--input", str(tmp_path / "nope"))
    assert r.returncode == 2 and "nope" in r.stderr and "does not exist" in r.stderr
    r = run("build", "--recipe", "no_such_source", "--input", str(tmp_path))
    assert r.returncode == 2 and "unknown recipe 'no_such_source'" in r.stderr
    r = run("build", "--recipe", "deeplesion", "--input", str(tmp_path))  # folder without DL_info.csv
    assert r.returncode == 2 and "DL_info.csv" in r.stderr
    r = run("build", "--recipe", "deeplesion", "--input", str(tmp_path), "--split", "training")
    assert r.returncode == 2 and "--split" in r.stderr
    r = run("verify", str(tmp_path))
    assert r.returncode == 2 and "manifest.json" in r.stderr


def test_build_verify_show_roundtrip(tmp_path):
    raw = make("vqa_rad", tmp_path / "raw")
    out = tmp_path / "out"
    r = run("build", "--recipe", "vqa_rad", "--input", str(raw), "--output", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "written" in r.stdout and "missing_image=1" in r.stdout
    r = run("build", "--recipe", "vqa_rad", "--input", str(raw), "--output", str(out), "--split", "test")
    assert r.returncode == 0
    r = run("verify", str(out / "vqa_rad"))
    assert r.returncode == 0 and "ok" in r.stdout
    r = run("show", str(out / "vqa_rad"), "--out", str(tmp_path / "g.png"), "-n", "4")
    assert r.returncode == 0 and (tmp_path / "g.png").stat().st_size > 1000
    # A flipped byte makes verify fail with exit 1.
    tar = sorted((out / "vqa_rad").glob("*.tar"))[0]
    b = bytearray(tar.read_bytes())
    b[600] ^= 1
    tar.write_bytes(bytes(b))
    r = run("verify", str(out / "vqa_rad"))
    assert r.returncode == 1 and "sha256" in r.stderr


def test_list_never_cuts_names_at_80_columns_in_a_pipe():
    r = run("list", columns="80")
    assert r.returncode == 0
    words = set(re.findall(r"[a-z0-9_]+", r.stdout))
    missing = [n for n in all_recipes() if n not in words]
    assert not missing, f"cut or wrapped: {missing}\n{r.stdout}"
    starts = {line.split()[0] for line in r.stdout.splitlines()[4:] if line.strip()}
    assert set(all_recipes()) <= starts and "…" not in r.stdout  # each name whole at the start of its row
    assert max(map(len, r.stdout.splitlines())) <= 80
    assert "CC0-1.0" in run("list", columns="160").stdout  # a wide terminal shows the licences


def test_version_help_and_completion_in_both_clis():
    for cmd, prog in ((CLI, "medmo-data"), (TRAIN, "medmo-train")):
        r = run("--version", cmd=cmd)
        assert r.returncode == 0 and r.stdout.strip() == f"{prog} {__version__}"
        r = run("-h", cmd=cmd)
        assert r.returncode == 0 and "--version" in r.stdout
    assert run("-V").stdout.strip() == f"medmo-data {__version__}"
    r = run("build", "-h")
    assert r.returncode == 0 and "--recipe" in r.stdout
    assert "--install-completion" in run("-h").stdout


def test_errors_look_the_same_in_both_clis(tmp_path):
    r = run("verify", str(tmp_path))
    assert r.returncode == 2 and r.stderr.startswith(f"medmo-data: {tmp_path}/manifest.json: not found")
    r = run("--manifest", str(tmp_path / "stage9.json"), cmd=TRAIN)
    assert r.returncode == 2 and r.stderr.startswith(f"medmo-train: {tmp_path}/stage9.json: not found")


def test_train_on_a_stage_spec_says_to_mix():
    r = run("--manifest", str(REPO / "manifests" / "stage3.yaml"), cmd=TRAIN)
    assert r.returncode == 2
    assert "stage spec" in r.stderr and "medmo-data mix --spec" in r.stderr and "stageN.json" in r.stderr


def test_mistyped_local_path_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    import huggingface_hub

    (tmp_path / "Downloads").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("sent to the hub"))
    r = CliRunner().invoke(cli.app, ["build", "--recipe", "deeplesion", "--input", "Downloads/DeepLesion",
                                     "--output", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert "Downloads/DeepLesion: input folder does not exist (Downloads/ exists here" in r.output


def test_build_progress_is_per_record_with_a_cheap_total(tmp_path):
    from medmo_data.build.distributor import BuildOptions, build
    from medmo_data.recipe import get_recipe

    raw = make("medqa", tmp_path / "raw")
    seen = []
    res = build(get_recipe("medqa"), raw, BuildOptions(output=tmp_path / "out", shard_samples=2), progress=seen.append)
    read = res.manifest["counts"]["read"]
    assert seen == list(range(1, read + 1))  # every record, not once per chunk
    # The bar's total: what the last build of this input read, or --limit; none with --split.
    assert expected_records(tmp_path / "out" / "medqa", raw, None, None) == read
    assert expected_records(tmp_path / "out" / "medqa", raw, 2, None) == 2
    assert expected_records(tmp_path / "out" / "medqa", raw, None, "train") is None
    assert expected_records(tmp_path / "nothing", raw, None, None) is None


def test_progress_bar_total_and_eta():
    bar, step = cli.progress_bar("x", 10)
    names = [type(c).__name__ for c in bar.columns]
    assert "TimeRemainingColumn" in names and "MofNCompleteColumn" in names
    step(10)
    assert bar.tasks[0].completed == 10 and bar.tasks[0].total == 10
    bar, _ = cli.progress_bar("x", None)
    assert "TimeRemainingColumn" not in [type(c).__name__ for c in bar.columns]


def test_show_text_only_panels_and_word_wrap(tmp_path):
    from medmo_data.show import _font, draw_sample, wrap_text

    font = _font()
    text = "Which of the following is the most appropriate initial pharmacotherapy for this patient's " * 3
    lines = wrap_text(text, font, 300, 50)
    assert " ".join(lines).split() == text.split()  # words are never cut
    assert all(font.getlength(x) <= 300 for x in lines)
    short = wrap_text(text, font, 300, 2)
    assert len(short) == 2 and short[-1].endswith(" …")
    assert set(short[-1][:-2].split()) <= set(text.split())
    rec = {"task": "text_qa", "images": [], "objects": [], "messages": [
        {"role": "user", "content": [{"type": "text", "text": text}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Metformin."}]}]}
    tile = draw_sample(rec, {})
    top = tile.crop((0, 0, tile.width, 40)).convert("L")
    assert np.asarray(top).min() < 128  # text starts at the top: no empty image area
    assert isinstance(tile, Image.Image)


def test_info_prints_download_tree_build_and_options():
    r = run("info", "deeplesion")
    assert r.returncode == 0, r.stderr
    assert "https://nihcc.app.box.com/v/DeepLesion" in r.stdout
    assert "medmo-data build --recipe deeplesion --input RAW_DIR" in r.stdout
    assert "`drop_noisy`" in r.stdout and "DL_info.csv" in r.stdout and "Images_png/" in r.stdout
    r = run("info", "vqa_rad", "--json")
    d = json.loads(r.stdout)
    assert d["hub_ids"] == ["flaviagiammarino/vqa-rad"] and d["hub_patterns"] == ["data/*.parquet", "*.md"]
    r = run("info", "no_such")
    assert r.returncode == 2 and "unknown recipe" in r.stderr


def test_listed_options_are_the_ones_read():
    """Options come from what the code reads (directly or through a shared helper such as the cells box
    cap), not from any `key=value` in a docstring (fairvlmed's `np.load(..., allow_pickle=False)`)."""
    from medmo_data.publish.source_info import options
    from medmo_data.recipe import get_recipe

    assert set(options(get_recipe("deepcell"))) == {"max_boxes", "target"}
    assert set(options(get_recipe("fairvlmed"))) == {"text"}


def test_docs_sources_page_is_current():
    from medmo_data.publish.source_info import sources_page

    page = sources_page()
    assert all(f"## `{n}`" in page for n in all_recipes()) and len(all_recipes()) == 46
    assert (REPO / "docs" / "sources.md").read_text() == page, "run `make docs` (docs/sources.md is stale)"


def test_export_command(tmp_path):
    raw = make("vqa_rad", tmp_path / "raw")
    assert run("build", "--recipe", "vqa_rad", "--input", str(raw), "--output", str(tmp_path / "out")).returncode == 0
    r = run("export", str(tmp_path / "out" / "vqa_rad"), "--format", "llamafactory", "--out", str(tmp_path / "lf"))
    assert r.returncode == 0, r.stderr
    assert "images copied as stored" in r.stdout and (tmp_path / "lf" / "dataset_info.json").exists()
    r = run("export", str(tmp_path / "out" / "vqa_rad"), "--format", "axolotl", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "--format 'axolotl'" in r.stderr


def test_fixture_trees_regenerate_in_place(tmp_path):
    """`make demo` twice: every generator writes over its previous tree (FileExistsError before)."""
    for name in available():
        make(name, tmp_path)
    (tmp_path / "vqa_rad" / "stale.txt").write_text("x")
    for name in available():
        make(name, tmp_path)
    assert not (tmp_path / "vqa_rad" / "stale.txt").exists()


def _md_links(path: Path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if not target.startswith(("http://", "https://", "#", "mailto:")):
            yield target.split("#")[0]


def test_no_docs_link_to_a_missing_file():
    missing = []
    for md in [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]:
        missing += [f"{md.name} -> {t}" for t in _md_links(md) if t and not (md.parent / t).exists()]
    for py in [*REPO.glob("medmo_data/**/*.py"), *REPO.glob("recipes/*.py"), *REPO.glob("trainer/*.py")]:
        missing += [f"{py.name} -> {t}" for t in re.findall(r"docs/[\w.-]+\.md", py.read_text())
                    if not (REPO / t).exists()]
    assert not missing, missing


def test_pyproject_licence_and_package_data():
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    proj, tool = meta["project"], meta["tool"]["setuptools"]
    assert proj["license"] == "Apache-2.0" and all((REPO / f).exists() for f in proj["license-files"])
    assert "pylint" in " ".join(proj["optional-dependencies"]["dev"])
    dirs = tool["package-dir"]
    for pkg, globs in tool["package-data"].items():
        base = REPO / dirs.get(pkg, pkg.replace(".", "/"))
        for g in globs:
            assert list(base.glob(g)), f"package-data {pkg}: {g} matches nothing"
    packages = set(tool["packages"])
    for init in REPO.glob("medmo_data/*/__init__.py"):
        assert f"medmo_data.{init.parent.name}" in packages


def test_stats_heading_names_the_stage_once():
    from medmo_data.mix.stats_report import _subtitle

    assert _subtitle({"stage": 2, "title": "Stage 2: medical VQA, reports and grounding"}) == \
        "medical VQA, reports and grounding"
    assert _subtitle({"stage": 4, "title": "grounding RL"}) == "grounding RL"


def test_make_test_writes_nothing_into_the_repo_root():
    """`make test` twice leaves the root as it was: no .pytest_cache, no .hypothesis (the wheel test builds
    from a copy, see test_packaging), and every test that runs the CLI does it from a scratch folder."""
    make = (REPO / "Makefile").read_text()
    recipe = make.split("\ntest: venv\n", 1)[1].split("\n\n", 1)[0]
    assert "-p no:cacheprovider" in recipe and "$(TEST_ENV)" in recipe
    assert "HYPOTHESIS_STORAGE_DIRECTORY=" in make.split("TEST_ENV :=", 1)[1].split("\n", 1)[0]


def test_wrap_text_measures_only_what_it_can_draw():
    """A 200k-character token (base64, a URL) once made `show` take seconds per panel: wrapping measures
    at most (max_lines + 1) x (width + 1) characters, whatever the text's length."""
    from medmo_data.show import wrap_text

    class OnePixelFont:  # 1 px per character; records what it was asked to measure
        def __init__(self) -> None:
            self.calls, self.longest = 0, 0

        def getlength(self, s: str) -> float:
            self.calls, self.longest = self.calls + 1, max(self.longest, len(s))
            return float(len(s))

    font = OnePixelFont()
    lines = wrap_text("x" * 200_000 + " word" * 10_000, font, 50, 3)
    assert lines[:2] == ["x" * 50, "x" * 50] and lines[2].endswith("…") and len(lines) == 3
    assert font.longest <= 4 * 51 and font.calls < 200
