"""Tests marked `ray` run in a child pytest process, one per test module, and report here as usual.

Ray does not support starting and stopping a cluster several times in one process (ray-project/ray#31145:
core-worker threads outlive `ray.shutdown()` and can crash the process later). The suite starts three
clusters (tests/test_ray_engine.py, tests/test_ray_multinode.py, one test in tests/test_hostile_build.py),
and once in six full runs the test process died of SIGSEGV after every test had passed. Each module's Ray
tests therefore run together in a child process: a native crash there cannot take the rest of the suite
with it. The child appends each report to a file as it happens, so a crash after the last test changes
nothing, and a crash before a test finished is that test's failure, with the child's output.

The parent builds each test's reports (setup, call, teardown) from the ones the child wrote, so `-q`
output, `-x`, counts and the exit status read as if the tests had run in the parent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from _pytest.reports import TestReport

CHILD_ENV = "MEDMO_TEST_CHILD_REPORTS"  # set in the child: where it writes its reports
MARKER = "ray"
CHILD_TIMEOUT_S = 1200
_module_results: dict[Path, dict[str, Any]] = {}  # in the parent: per module, what its child reported


def in_child() -> bool:
    return bool(os.environ.get(CHILD_ENV))


# ---- child side ----------------------------------------------------------------------------------------

def pytest_runtest_logreport(report: TestReport) -> None:
    """In the child: each report as one JSON line, appended as it happens (a crash keeps the ones before)."""
    if not in_child():
        return
    longrepr = list(report.longrepr) if isinstance(report.longrepr, tuple) else (
        report.longreprtext if report.longrepr is not None else None)
    line = json.dumps({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                       "longrepr": longrepr, "duration": report.duration,
                       "wasxfail": getattr(report, "wasxfail", None)})
    with open(os.environ[CHILD_ENV], "a", encoding="utf-8") as f:
        f.write(line + "\n")


# ---- parent side ---------------------------------------------------------------------------------------

def _run_module(item: pytest.Item) -> dict[str, Any]:
    """Run every `ray` test of the item's module that this session selected in one child pytest."""
    if item.path in _module_results:
        return _module_results[item.path]
    ids = [i.nodeid for i in item.session.items if i.path == item.path and i.get_closest_marker(MARKER)]
    with tempfile.TemporaryDirectory(prefix="medmo-child-") as tmp:
        out = Path(tmp) / "reports.jsonl"
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *ids],
                                  cwd=item.config.rootpath, env={**os.environ, CHILD_ENV: str(out)},
                                  capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
            rc, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, output = None, f"child pytest timed out after {exc.timeout:.0f} s"
        reports: dict[str, list[dict[str, Any]]] = {}
        if out.exists():
            for line in out.read_text().splitlines():
                if line.endswith("}"):  # a line cut by a crash while writing is left out
                    rep = json.loads(line)
                    reports.setdefault(rep["nodeid"], []).append(rep)
    _module_results[item.path] = {"reports": reports, "rc": rc, "output": output[-6000:]}
    return _module_results[item.path]


def _report(item: pytest.Item, rep: dict[str, Any]) -> TestReport:
    longrepr = rep["longrepr"]
    if isinstance(longrepr, list):
        longrepr = tuple(longrepr)  # a skip: (path, line, reason)
    extra = {"wasxfail": rep["wasxfail"]} if rep.get("wasxfail") is not None else {}
    return TestReport(item.nodeid, item.location, {k: 1 for k in item.keywords}, rep["outcome"], longrepr,
                      rep["when"], duration=rep["duration"], **extra)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if in_child() or item.get_closest_marker(MARKER) is None:
        return None
    result = _run_module(item)
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    reps = result["reports"].get(item.nodeid, [])
    if not any(r["when"] == "teardown" for r in reps):  # the child died (or hung) before this test finished
        why = f"the child pytest process ended with status {result['rc']} before this test finished:\n"
        when = "teardown" if any(r["when"] == "call" for r in reps) else "call"  # died in teardown: an error
        reps = [*reps, {"when": when, "outcome": "failed", "longrepr": why + result["output"], "duration": 0.0}]
    for rep in reps:
        item.ihook.pytest_runtest_logreport(report=_report(item, rep))
    # What runtestprotocol's teardown would do: pop the collectors (and their fixtures) that earlier items
    # of this module set up and the next item does not need. Nothing of this item was set up here.
    item.session._setupstate.teardown_exact(nextitem)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
