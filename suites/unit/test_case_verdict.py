"""The verdict of a case on recorded events (no browser): rig.case writes down what it asked
for (CaseRun.ledger) and rig.verdict judges it against what the peers recorded. A glare case
is only proven when the peers' own events show the collision resolved. Fake peers stand in
for the browsers; CaseRun.wait_until (the early end of a case) is tested on them too."""

from __future__ import annotations

import asyncio

import pytest

from rig import model, scenarios, verdict
from rig.execute import CaseFailure, CaseRun
from rig.peers.base import Peer
from rig.peerspec import PeerSpec


class FakePeer(Peer):
    def __init__(self, name: str, polite: bool) -> None:
        super().__init__(PeerSpec("aiortc"), name, 2 if polite else 1, 0.0)
        self.polite = polite


class FakeControl:
    on_change = None

    def held(self) -> list:
        return []


class FakeRoom:
    name = "r"

    def __init__(self) -> None:
        self.control = FakeControl()

    def now(self) -> float:
        return 0.0


def make_run(scenario: str = "glare-add-media") -> tuple[CaseRun, FakePeer, FakePeer]:
    polite, impolite = FakePeer("polite", True), FakePeer("impolite", False)
    run = CaseRun(scenarios.get(scenario), FakeRoom(), "ws://x", {"polite": polite, "impolite": impolite}, {})
    return run, polite, impolite


def at(peer: FakePeer, t: float, type_: str, **detail) -> None:
    evt = peer.record(type_, detail)
    evt.t = t


def collided(run: CaseRun, messages: list[dict], released_t: float = 1.0) -> None:
    """What CaseRun._collide writes down, and what the stub logged: the next planned collision
    forced, an offer from each side held and released at ``released_t``."""
    led = run.ledger
    k = len(led.collisions) + 1
    step = led.planned_collisions[k - 1]
    seqs = [len(messages) + 1, len(messages) + 2]
    messages += [{"seq": seq, "from": role, "to": verdict.other(role), "kind": "offer", "held": True,
                  "released_t": released_t} for seq, role in zip(seqs, ("polite", "impolite"), strict=True)]
    led.collisions.append(model.Collision(index=k, step=step, held=seqs, released_t=released_t, reoffer=True,
                                          window=None))
    led.reached = max(led.reached, step)


def glare_checks(run: CaseRun, messages: list[dict]) -> tuple[list, verdict.Glare]:
    return verdict.glare_checks(run.ledger, run.timelines(), messages)


def test_glare_is_observed_only_with_rollback_ignore_and_reoffer() -> None:
    run, polite, impolite = make_run()
    messages: list[dict] = []
    collided(run, messages)
    at(polite, 1.1, "rollback", how="implicit")
    at(impolite, 1.1, "offer-ignored", seq=2, state="have-local-offer")
    at(polite, 1.3, "offer-made")
    checks, glare = glare_checks(run, messages)
    assert glare.forced and glare.observed and glare.collisions == glare.planned == 1
    assert glare.polite_rolled_back and glare.impolite_ignored_offer and glare.polite_reoffered
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert {c.id for c in checks} == {"collision-1.held", "collision-1.rolled-back", "collision-1.ignored",
                                      "collision-1.reoffered"}


@pytest.mark.parametrize("missing", ["rollback", "offer-ignored", "offer-made"])
def test_glare_without_one_proof_is_not_observed(missing: str) -> None:
    run, polite, impolite = make_run()
    messages: list[dict] = []
    collided(run, messages)
    if missing != "rollback":
        at(polite, 1.1, "rollback")
    if missing != "offer-ignored":
        at(impolite, 1.1, "offer-ignored", seq=2)
    if missing != "offer-made":
        at(polite, 1.3, "offer-made")
    checks, glare = glare_checks(run, messages)
    assert glare.forced and not glare.observed
    assert any(not c.ok for c in checks)


def test_proof_before_the_release_does_not_count() -> None:
    run, polite, impolite = make_run()
    messages: list[dict] = []
    at(polite, 0.5, "rollback")
    at(impolite, 0.5, "offer-ignored")
    at(polite, 0.6, "offer-made")
    collided(run, messages, released_t=1.0)
    _, glare = glare_checks(run, messages)
    assert not glare.observed


def test_each_collision_needs_its_own_proof() -> None:
    run, polite, impolite = make_run("glare-repeated")
    messages: list[dict] = []
    collided(run, messages, 1.0)
    at(polite, 1.1, "rollback")
    at(impolite, 1.1, "offer-ignored")
    at(polite, 1.2, "offer-made")
    collided(run, messages, 2.0)  # second collision: nothing happened after it
    checks, glare = glare_checks(run, messages)
    assert glare.collisions == 2 and glare.planned == 3 and not glare.observed
    assert [c.name for c in checks if not c.ok][0].startswith("collision 2")
    # the third planned collision never happened: the case ended before its step
    third = next(c for c in checks if c.id == "collision-3.forced")
    assert not third.ok and third.kind == "integrity" and "the case ended at step" in third.detail


