"""Findings as data (rig.findings), matched against a case's first failure (rig.verdict).

- every finding's kept evidence (a recorded case, judged again from its data) is that
  finding and no other finding matches it;
- a finding's error plus anything unexplained (a plumbing error, an unforced collision, a
  broken role invariant) is failed, and the reason names both;
- the finding applies only to its cells and the versions it was seen on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig import config, findings, verdict
from rig.model import Cause, Check, PeerInfo, parse_detail

EVIDENCE = config.ROOT / "fixtures" / "findings" / "evidence"
AIORTC, FIREFOX, CHROMIUM = (PeerInfo(spec="aiortc", kind="aiortc", version="1.16.0"),
                             PeerInfo(spec="firefox", kind="firefox", version="153.8.0"),
                             PeerInfo(spec="chromium", kind="chromium", version="156.0.8078.114"))

NO_ROLLBACK = Cause(kind="error", step="3. collide", step_index=3, peer="polite", peer_kind="aiortc",
                    operation="setRemoteDescription", error_name="InvalidStateError",
                    message='Cannot handle offer in signaling state "have-local-offer"')


def _err(peer: str, name: str, message: str, op: str = "setRemoteDescription") -> verdict.ErrorReport:
    return verdict.ErrorReport(peer, op, name, message)


NO_ROLLBACK_ERR = _err("polite", "InvalidStateError", NO_ROLLBACK.message)


def test_a_finding_is_its_error_on_its_peer() -> None:
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, NO_ROLLBACK, [], [NO_ROLLBACK_ERR])
    assert (j.outcome, j.finding, j.expected) == ("xfailed", "aiortc-no-rollback", "xfail")
    # the same error on the other peer is another finding's (aiortc-no-operations-chain), not this one
    other_peer = NO_ROLLBACK.model_copy(update={"peer": "impolite"})
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, other_peer, [], [])
    assert j.outcome == "failed" and "aiortc-no-rollback expects" in j.reason
    # another error from the right peer and operation is not the finding either
    other_error = NO_ROLLBACK.model_copy(update={"error_name": "TypeError", "message": "x is undefined"})
    assert verdict.judge("glare-initial", AIORTC, FIREFOX, other_error, [], []).outcome == "failed"
    # a timeout in the same step is not the finding's error
    stuck = Cause(kind="timeout", step="4. settle", step_index=4, peer="polite", operation="settle",
                  message="not stable", signaling_state="have-local-offer", connection_state="connected")
    assert verdict.judge("glare-initial", AIORTC, FIREFOX, stuck, [], []).outcome == "failed"


def test_a_finding_plus_a_plumbing_error_is_failed_and_names_both() -> None:
    plumbing = _err("impolite", "TypeError", "Cannot read properties of undefined (reading 'sdp')", "console.error")
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, NO_ROLLBACK, [], [NO_ROLLBACK_ERR, plumbing])
    assert j.outcome == "failed" and j.finding is None
    assert "aiortc-no-rollback explains the first failure" in j.reason and "TypeError" in j.reason


def test_a_finding_plus_an_unforced_collision_is_failed() -> None:
    unforced = Check(id="collision-1.forced", name="collision 1 (step 3) was forced", ok=False, kind="integrity",
                     step=3, detail="the step ran but no collision was recorded")
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, NO_ROLLBACK, [unforced], [NO_ROLLBACK_ERR])
    assert j.outcome == "failed" and "collision-1.forced" in j.reason
    # a collision planned after the step the case ended at is a consequence, not a second failure
    later = unforced.model_copy(update={"id": "collision-2.forced", "step": 7})
    assert verdict.judge("glare-initial", AIORTC, FIREFOX, NO_ROLLBACK, [later], [NO_ROLLBACK_ERR]).outcome == "xfailed"


def test_a_finding_plus_a_broken_role_invariant_is_failed() -> None:
    role = Check(id="impolite.never-rolls-back", name="impolite peer never rolls back", ok=False, kind="role",
                 peer="impolite", detail="1 rollback(s)")
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, NO_ROLLBACK, [role], [NO_ROLLBACK_ERR])
    assert j.outcome == "failed" and "impolite.never-rolls-back" in j.reason


def test_outcome_checks_after_the_cause_are_its_consequences() -> None:
    conn = Check(id="polite.connected", name="polite ends connected", ok=False, peer="polite",
                 detail="connectionState=new")
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, NO_ROLLBACK, [conn], [NO_ROLLBACK_ERR])
    assert j.outcome == "xfailed" and "polite ends connected" in j.reason


def test_an_error_explained_by_another_finding_of_the_cell_is_explained() -> None:
    cause = Cause(kind="error", step="4. settle", step_index=4, peer="polite", operation="setRemoteDescription",
                  message="Failed to set remote answer sdp: Failed to set SSL role for the transport")
    second = _err("impolite", "OperationError", "Unknown ufrag (abcd)", "addIceCandidate")
    j = verdict.judge("glare-ice-restart", CHROMIUM, FIREFOX, cause, [],
                       [_err("polite", "OperationError", cause.message), second])
    assert (j.outcome, j.finding) == ("xfailed", "firefox-restart-answer-setup-active")


def test_findings_apply_only_to_their_cells_and_versions() -> None:
    assert verdict.judge("glare-initial", FIREFOX, AIORTC, NO_ROLLBACK, [], []).outcome == "failed"
    assert verdict.judge("add-video", AIORTC, FIREFOX, NO_ROLLBACK, [], []).outcome == "failed"
    newer = AIORTC.model_copy(update={"version": "1.17.0"})
    j = verdict.judge("glare-initial", newer, FIREFOX, NO_ROLLBACK, [], [NO_ROLLBACK_ERR])
    assert j.outcome == "failed" and j.expected == "pass", "a version outside the finding's runs strict"
    assert j.not_seen == ["aiortc-no-rollback"]
    assert "aiortc-no-rollback has this first failure but was seen only on aiortc 1.14.0 .. 1.16.0, not on aiortc 1.17.0" in j.reason


def test_a_range_covers_the_release_lines_between_its_first_and_last_builds() -> None:
    r = findings.Seen("147.0.7727.0", "156.0.8078.114")
    assert r.covers("chromium", "147.0.7000.1") and r.covers("chromium", "150.0.7871.100")
    assert r.covers("chromium", "156.0.8078.130"), "a later patch of a seen major is the same release branch"
    assert not r.covers("chromium", "146.0.7600.0") and not r.covers("chromium", "157.0.1.0")
    assert not r.covers("chromium", "unavailable")
    aiortc = findings.Seen("1.16.0")
    assert aiortc.covers("aiortc", "1.16.2") and not aiortc.covers("aiortc", "1.14.0"), "aiortc lines are minors"
    assert str(r) == "147.0.7727.0 .. 156.0.8078.114" and str(aiortc) == "1.16.0"


def test_a_pass_on_a_version_outside_the_range_says_the_finding_was_not_seen_there() -> None:
    older = AIORTC.model_copy(update={"version": "1.13.0"})
    j = verdict.judge("glare-initial", older, FIREFOX, None, [], [])
    assert (j.outcome, j.expected, j.not_seen) == ("passed", "pass", ["aiortc-no-rollback"])
    assert j.reason == "finding aiortc-no-rollback not seen on aiortc 1.13.0"
    # inside the range the same pass is an xpass
    assert verdict.judge("glare-initial", AIORTC, FIREFOX, None, [], []).not_seen == []


def test_passes_against_strict_and_intermittent_findings() -> None:
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, None, [], [])
    assert j.outcome == "xpassed" and "aiortc-no-rollback" in j.reason
    j = verdict.judge("stress-both-sides", FIREFOX, AIORTC, None, [], [])
    assert (j.outcome, j.expected) == ("passed", "xfail or pass")
    hit = Cause(kind="error", step_index=5, peer="impolite", operation="setLocalDescription", error_name="ValueError",
                message="None is not in list")
    j = verdict.judge("stress-both-sides", FIREFOX, AIORTC, hit, [], [_err("impolite", "ValueError", hit.message)])
    assert (j.outcome, j.finding) == ("xfailed", "aiortc-answer-with-pending-transceiver")


def test_end_state_findings_match_a_state_not_an_error() -> None:
    stuck = Cause(kind="timeout", step="3. settle", step_index=3, peer="polite", peer_kind="firefox",
                  operation="settle", message="not connected", signaling_state="stable",
                  connection_state="connecting")
    j = verdict.judge("glare-candidate-answer", FIREFOX, FIREFOX, stuck, [], [])
    assert (j.outcome, j.finding) == ("xfailed", "firefox-rolled-back-sockets")
    other = stuck.model_copy(update={"connection_state": "failed"})
    assert verdict.judge("glare-candidate-answer", FIREFOX, FIREFOX, other, [], []).outcome == "failed"


def test_every_finding_is_complete_and_cites_files_that_exist() -> None:
    for f in findings.FINDINGS:
        assert len(f.detail) > 80 and f.cells and f.operation, f.id
        for path in (f.trigger, *f.evidence):
            assert not path or (config.ROOT / path).exists(), f"{f.id}: {path} is not in the repository"
    assert findings.BY_ID["aiortc-extmap-remap"].upstream[0].url.endswith("/issues/686")


# -- kept evidence, judged again -------------------------------------------------------
def _evidence() -> list[Path]:
    return sorted(EVIDENCE.glob("*.case.json"))


def _rejudge(path: Path) -> tuple[verdict.Judgement, Cause]:
    """The kept case through the verdict rig.case computes for a case it ran."""
    detail = parse_detail(json.loads(path.read_text()), str(path))
    case = detail.case
    judged = verdict.case_verdict(verdict.Recorded(
        case.scenario, case.polite, case.impolite, cause=case.cause, ledger=detail.ledger,
        events=detail.events, messages=detail.messages, snapshots=detail.snapshots))
    return judged.judgement, judged.cause


def test_every_finding_has_kept_evidence() -> None:
    kept = {json.loads(p.read_text())["case"].get("finding") for p in _evidence()}
    missing = [f.id for f in findings.FINDINGS if f.id not in kept]
    assert not missing, f"findings without evidence in {EVIDENCE}: {missing}"


@pytest.mark.parametrize("path", _evidence(), ids=lambda p: p.name.removesuffix(".case.json"))
def test_evidence_is_its_finding_and_no_other(path: Path) -> None:
    fid = json.loads(path.read_text())["case"]["finding"]
    judgement, cause = _rejudge(path)
    assert (judgement.outcome, judgement.finding) == ("xfailed", fid), judgement.reason
    case = parse_detail(json.loads(path.read_text())).case
    others = [f.id for f in findings.FINDINGS if f.id != fid and f.cell(case.scenario, case.polite, case.impolite)
              and f.matches(cause)]
    assert not others, f"{path.name} also matches {others}"
    assert [f.id for f in findings.FINDINGS if f.matches(cause) and f.id != fid
            and f.cell(case.scenario, case.polite, case.impolite)] == []


@pytest.mark.parametrize("path", _evidence(), ids=lambda p: p.name.removesuffix(".case.json"))
def test_evidence_mixed_with_a_plumbing_error_is_failed(path: Path, tmp_path: Path) -> None:
    raw = json.loads(path.read_text())
    raw["events"].setdefault("impolite", []).append(
        {"t": 0.001, "type": "error", "detail": {"source": "pageerror", "text": "TypeError: rig is undefined",
                                                 "errors": [{"name": "TypeError", "message": "rig is undefined"}]}})
    mixed = tmp_path / "mixed.json"  # each test its own: xdist workers run these side by side
    mixed.write_text(json.dumps(raw))
    judgement, _ = _rejudge(mixed)
    assert judgement.outcome == "failed" and "rig is undefined" in judgement.reason


def test_after_the_cause_an_api_rejection_is_a_consequence_but_a_code_error_is_not() -> None:
    cause = NO_ROLLBACK.model_copy(update={"t": 1.0})
    first = verdict.ErrorReport("polite", "setRemoteDescription", "InvalidStateError", NO_ROLLBACK.message, 1.0)
    later_api = verdict.ErrorReport("impolite", "setRemoteDescription", "InvalidStateError",
                                     'Cannot handle answer in signaling state "stable"', 1.07)
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, cause, [], [first, later_api])
    assert (j.outcome, j.finding) == ("xfailed", "aiortc-no-rollback")
    later_code = verdict.ErrorReport("impolite", "console.error", "TypeError", "x is undefined", 1.07)
    j = verdict.judge("glare-initial", AIORTC, FIREFOX, cause, [], [first, later_api, later_code])
    assert j.outcome == "failed" and "TypeError" in j.reason and "Cannot handle answer" not in j.reason.split("\n")[1]


def test_in_a_pair_of_one_engine_the_range_dates_only_the_peer_the_finding_fails_on() -> None:
    extmap = findings.BY_ID["chromium-rollback-extmap"]
    old = CHROMIUM.model_copy(update={"version": "110.0.5478.0"})
    assert extmap.cell("glare-initial", CHROMIUM, old) is not None, "the impolite counterpart's version is not dated"
    assert extmap.cell("glare-initial", old, CHROMIUM) is None, "the polite peer it fails on is"
    j = verdict.judge("glare-initial", old, CHROMIUM, None, [], [])
    assert j.reason == "finding chromium-rollback-extmap not seen on chromium 110.0.5478.0"


# -- a finished case: the outcomes no finding decides ------------------------------------
def test_an_unsupported_case_keeps_its_reason_and_the_cells_findings() -> None:
    v = verdict.case_verdict(verdict.Recorded("glare-initial", AIORTC, FIREFOX, planned=1,
                                              unsupported="the polite peer lacks rollback"))
    j = v.judgement
    assert (j.outcome, j.expected, j.reason, j.finding) == ("unsupported", "xfail", "the polite peer lacks rollback", None)
    assert j.applying == ["aiortc-no-rollback"] and v.checks == [] and v.glare.planned == 1 and not v.glare.forced


def test_a_case_with_an_injected_fault_is_an_error_naming_it_never_a_pass() -> None:
    def fault(then: str) -> str:
        return f"injected fault kill-browser (fired); then: {then}"
    passed = verdict.case_verdict(verdict.Recorded("add-video", AIORTC, FIREFOX, fault=fault)).judgement
    assert (passed.outcome, passed.finding) == ("error", None)
    assert passed.reason == "injected fault kill-browser (fired); then: the pair still met every check"
    failed = verdict.case_verdict(verdict.Recorded("glare-initial", AIORTC, FIREFOX, cause=NO_ROLLBACK,
                                                   ledger=verdict.Ledger(), events={"polite": [], "impolite": []},
                                                   fault=fault)).judgement
    assert (failed.outcome, failed.finding) == ("error", None)
    assert failed.reason.startswith(f"injected fault kill-browser (fired); then: {NO_ROLLBACK.text()}")


def test_a_case_whose_peers_were_never_made_is_an_error_with_its_set_up_cause() -> None:
    setup = Cause(kind="setup", message="chromium: no such file /nonexistent/chromium")
    v = verdict.case_verdict(verdict.Recorded("add-video", AIORTC, FIREFOX, cause=setup))
    assert v.judgement.outcome == "error" and "/nonexistent/chromium" in v.judgement.reason and v.cause is setup


# -- the rig's own record of rejections: a negotiator that drops its errors ---------------
EXTMAP = ("Failed to execute 'setRemoteDescription' on 'RTCPeerConnection': Failed to set remote offer sdp: RTP "
          "extension ID reassignment not supported (collision on active MID 1)")
SETTLE = Cause(kind="timeout", step="3. settle", step_index=3, peer="impolite", peer_kind="chromium",
               operation="settle", message="stuck at step 'settle' after 10 s: impolite not stable",
               signaling_state="have-local-offer", connection_state="connected")


def _api_error(t: float, method: str, name: str, message: str, **detail: object) -> dict:
    return {"t": t, "type": "api-error", "detail": {"method": method, "name": name, "message": message, **detail}}


def _swallowed(events: dict[str, list[dict]], cause: Cause = SETTLE, scenario: str = "glare-add-media",
               ended_t: float = 10.4) -> verdict.Judgement:
    """A case of a negotiator that caught and dropped every error: no error event, the case
    stuck at its settle (or ``cause``), the rejections in the rig's own record only."""
    ledger = verdict.Ledger(scenario=scenario, steps=["1. connect", "2. collide", "3. settle"], reached=3,
                            ended_t=ended_t, computed_polite={"polite": True, "impolite": False})
    return verdict.case_verdict(verdict.Recorded(scenario, CHROMIUM, CHROMIUM, cause=cause, ledger=ledger,
                                                 events={"polite": [], "impolite": [], **events})).judgement


