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

from rig import mutants, runs

# scheduled first (suites/conftest.py); one worker runs the module, so its kill run is made once
pytestmark = [pytest.mark.long, pytest.mark.xdist_group("mutants")]

MUTANTS = mutants.discover()


def test_at_least_ten_mutants_each_saying_what_it_breaks() -> None:
    assert len(MUTANTS) >= 10
    for m in MUTANTS:
        assert len(m.breaks) > 30, m.name
        assert m.kills, f"{m.name}: no 'kills:' header naming the scenarios that kill it"
        assert m.symptom, f"{m.name}: no 'symptom:' header"


@pytest.fixture(scope="module")
def kills_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``rig mutants --kills-only``: every mutant form on the scenarios its header names, and
    the reference on those, in one pytest session (rig.variants). Two workers: the deadlocked
    mutants' cases wait out their step bound with both browsers idle, and on one worker those
    waits followed one another (about half of this run's time)."""
    out = tmp_path_factory.mktemp("mutants")
    proc = runs.run_bounded([sys.executable, "-m", "rig", "mutants", "--kills-only", "--workers", "2",
                                  "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert (out / "mutants.json").is_file(), f"rig mutants wrote no kill matrix:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return out


def _form(out: Path, name: str) -> list[dict]:
    path = out / "mutants" / name / "results.json"
    assert path.is_file(), f"{name}: no results ({path})"
    return json.loads(path.read_text())["cases"]


def test_every_mutant_is_killed_with_its_symptom(kills_run: Path) -> None:
    """Each JS mutant on Firefox polite x Chromium impolite, each Python twin on Firefox polite x
    aiortc impolite (the one pair where the reference passes every scenario with an aiortc peer
    running the negotiator), on the scenarios its header names: some case fails, and a failing case's reason
    names the mutant's symptom."""
    problems = []
    for m in MUTANTS:
        for lang, symptom, kills in (("js", m.symptom, m.kills), ("py", m.symptom_py, m.kills_py)):
            if getattr(m, lang) is None:
                continue
            if not kills:
                problems.append(f"{m.name}.{lang}: no 'kills:' header")
                continue
            cases = _form(kills_run, f"{m.name}.{lang}")
            killed = [c for c in cases if c["outcome"] in mutants.KILLING and (lang == "js" or "aiortc" in c["id"])]
            if not killed:
                problems.append(f"{m.name}.{lang} survived {kills}: "
                                + "; ".join(f"{c['id']} {c['outcome']}" for c in cases))
            elif not any(re.search(symptom, c["reason"]) for c in killed):
                problems.append(f"{m.name}.{lang} was killed, but no reason names its symptom /{symptom}/: "
                                f"{killed[0]['reason'][:300]}")
    assert not problems, "\n".join(problems)


def test_the_kill_matrix_has_every_mutant_and_no_survivor(kills_run: Path) -> None:
    matrix = json.loads((kills_run / "mutants.json").read_text())
    assert sorted(r["mutant"] for r in matrix["mutants"]) == sorted(m.name for m in MUTANTS)
    assert matrix["survivors"] == []
    reference = json.loads((kills_run / "results.json").read_text())
    assert reference["cases"] and all("/" not in c["id"].split("[")[0] for c in reference["cases"])
    assert {c["outcome"] for c in reference["cases"]} <= {"passed", "xfailed", "unsupported"}
