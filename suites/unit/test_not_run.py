"""A run that ended early, or lost a worker, has no silent gap: every collected case without a
result is ``not-run`` (the run was interrupted or stopped) or ``error`` (its worker died, or
its result never came), in results.json, the index, junit.xml, the Markdown summary and
``rig compare``; and ``rig matrix`` checks the results it reads. No browser."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from rig import bisect, compare, config, junit, matrix, model, results, summary
from rig.errors import RigError
from rig.model import PeerInfo
from rig.report import write_report
from rig.request import MatrixRequest, cases

NODE = "suites/interop/test_matrix.py::test_interop[{}]"
PAIRS = (("aiortc", "aiortc"), ("aiortc", "firefox"), ("firefox", "aiortc"), ("firefox", "firefox"))
IDS = [results.case_id("add-video", p, i, 0, 1) for p, i in PAIRS]


def _collected() -> dict[str, str]:
    return {results.slug(cid): NODE.format(cid) for cid in IDS}


def test_a_case_whose_worker_died_is_an_error_saying_how():
    crashed = {NODE.format(IDS[1]): "worker gw1 was killed by SIGKILL while running this case"}
    got = results.unfinished(_collected(), {results.slug(IDS[0])}, crashed)
    assert got[results.slug(IDS[1])] == ("error", "worker gw1 was killed by SIGKILL while running this case")
    assert results.slug(IDS[0]) not in got, "a case that finished keeps its result"


def test_a_case_whose_worker_died_after_its_verdict_becomes_an_error_keeping_the_verdict(tmp_path):
    """The worker wrote the case's result and was killed before pytest heard of it."""
    _write(tmp_path, "passed", IDS[0])
    why = "worker gw0 was killed by SIGKILL while running this case"
    results.mark_crashed(tmp_path, results.slug(IDS[0]), why)
    results.mark_crashed(tmp_path, results.slug(IDS[0]), why)  # once only
    case = results.parse_detail(json.loads((tmp_path / "cases" / f"{results.slug(IDS[0])}.json").read_text()), "x").case
    assert case.outcome == "error" and case.reason == f"{why} (after its verdict, passed)"
    assert case.cause.kind == "rig"


def test_after_a_signal_the_unfinished_cases_are_not_run_and_a_crash_before_it_stays_an_error():
    crashed = {NODE.format(IDS[1]): "worker gw1 was killed by SIGKILL while running this case"}
    got = results.unfinished(_collected(), {results.slug(IDS[0])}, crashed, interrupted="SIGTERM (to worker gw0)")
    assert got[results.slug(IDS[1])][0] == "error"
    assert got[results.slug(IDS[2])] == ("not-run", "not run: the run was interrupted by SIGTERM (to worker gw0) "
                                                    "before this case finished")
    assert got[results.slug(IDS[3])][0] == "not-run"


def test_a_run_stopped_early_marks_the_rest_not_run_and_a_silent_gap_is_an_error():
    assert results.unfinished(_collected(), set(), {}, stopped="stopping after 1 failures")[results.slug(IDS[0])] == \
        ("not-run", "not run: the run stopped early (stopping after 1 failures)")
    outcome, reason = results.unfinished(_collected(), set(), {})[results.slug(IDS[0])]
    assert outcome == "error" and "no result was recorded" in reason


def _write(tmp_path, outcome: str, cid: str, reason: str = "") -> model.CaseSummary:
    pol, imp = PAIRS[IDS.index(cid)]
    return results.write_case(tmp_path, cid=cid, repeat=0, nodeid=NODE.format(cid), scenario="add-video",
                              polite=PeerInfo(spec=pol, kind=pol), impolite=PeerInfo(spec=imp, kind=imp),
                              error=reason, outcome=outcome)


