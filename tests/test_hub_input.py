"""`--input` given a Hugging Face dataset id: the only download path. Here `snapshot_download` is replaced by
a local copy of a repo in the real HF layout (`data/{split}-*.parquet`, Image cells {bytes, path}), so
the same code path (resolve -> local files -> recipe) runs without a network."""


import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from medmo_data import cli
from medmo_data.build.manifest import load
from tests.fixtures._images import grey, jpeg_bytes
from tests.helpers import by_id, read_samples, texts


def hf_vqa_rad(root):
    """flaviagiammarino/vqa-rad as the hub serves it: image, question, answer (lower-cased)."""
    (root / "data").mkdir(parents=True)
    for split, rows in (("train", [("is there a mass?", "yes"), ("what organ is shown?", "liver")]),
                        ("test", [("is the liver enlarged?", "no")])):
        table = pa.table({
            "image": [{"bytes": jpeg_bytes(grey(64, 48, seed=i)), "path": f"img_{i}.jpg"} for i in range(len(rows))],
            "question": [q for q, _ in rows], "answer": [a for _, a in rows]})
        pq.write_table(table, root / "data" / f"{split}-00000-of-00001-abc123.parquet")
    (root / "README.md").write_text("---\nlicense: cc0-1.0\n---\n")
    return root


def test_hub_id_goes_through_snapshot_download(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot(repo_id, repo_type=None, allow_patterns=None, **kw):
        calls.append((repo_id, repo_type, allow_patterns))
        return str(hf_vqa_rad(tmp_path / "hub" / repo_id.replace("/", "--")))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli.app, ["build", "--recipe", "vqa_rad", "--input", "flaviagiammarino/vqa-rad",
                                     "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert calls == [("flaviagiammarino/vqa-rad", "dataset", ["data/*.parquet", "*.md"])]
    m = load(out / "vqa_rad")
    assert m["counts"] == {"read": 3, "written": 3, "rejected": 0} and m["splits"] == {"test": 1, "train": 2}
    s = by_id(read_samples(out / "vqa_rad"))
    assert texts(s["train-00001"]["json"], "assistant") == "liver"
    assert s["test-00000"]["json"]["target"] == {"answer": "no", "answer_type": "closed"}
    assert s["train-00000"]["0.jpg"] == jpeg_bytes(grey(64, 48, seed=0))  # hub JPEG bytes pass through


def test_unknown_local_path_is_not_sent_to_the_hub(tmp_path):
    r = CliRunner().invoke(cli.app, ["build", "--recipe", "vqa_rad", "--input", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.output


@pytest.mark.parametrize("bad", ["./rel/path", "a/b/c"])
def test_non_hub_shapes(bad):
    assert not (cli.HUB_ID.match(bad) and not bad.startswith((".", "/")))
