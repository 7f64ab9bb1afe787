"""The verdict as a pure function of recorded data (rig.verdict): every check has a stable
id, none is constant (each one below is made to fail by a change of the recorded data),
the role invariants are in every scenario's verdict, and unsupported cells are decided by
probed capabilities. No browser."""

from __future__ import annotations

import copy

import pytest

from rig import capabilities, scenarios, verdict
from rig.case import _unsupported
from rig.peers.aiortc_peer import probe_aiortc
from rig.peerspec import PeerSpec


def _ev(t: float, type_: str, **detail) -> dict:
    return {"t": t, "type": type_, "detail": detail}


def full_case() -> tuple[verdict.Ledger, dict, list, dict]:
    """A recorded case in which every kind of check appears and holds."""
    ledger = verdict.Ledger(
        scenario="synthetic", glare=True, steps=["s"] * 8, reached=8, completed=True, planned_collisions=[3],
        expect_media={"polite": {"audio": 1}, "impolite": {"video": 1}}, own_media={"polite": 1, "impolite": 1},
        channels=["dc"], exchanged={"polite": ["p1"], "impolite": ["i1"]},
        collisions=[{"index": 1, "step": 3, "held": [5, 6], "released_t": 1.0, "reoffer": True,
                     "window": {"peer": "impolite", "trigger": "srd-answer", "seq": 9}}],
        removed=[{"role": "polite", "mid": "2"}], restarts=[{"role": "impolite", "before": ["old"]}],
        faults=[{"who": "impolite", "method": "setLocalDescription", "step": 4}],
        gates=[{"id": 1, "who": "impolite", "what": "g", "open_on": "srd-offer", "step": 5}],
        message_faults=[{"what": "duplicate", "sender": "polite", "kind": "candidate", "step": 6}],
        computed_polite={"polite": True, "impolite": False})
    events = {
        "polite": [_ev(0.5, "negotiationneeded", state="stable"), _ev(1.1, "rollback", how="implicit"),
                   _ev(1.2, "offer-made"), _ev(1.3, "remote-description-set", type="offer")],
        "impolite": [_ev(0.5, "negotiationneeded", state="stable"), _ev(1.1, "offer-ignored", seq=5, state="have-local-offer"),
                     _ev(1.5, "injected", seq=9, state="have-local-offer"), _ev(2.0, "fault-injected",
                                                                                 method="setLocalDescription"),
                     _ev(2.1, "gate-reached", id=1, state="stable"), _ev(2.2, "gate-opened", id=1, state="have-remote-offer"),
                     _ev(2.3, "remote-description-set", type="answer")],
    }
    messages = [{"seq": 5, "from": "polite", "kind": "offer", "held": True, "released_t": 1.0},
                {"seq": 6, "from": "impolite", "kind": "offer", "held": True, "released_t": 1.0},
                {"seq": 7, "from": "polite", "kind": "candidate", "note": "duplicate of #4 (duplicate candidate)"},
                {"seq": 8, "from": "impolite", "kind": "offer", "delivered_t": 1.25},
                {"seq": 9, "from": "polite", "kind": "answer", "delivered_t": 2.25}]

    def snap(kind_in: str, sending_dir: str, ufrags: list[str], received: str) -> dict:
        return {"signalingState": "stable", "connectionState": "connected", "localUfrags": ufrags,
                "transceivers": [{"mid": "0", "sending": True, "currentDirection": sending_dir},
                                 {"mid": "2", "sending": False, "currentDirection": "recvonly"}],
                "received": [{"kind": kind_in, "bytesReceived": 100}],
                "channels": [{"label": "dc", "readyState": "open", "received": [received]}]}
    snaps = {"polite": snap("audio", "sendrecv", ["p"], "i1"), "impolite": snap("video", "sendrecv", ["new"], "p1")}
    return ledger, events, messages, snaps


def run_checks(ledger, events, messages, snaps):
    tls = {r: verdict.Timeline(e) for r, e in events.items()}
    return verdict.checks(ledger, tls, messages, snaps)


