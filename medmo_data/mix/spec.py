"""Stage specs (manifests/stageN.yaml): where a spec is found, what a valid one holds, and the licence
classes `--exclude-licence` filters on. `mixer.mix` resolves a loaded spec into a stage manifest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medmo_data.schema import TASKS

from .stage import KINDS

SPEC_KEYS = ("stage", "kind", "sources", "training")
LICENCE_CLASSES = ("non-commercial", "no-derivatives", "share-alike", "no-redistribution", "unknown")
# What a spec weight means. The manifest always carries `probability` weights (what medmo-train draws
# by); an `epochs` spec is converted: p_i = w_i * n_i / sum_j w_j * n_j, with `epochs` and `draws` kept.
WEIGHT_MEANINGS = {
    "epochs": "epochs over the source: weight 1.0 = every sample once per stage epoch (MedMO concatenated "
              "its sources), 2.0 = twice, 0.5 = half",
    "probability": "share of drawn samples taken from the source: each draw picks a source with probability "
                   "weight / sum(weights)",
}

class MixError(ValueError):
    """Bad spec, missing sources or bad options: the CLI exits 2 with this message."""


def find_spec(stage: int) -> Path:
    """manifests/stageN.yaml under the working directory (a user's edited copy), else the installed one
    (the repo's manifests/ folder ships in the wheel as medmo_data.manifests)."""
    from importlib import resources

    packaged = Path(str(resources.files("medmo_data.manifests")))
    for base in (Path("manifests"), packaged, Path(__file__).resolve().parent.parent / "manifests"):
        if (base / f"stage{stage}.yaml").exists():
            return base / f"stage{stage}.yaml"
    raise MixError(f"manifests/stage{stage}.yaml: no such spec (pass --spec FILE)")


def load_spec(path: Path) -> dict[str, Any]:
    import yaml

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MixError(f"{path}: spec not found") from exc
    except yaml.YAMLError as exc:
        raise MixError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(spec, dict):
        raise MixError(f"{path}: a spec is a mapping")
    for k in SPEC_KEYS:
        if k not in spec:
            raise MixError(f"{path}: missing field {k}")
    if spec["kind"] not in KINDS:
        raise MixError(f"{path}: field kind must be one of {KINDS}, got {spec['kind']!r}")
    if spec.get("weight_meaning", "epochs") not in WEIGHT_MEANINGS:
        raise MixError(f"{path}: field weight_meaning must be one of {tuple(WEIGHT_MEANINGS)}")
    tasks = spec.get("tasks")
    if tasks is not None and (not isinstance(tasks, list) or not tasks or any(t not in TASKS for t in tasks)):
        raise MixError(f"{path}: field tasks must be a non-empty list of task names from {TASKS} "
                       f"(absent = all tasks), got {tasks!r}")
    for i, s in enumerate(spec["sources"]):
        if not isinstance(s, dict) or "name" not in s:
            raise MixError(f"{path}: field sources[{i}].name missing")
        w = s.get("weight", 1.0)
        if not isinstance(w, (int, float)) or w <= 0:
            raise MixError(f"{path}: field sources[{i}].weight must be a positive number, got {w!r}")
    return spec


def licence_classes(lic: str, access: str) -> set[str]:
    """The licence classes `--exclude-licence` filters on, from a source's licence text and access."""
    low = (lic or "").lower()
    c = set()
    if re.search(r"(\b|-)nc(\b|-)|non-?commercial|research[- ]only|research use|\brua\b", low):
        c.add("non-commercial")
    if re.search(r"(\b|-)nd(\b|-)|no-?deriv", low):
        c.add("no-derivatives")
    if re.search(r"(\b|-)sa(\b|-)", low):
        c.add("share-alike")
    if re.search(r"no[- ]redistribution|\brua\b|\bdua\b|physionet", low) or access == "credentialed":
        c.add("no-redistribution")
    if not low.strip() or re.search(r"unverified|unknown|not stated", low):
        c.add("unknown")
    return c
