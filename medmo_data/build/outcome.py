"""Did a build succeed? A build that writes nothing, or whose records mostly fail for one reason (images
under another folder name than the recipe reads, a renamed column), has read the wrong layout: it fails
with exit 1 and one line naming the top reasons and the layout the recipe expected, after the manifest
and rejects.jsonl are written for inspection. `--allow-empty` / `--max-reject-rate` override."""

from __future__ import annotations

import re
from typing import Any

from medmo_data.recipe import Recipe

from .options import BuildOptions

RECIPE_ERROR = "recipe_error"  # the recipe's reader raised: reading stopped there


class BuildFailed(Exception):
    """The build ran and wrote its manifest, but its outcome is a failure (CLI exit 1)."""

    def __init__(self, message: str, manifest: dict[str, Any]) -> None:
        super().__init__(message)
        self.manifest = manifest


def expected_layout(recipe: Recipe, limit: int = 300) -> str:
    """One line from the recipe's docstring: its `Layout:` paragraph, else its `Read here` list, else its
    first paragraph, plus the homepage."""
    doc = (recipe.module.__doc__ or "").strip()
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if p.strip()]
    pick = next((p[p.index("Layout"):].split(". ")[0] + "." for p in paras if "Layout" in p), None) \
        or next((p[p.index("Read here"):] for p in paras if "Read here" in p), None) \
        or (paras[0] if paras else recipe.info.title)
    if len(pick) > limit:
        pick = pick[:limit - 3].rstrip() + "..."
    return pick + (f" ({recipe.info.homepage})" if recipe.info.homepage else "")


def check(man: dict[str, Any], recipe: Recipe, opts: BuildOptions) -> None:
    """Raise BuildFailed when the manifest's counts say the build did not do its job."""
    c = man["counts"]
    reasons = sorted(man["rejects_by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))
    top = ", ".join(f"{k}={v}" for k, v in reasons[:3]) or "none"
    name = man["source"]
    problem = None
    if man["rejects_by_reason"].get(RECIPE_ERROR):
        problem = "the recipe's reader failed and reading stopped (see rejects.jsonl, reason recipe_error)"
    elif c["written"] == 0 and not opts.allow_empty:
        problem = f"wrote no samples from {c['read']} records read (--allow-empty to accept)"
    elif reasons and c["read"] and reasons[0][1] / c["read"] > opts.max_reject_rate:
        problem = (f"{reasons[0][0]} rejected {reasons[0][1]} of {c['read']} records read, over "
                   f"--max-reject-rate {opts.max_reject_rate:g}")
    if problem:
        raise BuildFailed(f"{name}: {problem}; top rejects: {top}; the recipe expects: {expected_layout(recipe)}",
                          man)