def test_every_check_holds_on_the_full_case_and_ids_are_unique() -> None:
    checks, glare = run_checks(*full_case())
    assert [c for c in checks if not c.ok] == []
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids))
    assert glare.forced and glare.observed
    kinds = [c.kind for c in checks]
    assert kinds == sorted(kinds, key=["integrity", "role", "outcome"].index), "integrity, then roles, then outcomes"


def _drop_event(events, role, type_):
    events[role] = [e for e in events[role] if e["type"] != type_]


#: check id -> a change of the recorded data that must make exactly that check fail
BREAKERS = {
    "collision-1.held": lambda L, E, M, S: M.__setitem__(1, {**M[1], "held": False}),
    "collision-1.window": lambda L, E, M, S: _drop_event(E, "impolite", "injected"),
    "collision-1.rolled-back": lambda L, E, M, S: _drop_event(E, "polite", "rollback"),
    "collision-1.ignored": lambda L, E, M, S: _drop_event(E, "impolite", "offer-ignored"),
    "collision-1.reoffered": lambda L, E, M, S: _drop_event(E, "polite", "offer-made"),
    "fault-1.injected": lambda L, E, M, S: _drop_event(E, "impolite", "fault-injected"),
    "negotiation.exchanged": lambda L, E, M, S: M.__setitem__(4, {**M[4], "delivered_t": None}),
    "polite.negotiated": lambda L, E, M, S: _drop_event(E, "polite", "remote-description-set"),
    "impolite.negotiated": lambda L, E, M, S: _drop_event(E, "impolite", "remote-description-set"),
    "gate-1.reached": lambda L, E, M, S: _drop_event(E, "impolite", "gate-reached"),
    "gate-1.opened": lambda L, E, M, S: _drop_event(E, "impolite", "gate-opened"),
    "message-fault-1.happened": lambda L, E, M, S: M.__setitem__(2, {**M[2], "note": ""}),
    "polite.negotiationneeded-in-stable": lambda L, E, M, S: E["polite"].append(
        _ev(3, "negotiationneeded", state="have-remote-offer")),
    "impolite.negotiationneeded-in-stable": lambda L, E, M, S: E["impolite"].append(
        _ev(3, "negotiationneeded", state="have-local-offer")),
    "polite.never-ignores-offer": lambda L, E, M, S: E["polite"].append(_ev(3, "offer-ignored", seq=1)),
    "impolite.never-rolls-back": lambda L, E, M, S: E["impolite"].append(_ev(3, "rollback")),
    "polite.role-computed": lambda L, E, M, S: L.computed_polite.__setitem__("polite", False),
    "impolite.role-computed": lambda L, E, M, S: L.computed_polite.__setitem__("impolite", None),
    "transceivers-match": lambda L, E, M, S: S["polite"]["transceivers"].append({"mid": "9"}),
    "polite.stable": lambda L, E, M, S: S["polite"].__setitem__("signalingState", "have-local-offer"),
    "impolite.stable": lambda L, E, M, S: S["impolite"].__setitem__("signalingState", "have-remote-offer"),
    "polite.connected": lambda L, E, M, S: S["polite"].__setitem__("connectionState", "connecting"),
    "impolite.connected": lambda L, E, M, S: S["impolite"].__setitem__("connectionState", "failed"),
    "polite.media-audio": lambda L, E, M, S: S["polite"]["received"][0].__setitem__("bytesReceived", 0),
    "impolite.media-video": lambda L, E, M, S: S["impolite"].__setitem__("received", []),
    "polite.sends-own": lambda L, E, M, S: S["polite"]["transceivers"][0].__setitem__("currentDirection", "recvonly"),
    "impolite.sends-own": lambda L, E, M, S: S["impolite"]["transceivers"][0].__setitem__("currentDirection", None),
    "polite.channel-dc": lambda L, E, M, S: S["polite"]["channels"][0].__setitem__("readyState", "closed"),
    "impolite.channel-dc": lambda L, E, M, S: S["impolite"].__setitem__("channels", []),
    "polite.messages": lambda L, E, M, S: S["polite"]["channels"][0].__setitem__("received", []),
    "impolite.messages": lambda L, E, M, S: S["impolite"]["channels"][0].__setitem__("received", ["x"]),
    "polite.removed-2": lambda L, E, M, S: S["polite"]["transceivers"][1].__setitem__("currentDirection", "sendrecv"),
    "impolite.ice-restarted": lambda L, E, M, S: S["impolite"].__setitem__("localUfrags", ["old"]),
    "polite.no-error": lambda L, E, M, S: E["polite"].append(_ev(3, "error", text="TypeError: x")),
    "impolite.no-error": lambda L, E, M, S: E["impolite"].append(_ev(3, "error", text="boom")),
}


