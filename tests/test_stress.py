"""`make stress`: SIGKILL a build at many random moments; every rerun must end with the same bytes as an
uninterrupted build. Long-running, so not part of `make test`."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures import make
from tests.test_build import tree_hashes

KILLS = int(os.environ.get("MEDMO_STRESS_KILLS", "25"))


@pytest.mark.stress
def test_kill_at_random_points(tmp_path):
    raw = make("deeplesion", tmp_path / "raw")
    cmd = [sys.executable, "-m", "medmo_data.cli", "build", "--recipe", "deeplesion", "--input", str(raw),
           "--shard-samples", "1", "--workers", "2"]
    subprocess.run([*cmd, "--output", str(tmp_path / "ref")], check=True, capture_output=True)
    ref = tree_hashes(tmp_path / "ref" / "deeplesion")
    rng = random.Random(1234)
    survived = 0
    for i in range(KILLS):
        out = tmp_path / f"k{i}"
        env = {**os.environ, "MEDMO_FAULT_SLOW_SHARD_S": "0.05"}
        for _attempt in range(3):  # up to three kills in one build folder
            proc = subprocess.Popen([*cmd, "--output", str(out)], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        subprocess.run([*cmd, "--output", str(out)], check=True, capture_output=True)
        assert tree_hashes(out / "deeplesion") == ref, f"kill round {i}"
        survived += 1
    print(f"kill points survived: {survived * 3}")
