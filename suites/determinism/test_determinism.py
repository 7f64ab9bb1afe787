"""Determinism: the same plan gives the same collision on the same peers, every time.

Each glare scenario runs 20 times with a Firefox polite peer against a Firefox and an aiortc
impolite peer, with the reference negotiator. Every run of a cell must have the same
verdict: passed with every planned collision forced and observed, or (strict finding) the
same expected failure, or unsupported every time (a peer's probe lacks an API the scenario
needs); only a cell with an intermittent finding may vary. It writes the
per-cell outcome counts (determinism.json; RIG_DETERMINISM_OUT keeps the run). It takes
about a quarter of an hour on 2 cores, so it is not part of the default test run:

    .venv/bin/pytest suites/determinism -m determinism
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from rig import scenarios
from rig.runs import run_bounded

REPEATS = 20
PEERS = "firefox,aiortc"
PAIRS = "firefox:firefox,firefox:aiortc"  # Firefox polite x {Firefox, aiortc} impolite: where the pattern can hold
GLARE = [s.name for s in scenarios.CATALOGUE.values() if s.glare]


@pytest.mark.determinism
@pytest.mark.timeout(3600)
def test_every_glare_scenario_reaches_its_window_every_time(tmp_path: Path) -> None:
    out = Path(os.environ.get("RIG_DETERMINISM_OUT") or tmp_path / "run")
    run_bounded([sys.executable, "-m", "rig", "matrix", "--peers", PEERS, "--pairs", PAIRS,
                    "--scenarios", ",".join(GLARE), "--repeat", str(REPEATS), "--out", str(out)],
                   capture_output=True, text=True, timeout=3500)
    run = json.loads((out / "results.json").read_text())
    cases = run["cases"]
    assert len(cases) == len(GLARE) * 2 * REPEATS
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for c in cases:
        cells[(c["scenario"], c["impolite"]["kind"])].append(c)
    problems = []
    for (scen, impolite), runs in sorted(cells.items()):
        outcomes = Counter(c["outcome"] for c in runs)
        expected = runs[0]["expected"]
        if outcomes["unsupported"] and len(outcomes) > 1:  # the probe says the same every run
            problems.append(f"{scen} x {impolite}: unsupported in only some runs: {dict(outcomes)}")
        elif set(outcomes) - {"passed", "xfailed", "unsupported"}:
            problems.append(f"{scen} x {impolite}: {dict(outcomes)}: "
                            + next(c["reason"][:200] for c in runs if c["outcome"] not in ("passed", "xfailed")))
        elif expected == "pass" and outcomes["xfailed"]:
            problems.append(f"{scen} x {impolite}: xfailed without an expectation")
        elif expected == "xfail" and outcomes["passed"]:
            problems.append(f"{scen} x {impolite}: a strict finding passed {outcomes['passed']} time(s)")
        # "xfail or pass" (an intermittent finding) may vary: that is what it says
        for c in runs:
            g = c["glare"]
            if c["outcome"] == "passed" and not (g["forced"] and g["observed"] and g["collisions"] == g["planned"]):
                problems.append(f"{c['id']}: passed without every planned collision forced and observed")
    figure = {f"{s} x {i}": dict(Counter(c["outcome"] for c in r)) for (s, i), r in sorted(cells.items())}
    (out / "determinism.json").write_text(json.dumps(figure, indent=1))
    print(json.dumps(figure, indent=1))
    assert not problems, "\n".join(problems)