def test_a_rejection_only_the_rig_recorded_is_the_finding_and_says_so() -> None:
    srd = _api_error(0.4, "setRemoteDescription", "InvalidAccessError", EXTMAP, type="offer")
    j = _swallowed({"polite": [srd]})
    assert (j.outcome, j.finding) == ("xfailed", "chromium-rollback-extmap"), j.reason
    first, then = j.reason.split("\n")[1:3]
    assert first == (f"first failure: polite peer (chromium) rejected setRemoteDescription(offer): InvalidAccessError: "
                     f"{EXTMAP}, recorded by the rig at t=0.400 s; the negotiator did not report it")
    assert then == f"then: {SETTLE.text()}"
    # the rejection of a planned fault is the rig's, and a candidate while an offer is ignored the
    # pattern drops: neither is a first failure
    fault = _api_error(0.1, "setLocalDescription", "OperationError", "injected by glare-rig: setLocalDescription fails once")
    ignored = [{"t": 0.2, "type": "offer-ignored", "detail": {"seq": 3}},
               _api_error(0.3, "addIceCandidate", "InvalidStateError", "The remote description was null")]
    j = _swallowed({"polite": [fault, srd], "impolite": ignored})
    assert (j.outcome, j.finding) == ("xfailed", "chromium-rollback-extmap"), j.reason


