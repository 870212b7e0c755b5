"""A wheel install works, not only an editable one: unambiguous import names, recipes, trainer, specs."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contents_and_import(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:  # `make venv` installs >= 77 (SPDX licence, PEP 639)
        pytest.skip(f"setuptools {setuptools.__version__} predates SPDX `license`; the build needs >= 77")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the pyproject, and `make test`
    # must leave the repository root as it found it.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "medmo_data", "recipes", "manifests", "trainer"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                         if (REPO / name).is_dir() else {}))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path), "."], capture_output=True, text=True, cwd=src)
    assert r.returncode == 0, r.stderr
    assert "license" not in r.stderr.lower(), r.stderr  # no setuptools licence deprecation warnings
    wheel = next(tmp_path.glob("medmo_data-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("medmo_data-")}
    assert tops == {"medmo_data", "medmo_train"}  # no bare top-level `recipes` or `trainer`
    assert "medmo_data/recipes/deeplesion.py" in names and "medmo_train/rewards.py" in names
    assert "medmo_data/manifests/stage4.yaml" in names and "medmo_data/publish/export.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.startswith("medmo_train/accelerate_configs/") for n in names)
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    # -S: no site processing, so the editable install's .pth finder is not active; only the wheel's files
    # plus the dependencies' folder are importable.
    code = (f"import sys; sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()['purelib']!r}]; "
            "import medmo_data, medmo_data.recipes.vqa_rad as v, medmo_train.rewards as r; "
            "from medmo_data.recipe import all_recipes; from medmo_data.mix.spec import find_spec; "
            "assert medmo_data.__file__.startswith(sys.path[0]), medmo_data.__file__; "
            "print(len(all_recipes()), r.box_score([[0, 0, 2, 2]], [[0, 0, 2, 2]]), find_spec(4).name)")
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["46", "1.0", "stage4.yaml"]
