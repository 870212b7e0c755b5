"""`medmo-data push`: upload one built source folder (shards, indexes, stats, card, manifest) to a
Hugging Face dataset repo with `huggingface_hub`.

Sources whose access is `registered` or `credentialed` are refused unless the caller states they hold
the right to redistribute them (`i_have_the_right`); the licence goes with the refusal.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .card import CARD, MANIFEST, write_card

ALLOW = [CARD, MANIFEST, "*.tar", "*.index.parquet", "*.stats.json"]
REJECTS = "rejects.jsonl"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class PushError(ValueError):
    """Nothing was uploaded: the folder, the repo id or the access rule says no."""


@dataclass
class PushPlan:
    repo_id: str
    folder: Path
    files: list[str]
    license: str
    access: str


def plan(folder: Path, repo_id: str, include_rejects: bool = False, i_have_the_right: bool = False) -> PushPlan:
    """What would be uploaded, after the checks; writes the card if the folder lacks one."""
    if not REPO_ID.match(repo_id):
        raise PushError(f"--repo {repo_id!r}: expected OWNER/NAME")
    man_path = folder / MANIFEST
    if not man_path.exists():
        raise PushError(f"{man_path}: not found (build the source first)")
    man: dict[str, Any] = json.loads(man_path.read_text(encoding="utf-8"))
    access, lic = man["access"], man["license"]
    if access != "open" and not i_have_the_right:
        raise PushError(f"{folder}: access is {access!r} (licence: {lic}); uploading may breach the source's terms. "
                        "Pass --i-have-the-right only if that licence lets you redistribute it")
    if not man["shards"]:
        raise PushError(f"{man_path}: the build wrote no shards; nothing to upload")
    if not (folder / CARD).exists():
        write_card(folder)
    from huggingface_hub.utils import filter_repo_objects

    allow = ALLOW + ([REJECTS] if include_rejects else [])
    names = sorted(p.relative_to(folder).as_posix() for p in folder.iterdir() if p.is_file())
    files = list(filter_repo_objects(names, allow_patterns=allow, ignore_patterns=[".*"]))
    missing = [sh["path"] for sh in man["shards"] if sh["path"] not in files]
    if missing:
        raise PushError(f"{folder}: shards listed in the manifest are missing: {', '.join(missing[:3])}")
    return PushPlan(repo_id, folder, files, lic, access)


def push(p: PushPlan, private: bool = False, api: Any = None) -> str:
    """Create the dataset repo (if needed) and upload the planned files in one commit; returns its URL."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(p.repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(repo_id=p.repo_id, repo_type="dataset", folder_path=str(p.folder),
                             allow_patterns=p.files, commit_message=f"medmo-data: {p.folder.name}")
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{p.repo_id}")