def test_roles_must_not_be_swapped() -> None:
    run, polite, impolite = make_run()
    at(polite, 1.0, "offer-ignored")  # a polite peer ignoring an offer is wrong
    at(impolite, 1.0, "rollback")  # an impolite peer rolling back is wrong
    checks, _ = verdict.checks(run.ledger, run.timelines(), [], {})
    bad = {c.name: c for c in checks if not c.ok}
    assert "polite peer never ignores an offer" in bad and "impolite peer never rolls back" in bad
    assert {bad["polite peer never ignores an offer"].id, bad["impolite peer never rolls back"].id} == {
        "polite.never-ignores-offer", "impolite.never-rolls-back"}
    assert all(c.kind == "role" for c in (bad["polite peer never ignores an offer"],
                                          bad["impolite peer never rolls back"]))


def snap(state="stable", conn="connected", received=(), transceivers=(), channels=()) -> dict:
    return {"signalingState": state, "connectionState": conn, "received": list(received),
            "transceivers": list(transceivers), "channels": list(channels)}


def _computed_roles(run: CaseRun) -> None:
    """What run_case writes down once the steps are over: the role each peer computed."""
    for role, peer in run.peers.items():
        run.ledger.computed_polite[role] = peer.polite


def test_final_checks_fail_on_unapplied_change_and_errors() -> None:
    run, polite, impolite = make_run()
    _computed_roles(run)
    run.ledger.expect_media["impolite"]["video"] = 1
    run.ledger.own_media["polite"] = 1
    at(impolite, 2.0, "error", text="InvalidStateError: boom")
    checks = verdict.final_checks(run.ledger, run.timelines(), {
        "polite": snap(transceivers=[{"sending": True, "currentDirection": None}]),
        "impolite": snap(state="have-local-offer", received=[{"kind": "video", "bytesReceived": 0}]),
    })
    bad = {c.name for c in checks if not c.ok}
    assert "impolite ends stable" in bad
    assert "impolite receives 1 video track(s) with media flowing" in bad
    assert "polite sends its 1 own track(s) (currentDirection)" in bad
    assert "impolite reported no error" in bad


def test_final_checks_pass_when_everything_is_applied() -> None:
    run, polite, impolite = make_run()
    _computed_roles(run)
    run.ledger.expect_media["impolite"]["video"] = 1
    run.ledger.own_media["polite"] = 1
    run.ledger.channels.append("rig-1")
    run.ledger.exchanged = {"polite": ["p"], "impolite": ["i"]}
    ch = {"label": "rig-1", "readyState": "open"}
    checks = verdict.final_checks(run.ledger, run.timelines(), {
        "polite": snap(transceivers=[{"sending": True, "currentDirection": "sendrecv"}],
                       channels=[{**ch, "received": ["i"]}]),
        "impolite": snap(received=[{"kind": "video", "framesDecoded": 3}], channels=[{**ch, "received": ["p"]}],
                         transceivers=[{"sending": False, "currentDirection": "recvonly"}]),
    })
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_final_checks_hold_each_peer_to_the_role_it_was_given() -> None:
    run, polite, impolite = make_run()
    run.ledger.computed_polite = {"polite": False, "impolite": None}  # swapped, and one never joined
    checks = verdict.final_checks(run.ledger, run.timelines(), {"polite": snap(), "impolite": snap()})
    bad = {c.id for c in checks if not c.ok}
    assert {"polite.role-computed", "impolite.role-computed"} <= bad


def test_wait_until_fails_fast_on_a_peer_error_and_times_out_with_states() -> None:
    async def scenario() -> None:
        run, polite, impolite = make_run()
        at(impolite, 0.1, "error", source="console.error", text="TypeError: x is undefined")
        with pytest.raises(CaseFailure, match=r"impolite peer \(aiortc\) .*failed: TypeError: x is undefined") as info:
            await run.wait_until(lambda: "never", step="settle", timeout=5)
        cause = info.value.cause
        assert (cause.kind, cause.peer, cause.message) == ("error", "impolite", "TypeError: x is undefined")
        run2, p2, _ = make_run()
        with pytest.raises(CaseFailure, match=r"stuck at step 'settle' after 0 s: never met; polite peer") as info:
            await run2.wait_until(lambda: "never met", step="settle", timeout=0.05)
        assert info.value.cause.kind == "timeout" and info.value.cause.operation == "settle"
    asyncio.run(scenario())


