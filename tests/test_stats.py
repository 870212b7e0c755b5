"""`medmo-data stats`: the HTML report and its PNG plots render from a mixed stage."""

from __future__ import annotations

from typer.testing import CliRunner

from medmo_data.cli import app
from medmo_data.mix.mixer import MixOptions, mix
from medmo_data.mix.stats_report import collect
from tests.mix_index import index_row, spec_file, write_source


def test_stats_report_renders(vqa_rad, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    import shutil

    shutil.copytree(vqa_rad / "vqa_rad", data / "vqa_rad")
    write_source(data, "nih_chestxray_bbox", [
        index_row("g1", sha="01" * 32, dhash=3, task="grounding", n_objects=2, box_areas=[400.0, 2500.0], answer="a"),
        index_row("g2", sha="01" * 32, dhash=3, task="grounding", n_objects=1, box_areas=[100.0], answer="a"),
    ])
    man, out = mix(spec_file(tmp_path, ["vqa_rad", "nih_chestxray_bbox"]),
                   MixOptions(data=data, out=tmp_path / "m" / "stage2.json"))
    df = collect(out)
    assert df.height == man["samples"] == 8  # 7 VQA-RAD train + 1 grounding (g2 is a duplicate of g1)
    assert sorted(df["source"].unique().to_list()) == ["nih_chestxray_bbox", "vqa_rad"]
    r = CliRunner().invoke(app, ["stats", str(out), "--out", str(tmp_path / "r" / "report.html")])
    assert r.exit_code == 0, r.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Stage 2 (sft)" in page and "8 samples kept from 2 sources; 1 excluded" in page
    assert "dup_exact" in page and page.count("data:image/png;base64,") == 4
    for name in ("composition", "images", "text_boxes", "filtered"):
        png = (tmp_path / "r" / f"report_{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    r = CliRunner().invoke(app, ["stats", str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "not found" in r.output
