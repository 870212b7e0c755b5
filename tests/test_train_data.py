"""The shard adapter: ranks read disjoint shards, sources mix by weight reproducibly from the seed,
excluded keys never appear, rows have the shapes TRL expects."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from medmo_train.data import Resolution, build_dataset, make_slots, mixed_samples

from medmo_data.mix.stage import load_stage_manifest
from tests.helpers import build_fixture
from tests.test_train_support import TINY_IMAGE, built, source_entry, write_stage  # noqa: F401

RES = Resolution(TINY_IMAGE["min_pixels"], TINY_IMAGE["max_pixels"])


@pytest.fixture(scope="module")
def nih_sharded(tmp_path_factory):
    """NIH boxes (8 train samples under the default box-patient split) built with 2 per shard: 4 train shards."""
    root = tmp_path_factory.mktemp("nih3")
    return build_fixture("nih_chestxray_bbox", root, shard_samples=2).path.parent


def keys_of(ds) -> list[str]:
    return [r["key"] for r in ds]


def test_ranks_get_disjoint_shards(nih_sharded, built, tmp_path):  # noqa: F811
    src = source_entry(nih_sharded, 1.0, splits=("train",))
    assert len(src["shards"]) == 4
    m = load_stage_manifest(write_stage(tmp_path / "s.json", 4, "grpo", [src], {}, TINY_IMAGE, "pixel"))
    slots = make_slots(m, 2)
    assert [s["sources"][0]["shards"] for s in slots] == [[src["shards"][0]["path"], src["shards"][2]["path"]],
                                                          [src["shards"][1]["path"], src["shards"][3]["path"]]]
    ds = build_dataset(m, RES, world_size=2)
    assert ds.n_shards == 2  # accelerate gives each rank one: dataset.shard(num_shards=2, index=rank)
    per_rank = [keys_of(ds.shard(num_shards=2, index=r)) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert set(per_rank[0]) | set(per_rank[1]) == {f"nih_chestxray_bbox/{k}" for k in _all_keys(nih_sharded)}
    assert per_rank == [keys_of(ds.shard(num_shards=2, index=r)) for r in range(2)]  # reproducible


def _all_keys(folder):
    from tests.helpers import read_samples

    return {s["__key__"] for s in read_samples(folder) if s["json"]["split"] == "train"}


def test_few_shards_split_by_sample(built, tmp_path):  # noqa: F811
    src = source_entry(built["deeplesion"], 1.0)  # 3 shards (one per split) for 4 slots
    m = load_stage_manifest(write_stage(tmp_path / "s.json", 4, "grpo", [src], {}, TINY_IMAGE, "pixel"))
    ds = build_dataset(m, RES, world_size=4)
    per_rank = [keys_of(ds.shard(num_shards=4, index=r)) for r in range(4)]
    assert sum(map(len, per_rank)) == 8 and len(set().union(*map(set, per_rank))) == 8


def test_weights_seed_and_exclusions(built, tmp_path):  # noqa: F811
    excl = tmp_path / "excluded.jsonl"
    excl.write_text(json.dumps({"source": "vqa_rad", "key": "1"}) + "\n")
    srcs = [source_entry(built["vqa_rad"], 0.8, excluded=str(excl)), source_entry(built["deeplesion"], 0.2)]
    srcs[0]["samples"] -= 1
    m = load_stage_manifest(write_stage(tmp_path / "s.json", 2, "sft", srcs, {}, TINY_IMAGE))
    m.sources[0].samples = m.sources[1].samples = 500  # a long epoch: weights show in the counts
    [slot] = make_slots(m, 1)
    draws = [(name, s["__key__"]) for name, s in mixed_samples(slot, seed=42)]
    assert len(draws) == 1000
    counts = Counter(name for name, _ in draws)
    assert 740 <= counts["vqa_rad"] <= 860  # binomial(1000, 0.8): +-4.7 sigma
    assert ("vqa_rad", "1") not in draws
    assert draws == [(n, s["__key__"]) for n, s in mixed_samples(slot, seed=42)]
    assert draws != [(n, s["__key__"]) for n, s in mixed_samples(slot, seed=7)]


def test_row_shapes(built, tmp_path):  # noqa: F811
    m = load_stage_manifest(write_stage(tmp_path / "s.json", 2, "sft", [source_entry(built["deeplesion"], 1.0)],
                                        {}, TINY_IMAGE))
    row = next(iter(build_dataset(m, RES)))
    assert set(row) == {"messages", "images"} and len(row["images"]) == 1
    assert row["messages"][0]["content"][0]["type"] == "image"
    assert row["messages"][1]["content"][0]["text"].endswith("</box>")  # objects rendered as text
    m3 = load_stage_manifest(write_stage(tmp_path / "t.json", 3, "sft", [source_entry(built["medqa"], 1.0)],
                                         {}, None))
    row = next(iter(build_dataset(m3, None)))
    assert set(row) == {"messages"}  # no "images" key: TRL picks its text collator
    g = load_stage_manifest(write_stage(tmp_path / "g.json", 4, "grpo", [source_entry(built["deeplesion"], 1.0)],
                                        {}, TINY_IMAGE, "pixel"))
    row = next(iter(build_dataset(g, RES)))
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["fed_sizes"] == [[64, 64]] and row["image_sizes"] == [[512, 512]]
    assert row["labels"] and row["objects"] and row["box_format"] == "pixel"
    assert "in absolute pixels of the image" in row["prompt"][1]["content"][-1]["text"]


def test_accelerate_configs_cover_every_engine_on_both_platforms():
    from pathlib import Path

    import medmo_train.rewards
    import yaml

    folder = Path(medmo_train.rewards.__file__).parent / "accelerate_configs"
    want = {"single_gpu": "NO", "ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp2": "FSDP"}
    for name, kind in want.items():
        for suffix in ("", "_rocm"):
            cfg = yaml.safe_load((folder / f"{name}{suffix}.yaml").read_text())
            assert cfg["distributed_type"] == kind and cfg["mixed_precision"] == "bf16", name + suffix
            if kind == "DEEPSPEED":
                assert cfg["deepspeed_config"]["zero_stage"] == int(name[-1])
            if kind == "FSDP":
                assert cfg["fsdp_config"]["fsdp_version"] == 2


def test_corrupt_shard_skipped_unless_strict(tmp_path):
    from medmo_train import data as train_data

    from medmo_data.shards.reader import ShardError

    res = build_fixture("vqa_rad", tmp_path, shard_samples=3)
    shards = [str(tmp_path / "out" / "vqa_rad" / s["path"]) for s in res.manifest["shards"] if s["split"] == "train"]
    assert len(shards) >= 2
    bad = tmp_path / "bad.tar"
    bad.write_bytes(open(shards[0], "rb").read()[:1500])  # truncated mid-member
    spec = {"name": "vqa_rad", "weight": 1.0, "shards": [str(bad), shards[1]], "stride": None, "excluded": []}
    got = [s["__key__"] for s in train_data.iter_source(spec)]
    assert got and all(k for k in got)  # the good shard streams on
    assert str(bad) in train_data.SKIPPED_SHARDS
    with pytest.raises(ShardError):
        list(train_data.iter_source({**spec, "strict": True}))
