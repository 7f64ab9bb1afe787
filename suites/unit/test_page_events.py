"""A browser peer's events arrive as marked console.debug messages (fixtures/rig-peer.js): a batch
is recorded in order, an unreadable one is an error of the case, and a page's own debug lines are
not events."""

from __future__ import annotations

import json
from types import SimpleNamespace

from rig.peers.base import PeerSpec
from rig.peers.browser import EVENTS, BrowserPeer


def _peer() -> BrowserPeer:
    return BrowserPeer(PeerSpec("firefox"), "polite", 1001, 0.0, SimpleNamespace(version="153.8.0"), "http://x")


def _msg(text: str, type_: str = "debug") -> SimpleNamespace:
    return SimpleNamespace(type=type_, text=text, location={"url": "http://x/fixtures/rig-peer.js"})


def test_a_batch_is_recorded_in_order_with_the_page_times() -> None:
    peer = _peer()
    batch = [{"type": "signalingstatechange", "pt": 1.5, "detail": {"state": "have-local-offer"}},
             {"type": "signalingstatechange", "pt": 2.25, "detail": {"state": "stable"}}]
    peer._on_console(_msg(EVENTS + json.dumps(batch)))
    assert [(e.type, e.detail["state"], e.detail["pt"]) for e in peer.events] == [
        ("signalingstatechange", "have-local-offer", 1.5), ("signalingstatechange", "stable", 2.25)]
    assert peer.signaling_state == "stable"


def test_an_unreadable_batch_is_an_error_and_other_debug_lines_are_not_events() -> None:
    peer = _peer()
    peer._on_console(_msg(EVENTS + "[{not json"))
    peer._on_console(_msg("the negotiator's own debug line"))
    assert [e.type for e in peer.events] == ["error"]
    assert "unreadable events message" in peer.events[0].detail["text"]
