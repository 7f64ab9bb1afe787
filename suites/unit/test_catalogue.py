"""The scenario catalogue, peer specs, findings and results files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rig import case, config, findings, results, scenarios, verdict
from rig.errors import RigError
from rig.model import CaseDetail, CaseSummary, Cause, Check, Glare, PeerInfo
from rig.peerspec import PeerSpec


def test_the_scenarios_page_shows_the_catalogue_as_it_is() -> None:
    page = (config.ROOT / "docs" / "scenarios.md").read_text()
    begin, end = "<!-- scenarios:begin -->\n", "<!-- scenarios:end -->"
    shown = page[page.index(begin) + len(begin):page.index(end)]
    assert shown == scenarios.markdown(), \
        "docs/scenarios.md is stale: paste `rig scenarios --markdown` between the markers"


def test_plans_round_trip_through_json(tmp_path: Path) -> None:
    for scen in scenarios.CATALOGUE.values():
        f = tmp_path / f"{scen.name}.json"
        f.write_text(json.dumps(scen.to_json()))
        assert scenarios.load_plan(f) == scen
    f.write_text(json.dumps({"case": {}, "plan_data": scenarios.get("glare-initial").to_json()}))
    assert scenarios.load_plan(f) == scenarios.get("glare-initial")
    f.write_text('{"steps": [{"step": "Teleport"}]}')
    with pytest.raises(RigError, match="bad plan"):
        scenarios.load_plan(f)


def test_glare_scenarios_plan_collisions_and_others_do_not() -> None:
    for scen in scenarios.CATALOGUE.values():
        assert (scen.collisions > 0) == scen.glare, scen.name
    assert scenarios.get("glare-repeated").collisions == 3


def test_unknown_names_are_one_line_errors() -> None:
    with pytest.raises(RigError, match="unknown scenario 'x'.*known: initial-datachannel"):
        scenarios.get("x")
    with pytest.raises(RigError, match="unknown peer kind 'safari'"):
        PeerSpec.parse("safari")
    with pytest.raises(RigError, match="unknown change"):
        scenarios.Change("polite", "add-hologram")


@pytest.mark.parametrize("text,kind,variant,label", [
    ("chromium", "chromium", "", "chromium"),
    ("Firefox", "firefox", "", "firefox"),
    ("chromium@150", "chromium", "150", "chromium_150"),
    ("chromium@/opt/c/chrome", "chromium", "/opt/c/chrome", "chromium_opt_c_chrome"),
])
def test_peer_specs(text: str, kind: str, variant: str, label: str) -> None:
    spec = PeerSpec.parse(text)
    assert (spec.kind, spec.variant, spec.label) == (kind, variant, label)
    assert PeerSpec.parse(str(spec)) == spec


#: peers on the versions the findings were seen on
AIORTC = PeerInfo(spec="aiortc", kind="aiortc", version="1.16.0")
FIREFOX = PeerInfo(spec="firefox", kind="firefox", version="153.7.0esr")
CHROMIUM = PeerInfo(spec="chromium", kind="chromium", version="156.0.8078.114")
NO_ROLLBACK = 'Cannot handle offer in signaling state "have-local-offer"'


def _error(peer: str, kind: str, operation: str, name: str, message: str) -> Cause:
    return Cause(kind="error", step="4. collide", step_index=4, peer=peer, peer_kind=kind, operation=operation,
                 error_name=name, message=message)


def test_findings_match_only_their_error() -> None:
    found = verdict.applying("glare-initial", AIORTC, FIREFOX)
    assert [f.id for f, _ in found] == ["aiortc-no-rollback"] and "rollback" in found[0][0].detail
    assert verdict.applying("add-video", AIORTC, FIREFOX) == []
    assert verdict.applying("glare-add-media", FIREFOX, AIORTC) == []
    assert verdict.expectation(found) == "xfail"
    # a pass of a cell a strict finding expects to fail is an xpass (a failure of the run)
    passed = verdict.judge("glare-initial", AIORTC, FIREFOX, None, [], [])
    assert (passed.outcome, passed.finding) == ("xpassed", None) and "aiortc-no-rollback" in passed.reason
    hit = verdict.judge("glare-initial", AIORTC, FIREFOX,
                         _error("polite", "aiortc", "setRemoteDescription", "InvalidStateError", NO_ROLLBACK), [], [])
    assert (hit.outcome, hit.expected, hit.finding) == ("xfailed", "xfail", "aiortc-no-rollback")
    # any other failure is a failure, and says which finding it is not
    other = Cause(kind="check", step="final checks", peer="polite", peer_kind="aiortc", operation="polite.connected",
                  check="polite.connected", message="polite ends connected: connectionState=failed",
                  signaling_state="stable", connection_state="failed")
    missed = verdict.judge("glare-initial", AIORTC, FIREFOX, other, [], [])
    assert (missed.outcome, missed.finding) == ("failed", None)
    assert "not a known finding of this cell: aiortc-no-rollback expects" in missed.reason
    # the same error on the other peer, or on a version the finding was not seen on, is not the finding
    wrong_peer = _error("impolite", "firefox", "setRemoteDescription", "InvalidStateError", NO_ROLLBACK)
    assert verdict.judge("glare-initial", AIORTC, FIREFOX, wrong_peer, [], []).outcome == "failed"
    newer = AIORTC.model_copy(update={"version": "1.17.0"})
    assert verdict.applying("glare-initial", newer, FIREFOX) == []


def test_intermittent_findings_leave_the_cell_strict_only_with_a_strict_one() -> None:
    race = verdict.applying("stress-both-sides", FIREFOX, AIORTC)
    assert race and all(c.intermittent for _, c in race) and verdict.expectation(race) == "xfail or pass"
    hit = verdict.judge("stress-both-sides", FIREFOX, AIORTC,
                         _error("impolite", "aiortc", "setLocalDescription", "ValueError", "None is not in list"),
                         [], [])
    assert (hit.outcome, hit.finding) == ("xfailed", "aiortc-answer-with-pending-transceiver")
    # an intermittent cell that passes is a pass, not an xpass
    assert verdict.judge("stress-both-sides", FIREFOX, AIORTC, None, [], []).outcome == "passed"
    # Chromium's extmap finding is deterministic, so that cell must still fail every run.
    strict = verdict.applying("stress-both-sides", CHROMIUM, AIORTC)
    assert verdict.expectation(strict) == "xfail"
    assert verdict.judge("stress-both-sides", CHROMIUM, AIORTC, None, [], []).outcome == "xpassed"
    assert verdict.expectation([]) == "pass"


def test_with_other_negotiators_than_the_reference_a_findings_cell_may_pass_but_a_failure_must_still_be_its() -> None:
    """The findings were recorded with the reference negotiators: another negotiator (a user's, one
    that swallows errors) may pass a cell the reference fails, which is a pass, not an xpass; a
    failure there must still be the finding's."""
    strict = verdict.applying("candidate-before-offer", FIREFOX, CHROMIUM)
    assert verdict.expectation(strict) == "xfail" and verdict.expectation(strict, reference=False) == "xfail or pass"
    assert verdict.judge("candidate-before-offer", FIREFOX, CHROMIUM, None, [], []).outcome == "xpassed"
    passed = verdict.judge("candidate-before-offer", FIREFOX, CHROMIUM, None, [], [], reference=False)
    assert (passed.outcome, passed.expected) == ("passed", "xfail or pass")
    assert passed.reason.startswith("finding pattern-candidate-before-offer-chromium fails this cell with the reference "
                                    "negotiators; these negotiators passed it")
    hit = verdict.judge("candidate-before-offer", FIREFOX, CHROMIUM,
                        _error("impolite", "chromium", "addIceCandidate", "InvalidStateError",
                               "Failed to execute 'addIceCandidate': The remote description was null"),
                        [], [], reference=False)
    assert (hit.outcome, hit.finding) == ("xfailed", "pattern-candidate-before-offer-chromium")
    other = verdict.judge("candidate-before-offer", FIREFOX, CHROMIUM,
                          _error("impolite", "chromium", "setRemoteDescription", "TypeError", "not the finding's"),
                          [], [], reference=False)
    assert other.outcome == "failed"
    assert verdict.expectation([], reference=False) == "pass"


