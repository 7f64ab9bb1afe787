"""rig debug and rig repro end to end, on a real browser x aiortc case."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from rig import runs

RIG = [sys.executable, "-m", "rig"]


def test_debug_then_repro_a_browser_aiortc_case(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "debug"
    run = runs.run_bounded(RIG + ["debug", "firefox:aiortc", "add-video", "--headed", "--out", str(out)],
                         capture_output=True, text=True, timeout=240, env=env)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-3000:]
    assert "needs a display" in text  # --headed without one explains itself and goes on headless
    assert "== add-video[firefox-polite--aiortc-impolite]: PASSED" in text
    assert "-- diverged at: nowhere" in text and "-- unmet invariant: none" in text
    case_dir = out / "cases" / "add-video_firefox-polite--aiortc-impolite"
    # full capture: evidence kept for a passing case too
    assert (case_dir / "trace-polite.zip").stat().st_size > 0
    assert "aiortc.rtcpeerconnection" in (case_dir / "aiortc.log").read_text()
    assert re.search(r"show-trace \S+trace-polite\.zip", text)

    repro = tmp_path / "repro"
    run = runs.run_bounded(RIG + ["repro", "add-video[firefox-polite--aiortc-impolite]", "--from", str(out),
                           "--out", str(repro)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert {"negotiator.js", "negotiator.py", "plan.json", "replay.sh", "transcript.txt"} <= {
        p.name for p in repro.iterdir()}
    assert "--negotiator-py negotiator.py" in (repro / "replay.sh").read_text()

    bad = runs.run_bounded(RIG + ["debug", "firefox-aiortc", "add-video"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected POLITE:IMPOLITE" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
