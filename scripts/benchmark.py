#!/usr/bin/env python3
"""Measure ``rig matrix``: wall time with 1 and 2 workers, where a case's time goes, and what
the run costs the machine.

Usage: .venv/bin/python scripts/benchmark.py [--workers 1,2] [--runs N] [-- extra rig matrix args]

For each worker count (and each of ``--runs`` runs) it runs ``rig matrix`` into a temporary
folder and prints, as Markdown for docs/measurements.md:

- one row per run: cases, wall time (start-up and report included), wall time per case, median
  and p95 case time, browser launches (browser main processes seen), peak memory of the run's
  processes (the sum of their resident sets, sampled every SAMPLE_EVERY s), output size, outcomes;
- median and p95 case time by pair kind (browser x browser, browser x aiortc, aiortc x aiortc);
- the phase table: median and p95 seconds per phase (results.json ``phases``: setup, join,
  steps, settle, snapshot, teardown, verdict, evidence) by pair kind;
- CPU seconds by process group (runner, driver, browsers) as the sampler saw them, and the
  machine's own count (``/proc/stat``: every CPU second spent while the run lasted, the kernel's
  and short-lived processes' included, so it is right only when nothing else runs), with how
  many cores the run kept busy and the wall-time floor that CPU sets;
- the speed-up of the most workers over 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rig import config  # noqa: E402
from rig.usage import GROUPS, Sampler  # noqa: E402

PHASES = ("setup", "join", "steps", "settle", "snapshot", "teardown", "verdict", "evidence")
BROWSERS = ("chromium", "firefox")


def pair_kind(case: dict) -> str:
    kinds = ["browser" if case[r]["kind"] in BROWSERS else case[r]["kind"] for r in ("polite", "impolite")]
    return " x ".join(sorted(kinds))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


#: Seconds between samples of the run's processes. Each sample reads every process's environment
#: (to find the run's) and its memory map summary; sampled every 0.25 s, that cost the run it
#: measured about a sixth of a core.
SAMPLE_EVERY = 1.0


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: user, nice, system,
    irq, softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def one_run(workers: int, extra: list[str], every: float = SAMPLE_EVERY) -> dict:
    out = Path(tempfile.mkdtemp(prefix="rig-bench-"))
    run_id = f"bench-{uuid.uuid4().hex}"
    sampler = Sampler(run_id, every=every)
    own, machine, tree = time.process_time(), machine_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.start()
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "rig", "matrix", "--out", str(out), "--workers", str(workers), *extra],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=ROOT,
                   env=dict(os.environ, **{config.RUN_MARKER_ENV: run_id}))
    wall = time.monotonic() - t
    machine = machine_cpu() - machine
    sampler.stop.set()
    sampler.join()
    own = time.process_time() - own
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree = (after.ru_utime + after.ru_stime) - (tree.ru_utime + tree.ru_stime)
    run = json.loads((out / "results.json").read_text())
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    return {"workers": workers, "wall": wall, "run": run, "cases": run["cases"], "peak_mb": sampler.peak_mb,
            "launches": len(sampler.browser_mains), "size_mb": size,
            "cpu": sampler.cpu_seconds(), "machine_cpu": machine, "own_cpu": own, "tree_cpu": tree}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (default: 1,2)")
    ap.add_argument("--runs", type=int, default=1, help="runs per worker count (default: 1)")
    ap.add_argument("--sample-every", type=float, default=SAMPLE_EVERY,
                    help=f"seconds between samples of the run's processes (default: {SAMPLE_EVERY:g})")
    ap.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    extra = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; rig matrix {' '.join(extra) or '(default)'}")
    print("\n| workers | cases | wall s | wall s per case | median case s | p95 case s | browser launches "
          "| peak memory MB | output MB | outcomes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    runs = []
    for workers in counts:
        for _ in range(args.runs):
            r = one_run(workers, extra, args.sample_every)
            runs.append(r)
            d = [c["duration_s"] for c in r["cases"]]
            outcomes = ", ".join(f"{v} {k}" for k, v in r["run"]["summary"].items() if v)
            print(f"| {workers} | {len(d)} | {r['wall']:.1f} | {r['wall'] / max(1, len(d)):.2f} | "
                  f"{statistics.median(d):.2f} | {pct(d, 0.95):.2f} | {r['launches']} | {r['peak_mb']:.0f} | "
                  f"{r['size_mb']:.1f} | {outcomes} |", flush=True)
    last = [r for r in runs if r["workers"] == counts[-1]][-1]
    by_kind: dict[str, list[dict]] = {}
    for c in last["cases"]:
        if c["outcome"] != "unsupported":
            by_kind.setdefault(pair_kind(c), []).append(c)
    print(f"\nCase time by pair kind ({counts[-1]} worker(s)):\n")
    print("| pair kind | cases | median s | p95 s |")
    print("|---|---|---|---|")
    for kind, cs in sorted(by_kind.items()):
        d = [c["duration_s"] for c in cs]
        print(f"| {kind} | {len(d)} | {statistics.median(d):.2f} | {pct(d, 0.95):.2f} |")
    print(f"\nPhases, median / p95 seconds ({counts[-1]} worker(s)):\n")
    print("| pair kind | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for kind, cs in sorted(by_kind.items()):
        cells = []
        for ph in PHASES:
            v = [c.get("phases", {}).get(ph, 0.0) for c in cs]
            cells.append(f"{statistics.median(v):.2f} / {pct(v, 0.95):.2f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print(f"\nCPU seconds by process group, as the sampler saw them (every {args.sample_every:g} s: a process "
          f"is counted up to its last sample, one that lived less than an interval not at all):\n")
    print("| workers | cases | wall s | " + " | ".join(GROUPS) + " | total | total per case | cores busy |")
    print("|---|---|---|" + "---|" * len(GROUPS) + "---|---|---|")
    for r in runs:
        total, n = sum(r["cpu"].values()), max(1, len(r["cases"]))
        print(f"| {r['workers']} | {n} | {r['wall']:.1f} | " + " | ".join(f"{r['cpu'][g]:.0f}" for g in GROUPS)
              + f" | {total:.0f} | {total / n:.2f} | {total / r['wall']:.2f} |")
    cores = os.cpu_count() or 1
    print(f"\nThe machine's CPU while each run lasted (/proc/stat; right only if nothing else ran): all of "
          f"it, this script's own sampling, the run's processes as reaped through rig (a helper whose parent "
          f"exited first is reaped by init and missing), cores busy, and the floor that CPU sets on "
          f"{cores} cores (CPU / cores / cases):\n")
    print("| workers | cases | wall s | machine CPU s | of it sampling | reaped through rig | cores busy "
          "| CPU s per case | floor s per case |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        n, cpu = max(1, len(r["cases"])), r["machine_cpu"] - r["own_cpu"]
        print(f"| {r['workers']} | {n} | {r['wall']:.1f} | {r['machine_cpu']:.0f} | {r['own_cpu']:.1f} | "
              f"{r['tree_cpu']:.0f} | {r['machine_cpu'] / r['wall']:.2f} | {cpu / n:.2f} | {cpu / cores / n:.2f} |")
    if len(counts) > 1:
        walls = {w: statistics.median([r["wall"] for r in runs if r["workers"] == w]) for w in counts}
        print(f"\nspeed-up, {counts[-1]} workers over {counts[0]}: {walls[counts[0]] / walls[counts[-1]]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