def test_a_case_runs_the_reference_only_when_every_peer_loads_the_shipped_negotiator(tmp_path: Path) -> None:
    ref = {"js": ("http://x/perfect.js", str(config.REFERENCE_NEGOTIATOR_JS)), "py": str(config.REFERENCE_NEGOTIATOR_PY)}
    mine = tmp_path / "mine.js"
    assert case.runs_reference(ref, {"chromium", "aiortc"})
    assert not case.runs_reference({**ref, "js": ("http://x/mine.js", str(mine))}, {"chromium", "aiortc"})
    assert case.runs_reference({**ref, "js": ("http://x/mine.js", str(mine))}, {"aiortc"})  # no browser loads it
    assert not case.runs_reference({**ref, "py": "mine.py:attach"}, {"firefox", "aiortc"})
    assert case.runs_reference({**ref, "py": "mine.py:attach"}, {"firefox", "chromium"})


def test_every_finding_has_a_detail_and_a_signature() -> None:
    for f in findings.FINDINGS:
        assert len(f.title) > 10 and len(f.detail) > 40, f.id
        assert f.cells and f.operation, f.id
        assert bool(f.error or f.message) != bool(f.end_state), f.id


def _result(outcome: str, **kw) -> CaseDetail:
    """A case's record as rig.case returns it (its identity in the run left to rig.results)."""
    checks = kw.pop("checks", [])
    return CaseDetail(case=CaseSummary(id="", slug="", scenario="glare-initial", polite=AIORTC, impolite=FIREFOX,
                                       outcome=outcome, expected=kw.pop("expected", "xfail"),
                                       reason=kw.pop("reason", ""), duration_s=1.5, glare=Glare(planned=1), **kw),
                      checks=checks)


