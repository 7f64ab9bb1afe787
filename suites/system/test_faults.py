"""Faults injected on purpose (rig matrix --fault, rig.faults): each case with a fault is an
error whose reason names the fault and what the rig saw next, never a pass; the next case on
the same worker (the cell's second repeat) runs on fresh browsers where needed and passes;
nothing outlives the run. Real browsers and aiortc."""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import pytest

from rig import config, processes, runs

RIG = [sys.executable, "-m", "rig"]

#: fault -> (pair, what its case's reason must say after the fault's own words). A killed
#: browser or page is seen first either by its own peer (the page closed, or crashed) or by the
#: other one (the stub says its partner left): whichever comes first, the fault is named.
GONE = r"(polite peer \((chromium|firefox)\) (page|crash) failed: (the page closed in the middle of the case|Target " \
       r"crashed)|the other member, polite, left the room \(its WebSocket closed)"
CASES = {
    "kill-browser": ("chromium:aiortc", GONE),
    "crash-page": ("firefox:aiortc", GONE),  # one Firefox page: in Firefox x Firefox both may share a process
    "aiortc-raise": ("chromium:aiortc", re.escape("impolite peer (aiortc) negotiator on_message failed: RuntimeError: "
                                                  "fault injected by the rig")),
    "restart-stub": ("aiortc:chromium", re.escape("signaling WebSocket closed by the other end (code 1012)")),
    "delay-message": ("aiortc:aiortc", "then: "),
}


@pytest.mark.parametrize("fault", list(CASES))
def test_a_fault_is_an_error_naming_it_and_the_run_goes_on(fault: str, tmp_path: Path) -> None:
    pair, then = CASES[fault]
    run_id = f"fault-{uuid.uuid4().hex}"
    proc = runs.run_bounded(
        [*RIG, "matrix", "--peers", ",".join(sorted(set(pair.split(":")))), "--pairs", pair, "--scenarios", "add-video",
         "--repeat", "2", "--workers", "1", "--fault", fault, "--out", str(tmp_path)],
        timeout=240, cwd=config.ROOT, run_id=run_id)
    cases = {c["repeat"]: c for c in json.loads((tmp_path / "results.json").read_text())["cases"]}
    first, second = cases[0], cases[1]
    assert first["outcome"] == "error", first
    assert first["reason"].startswith(f"injected fault {fault} ("), first["reason"]
    assert re.search(then, first["reason"]), first["reason"]
    assert second["outcome"] == "passed", second["reason"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not processes.marked(run_id)  # run_bounded swept; nothing of the run is left
    detail = json.loads((tmp_path / "cases" / f"{first['slug']}.json").read_text())
    assert detail["ledger"]["fault"]["name"] == fault


def test_a_fault_that_cannot_act_on_a_pair_makes_its_cell_unsupported(tmp_path: Path) -> None:
    runs.run_bounded([*RIG, "matrix", "--peers", "aiortc", "--scenarios", "add-video", "--workers", "1",
                           "--fault", "kill-browser", "--out", str(tmp_path)], timeout=120, cwd=config.ROOT)
    (case,) = json.loads((tmp_path / "results.json").read_text())["cases"]
    assert case["outcome"] == "unsupported" and "fault kill-browser needs" in case["reason"]