def test_a_first_rejection_that_is_no_finding_leaves_the_case_failed() -> None:
    srd = _api_error(0.4, "setRemoteDescription", "InvalidAccessError", EXTMAP, type="offer")
    other = _api_error(0.3, "setRemoteDescription", "InvalidStateError", "Called in wrong state: stable", type="answer")
    for events in ({"polite": [other]}, {"impolite": [other], "polite": [srd]}):
        j = _swallowed(events)
        assert (j.outcome, j.finding) == ("failed", None), j.reason
        assert "the first rejected call is no finding of this cell either: " in j.reason
        assert "Called in wrong state: stable, recorded by the rig at t=0.300 s" in j.reason
    # the finding's error on the other peer is not the finding
    assert _swallowed({"impolite": [srd]}).outcome == "failed"
    # a candidate rejected once the ignored offer's answer has been applied is not dropped by the pattern
    late = [{"t": 0.2, "type": "offer-ignored", "detail": {}}, {"t": 0.25, "type": "remote-description-set", "detail": {}},
            _api_error(0.3, "addIceCandidate", "InvalidStateError", "The remote description was null")]
    assert _swallowed({"impolite": late, "polite": [srd]}).outcome == "failed"


def test_a_rejection_after_the_first_failure_is_not_used() -> None:
    srd = _api_error(10.5, "setRemoteDescription", "InvalidAccessError", EXTMAP, type="offer")
    assert _swallowed({"polite": [srd]}, ended_t=10.4).outcome == "failed"
    # a reported error is the first failure at its own time, even when the case ran on after it
    code = Cause(kind="error", step="2. collide", step_index=2, peer="impolite", peer_kind="chromium",
                 operation="console.error", error_name="TypeError", message="x is undefined", t=0.2)
    reported = {"t": 0.2, "type": "error", "detail": {"source": "console.error", "text": "TypeError: x is undefined",
                                                      "errors": [{"name": "TypeError", "message": "x is undefined"}]}}
    srd = {**srd, "t": 0.4}
    j = _swallowed({"polite": [srd], "impolite": [reported]}, cause=code)
    assert j.outcome == "failed" and "rejected setRemoteDescription" not in j.reason, j.reason
    # before it, the rejection is the first failure, and the reported error still has to be explained
    j = _swallowed({"polite": [{**srd, "t": 0.1}], "impolite": [reported]}, cause=code)
    assert j.outcome == "failed" and "finding chromium-rollback-extmap explains the first rejection" in j.reason
    assert "TypeError: x is undefined" in j.reason


