"""`medmo-data push`: tested offline at the `huggingface_hub` boundary (an autospec'd HfApi rejects
wrong argument names like the real one) (issue #17 part 3)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from huggingface_hub import HfApi
from typer.testing import CliRunner

from medmo_data import cli
from medmo_data.publish import push as push_mod
from medmo_data.publish.push import PushError, plan, push
from tests.helpers import build_fixture


@pytest.fixture(scope="module")
def open_source(tmp_path_factory):
    return build_fixture("vqa_rad", tmp_path_factory.mktemp("push")).path.parent


def _credentialed(tmp_path):
    return build_fixture("mimic_cxr", tmp_path).path.parent


def test_plan_lists_shards_card_manifest_not_rejects_or_lock(open_source):
    p = plan(open_source, "me/vqa-rad")
    man = json.loads((open_source / "manifest.json").read_text())
    want = {"README.md", "manifest.json"} | {s["path"] for s in man["shards"]} \
        | {s["index"] for s in man["shards"]} | {s["stats"] for s in man["shards"]}
    assert set(p.files) == want
    assert "rejects.jsonl" in plan(open_source, "me/vqa-rad", include_rejects=True).files
    assert (open_source / ".build.lock").exists() and ".build.lock" not in p.files


def test_push_calls_the_hub_api(open_source):
    api = mock.create_autospec(HfApi, instance=True)
    api.upload_folder.return_value = mock.Mock(commit_url="https://huggingface.co/datasets/me/vqa-rad/commit/abc")
    url = push(plan(open_source, "me/vqa-rad"), private=True, api=api)
    assert url.endswith("/commit/abc")
    api.create_repo.assert_called_once_with("me/vqa-rad", repo_type="dataset", private=True, exist_ok=True)
    kw = api.upload_folder.call_args.kwargs
    assert kw["repo_id"] == "me/vqa-rad" and kw["repo_type"] == "dataset"
    assert kw["folder_path"] == str(open_source) and "README.md" in kw["allow_patterns"]
    assert "rejects.jsonl" not in kw["allow_patterns"]


def test_registered_or_credentialed_needs_the_flag(tmp_path, monkeypatch):
    folder = _credentialed(tmp_path)
    with pytest.raises(PushError, match="access is 'credentialed' \\(licence: PhysioNet"):
        plan(folder, "me/mimic")
    api = mock.create_autospec(HfApi, instance=True)
    monkeypatch.setattr("huggingface_hub.HfApi", lambda: api)
    r = CliRunner().invoke(cli.app, ["push", str(folder), "--repo", "me/mimic"])
    assert r.exit_code == 2 and "--i-have-the-right" in r.output and "PhysioNet" in r.output
    api.create_repo.assert_not_called()
    r = CliRunner().invoke(cli.app, ["push", str(folder), "--repo", "me/mimic", "--i-have-the-right", "--private"])
    assert r.exit_code == 0, r.output
    assert "licence: PhysioNet" in r.output and "uploaded" in r.output
    api.create_repo.assert_called_once_with("me/mimic", repo_type="dataset", private=True, exist_ok=True)


def test_dry_run_uploads_nothing(open_source, monkeypatch):
    def no_hub():
        raise AssertionError("--dry-run must not touch the hub")

    monkeypatch.setattr("huggingface_hub.HfApi", no_hub)
    r = CliRunner().invoke(cli.app, ["push", str(open_source), "--repo", "me/vqa-rad", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "would upload" in r.output and "README.md" in r.output and "train-000000.tar" in r.output


def test_bad_repo_and_folder(tmp_path, open_source):
    with pytest.raises(PushError, match="expected OWNER/NAME"):
        plan(open_source, "just-a-name")
    with pytest.raises(PushError, match="manifest.json: not found"):
        plan(tmp_path, "me/x")
    assert push_mod.REPO_ID.match("me/x.y-z")
