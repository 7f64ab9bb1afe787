"""``rig soak --cases N``: the reference negotiator over the glare catalogue on every pair of
the peers, N cases in all (rounded up to whole repeats of the cells), while the run's memory
and CPU are sampled; then the pass rate, case times and whether memory grew.

A soak passes when every case met its cell's expectation (a stated finding is an expected
failure, rig.findings) and memory showed no growth trend: the total of the run's processes
(runner, Playwright's driver, browsers), fitted against finished cases after the first tenth,
rises by less than GROWTH_MB per 100 cases. Browsers are recycled every config.RECYCLE_PAGES
pages (rig.peers.browser), so what a soak measures is the rig and the peers, not one browser
process's lifetime.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import uuid
from pathlib import Path

from . import config, matrix, runs, scenarios
from .errors import RigError
from .options import DEFAULT_PEERS
from .peerspec import PeerSpec
from .request import MatrixRequest, command_line
from .usage import Sample, Sampler, group_trends, trend
from .vocab import RESULTS_FILE

#: a growth trend: the fitted total, or one process group's, rises by at least this many MB per 100 cases
GROWTH_MB = 25.0


def glare_scenarios() -> list[str]:
    return [name for name, s in scenarios.CATALOGUE.items() if s.glare]


def plan(cases: int, peers: list[str]) -> tuple[list[str], int, int]:
    """(scenarios, repeat, cells): whole repeats of every glare scenario on every ordered pair,
    at least ``cases`` cases in all."""
    if cases < 1:
        raise RigError(f"--cases {cases}: give at least 1")
    names = glare_scenarios()
    cells = len(names) * len(peers) ** 2
    return names, max(1, math.ceil(cases / cells)), cells


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


def run(cases: int, peers_text: str | None, out: Path, workers: int | None) -> int:
    """Run the soak as one matrix run (rig.matrix) and print its
    figures; write them to OUT/soak.json. Exit status: 0 clean, 1 failures or memory growth,
    2 bad input."""
    peers = [str(PeerSpec.parse(p)) for p in (peers_text or DEFAULT_PEERS).split(",") if p.strip()]
    names, repeat, cells = plan(cases, peers)
    total = cells * repeat
    print(f"rig soak: {len(names)} glare scenarios x {len(peers) ** 2} pairs = {cells} cells, x{repeat} = {total} "
          f"cases{'' if total == cases else f' ({cases} rounded up to whole repeats)'}; browsers recycled every "
          f"{config.RECYCLE_PAGES} pages", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    run_id = os.environ.get(config.RUN_MARKER_ENV) or f"soak-{uuid.uuid4().hex}"
    os.environ[config.RUN_MARKER_ENV] = run_id  # rig matrix marks its processes with it
    cases_dir = out / "cases"
    before = set(cases_dir.glob("*.json")) if cases_dir.is_dir() else set()
    sampler = Sampler(run_id, every=1.0, progress=lambda: len(set(cases_dir.glob("*.json")) - before)
                      if cases_dir.is_dir() else 0)
    sampler.start()
    request = MatrixRequest(peers=tuple(peers), scenarios=tuple(names), repeat=repeat, out=str(out), capture="off",
                            workers=workers, command=command_line())
    try:
        rc = runs.run_command(request.command, lambda: matrix.run(request))
    finally:
        sampler.stop.set()
        sampler.join()
    try:
        results = json.loads((out / RESULTS_FILE).read_text())
    except (OSError, ValueError) as exc:
        print(f"rig soak: the run wrote no readable results.json ({exc}); matrix exit status {rc}")
        return 1
    figures = summarise(results, sampler)
    (out / "soak.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(text(figures))
    bad = figures["unexpected"] + figures["missing"]
    return 1 if bad or figures["memory"]["grew"] or rc not in (0,) else 0


def while_running(samples: list[Sample]) -> list[Sample]:
    """The samples taken while cases were finishing: from the first finished case to the last
    (start-up before, and teardown after, would read as growth or shrinkage)."""
    done = [s for s in samples if s.done > 0]
    if not done:
        return []
    top = done[-1].done
    end = next(i for i, s in enumerate(done) if s.done == top)
    return done[:end + 1]


def summarise(results: dict, sampler: Sampler) -> dict:
    cs = results.get("cases", [])
    outcomes: dict[str, int] = {}
    by_finding: dict[str, int] = {}
    for c in cs:
        outcomes[c["outcome"]] = outcomes.get(c["outcome"], 0) + 1
        if c["outcome"] == "xfailed" and c.get("finding"):
            by_finding[c["finding"]] = by_finding.get(c["finding"], 0) + 1
    ran = [c for c in cs if c["outcome"] != "unsupported"]
    times = [c["duration_s"] for c in ran]
    window = while_running(sampler.samples)
    start, end, slope = trend(window)
    groups = group_trends(window) if window else {}
    return {
        "cases": len(cs), "collected": results.get("collected", len(cs)),
        "missing": max(0, int(results.get("collected", len(cs))) - len(cs)),
        "outcomes": outcomes, "expected_failures": by_finding,
        "passed": outcomes.get("passed", 0),
        "unexpected": sum(v for k, v in outcomes.items() if k not in ("passed", "xfailed", "unsupported")),
        "pass_rate": outcomes.get("passed", 0) / len(ran) if ran else 0.0,
        "as_expected_rate": (outcomes.get("passed", 0) + outcomes.get("xfailed", 0)) / len(ran) if ran else 0.0,
        "case_s": {"p50": statistics.median(times) if times else 0.0, "p95": pct(times, 0.95),
                   "max": max(times, default=0.0)},
        "memory": {"start_mb": round(start), "end_mb": round(end), "slope_mb_per_100_cases": round(slope, 1),
                   "grew": slope >= GROWTH_MB or any(t[2] >= GROWTH_MB for t in groups.values()), "peak_mb": round(sampler.peak_mb),
                   # per group, as for the total: medians of the first and last tenth, and the slope
                   "start_by_group": {g: round(t[0]) for g, t in groups.items()},
                   "end_by_group": {g: round(t[1]) for g, t in groups.items()},
                   "slope_by_group": {g: round(t[2], 1) for g, t in groups.items()}},
        "cpu_s": {g: round(v, 1) for g, v in sampler.cpu_seconds().items()},
        "browser_launches": len(sampler.browser_mains),
        "wall_s": round(sampler.samples[-1].t, 1) if sampler.samples else 0.0,
    }


def text(f: dict) -> str:
    m = f["memory"]
    exp = ", ".join(f"{k} {v}" for k, v in sorted(f["expected_failures"].items())) or "none"
    lines = [
        f"rig soak: {f['cases']} cases in {f['wall_s']:.0f} s: {f['passed']} passed, "
        f"{sum(f['expected_failures'].values())} expected failures (stated findings: {exp}), "
        f"{f['unexpected']} failed or errors, {f['outcomes'].get('unsupported', 0)} unsupported"
        + (f", {f['missing']} collected but missing" if f["missing"] else ""),
        f"  as expected {f['as_expected_rate']:.1%} of the cases run (passed {f['pass_rate']:.1%}); case time p50 {f['case_s']['p50']:.2f} s, "
        f"p95 {f['case_s']['p95']:.2f} s, max {f['case_s']['max']:.2f} s",
        f"  memory (PSS of the run's processes): start {m['start_mb']} MB {m['start_by_group']}, "
        f"end {m['end_mb']} MB {m['end_by_group']}, peak {m['peak_mb']} MB; trend "
        f"{m['slope_mb_per_100_cases']:+.1f} MB per 100 cases: "
        + ("GREW" if m["grew"] else f"no growth (threshold {GROWTH_MB:g})")
        + (f"; by group {m['slope_by_group']}" if m.get("slope_by_group") else ""),
        f"  browser processes launched {f['browser_launches']}; CPU seconds {f['cpu_s']}",
    ]
    return "\n".join(lines)