def test_no_check_is_constant() -> None:
    """Each check of the full case is made to fail by one change of what was recorded."""
    checks, _ = run_checks(*full_case())
    assert {c.id for c in checks} == set(BREAKERS), "a new check needs its breaker here"
    for cid, breaker in BREAKERS.items():
        data = copy.deepcopy(full_case())
        breaker(*data)
        failed = {c.id for c in run_checks(*data)[0] if not c.ok}
        assert cid in failed, f"{cid} held although its data was broken"
        # the re-offer is looked for after the rollback, and an extra transceiver is not sending
        assert failed - {cid} <= {"collision-1.reoffered", "transceivers-match", "impolite.messages"}, \
            f"{cid}: also {failed - {cid}}"


def test_an_unforced_planned_collision_is_an_integrity_failure_at_its_step() -> None:
    ledger, events, messages, snaps = full_case()
    ledger.collisions, ledger.reached, ledger.completed = [], 2, False
    checks, glare = run_checks(ledger, events, messages, snaps)
    forced = next(c for c in checks if c.id == "collision-1.forced")
    assert not forced.ok and forced.kind == "integrity" and forced.step == 3
    assert not glare.forced and not glare.observed


def test_role_invariants_are_in_every_scenarios_verdict() -> None:
    """Glare or not, negotiationneeded only in 'stable' and the role rules are judged."""
    ledger, events, messages, snaps = full_case()
    ledger.glare, ledger.collisions, ledger.planned_collisions = False, [], []
    ids = {c.id for c in run_checks(ledger, events, messages, snaps)[0]}
    for cid in ("polite.negotiationneeded-in-stable", "impolite.negotiationneeded-in-stable",
                "polite.never-ignores-offer", "impolite.never-rolls-back"):
        assert cid in ids
    events["impolite"].append(_ev(3, "negotiationneeded", state="have-remote-offer"))
    bad = [c for c in run_checks(ledger, events, messages, snaps)[0] if not c.ok]
    assert [c.id for c in bad] == ["impolite.negotiationneeded-in-stable"]


def test_errors_are_reported_with_the_operation_that_rejected() -> None:
    tl = verdict.Timeline([
        _ev(1.0, "api-error", method="setRemoteDescription", name="InvalidStateError", message="bad state"),
        _ev(1.01, "error", source="console.error", text="InvalidStateError: bad state",
            errors=[{"name": "InvalidStateError", "message": "bad state"}]),
        _ev(2.0, "error", source="pageerror", text="TypeError: x is undefined")])
    reports = verdict.error_reports("polite", tl)
    assert [(r.operation, r.name, r.message) for r in reports] == [
        ("setRemoteDescription", "InvalidStateError", "bad state"), ("pageerror", "", "TypeError: x is undefined")]
    cause = verdict.cause_of_error("polite", "chromium", tl, "3. collide", 3, ("have-local-offer", "connected"))
    assert cause.kind == "error" and cause.operation == "setRemoteDescription" and cause.step_index == 3