@pytest.mark.parametrize("who, type_, detail, message", [
    ("polite", "offer-ignored", {"seq": 7, "state": "have-local-offer"},
     r"polite peer .* ignored offer #7 in have-local-offer: the polite peer never ignores an offer"),
    ("impolite", "rollback", {"how": "implicit"}, r"impolite peer .* rolled back \(implicit\): the impolite peer never"),
    ("impolite", "negotiationneeded", {"state": "have-remote-offer"},
     r"negotiationneeded fired in 'have-remote-offer' \(it fires only in 'stable'\)"),
])
def test_wait_until_ends_the_case_at_a_broken_role_invariant(who, type_, detail, message) -> None:
    async def scenario() -> None:
        run, polite, impolite = make_run()
        at({"polite": polite, "impolite": impolite}[who], 0.1, type_, **detail)
        with pytest.raises(Exception, match=message):
            await run.wait_until(lambda: "never", step="settle", timeout=5)
    asyncio.run(scenario())


def test_the_allowed_events_do_not_end_the_case() -> None:
    async def scenario() -> None:
        run, polite, impolite = make_run()
        at(polite, 0.1, "rollback", how="implicit")
        at(impolite, 0.1, "offer-ignored", seq=5, state="have-local-offer")
        at(polite, 0.2, "negotiationneeded", state="stable")
        with pytest.raises(Exception, match="stuck at step 'settle'"):
            await run.wait_until(lambda: "never", step="settle", timeout=0.05)
    asyncio.run(scenario())


def test_the_cause_is_the_earliest_error_whichever_peer_reported_it() -> None:
    """Both peers may have reported an error by the time the case wakes: the first in time is
    the cause (seen: aiortc's ValueError, then Chromium rejecting aiortc's next offer)."""
    run, polite, impolite = make_run("failed-sld-recovers")
    at(impolite, 1.19, "error", text="ValueError: None is not in list",
       errors=[{"name": "ValueError", "message": "None is not in list"}])
    at(polite, 1.25, "error", text="InvalidAccessError: later", errors=[{"name": "InvalidAccessError",
                                                                         "message": "later"}])
    cause = run._first_error()
    assert (cause.peer, cause.error_name, cause.t) == ("impolite", "ValueError", 1.19)


def test_a_case_without_negotiation_never_passes() -> None:
    """No offer or answer crossed the stub, no peer applied a remote description: the
    integrity checks fail (and with them the case), whatever the end states say."""
    run, polite, impolite = make_run("add-video")
    checks = verdict.negotiation_checks(run.ledger, run.timelines(), [])
    assert {c.id for c in checks if not c.ok} == {"negotiation.exchanged", "polite.negotiated", "impolite.negotiated"}
    assert all(c.kind == "integrity" and c.step == len(run.ledger.steps) + 1 for c in checks)
    messages = [{"seq": 1, "kind": "offer", "delivered_t": 0.5}, {"seq": 2, "kind": "answer", "delivered_t": 0.7},
                {"seq": 3, "kind": "offer"}]  # held, never delivered: does not count
    at(polite, 0.6, "remote-description-set", type="offer")
    at(impolite, 0.8, "remote-description-set", type="answer")
    assert all(c.ok for c in verdict.negotiation_checks(run.ledger, run.timelines(), messages))
    assert not verdict.negotiation_checks(run.ledger, run.timelines(), messages[:1])[0].ok


def test_a_disconnected_peer_after_the_last_step_gets_its_bounded_time_to_recover(monkeypatch) -> None:
    """'disconnected' is transient by the spec (one lost consent check): the end state is judged
    once the peer left it, and the dip is kept; a peer still disconnected after the bound is
    judged as it is, and a connection that was never disconnected costs no wait."""
    monkeypatch.setattr("rig.config.RECOVER_TIMEOUT", 0.2)

    async def scenario() -> None:
        run, polite, impolite = make_run()
        polite.connection_state = impolite.connection_state = "connected"
        await asyncio.wait_for(run._recover(), 0.05)
        assert run.ledger.dips == []

        polite.connection_state = "disconnected"
        back = asyncio.get_running_loop().call_later(0.05, polite.record, "connectionstatechange",
                                                     {"state": "connected"})
        await run._recover()
        back.cancel()
        (dip,) = run.ledger.dips
        assert dip.role == "polite" and dip.recovered_t is not None
        snaps = {"polite": {"connectionState": "connected"}, "impolite": {"connectionState": "connected"}}
        (check,) = [c for c in verdict.final_checks(run.ledger, run.timelines(), snaps) if c.id == "polite.connected"]
        assert check.ok and "left that state" in check.detail

        run2, p2, i2 = make_run()
        p2.connection_state, i2.connection_state = "connected", "disconnected"
        await run2._recover()  # the bound passes: no failure here, the final checks judge it
        assert run2.ledger.dips[0].recovered_t is None
        snaps["impolite"] = {"connectionState": "disconnected"}
        (check,) = [c for c in verdict.final_checks(run2.ledger, run2.timelines(), snaps) if c.id == "impolite.connected"]
        assert not check.ok and "still after" in check.detail
    asyncio.run(scenario())
