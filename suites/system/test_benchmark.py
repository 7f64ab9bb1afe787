"""scripts/benchmark.py on a tiny matrix: it runs, and every table the docs quote comes out
filled in, the machine's own CPU count among them (its figures go into docs/measurements.md,
so the script must not rot between the times someone measures)."""

from __future__ import annotations

import re
import subprocess
import sys

from rig import config

SCRIPT = config.ROOT / "scripts" / "benchmark.py"


def test_the_benchmark_prints_its_tables_with_the_machines_cpu() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--workers", "1", "--", "--peers", "aiortc",
                          "--scenarios", "initial-datachannel,add-video"],
                         capture_output=True, text=True, timeout=180, cwd=config.ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    # the run row: 1 worker, 2 cases, both passed
    assert re.search(r"^\| 1 \| 2 \| [\d.]+ \| [\d.]+ \|.*\| 2 passed \|$", text, re.M), text
    assert "| aiortc x aiortc | 2 |" in text, text
    # the machine's CPU: wall, CPU, sampling, reaped, cores busy, per case, floor; all numbers
    machine = re.search(r"^\| 1 \| 2 \| ([\d.]+) \| (\d+) \| ([\d.]+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                        text, re.M)
    assert machine, text
    wall, cpu, sampling = float(machine[1]), float(machine[2]), float(machine[3])
    assert wall > 0 and cpu > 0 and 0 <= sampling < cpu
