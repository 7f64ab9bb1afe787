"""The rig catches broken negotiators: every shipped mutant must fail at least one cell
of the scenarios its header names ("kills:"), with a reason that names its symptom
("symptom:"), on real browsers (and aiortc for the Python mutants). The reference
negotiator passing everything is the interop matrix itself (suites/interop)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from rig import mutants, processes

MUTANTS = mutants.discover()


def test_at_least_ten_mutants_each_saying_what_it_breaks() -> None:
    assert len(MUTANTS) >= 10
    for m in MUTANTS:
        assert len(m.breaks) > 30, m.name
        assert m.kills, f"{m.name}: no 'kills:' header naming the scenarios that kill it"
        assert m.symptom, f"{m.name}: no 'symptom:' header"


def _run(tmp_path: Path, m: mutants.Mutant, peers: str, flag: str, path: Path, kills: tuple[str, ...],
         *matrix_args: str) -> dict:
    out = tmp_path / m.name
    processes.run_bounded([sys.executable, "-m", "rig", "matrix", "--peers", peers, "--scenarios", ",".join(kills),
                    flag, str(path), "--workers", "1", "--out", str(out), *matrix_args],
                   capture_output=True, text=True, timeout=600)
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("m", [m for m in MUTANTS if m.js], ids=lambda m: m.name)
def test_js_mutant_is_killed(tmp_path: Path, m: mutants.Mutant) -> None:
    run = _run(tmp_path, m, "firefox", "--negotiator-js", m.js, m.kills)
    killed = [c for c in run["cases"] if c["outcome"] in mutants.KILLING]
    assert killed, f"{m.name} survived {m.kills}: " + "; ".join(f"{c['id']} {c['outcome']}" for c in run["cases"])
    assert any(re.search(m.symptom, c["reason"]) for c in killed), \
        f"{m.name} was killed, but no reason names its symptom /{m.symptom}/: {killed[0]['reason'][:500]}"


@pytest.mark.parametrize("m", [m for m in MUTANTS if m.py], ids=lambda m: m.name)
def test_py_mutant_is_killed(tmp_path: Path, m: mutants.Mutant) -> None:
    assert m.kills_py, f"{m.name}.py: no 'kills:' header"
    # the one pair where the reference passes every scenario with an aiortc peer running the negotiator
    run = _run(tmp_path, m, "firefox,aiortc", "--negotiator-py", m.py, m.kills_py, "--pairs", "firefox:aiortc")
    killed = [c for c in run["cases"] if c["outcome"] in mutants.KILLING and "aiortc" in c["id"]]
    assert killed, f"{m.name} (Python) survived {m.kills_py}: " + "; ".join(
        f"{c['id']} {c['outcome']}" for c in run["cases"])
    assert any(re.search(m.symptom_py, c["reason"]) for c in killed), \
        f"{m.name}.py was killed, but no reason names its symptom /{m.symptom_py}/: {killed[0]['reason'][:500]}"
