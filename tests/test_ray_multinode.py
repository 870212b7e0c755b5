"""`--engine ray` on a simulated two-node cluster (`ray.cluster_utils.Cluster`: two raylets on this machine,
one CPU each): shards are written on both nodes and every byte matches `--engine local`."""

from __future__ import annotations

import pytest

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.recipe import get_recipe
from tests.fixtures import make
from tests.test_ray_engine import snapshot

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


def test_two_nodes_share_the_shards_and_match_local(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    from medmo_data.build.ray_engine import build_ray

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("RAY_raylet_start_wait_time_s", "120")  # a loaded box registers the 2nd raylet slowly
    raw = make("deeplesion", tmp_path / "raw")
    build(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "local", shard_samples=1))
    ref = snapshot(tmp_path / "local" / "deeplesion")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        res = build_ray(get_recipe("deeplesion"), raw, BuildOptions(output=tmp_path / "ray", shard_samples=1))
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert len(res.shards_by_node) == 2, res.shards_by_node  # tasks ran on both raylets
    assert sum(res.shards_by_node.values()) == len(res.manifest["shards"]) >= 4
    assert snapshot(tmp_path / "ray" / "deeplesion") == ref
