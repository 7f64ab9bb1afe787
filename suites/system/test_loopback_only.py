"""The matrix on a host whose only interface is loopback: a network namespace with just `lo`,
made by the test. Chromium and aiortc connect over loopback candidates (the rig turns them on
only there); Firefox gathers none there, and its cells say exactly that and how to fix it, at
set-up. Needs root (unshare -n), as CI has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rig import config

pytestmark = [pytest.mark.long,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                                 reason="needs root with unshare and ip to make a network namespace")]


def test_the_matrix_in_a_loopback_only_namespace(tmp_path: Path) -> None:
    cmd = (f"ip link set lo up && ip -o addr show | grep -v ' lo ' && exit 3; "
           f"exec {sys.executable} -m rig matrix --peers chromium,firefox,aiortc --scenarios add-video "
           f"--workers 1 --capture off --out {tmp_path}")
    proc = subprocess.run(["unshare", "--net", "--kill-child", "bash", "-c", cmd], capture_output=True, text=True,
                          timeout=300, cwd=config.ROOT)
    assert proc.returncode != 3, "the namespace has an interface besides lo"
    assert "this host has only a loopback interface" in proc.stdout, proc.stdout + proc.stderr
    cases = {c["id"]: c for c in json.loads((tmp_path / "results.json").read_text())["cases"]}
    assert len(cases) == 9
    for cid, c in cases.items():
        if "firefox" in cid:
            assert c["outcome"] == "error", c
            assert "gathers no UDP ICE candidate on this host, whose only interface is loopback" in c["reason"]
            assert "ip route add default dev rig0" in c["reason"]
        else:
            assert c["outcome"] == "passed", c
    assert proc.returncode == 1
