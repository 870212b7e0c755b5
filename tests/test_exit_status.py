"""The suite's conftest ends the test process with os._exit: pytest's exit status must still come out."""

from __future__ import annotations

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
