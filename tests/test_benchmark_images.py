"""`mix --benchmark` files whose images cannot be read: counted, named in the stage manifest and warned about
on the command line; files with nothing to match stop the mix. Before, an unreadable image silently left
its item with text only, and a file whose columns were not recognised gave empty items: decontamination
against them did nothing, and nothing said so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from medmo_data.cli import app
from medmo_data.mix.fingerprint import image_prints, pixel_hash
from medmo_data.mix.mixer import MixOptions, mix
from medmo_data.mix.spec import MixError
from medmo_data.mix.test_items import read_benchmark
from tests.mix_index import index_row, spec_file, write_source


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8))


def _prints(img: Image.Image) -> dict:
    dh, thumb = image_prints(img)
    return {"sha": pixel_hash(np.asarray(img)), "dhash": dh, "image_thumb": [thumb]}


def _benchmark(folder: Path, named: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "omni.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": "What is shown?", "image": name}) + "\n"
                            for i, name in enumerate(named)))
    return path


def test_each_unreadable_image_is_counted_with_the_decoders_reason(tmp_path):
    bench = tmp_path / "bench"
    path = _benchmark(bench, ["ok.png", "gone.png", "broken.png", "fifo.png"])
    _image(0).save(bench / "ok.png")
    (bench / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    os.mkfifo(bench / "fifo.png")  # never opened: the decoder checks the file type first
    got = read_benchmark("OmniMedVQA", path)
    assert got.images == 4
    assert got.unreadable == [("gone.png", "missing_image"), ("broken.png", "corrupt_image"),
                              ("fifo.png", "not_a_regular_file")]
    assert got.items["shas"].to_list() == [[pixel_hash(np.asarray(_image(0)))], [], [], []]


def test_images_in_another_folder_are_counted_and_named_not_silently_dropped(tmp_path):
    """Every image named relative to a folder they are not in (the usual mistake): the mix still runs (its
    text and PMC rules hold), and the manifest and the CLI say which images went unread and why."""
    bench = tmp_path / "bench"
    path = _benchmark(bench, ["images/a.png", "images/b.png"])
    _image(0).save(bench / "a.png")  # beside the file, not under images/
    _image(1).save(bench / "b.png")
    data = tmp_path / "data"
    write_source(data, "pubmed_vision", [index_row("copy", **_prints(_image(0)))])
    spec = spec_file(tmp_path, ["pubmed_vision"])
    man, _ = mix(spec, MixOptions(data=data, out=tmp_path / "m.json", benchmarks={"OmniMedVQA": path}))
    (entry,) = man["filters"]["decontam"]["benchmark_files"]
    assert (entry["images"], entry["images_unreadable"]) == (2, 2)
    assert entry["unreadable_examples"] == ["images/a.png (missing_image)", "images/b.png (missing_image)"]
    assert man["filters"]["rows_excluded"] == 0  # the copy is not found: what the warning is for
    r = CliRunner().invoke(app, ["mix", "--spec", str(spec), "--data", str(data), "--out", str(tmp_path / "c.json"),
                                 "--benchmark", f"OmniMedVQA={path}"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "unreadable 2 of 2 images of benchmark OmniMedVQA" in said and "images/a.png (missing_image)" in said


def test_a_few_broken_images_are_reported_and_the_rest_still_decontaminate(tmp_path):
    bench = tmp_path / "bench"
    path = _benchmark(bench, ["a.png", "b.png", "broken.png"])
    _image(0).save(bench / "a.png")
    _image(1).save(bench / "b.png")
    (bench / "broken.png").write_bytes(b"")
    data = tmp_path / "data"
    write_source(data, "pubmed_vision", [index_row("copy_of_b", **_prints(_image(1))),
                                         index_row("unrelated", **_prints(_image(2)))])
    spec = spec_file(tmp_path, ["pubmed_vision"])
    man, out = mix(spec, MixOptions(data=data, out=tmp_path / "m.json", benchmarks={"OmniMedVQA": path}))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert [(r["key"], r["rule"], r["item_id"]) for r in rows] == [("copy_of_b", "image_exact", "q1")]
    (entry,) = man["filters"]["decontam"]["benchmark_files"]
    assert (entry["items"], entry["images"], entry["images_unreadable"]) == (3, 3, 1)
    assert entry["unreadable_examples"] == ["broken.png (empty_file)"]


@pytest.mark.parametrize(("name", "text", "said"), [
    # MMLU's test CSVs ship without a header row: the first question becomes the column names
    ("anatomy_test.csv", "What is the largest organ?,Skin,Liver,Heart,Lung,A\nWhich bone?,a,b,c,d,B\n",
     "no row has a question, an image or an image hash; its columns are 'What is the largest organ?'"),
    ("empty.jsonl", "\n", "the file has no rows"),
    ("strings.json", json.dumps(["What is shown?"]), "row 0 is a str, not an object"),
])
def test_a_file_with_nothing_to_match_stops_the_mix_naming_it(tmp_path, name, text, said):
    """Before, such a file gave items with empty prompts (or a traceback): decontamination against that
    benchmark silently did nothing."""
    path = tmp_path / name
    path.write_text(text)
    data = tmp_path / "data"
    write_source(data, "medreason", [index_row("r1", task="reasoning", prompt="What is the largest organ?")])
    with pytest.raises(MixError) as err:
        mix(spec_file(tmp_path, ["medreason"]), MixOptions(data=data, out=tmp_path / "m.json",
                                                           benchmarks={"MMLU-Med": path}))
    assert str(err.value).startswith(f"{path}: cannot read benchmark MMLU-Med: {said}")
    assert not (tmp_path / "m.json").exists()


def test_a_hub_parquets_image_feature_is_fingerprinted(tmp_path):
    """`load_dataset(...).to_parquet()` and the hub's own parquet files store an `Image` column as a struct
    {bytes, path}: before, such a benchmark's images were never fingerprinted (the cell is no path)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    cells = [{"bytes": png(_image(0)), "path": "synpic1.jpg"}, {"bytes": None, "path": None}]
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.table({"image": pa.array(cells, struct), "question": ["Is there a mass?", "Which lobe?"],
                             "answer": ["yes", "left"]}), path)
    got = read_benchmark("VQA-RAD", path)
    assert got.images == 1 and got.unreadable == []
    assert got.items["shas"].to_list() == [[pixel_hash(np.asarray(_image(0)))], []]
    data = tmp_path / "data"
    write_source(data, "pubmed_vision", [index_row("copy", **_prints(_image(0)))])
    man, out = mix(spec_file(tmp_path, ["pubmed_vision"]),
                   MixOptions(data=data, out=tmp_path / "m.json", benchmarks={"VQA-RAD": path}))
    rows = [json.loads(line) for line in out.with_name("m.excluded.jsonl").read_text().splitlines()]
    assert [(r["key"], r["rule"]) for r in rows] == [("copy", "image_exact")]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_fifo_named_as_a_benchmark_file_is_refused_without_blocking(tmp_path, suffix):
    import signal

    path = tmp_path / f"bench{suffix}"
    os.mkfifo(path)
    data = tmp_path / "data"
    write_source(data, "medreason", [index_row("r1", task="reasoning")])
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("mix opened the FIFO and blocked"))
    signal.alarm(60)
    try:
        with pytest.raises(MixError) as err:
            mix(spec_file(tmp_path, ["medreason"]), MixOptions(data=data, out=tmp_path / "m.json",
                                                               benchmarks={"MedQA": path}))
    finally:
        signal.alarm(0)
    assert str(err.value) == f"{path}: cannot read benchmark MedQA: not a regular file"


def test_a_benchmark_file_that_is_not_utf8_stops_the_mix(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_bytes(json.dumps({"question": "caf\u00e9?"}).encode("latin-1").replace(b"\\u00e9", b"\xe9"))
    data = tmp_path / "data"
    write_source(data, "medreason", [index_row("r1", task="reasoning")])
    with pytest.raises(MixError) as err:
        mix(spec_file(tmp_path, ["medreason"]), MixOptions(data=data, out=tmp_path / "m.json",
                                                           benchmarks={"MedQA": path}))
    assert str(err.value).startswith(f"{path}: cannot read benchmark MedQA: 'utf-8' codec can't decode byte 0xe9")


def test_jsonl_lines_split_on_newlines_only(tmp_path):
    """A question holding a raw U+2028 (valid inside a JSON string) stays one row; `splitlines()` cut it."""
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "first\u2028second?"}, ensure_ascii=False) + "\r\n"
                    + json.dumps({"id": "b", "question": "third?"}) + "\n", encoding="utf-8")
    got = read_benchmark("MedQA", path)
    assert got.items["prompt"].to_list() == ["first\u2028second?", "third?"]