def test_case_files_are_collected_into_results(tmp_path: Path) -> None:
    cause = _error("polite", "aiortc", "setRemoteDescription", "InvalidStateError", NO_ROLLBACK)
    made = [
        _result("xpassed", reason="passed although finding aiortc-no-rollback expects this cell to fail",
                findings=["aiortc-no-rollback"]),
        _result("xfailed", reason="why", finding="aiortc-no-rollback", findings=["aiortc-no-rollback"], cause=cause,
                checks=[Check(id="polite.stable", name="polite ends stable", ok=False, detail="have-local-offer")]),
    ]
    for i, result in enumerate(made):
        cid = results.case_id("glare-initial", "aiortc", "firefox", i, 2)
        summary = results.write_case(tmp_path, cid=cid, repeat=i, nodeid="n", result=result)
        assert summary.outcome == result.case.outcome and summary.details == f"cases/{results.slug(cid)}.json"
    # a case that could not run at all is an error, with the rig's message as its cause
    results.write_case(tmp_path, cid=results.case_id("add-video", "aiortc", "firefox", 0, 1), repeat=0, nodeid="n",
                       scenario="add-video", polite=AIORTC, impolite=FIREFOX, error="fixture exploded",
                       duration_s=0.5)
    run = results.collect(tmp_path, started=datetime.now(UTC), command="rig matrix", repeat=2,
                          peers=["aiortc", "firefox"], scenarios=[{"name": "glare-initial", "description": "d"},
                                                                  {"name": "add-video", "description": "d"}],
                          versions={})
    results.write_results(tmp_path, run)
    data = json.loads((tmp_path / "results.json").read_text())
    assert [c["id"] for c in data["cases"]] == ["glare-initial[aiortc-polite--firefox-impolite-r0]",
                                                 "glare-initial[aiortc-polite--firefox-impolite-r1]",
                                                 "add-video[aiortc-polite--firefox-impolite]"]
    assert data["summary"]["xpassed"] == 1 and data["summary"]["xfailed"] == 1 and data["summary"]["error"] == 1
    assert data["versions"]["firefox"] == "153.7.0esr" and data["versions"]["aiortc"]
    assert [f["id"] for f in data["findings"]] == ["aiortc-no-rollback"]
    case = data["cases"][1]
    for key in ("scenario", "polite", "impolite", "outcome", "duration_s", "glare", "reason"):
        assert key in case
    assert case["finding"] == "aiortc-no-rollback" and case["cause"]["operation"] == "setRemoteDescription"
    assert case["failed_checks"] == ["polite.stable"]
    assert (tmp_path / case["details"]).is_file()
    error = data["cases"][2]
    assert error["outcome"] == "error" and error["reason"] == "fixture exploded"
    assert error["cause"]["kind"] == "rig" and (tmp_path / error["details"]).is_file()
    with pytest.raises(ValueError, match="outcome"):  # pydantic's ValidationError is a ValueError
        results.write_case(tmp_path, cid="x", repeat=0, nodeid="n", result=_result("great"))


def test_gates_must_be_opened_and_name_known_steps() -> None:
    from rig.scenarios import AwaitGate, Gate, Join, OpenGate, Scenario
    with pytest.raises(RigError, match="never opened"):
        Scenario("x", "", (Join(), Gate("polite", "setLocalDescription")))
    with pytest.raises(RigError, match="no Gate before it"):
        Scenario("x", "", (Join(), OpenGate("polite", "setLocalDescription")))
    with pytest.raises(RigError, match="unknown gate step"):
        Gate("polite", "createDataChannel")
    with pytest.raises(RigError, match="must be 'before'"):
        Gate("polite", "negotiationneeded", when="after")
    with pytest.raises(RigError, match="unknown trigger"):
        Gate("polite", "negotiationneeded", open_on="soon")
    ok = Scenario("x", "", (Join(), Gate("impolite", "setRemoteDescription", "after", "offer"),
                            AwaitGate("impolite", "setRemoteDescription", "after", "offer"),
                            OpenGate("impolite", "setRemoteDescription", "after", "offer"),
                            Gate("polite", "negotiationneeded", open_on="srd-offer")))
    assert Scenario.from_json(ok.to_json()) == ok
