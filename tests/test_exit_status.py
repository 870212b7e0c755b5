"""The suite's conftest ends the test process with os._exit: pytest's exit status must still come out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("body", "status"), [("assert 1 == 1", 0), ("assert 1 == 2", 1)])
def test_exit_status_survives_the_fast_exit(tmp_path, body, status):
    (tmp_path / "test_one.py").write_text(f"def test_one():\n    {body}\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest", "-q",
                          str(tmp_path / "test_one.py")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == status, run.stdout + run.stderr
    assert ("1 passed" if status == 0 else "1 failed") in run.stdout


def _run_ray_marked(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """One `ray`-marked test in a folder of its own, run through the suite's conftest."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    ray: runs in a child process\n")
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    # a module-scoped fixture set up in the parent before the Ray test, then a test of another module: the
    # parent must still tear the first module down
    (tmp_path / "test_one.py").write_text(
        "import os\n\nimport pytest\n\n\n@pytest.fixture(scope='module')\ndef here():\n    yield 'parent'\n\n\n"
        "def test_here(here):\n    assert not os.environ.get('MEDMO_TEST_CHILD_REPORTS')\n\n\n"
        f"@pytest.mark.ray\ndef test_one():\n    {body}\n")
    (tmp_path / "test_two.py").write_text("def test_next():\n    pass\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("body", "status", "counts", "shown"), [
    ("assert os.environ.get('MEDMO_TEST_CHILD_REPORTS')", 0, "3 passed", ""),  # ran in the child
    ("assert 'child' == 'parent'", 1, "1 failed, 2 passed", "assert 'child' == 'parent'"),
    ("pytest.skip('no cluster here')", 0, "2 passed, 1 skipped", ""),
    ("os.abort()", 1, "1 failed, 2 passed", "before this test finished"),  # a native crash in the child
])
def test_ray_tests_run_in_a_child_and_report_in_the_parent(tmp_path, body, status, counts, shown):
    run = _run_ray_marked(tmp_path, body)
    out = run.stdout + run.stderr
    assert run.returncode == status, out
    assert counts in run.stdout, out
    assert shown in out
