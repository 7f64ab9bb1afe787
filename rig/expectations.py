"""Known findings: cells that fail for a stated reason in a browser or aiortc.

Each is applied as a strict expected failure, so the report shows the reason and the
day the cell passes it turns into an XPASS that fails the run: a finding is never a
silent skip. Keep the evidence (error text, versions, the minimal trigger) with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatch

from .peers.base import PeerSpec


@dataclass(frozen=True)
class Expectation:
    scenario: str  # glob over scenario names
    polite: str  # glob over peer kinds
    impolite: str
    reason: str
    #: regex the observed failure must contain: a cell that fails for another reason
    #: is a real failure, not this finding.
    signature: str

    def matches(self, scenario: str, polite: PeerSpec, impolite: PeerSpec) -> bool:
        return (fnmatch(scenario, self.scenario) and fnmatch(polite.kind, self.polite)
                and fnmatch(impolite.kind, self.impolite))


KNOWN: tuple[Expectation, ...] = (
    Expectation(
        "glare-*", "aiortc", "*",
        "aiortc 1.16.0 has no rollback: as the polite peer it cannot yield in glare; "
        "setRemoteDescription(offer) in have-local-offer raises InvalidStateError "
        "('Cannot handle offer in signaling state \"have-local-offer\"').",
        signature=r"Cannot handle offer in signaling state \"have-local-offer\"",
    ),
    Expectation(
        "glare-*", "chromium", "*",
        "Chromium 156 (seen 156.0.8078.108): after a rollback (implicit or explicit) the rolled-back "
        "m-line keeps its header-extension ids, so when the two offers put different media kinds at the "
        "same mid, the polite Chromium rejects the remote offer ('Failed to set remote offer sdp: RTP "
        "extension ID reassignment not supported (collision on active MID 1 ...)') or, on a fresh "
        "connection, its own re-offer ('A BUNDLE group contains a codec collision for header extension "
        "id=1'). Firefox 153 accepts both. Minimal trigger without the rig: "
        "fixtures/findings/chromium-rollback-extmap.html.",
        signature=r"RTP extension ID reassignment not supported|codec collision for header extension",
    ),
)


class ExpectedFinding(AssertionError):
    """Raised when a cell fails exactly as its expectation says; only this counts as XFAIL."""


def expected_failure(scenario: str, polite: PeerSpec, impolite: PeerSpec) -> Expectation | None:
    """The stated expectation for this cell, or None."""
    for exp in KNOWN:
        if exp.matches(scenario, polite, impolite):
            return exp
    return None


def judge(passed: bool, reason: str, exp: Expectation | None) -> None:
    """Raise ExpectedFinding or AssertionError for a failed case; return for a pass."""
    if passed:
        return
    if exp is not None and re.search(exp.signature, reason):
        raise ExpectedFinding(reason)
    if exp is not None:
        raise AssertionError(f"failed, but not with the expected finding /{exp.signature}/:\n{reason}")
    raise AssertionError(reason)