def _error_findings_evidence() -> list[Path]:
    return [p for p in _evidence() if findings.BY_ID[json.loads(p.read_text())["case"]["finding"]].error
            or findings.BY_ID[json.loads(p.read_text())["case"]["finding"]].message]


@pytest.mark.parametrize("path", _error_findings_evidence(), ids=lambda p: p.name.removesuffix(".case.json"))
def test_evidence_of_a_negotiator_that_swallowed_its_errors_is_still_its_finding(path: Path, tmp_path: Path) -> None:
    """Every kept case of an error finding, with the negotiator's reports taken out and the case
    stuck at a settle instead: the rig's own record of the rejection still names the finding."""
    raw = json.loads(path.read_text())
    fid, cause = raw["case"]["finding"], raw["case"]["cause"]
    for role in raw["events"]:
        raw["events"][role] = [e for e in raw["events"][role] if e["type"] != "error"]
    raw["case"]["cause"] = {"kind": "timeout", "step": cause.get("step", ""), "step_index": cause.get("step_index"),
                            "peer": cause.get("peer"), "peer_kind": cause.get("peer_kind", ""), "operation": "settle",
                            "message": "stuck at step 'settle' after 10 s"}
    swallowed = tmp_path / path.name
    swallowed.write_text(json.dumps(raw))
    judgement, _ = _rejudge(swallowed)
    assert (judgement.outcome, judgement.finding) == ("xfailed", fid), judgement.reason
    assert "recorded by the rig" in judgement.reason and "the negotiator did not report it" in judgement.reason
