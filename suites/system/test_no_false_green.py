"""Nothing that did not really happen is ever reported as a pass: a peer that never started, a
case in which no negotiation happened, a glare scenario in which no collision occurred. Each is
a failure or an error in the report and a non-zero exit. Real peers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rig import config, runs

RIG = [sys.executable, "-m", "rig"]


def _cases(out: Path) -> dict[str, dict]:
    return {c["id"]: c for c in json.loads((out / "results.json").read_text())["cases"]}


def test_a_peer_that_never_started_is_an_error_never_a_pass(tmp_path: Path) -> None:
    proc = runs.run_bounded([*RIG, "matrix", "--peers", "chromium@/nonexistent/chromium,aiortc",
                                  "--scenarios", "add-video", "--workers", "1", "--out", str(tmp_path)],
                                 timeout=180, cwd=config.ROOT)
    cases = _cases(tmp_path)
    with_it = [c for c in cases.values() if "chromium" in c["id"]]
    assert len(with_it) == 3 and all(c["outcome"] == "error" for c in with_it), with_it
    assert all("/nonexistent/chromium" in c["reason"] for c in with_it)
    assert cases["add-video[aiortc-polite--aiortc-impolite]"]["outcome"] == "passed"
    assert proc.returncode == 1


def test_no_negotiation_and_no_collision_are_failures_never_passes(tmp_path: Path) -> None:
    """A negotiator that attaches and does nothing: no offer ever crosses the stub."""
    idle = tmp_path / "idle.py"
    idle.write_text("def attach(pc, signaler, *, polite):\n    signaler.on_message = lambda data: None\n")
    out = tmp_path / "out"
    # Each case waits out a step's bound for what never comes (a connection, an offer); how long
    # does not matter, nothing happens either way: 3 s instead of 10 (the join's bound, 7 s,
    # is still far above an aiortc join under load)
    proc = runs.run_bounded([*RIG, "matrix", "--peers", "aiortc", "--scenarios", "add-video,glare-initial",
                                  "--negotiator-py", str(idle), "--workers", "1", "--out", str(out)],
                                 timeout=180, cwd=config.ROOT, env=dict(os.environ, RIG_STEP_TIMEOUT="3"))
    cases = _cases(out)
    assert proc.returncode == 1
    assert {c["outcome"] for c in cases.values()} <= {"failed", "error"}, cases
    glare = cases["glare-initial[aiortc-polite--aiortc-impolite]"]
    assert not glare["glare"]["forced"] and not glare["glare"]["observed"]
    plain = cases["add-video[aiortc-polite--aiortc-impolite]"]
    detail = json.loads((out / "cases" / f"{plain['slug']}.json").read_text())
    failed = {c["id"] for c in detail["checks"] if not c["ok"]}
    # the case ended at its first settle (a timeout): the negotiation checks are judged anyway
    assert plain["outcome"] == "failed" and "settle" in plain["reason"], plain["reason"]
    assert {"negotiation.exchanged", "polite.negotiated", "impolite.negotiated"} <= failed, failed
