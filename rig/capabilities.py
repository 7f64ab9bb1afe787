"""What a scenario needs of each peer, and whether the peers have it.

Peers report capabilities they probed at start (on the object, never by version); a
scenario's needs are read off its steps. A cell whose peer lacks one is *unsupported*:
the rig could not even attempt it, so it is neither a pass nor a failure of that peer,
and it runs the day the probe says yes.

Rollback is deliberately not a capability: the pattern requires it, so a peer without it
fails its glare cells and that is a finding (rig.findings, aiortc-no-rollback).
"""

from __future__ import annotations

from .scenarios import AwaitHeld, Burst, Change, Collide, Drop, Duplicate, Hold, Race
from .vocab import CHANGES

#: capability name -> what it means (as the report explains it)
CAPABILITIES = {
    "removeTrack": "RTCPeerConnection.removeTrack()",
    "restartIce": "RTCPeerConnection.restartIce()",
    "trickle": "trickle ICE: candidates sent as separate messages (icecandidate events)",
}

_ACTION_NEEDS = {"remove-track": "removeTrack", "restart-ice": "restartIce"}
assert set(_ACTION_NEEDS) <= set(CHANGES)


def needs(scenario) -> dict[str, set[str]]:
    """The capabilities each role must have for ``scenario``'s steps to be possible."""

    out: dict[str, set[str]] = {"polite": set(), "impolite": set()}

    def action(role: str, name: str) -> None:
        if name in _ACTION_NEEDS:
            out[role].add(_ACTION_NEEDS[name])

    for s in scenario.steps:
        if isinstance(s, Change):
            action(s.who, s.action)
        elif isinstance(s, Collide | Burst):
            action("polite", s.polite)
            action("impolite", s.impolite)
            if isinstance(s, Collide) and s.variant in ("late-candidates", "answer-after-candidate"):
                out["polite"].add("trickle")  # the variant holds and reorders the polite peer's candidates
        elif isinstance(s, Race):
            action(s.first, s.first_action)
            action(s.second, s.second_action)
        elif isinstance(s, Duplicate | Drop | Hold | AwaitHeld) and s.kind in ("candidate", "end-of-candidates"):
            out[s.sender].add("trickle")
    return out


def missing(scenario, capabilities: dict[str, dict[str, bool]]) -> dict[str, list[str]]:
    """Per role, the needed capabilities its peer's probe did not report."""
    return {role: sorted(c for c in need if not capabilities.get(role, {}).get(c))
            for role, need in needs(scenario).items() if any(not capabilities.get(role, {}).get(c) for c in need)}
