"""The verdict logic of rig.case on recorded events, with fake peers (no browser): a
glare case is only proven when the peers' own events show the collision resolved."""

from __future__ import annotations

import asyncio

import pytest

from rig import scenarios
from rig.case import CaseRun
from rig.peers.base import Peer, PeerSpec


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


def collided(run: CaseRun, released_t: float = 1.0) -> None:
    run.collisions.append({"index": len(run.collisions) + 1, "held": [5, 6], "released_t": released_t})


def test_glare_is_observed_only_with_rollback_ignore_and_reoffer() -> None:
    run, polite, impolite = make_run()
    collided(run)
    at(polite, 1.1, "rollback", how="implicit")
    at(impolite, 1.1, "offer-ignored", seq=5, state="have-local-offer")
    at(polite, 1.3, "offer-made")
    checks, glare = run.glare_checks()
    assert glare["forced"] and glare["observed"]
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


@pytest.mark.parametrize("missing", ["rollback", "offer-ignored", "offer-made"])
def test_glare_without_one_proof_is_not_observed(missing: str) -> None:
    run, polite, impolite = make_run()
    collided(run)
    if missing != "rollback":
        at(polite, 1.1, "rollback")
    if missing != "offer-ignored":
        at(impolite, 1.1, "offer-ignored", seq=5)
    if missing != "offer-made":
        at(polite, 1.3, "offer-made")
    checks, glare = run.glare_checks()
    assert glare["forced"] and not glare["observed"]
    assert any(not c.ok for c in checks)


def test_proof_before_the_release_does_not_count() -> None:
    run, polite, impolite = make_run()
    at(polite, 0.5, "rollback")
    at(impolite, 0.5, "offer-ignored")
    at(polite, 0.6, "offer-made")
    collided(run, released_t=1.0)
    _, glare = run.glare_checks()
    assert not glare["observed"]


def test_each_collision_needs_its_own_proof() -> None:
    run, polite, impolite = make_run("glare-repeated")
    collided(run, 1.0)
    at(polite, 1.1, "rollback")
    at(impolite, 1.1, "offer-ignored")
    at(polite, 1.2, "offer-made")
    collided(run, 2.0)  # second collision: nothing happened after it
    checks, glare = run.glare_checks()
    assert glare["collisions"] == 2 and not glare["observed"]
    assert [c.name for c in checks if not c.ok][0].startswith("collision 2")


def test_roles_must_not_be_swapped() -> None:
    run, polite, impolite = make_run()
    at(polite, 1.0, "offer-ignored")  # a polite peer ignoring an offer is wrong
    at(impolite, 1.0, "rollback")  # an impolite peer rolling back is wrong
    checks, _ = run.glare_checks()
    bad = {c.name for c in checks if not c.ok}
    assert "polite peer never ignores an offer" in bad and "impolite peer never rolls back" in bad


def snap(state="stable", conn="connected", received=(), transceivers=(), channels=()) -> dict:
    return {"signalingState": state, "connectionState": conn, "received": list(received),
            "transceivers": list(transceivers), "channels": list(channels)}


def test_final_checks_fail_on_unapplied_change_and_errors() -> None:
    run, polite, impolite = make_run()
    run.expect_media["impolite"]["video"] = 1
    run.own_media["polite"] = 1
    at(impolite, 2.0, "error", text="InvalidStateError: boom")
    checks = run.final_checks({
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
    run.expect_media["impolite"]["video"] = 1
    run.own_media["polite"] = 1
    run.expect_channels.add("rig-1")
    run.exchanged = {"polite": ["p"], "impolite": ["i"]}
    ch = {"label": "rig-1", "readyState": "open"}
    checks = run.final_checks({
        "polite": snap(transceivers=[{"sending": True, "currentDirection": "sendrecv"}],
                       channels=[{**ch, "received": ["i"]}]),
        "impolite": snap(received=[{"kind": "video", "framesDecoded": 3}], channels=[{**ch, "received": ["p"]}],
                         transceivers=[{"sending": False, "currentDirection": "recvonly"}]),
    })
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_wait_until_fails_fast_on_a_peer_error_and_times_out_with_states() -> None:
    async def scenario() -> None:
        run, polite, impolite = make_run()
        at(impolite, 0.1, "error", source="console.error", text="TypeError: x is undefined")
        with pytest.raises(Exception, match="impolite peer .* reported an error .*TypeError"):
            await run.wait_until(lambda: "never", step="settle", timeout=5)
        run2, p2, _ = make_run()
        with pytest.raises(Exception, match=r"stuck at step 'settle' after 0 s: never met; polite peer"):
            await run2.wait_until(lambda: "never met", step="settle", timeout=0.05)
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
