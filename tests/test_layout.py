"""The package layout shows the data flow, and the arrows between its steps point down (issue #18)."""

from __future__ import annotations

import ast
from pathlib import Path

import medmo_data

PKG = Path(medmo_data.__file__).parent
RECIPES = PKG.parent / "recipes"
CONTRACT = {"schema", "recipe", "render", "keys", "__init__"}  # the top-level contract modules
STEPS = {"pixels", "formats", "shards", "build", "mix", "families", "publish"}
# step -> the steps it may import (besides the contract modules)
ALLOWED = {
    "pixels": set(),
    "formats": set(),
    "shards": {"pixels", "formats"},
    "families": {"pixels", "formats", "shards"},
    "mix": {"pixels", "formats", "shards"},
    "build": {"pixels", "formats", "shards", "mix"},
    "publish": {"pixels", "formats", "shards", "mix", "build"},
}
# The one upward arrow: a finished build writes its folder's dataset card (issue #17). The card module
# imports no build module, so this adds no circle (checked below).
UPWARD = {("build/distributor.py", "medmo_data.publish.card"), ("build/ray_engine.py", "medmo_data.publish.card")}


def _imports(path: Path, package: str) -> set[str]:
    """Every medmo_data module that `path` imports (absolute, relative, top-level or inside a function)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("medmo_data")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("medmo_data"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}  # `from medmo_data.pixels import boxes`
    return out


def _step(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[1].startswith("__"):
        return "__init__"
    if len(parts) > 1 and parts[1] in STEPS:
        return parts[1]
    if len(parts) > 1 and parts[1] == "recipes":
        return "recipes"
    return parts[1] if len(parts) > 1 else "__init__"


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        parts = ["medmo_data", *rel.parts]
        package = ".".join(parts if rel.name == "__init__" else parts[:-1])
        yield path, _step(".".join(parts)), package


def test_steps_import_only_downwards():
    bad = []
    for path, step, package in _modules():
        if step not in STEPS:
            continue
        for mod in _imports(path, package):
            target = _step(mod)
            if target in (step, None) or target in CONTRACT or target in ALLOWED[step]:
                continue
            if (str(path.relative_to(PKG)), mod) in UPWARD or (str(path.relative_to(PKG)), mod.rsplit(".", 1)[0]) \
                    in UPWARD:
                continue
            bad.append(f"{path.relative_to(PKG)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_contract_modules_import_no_step():
    bad = [f"{p.name} imports {m}" for p in (PKG / f"{n}.py" for n in CONTRACT if n != "__init__")
           for m in _imports(p, "medmo_data") if _step(m) in STEPS | {"show", "cli"}]
    assert not bad, "\n".join(bad)


def test_recipes_never_import_each_other_or_the_build():
    bad = []
    for path in sorted(RECIPES.glob("*.py")):
        for mod in _imports(path, "medmo_data.recipes"):
            target = _step(mod)
            if target in {"recipes", "build", "mix", "shards", "show", "cli"}:
                bad.append(f"recipes/{path.name} imports {mod}")
    assert not bad, "\n".join(bad)


def test_no_flat_modules_left_and_every_step_says_what_it_does():
    flat = {p.stem for p in PKG.glob("*.py")}
    assert flat == {"__init__", "__main__", "schema", "recipe", "render", "keys", "show", "cli"} - (
        set() if (PKG / "__main__.py").exists() else {"__main__"})
    for step in STEPS:
        doc = ast.get_docstring(ast.parse((PKG / step / "__init__.py").read_text()))
        assert doc and len(doc.splitlines()) <= 4
        tree = ast.parse((PKG / step / "__init__.py").read_text())
        assert all(isinstance(n, ast.Expr) for n in tree.body), f"{step}/__init__.py re-exports"


def test_build_and_manifest_have_no_import_circle():
    assert "medmo_data.build.distributor" not in _imports(PKG / "build" / "manifest.py", "medmo_data.build")


def test_card_module_imports_no_build_module():
    assert not {m for m in _imports(PKG / "publish" / "card.py", "medmo_data.publish") if _step(m) == "build"}
