"""`medmo-data info NAME`, the `medmo-data list` table and docs/sources.md: what a user needs to build one source, read from the
recipe itself (its `INFO`, its module docstring, the options its code reads, its `HUB_PATTERNS`).

Nothing here is written by hand per source, so the page cannot drift from the code:
`python -m medmo_data.publish.source_info > docs/sources.md` regenerates it (a test checks it is current).
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import TYPE_CHECKING, Any

from medmo_data.recipe import Recipe, SourceInfo, all_recipes

if TYPE_CHECKING:
    from rich.table import Table

_TICKED = re.compile(r"`([^`\n]+)`")
_FILE_EXT = re.compile(r"\.(csv|tsv|json|jsonl|zip|tar|gz|tgz|png|jpe?g|dcm|nii|parquet|txt|xml|tiff?|npz|npy|"
                       r"pkl|pickle|h5|mat|md|yaml)$", re.I)
_OPTION_READ = re.compile(r"""\b(?:options|opts)(?:\.get\(\s*|\[\s*)["']([a-z_][a-z0-9_]*)["']""")
# Options a shared helper reads for the recipe (the recipe's source names the helper, not the key).
_OPTION_HELPERS = {"max_boxes": "max_boxes_option(options"}
_OPTION_DOC = re.compile(r"`(?:-o\s+)?([a-z_][a-z0-9_]*)=([^`]*)`")
_URL = re.compile(r"https?://[^\s)`>\]]+")


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _hub_ids(doc: str) -> list[str]:
    """`owner/name` tokens without a file extension: Hugging Face dataset ids the docstring names."""
    return list(dict.fromkeys(t for t in _TICKED.findall(doc) if _HUB_ID.match(t) and not _FILE_EXT.search(t)))


def _paths(doc: str, hub_ids: list[str]) -> list[str]:
    """Files and folders the docstring names in backticks (`DL_info.csv`, `Images_png/`, `a/b.jpg`)."""
    out = []
    for tok in _TICKED.findall(doc):
        tok = tok.strip()
        if (" = " in tok or "=" in tok.split("/")[0] or tok.startswith(("-", "{\"", "[", ".")) or len(tok) > 80
                or tok in hub_ids):
            continue
        if tok.endswith("/") or _FILE_EXT.search(tok) or ("/" in tok and " " not in tok.split("/")[0][:1]):
            if tok not in out:
                out.append(tok)
    return out


def tree(paths: list[str]) -> list[str]:
    """An indented tree of the named paths, grouped by their leading folders."""
    lines: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for p in sorted(paths, key=lambda s: s.rstrip("/").split("/")):
        parts = p.rstrip("/").split("/")
        for depth in range(len(parts)):
            key = tuple(parts[: depth + 1])
            if key in seen:
                continue
            seen.add(key)
            is_dir = depth < len(parts) - 1 or p.endswith("/")
            lines.append("    " * depth + parts[depth] + ("/" if is_dir else ""))
    return lines


def options(recipe: Recipe) -> dict[str, str]:
    """`-o KEY=VALUE` options: the keys the recipe's code reads, with the docstring's example value."""
    doc = inspect.getdoc(recipe.module) or ""
    try:
        src = inspect.getsource(recipe.module)
    except OSError:  # pragma: no cover - installed without sources
        src = ""
    documented = {k: v for k, v in _OPTION_DOC.findall(doc)}
    read = set(_OPTION_READ.findall(src)) | {k for k, helper in _OPTION_HELPERS.items() if helper in src}
    keys = sorted(read | set(documented))
    return {k: documented.get(k, "") for k in keys}


def describe(recipe: Recipe) -> dict[str, Any]:
    info = recipe.info
    doc = inspect.getdoc(recipe.module) or ""
    hub = getattr(recipe.module, "HUB_PATTERNS", None)
    urls = [info.homepage] if info.homepage else []
    urls += [u.rstrip(".,;:") for u in _URL.findall(doc) if u.rstrip(".,;:") not in urls]
    opts = options(recipe)
    hub_ids = _hub_ids(doc) if hub else []
    cmds = [f"medmo-data build --recipe {info.name} --input RAW_DIR --output data"]
    cmds += [f"medmo-data build --recipe {info.name} --input {h} --output data" for h in hub_ids[:1]]
    return {
        "name": info.name, "title": info.title, "access": info.access, "license": info.license,
        "stages": list(info.stages), "tasks": list(info.tasks), "modality": info.modality,
        "download": urls, "hub_input": bool(hub), "hub_patterns": list(hub or []), "hub_ids": hub_ids,
        "tree": tree(_paths(doc, hub_ids)), "options": opts, "build": cmds,
        "summary": doc.split("\n\n")[0].replace("\n", " "), "doc": doc,
    }


def markdown(d: dict[str, Any], level: int = 2) -> str:
    """One source's section (the `info` command prints the same)."""
    h = "#" * level
    lines = [f"{h} `{d['name']}` — {d['title']}", "", d["summary"], "",
             f"- access: **{d['access']}** · licence: {d['license']} · stages: "
             f"{', '.join(map(str, d['stages']))} · tasks: {', '.join(d['tasks'])} · modality: {d['modality']}"]
    lines.append("- download: " + (", ".join(d["download"]) or "see the recipe docstring"))
    if d["hub_input"]:
        ids = ", ".join(f"`{h}`" for h in d["hub_ids"]) or "its id"
        lines.append(f"- `--input` may also be a Hugging Face dataset id ({ids}; files fetched: "
                     f"{', '.join(f'`{p}`' for p in d['hub_patterns'])})")
    lines += ["", "Build:", "", "```bash", *d["build"], "```"]
    if d["options"]:
        lines += ["", "Options (`-o KEY=VALUE`):", ""]
        lines += [f"- `{k}`" + (f" (e.g. `{k}={v}`)" if v else "") for k, v in d["options"].items()]
    if d["tree"]:
        lines += ["", "Files and folders the recipe reads under `RAW_DIR` (named in its docstring):", "", "```"]
        lines += d["tree"] + ["```"]
    return "\n".join(lines) + "\n"


def sources_page() -> str:
    recipes = all_recipes()
    head = ["# Sources", "",
            "Generated from each recipe's `INFO`, docstring and code by "
            "`python -m medmo_data.publish.source_info > docs/sources.md`; do not edit by hand. "
            "`medmo-data info NAME` prints one section, and the recipe's docstring has the full notes "
            "(split rules, traps handled).", "",
            "| source | access | stages | tasks |", "|---|---|---|---|"]
    head += [f"| `{n}` | {r.info.access} | {', '.join(map(str, r.info.stages))} | "
             f"{', '.join(r.info.tasks)} |" for n, r in recipes.items()]
    return "\n".join(head) + "\n\n" + "\n".join(markdown(describe(r)) for r in recipes.values())


if __name__ == "__main__":
    sys.stdout.write(sources_page())


def sources_table(rows: list[SourceInfo], wide: bool) -> Table:
    """`medmo-data list` as a rich Table of recipe infos. The name is what users type: never cut (no wrap,
    its full width). Not `wide` (an 80-column terminal, a pipe): modality, licence and status make way;
    `--json` or a wider terminal has them."""
    from rich import box
    from rich.table import Table

    cols = ("stages", "tasks", "modality", "access", "licence", "status") if wide else ("stages", "tasks", "access")
    t = Table(title=f"{len(rows)} sources" + ("" if wide else " (licences: a wider terminal or --json)"),
              box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("name", no_wrap=True, min_width=max(len(i.name) for i in rows))
    for col in cols:
        t.add_column(col, no_wrap=col != "tasks")
    for i in rows:
        vals = {"stages": ",".join(map(str, i.stages)), "tasks": ", ".join(i.tasks), "modality": i.modality,
                "access": i.access, "licence": i.license, "status": i.status}
        t.add_row(i.name, *(vals[c] for c in cols))
    return t