def test_the_error_is_found_among_the_values_a_negotiator_logged() -> None:
    """console.error("prefix:", err): the error is err, not the prefix, whether the API call's
    rejection was recorded or not."""
    err = {"name": "InvalidAccessError", "message": "remap RTP extension id 3", "thrown": True}
    prefix = {"name": "Error", "message": "setRemoteDescription failed:", "thrown": False}
    tl = verdict.Timeline([
        _ev(1.0, "api-error", method="setRemoteDescription", name="InvalidAccessError",
            message="remap RTP extension id 3"),
        _ev(1.01, "error", source="console.error", errors=[prefix, err],
            text="setRemoteDescription failed: InvalidAccessError: remap RTP extension id 3"),
        _ev(2.0, "error", source="console.error", errors=[{**prefix, "message": "oops:"},
                                                          {**err, "name": "TypeError", "message": "x"}]),
        _ev(3.0, "error", source="console.error", errors=[prefix, {**prefix, "message": "just words"}])])
    assert [(r.operation, r.name, r.message) for r in verdict.error_reports("polite", tl)] == [
        ("setRemoteDescription", "InvalidAccessError", "remap RTP extension id 3"),
        ("console.error", "TypeError", "x"),
        ("console.error", "Error", "setRemoteDescription failed:")]


# -- capabilities and unsupported cells ------------------------------------------------
def test_needs_are_read_off_the_steps() -> None:
    n = capabilities.needs
    assert n(scenarios.get("glare-add-remove")) == {"polite": {"removeTrack"}, "impolite": set()}
    assert n(scenarios.get("glare-ice-restart"))["polite"] == {"restartIce"}
    assert n(scenarios.get("ice-restart"))["polite"] == {"restartIce"}
    for name in ("duplicate-candidate", "dropped-candidate", "candidate-before-offer", "glare-late-candidates",
                 "glare-candidate-answer"):
        assert n(scenarios.get(name))["polite"] == {"trickle"}, name
    assert n(scenarios.get("glare-add-media")) == {"polite": set(), "impolite": set()}


class _Peer:
    def __init__(self, kind: str, caps: dict) -> None:
        self.spec, self.version, self.capabilities = PeerSpec(kind), "x", caps


def test_a_cell_is_unsupported_only_while_its_peer_lacks_the_capability() -> None:
    scen = scenarios.get("glare-ice-restart")
    without = {"polite": _Peer("aiortc", {"restartIce": False}), "impolite": _Peer("firefox", {"restartIce": True})}
    assert "polite peer (aiortc x) lacks restartIce" in _unsupported(scen, without)
    with_it = {"polite": _Peer("aiortc", {"restartIce": True}), "impolite": _Peer("firefox", {})}
    assert _unsupported(scen, with_it) == ""


def test_the_aiortc_probe_looks_at_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import aiortc

    from rig.peers import aiortc_peer
    caps = asyncio.run(probe_aiortc())
    assert caps["restartIce"] is callable(getattr(aiortc.RTCPeerConnection, "restartIce", None))
    assert caps["removeTrack"] is callable(getattr(aiortc.RTCPeerConnection, "removeTrack", None))
    assert caps["trickle"] is False  # aiortc 1.16 writes its candidates into the SDP
    # the day RTCPeerConnection has the method, the probe says yes and the cell runs
    monkeypatch.setattr(aiortc_peer, "_PROBED", None)
    monkeypatch.setattr(aiortc_peer.RTCPeerConnection, "restartIce", lambda self: None, raising=False)
    caps = asyncio.run(probe_aiortc())
    assert caps["restartIce"] is True
    peer = _Peer("aiortc", caps)
    assert _unsupported(scenarios.get("ice-restart"), {"polite": peer, "impolite": _Peer("firefox", {})}) == ""
    monkeypatch.setattr(aiortc_peer, "_PROBED", None)


def test_errors_after_the_rig_stopped_driving_are_aftermath_not_judged() -> None:
    ledger = verdict.Ledger(ended_t=2.0)
    tls = {"polite": verdict.Timeline([_ev(1.5, "error", text="ValueError: first"),
                                       _ev(2.5, "error", text="InvalidStateError: later")]),
           "impolite": verdict.Timeline([_ev(1.9, "error", text="TypeError: concurrent")])}
    assert [e.message for e in verdict.run_errors(ledger, tls)] == ["ValueError: first", "TypeError: concurrent"]
    ledger.ended_t = None  # a case that never ended early: every error counts
    assert len(verdict.run_errors(ledger, tls)) == 3
