#!/usr/bin/env python3
"""Measure the default matrix: wall time of ``rig matrix`` and the median time per case.

Usage: .venv/bin/python scripts/benchmark.py [--runs N] [-- extra rig matrix args]
Prints one Markdown table row per run (with the size of everything the run wrote: what a CI
artifact upload would carry) plus a summary, for docs/measurements.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    extra = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    walls, medians = [], []
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print("| run | cases | wall s | median case s | p90 case s | output MB | outcomes |")
    print("|---|---|---|---|---|---|---|")
    for i in range(1, args.runs + 1):
        out = Path(tempfile.mkdtemp(prefix="rig-bench-"))
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "rig", "matrix", "--out", str(out), *extra],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        wall = time.monotonic() - t
        run = json.loads((out / "results.json").read_text())
        d = sorted(c["duration_s"] for c in run["cases"])
        med, p90 = statistics.median(d), d[int(0.9 * (len(d) - 1))]
        walls.append(wall)
        medians.append(med)
        outcomes = ", ".join(f"{v} {k}" for k, v in run["summary"].items() if v)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
        print(f"| {i} | {len(d)} | {wall:.1f} | {med:.2f} | {p90:.2f} | {size:.1f} | {outcomes} |", flush=True)
    print(f"\nwall time: median {statistics.median(walls):.1f} s over {args.runs} run(s); "
          f"median case: {statistics.median(medians):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