def _partial_run(tmp_path) -> model.RunRecord:
    _write(tmp_path, "error", IDS[0], "worker gw1 was killed by SIGKILL while running this case")
    for cid in IDS[1:]:
        _write(tmp_path, "not-run", cid, "not run: the run was interrupted by SIGTERM before this case finished")
    run = results.collect(tmp_path, started=datetime.now(UTC), command="rig matrix", repeat=1,
                          peers=["firefox", "aiortc"], scenarios=[{"name": "add-video"}], versions={})
    run.interrupted = "SIGTERM"
    results.write_results(tmp_path, run)
    return run


def test_not_run_is_its_own_outcome_in_results_json_never_passed(tmp_path):
    run = _partial_run(tmp_path)
    assert run.summary["not-run"] == 3 and run.summary["error"] == 1 and run.summary["passed"] == 0
    again = model.load_run(tmp_path)  # validates against the model (and so the schema)
    assert again.interrupted == "SIGTERM"
    not_run = [c for c in again.cases if c.outcome == "not-run"]
    assert len(not_run) == 3 and all(c.cause is None and c.reason.startswith("not run:") for c in not_run)
    error = next(c for c in again.cases if c.outcome == "error")
    assert error.cause is not None and error.cause.kind == "rig" and "SIGKILL" in error.cause.message
    assert "not-run" not in model.ATTEMPTED


def test_the_index_says_the_run_was_interrupted_and_shows_not_run_cells(tmp_path):
    run = _partial_run(tmp_path)
    html = write_report(tmp_path, run).read_text(encoding="utf-8")
    assert 'id="interrupted"' in html and "Interrupted</b> by SIGTERM: 1 of 4 case(s) finished" in html
    assert 'class="o-not-run"' in html and 'id="count-not-run">3<' in html
    assert '<input type="checkbox" name="outcome" value="not-run" checked>' in html
    assert ">not run</a>" in html, "a cell with only not-run runs reads 'not run', not a pass rate"


def test_junit_skips_not_run_cases_by_type_and_marks_the_partial_run(tmp_path):
    root = junit.build(_partial_run(tmp_path))
    assert root.get("interrupted") == "SIGTERM" and root.get("not_run") == "3"
    skipped = root.findall(".//testcase/skipped")
    assert [s.get("type") for s in skipped] == ["not-run"] * 3 and root.get("errors") == "1"
    assert ET.tostring(root).count(b"<failure") == 0


def test_the_markdown_summary_and_compare_count_not_run_as_failing(tmp_path):
    run = _partial_run(tmp_path)
    text = summary.markdown(run)
    assert "Interrupted** by SIGTERM" in text and "⏹" in text and "4 case(s) fail the run" in text
    assert "not-run" in compare.BAD
    assert bisect.verdict_of([{"outcome": "not-run", "reason": "not run: ..."}])[0] == "skip", \
        "a bisect step says nothing about a version from a case that did not run"


def test_rig_matrix_refuses_an_earlier_runs_results_and_names_missing_cases(tmp_path):
    _partial_run(tmp_path)
    with pytest.raises(RigError, match="an earlier run's"):
        matrix._fresh_results(tmp_path, time.time() + 60)
    run = matrix._fresh_results(tmp_path, time.time() - 60)
    lines = matrix._integrity(run, set(IDS) | {"glare-initial[aiortc-polite--aiortc-impolite]"})
    assert lines == [f"3 case(s) did not run: {', '.join(IDS[1:])}",
                     "results.json lacks 1 case(s) of this run: glare-initial[aiortc-polite--aiortc-impolite]"]
    with pytest.raises(RigError, match="wrote no results"):
        matrix._fresh_results(tmp_path / "nowhere", 0)


def test_rig_matrix_expects_every_cell_and_repeat_it_asked_for():
    got = {c.id for c in cases(MatrixRequest(peers=("firefox", "aiortc"), scenarios=("add-video",),
                                             pairs=(("firefox", "aiortc"),), repeat=2))}
    assert got == {"add-video[firefox-polite--aiortc-impolite-r0]", "add-video[firefox-polite--aiortc-impolite-r1]"}


def test_the_schema_lists_the_outcome_and_the_field():
    text = (config.ROOT / "docs" / "results.schema.json").read_text()
    assert '"not-run"' in text and '"interrupted"' in text
