"""Issue #15.1 and #13.5 at the build level: any exception while turning one record into a sample is a
reject (local and Ray engines alike), a recipe whose reader raises stops with a `recipe_error` and exit 1,
and a build that writes nothing, or mostly one reject reason, fails with one line and keeps its manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medmo_data.build import shard
from medmo_data.build.distributor import BuildOptions, build
from medmo_data.build.outcome import BuildFailed
from medmo_data.recipe import ImageSource, RawSample, Recipe, get_recipe
from medmo_data.schema import image, turn
from tests.bad_inputs import make_bad_tree
from tests.fixtures import make
from tests.fixtures._images import grey, write_png


def _folder(root: Path, ids: list[str], present: set[str]) -> Path:
    root.mkdir(parents=True)
    for i in present:
        write_png(root / f"{i}.png", grey(16, 12))
    (root / "annotations.jsonl").write_text("".join(
        json.dumps({"id": i, "images": [f"{i}.png"], "question": "q", "answer": "a"}) + "\n" for i in ids))
    return root


def test_unexpected_exception_in_one_record_is_a_reject(tmp_path, monkeypatch):
    raw = _folder(tmp_path / "raw", ["a", "b", "c", "d"], {"a", "b", "c", "d"})
    real = shard.normalize

    def flaky(rawsample, *args, **kw):
        if rawsample.id == "b":
            raise ZeroDivisionError("a decoder bug")
        if rawsample.id == "c":
            raise RecursionError("maximum recursion depth exceeded")
        return real(rawsample, *args, **kw)

    monkeypatch.setattr(shard, "normalize", flaky)
    m = build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out")).manifest
    assert m["counts"] == {"read": 4, "written": 2, "rejected": 2}
    assert m["rejects_by_reason"] == {"too_deep": 1, "unexpected_error": 1}
    rows = (tmp_path / "out" / "folder" / "rejects.jsonl").read_text()
    assert "ZeroDivisionError: a decoder bug" in rows


def _crashing_recipe() -> Recipe:
    """`folder`'s INFO with a reader that yields three samples, then raises (as a recipe bug would)."""
    folder = get_recipe("folder")

    def records(root, options):
        for n in range(3):
            yield RawSample(id=f"s{n}", split="train", task="vqa", images=[ImageSource(path=str(root / "a.png"))],
                            messages=[turn("user", image(), "q"), turn("assistant", "a")])
        raise KeyError("a column the recipe did not expect")

    return Recipe(folder.info, records, folder.module)


def test_recipe_reader_crash_is_a_reject_manifest_kept_and_build_fails(tmp_path):
    raw = _folder(tmp_path / "raw", ["a"], {"a"})
    with pytest.raises(BuildFailed, match="recipe_error"):
        build(_crashing_recipe(), raw, BuildOptions(output=tmp_path / "out"))
    m = json.loads((tmp_path / "out" / "folder" / "manifest.json").read_text())
    assert m["counts"] == {"read": 4, "written": 3, "rejected": 1}
    row = json.loads((tmp_path / "out" / "folder" / "rejects.jsonl").read_text())
    assert row["reason"] == "recipe_error" and "KeyError" in row["detail"]


def test_records_a_recipe_should_not_yield_are_rejects(tmp_path):
    raw = _folder(tmp_path / "raw", ["a"], {"a"})
    folder = get_recipe("folder")
    msgs = [turn("user", image(), "q"), turn("assistant", "a")]

    def records(root, options):
        yield RawSample(id="ok", split="train", task="vqa", images=[ImageSource(path=str(root / "a.png"))],
                        messages=msgs)
        yield RawSample(id="str-image", split="train", task="vqa", images=["a.png"], messages=msgs)
        yield {"id": "a dict, not a RawSample"}
        yield RawSample(id="list-array", split="train", task="vqa", images=[ImageSource(array=[[1, 2]])],
                        messages=msgs)

    m = build(Recipe(folder.info, records, folder.module), raw,
              BuildOptions(output=tmp_path / "out", max_reject_rate=1.0)).manifest
    assert m["counts"] == {"read": 4, "written": 1, "rejected": 3}
    assert m["rejects_by_reason"] == {"bad_record": 3}


def test_empty_build_fails_with_one_line_naming_reasons_and_layout(tmp_path):
    raw = _folder(tmp_path / "raw", ["a", "b"], set())
    with pytest.raises(BuildFailed) as e:
        build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out"))
    msg = str(e.value)
    assert "\n" not in msg and "wrote no samples" in msg and "missing_image=2" in msg
    assert "annotations.jsonl" in msg  # the layout from the recipe's docstring
    assert (tmp_path / "out" / "folder" / "manifest.json").exists()
    assert len((tmp_path / "out" / "folder" / "rejects.jsonl").read_text().splitlines()) == 2
    res = build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out", allow_empty=True,
                                                         max_reject_rate=1.0))
    assert res.manifest["counts"]["written"] == 0


def test_one_reason_over_the_rate_fails_and_the_option_overrides(tmp_path):
    raw = _folder(tmp_path / "raw", ["a", "b", "c", "d", "e"], {"a", "b"})  # 3 of 5 missing: 60 %
    with pytest.raises(BuildFailed, match=r"missing_image rejected 3 of 5 records read, over --max-reject-rate 0\.5"):
        build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out"))
    assert build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "out", max_reject_rate=0.7)).manifest
    raw2 = _folder(tmp_path / "raw2", ["a", "b", "c", "d"], {"a", "b"})  # exactly half: not over it
    assert build(get_recipe("folder"), raw2, BuildOptions(output=tmp_path / "out2")).manifest


def test_cli_exit_1_for_a_source_in_another_layout(tmp_path):
    """DeepLesion with its slice folders one level deeper than the recipe expects (Images_png/ exists, so
    the recipe's own layout check passes): every record is missing_image -> exit 1 naming the layout."""
    raw = make("deeplesion", tmp_path / "raw")
    (raw / "Images_png").rename(raw / "unpacked")
    (raw / "Images_png").mkdir()
    (raw / "unpacked").rename(raw / "Images_png" / "Images_png")
    cmd = [sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "deeplesion", "--input", str(raw),
           "--output", str(tmp_path / "out")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    err = " ".join(r.stderr.split())
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "missing_image=" in err and "Images_png" in err
    assert (tmp_path / "out" / "deeplesion" / "manifest.json").exists()
    r = subprocess.run(cmd + ["--allow-empty", "--max-reject-rate", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.ray
def test_ray_engine_rejects_the_bad_corpus_like_local(tmp_path):
    pytest.importorskip("ray")
    from medmo_data.build.ray_engine import build_ray

    raw = make_bad_tree(tmp_path / "raw")
    local = build(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "local")).manifest
    remote = build_ray(get_recipe("folder"), raw, BuildOptions(output=tmp_path / "ray", workers=2)).manifest
    assert remote["rejects_by_reason"] == local["rejects_by_reason"]
    assert remote["counts"] == local["counts"]
    assert (tmp_path / "ray" / "folder" / "rejects.jsonl").read_bytes() == \
        (tmp_path / "local" / "folder" / "rejects.jsonl").read_bytes()
