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


def test_every_recipe_that_names_a_hub_repo_has_patterns():
    """Without HUB_PATTERNS a hub id downloads the whole repository (PMC-VQA: ~21 GB, most of it unread)."""
    import re

    from medmo_data.recipe import all_recipes

    named = [n for n, r in all_recipes().items() if re.search(r"Hugging Face|\bhub\b|\bHF\b", r.module.__doc__ or "")]
    assert {"pmc_vqa", "medsg", "quilt_llava_pretrain", "slake", "medqa"} <= set(named)
    assert [n for n in named if not getattr(all_recipes()[n].module, "HUB_PATTERNS", None)] == []


# Real file lists of hub repositories (HF "Files" trees; see each recipe's docstring) -> the files the recipe reads.
REAL_TREES = {
    "pmc_vqa": ([".gitattributes", "README.md", "images.zip", "images_2.zip", "oa_comm_use_file_list.csv",
                 "test.csv", "test_2.csv", "test_clean.csv", "train.csv", "train_2.csv"],
                ["README.md", "images.zip", "images_2.zip", "test.csv", "test_2.csv", "test_clean.csv", "train.csv",
                 "train_2.csv"]),
    "pmc_oa": ([".gitattributes", "README.md", "images.zip", "pmc_oa.jsonl", "pmc_oa_beta.jsonl"],
               ["README.md", "images.zip", "pmc_oa.jsonl"]),  # config pmc_oa, the default
    "pubmed_vision": ([".gitattributes", "PubMedVision_Alignment_VQA.json", "PubMedVision_Chinese.json",
                       "PubMedVision_InstructionTuning_VQA.json", "PubMedVision_Original_Caption.json", "README.md"]
                      + [f"images_{i}.zip" for i in range(20)],
                      ["PubMedVision_Alignment_VQA.json", "PubMedVision_InstructionTuning_VQA.json"]
                      + [f"images_{i}.zip" for i in range(20)]),
    "slake": ([".gitattributes", "KG.zip", "README.md", "imgs.zip", "mask.txt", "test.json", "train.json",
               "validate.json"], ["README.md", "imgs.zip", "test.json", "train.json", "validate.json"]),
    "medqa": ([".gitattributes", "README.md", "phrases_no_exclude_test.jsonl", "phrases_no_exclude_train.jsonl"],
              ["README.md", "phrases_no_exclude_test.jsonl", "phrases_no_exclude_train.jsonl"]),
    "medical_meadow_medqa": ([".gitattributes", "README.md", "medical_meadow_medqa.json"],
                             ["README.md", "medical_meadow_medqa.json"]),
    "meadow_mediqa": ([".gitattributes", "README.md", "medical_meadow_mediqa.json"],
                      ["README.md", "medical_meadow_mediqa.json"]),
    "pmc_instructqa": ([".gitattributes", "README.md", "release.json"], ["README.md", "release.json"]),
    "medmcqa": ([".gitattributes", "README.md", "data/test-00000-of-00001.parquet",
                 "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"],
                ["README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
                 "data/validation-00000-of-00001.parquet"]),
}


@pytest.mark.parametrize("name", sorted(REAL_TREES))
def test_hub_patterns_select_exactly_the_files_read(name):
    from huggingface_hub.utils import filter_repo_objects

    from medmo_data.recipe import get_recipe

    tree, read = REAL_TREES[name]
    patterns = get_recipe(name).hub_patterns({})  # the default options
    assert sorted(filter_repo_objects(tree, allow_patterns=patterns)) == sorted(read)


# Options that choose files: only those files come from the hub (PMC-VQA v2 alone: ~2.2 GB, not ~21).
OPTION_READS = [
    ("pmc_vqa", {"release": "v2"}, ["README.md", "images_2.zip", "test_2.csv", "train_2.csv"]),
    ("pmc_vqa", {"release": "v1"}, ["README.md", "images.zip", "test.csv", "test_clean.csv", "train.csv"]),
    ("pmc_vqa", {"release": "both"}, REAL_TREES["pmc_vqa"][1]),
    ("pmc_oa", {"config": "pmc_oa_beta"}, ["README.md", "images.zip", "pmc_oa_beta.jsonl"]),
    ("pubmed_vision", {"subset": "alignment"},
     ["PubMedVision_Alignment_VQA.json"] + [f"images_{i}.zip" for i in range(20)]),
    ("pubmed_vision", {"subset": "instruction"},
     ["PubMedVision_InstructionTuning_VQA.json"] + [f"images_{i}.zip" for i in range(20)]),
]


@pytest.mark.parametrize(("name", "options", "read"), OPTION_READS)
def test_hub_patterns_follow_the_options(name, options, read):
    from huggingface_hub.utils import filter_repo_objects

    from medmo_data.recipe import get_recipe

    patterns = get_recipe(name).hub_patterns(options)
    assert sorted(filter_repo_objects(REAL_TREES[name][0], allow_patterns=patterns)) == sorted(read)


def test_medsg_bench_skip_fetches_no_benchmark_files():
    from huggingface_hub.utils import filter_repo_objects

    from medmo_data.recipe import get_recipe

    # The repository's file list was not seen (UNVERIFIED): the paths the recipe reads, under its hub folder.
    tree = ["README.md", "MedSG-Bench/MedSG-Train/Task1.json", "MedSG-Bench/MedSG-Train/Task1/a.png",
            "MedSG-Bench/MedSG-Bench/Task1.json", "MedSG-Bench/MedSG-Bench/Task1/b.png"]
    r = get_recipe("medsg")
    assert sorted(filter_repo_objects(tree, allow_patterns=r.hub_patterns({}))) == sorted(tree)
    assert sorted(filter_repo_objects(tree, allow_patterns=r.hub_patterns({"bench": "skip"}))) == [
        "MedSG-Bench/MedSG-Train/Task1.json", "MedSG-Bench/MedSG-Train/Task1/a.png", "README.md"]


def test_cli_sends_the_option_patterns_and_refuses_a_bad_option_before_downloading(tmp_path, monkeypatch):
    import huggingface_hub

    from tests.fixtures import make

    calls = []

    def fake_snapshot(repo_id, repo_type=None, allow_patterns=None, **kw):
        calls.append(allow_patterns)
        return str(make("pmc_vqa", tmp_path / "hub"))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli.app, ["build", "--recipe", "pmc_vqa", "--input", "xmcmic/PMC-VQA", "--output",
                                     str(out), "-o", "release=v2"])
    assert r.exit_code == 0, r.output
    assert calls == [["train_2.csv", "test_2.csv", "images_2.zip", "README.md"]]
    assert {s["json"]["meta"]["release"] for s in read_samples(out / "pmc_vqa")} == {"v2"}
    r = CliRunner().invoke(cli.app, ["build", "--recipe", "pmc_vqa", "--input", "xmcmic/PMC-VQA", "--output",
                                     str(out), "-o", "release=v3"])
    assert r.exit_code == 2 and "release='v3'" in r.output and len(calls) == 1
