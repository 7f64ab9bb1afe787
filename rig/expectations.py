"""Known findings: cells that fail for a stated reason in a browser, in aiortc, or in
what the reference negotiator can do.

Each applies to a set of cells as a strict expected failure: the report shows the
reason, and the day such a cell passes it turns into an XPASS that fails the run, so a
finding is never a silent skip. A cell counts as an expected failure only if its failure
text matches the ``signature`` of one of the findings that apply to it; any other
failure fails it. Keep the evidence (error text, versions, minimal trigger) here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatch

from .peers.base import PeerSpec

GLARE_MEDIA = ("glare-add-media", "glare-initial", "glare-repeated", "glare-in-sld-polite", "glare-in-sld-impolite",
               "glare-offer-start", "offer-during-answer", "glare-late-candidates", "glare-candidate-answer")


@dataclass(frozen=True)
class Expectation:
    scenarios: tuple[str, ...]  # globs over scenario names
    polite: str  # globs over peer kinds, "|"-separated
    impolite: str
    reason: str
    #: regex the observed failure must contain: a cell that fails for another reason
    #: is a real failure, not this finding.
    signature: str
    #: the trigger is a race the scenario lets run freely (e.g. stress's free rounds), so
    #: some runs miss it. Such a cell is not an xfail marker: it passes when every
    #: invariant holds and is an expected failure only when it fails with the signature.
    #: A cell that has any strict finding stays strict.
    intermittent: bool = False

    def matches(self, scenario: str, polite: PeerSpec, impolite: PeerSpec) -> bool:
        return (any(fnmatch(scenario, s) for s in self.scenarios)
                and any(fnmatch(polite.kind, k) for k in self.polite.split("|"))
                and any(fnmatch(impolite.kind, k) for k in self.impolite.split("|")))


AIORTC_NO_ROLLBACK = (
    "aiortc 1.16.0 has no rollback: as the polite peer it cannot yield in glare; "
    "setRemoteDescription(offer) in have-local-offer raises InvalidStateError "
    "('Cannot handle offer in signaling state \"have-local-offer\"').")

AIORTC_ANSWER_PENDING = (
    "aiortc 1.16.0 cannot answer an offer while one of its own transceivers awaits negotiation: "
    "setLocalDescription(answer) raises 'ValueError: None is not in list' (rtcpeerconnection.py, "
    "and_direction(t.direction, t._offerDirection) with _offerDirection None). Minimal trigger: an aiortc "
    "connection with an added, never offered track receives an offer and answers it "
    "(fixtures/findings/aiortc_answer_with_pending_track.py).")

CHROMIUM_EXTMAP = (
    "Chromium 156 (seen 156.0.8078.108): after a rollback (implicit or explicit) the rolled-back "
    "m-line keeps its header-extension ids, so when the two offers put different media kinds (or "
    "differently numbered extensions) at the same mid, the polite Chromium rejects the remote offer "
    "('Failed to set remote offer sdp: RTP extension ID reassignment not supported (collision on "
    "active MID 1 ...)') or, on a fresh connection, its own re-offer ('A BUNDLE group contains a "
    "codec collision for header extension id=1'). Firefox 153 accepts both. Minimal trigger without "
    "the rig: fixtures/findings/chromium-rollback-extmap.html.")

FIREFOX_ROLLED_BACK_SOCKETS = (
    "Intermittent, Firefox 153.7.0esr as the polite peer of a fresh pair: after its implicit rollback Firefox "
    "answers with the ICE ufrag and password of the rolled-back offer, and the sockets it gathered for that "
    "offer keep answering connectivity checks until the rollback reaches its socket process (up to a few ms "
    "after setLocalDescription(answer) resolves; then they go silent). A peer that holds those candidates "
    "cannot tell them from the answer's, and if the first pair that answers is one of them it nominates a "
    "pair that dies at once: ICE completes (aiortc's log: 'ICE completed' on the old port), DTLS never does "
    "('DTLS handling timeout'), Firefox stays 'connecting'. Minimal trigger without the rig: "
    "fixtures/findings/firefox_rollback_stale_sockets.py.")
FIREFOX_ROLLED_BACK_SIGNATURE = (
    r"polite peer \(firefox[^)]*\) not connected \(signalingState=stable, connectionState=connecting\)")

KNOWN: tuple[Expectation, ...] = (
    Expectation(
        ("glare-*", "offer-during-answer", "stress-both-sides"), "aiortc", "*", AIORTC_NO_ROLLBACK,
        signature=r"Cannot handle offer in signaling state \"have-local-offer\"",
    ),
    Expectation(
        ("glare-add-remove",), "aiortc", "*",
        "aiortc 1.16.0 has no removeTrack (RTCPeerConnection.removeTrack is missing), so the polite aiortc "
        "peer cannot make the removal this scenario collides.",
        signature=r"aiortc 1\.16\.0 has no removeTrack",
    ),
    Expectation(
        ("glare-ice-restart", "ice-restart"), "aiortc", "*",
        "aiortc 1.16.0 has no restartIce(), so the polite aiortc peer cannot make the ICE restart this "
        "scenario collides.",
        signature=r"aiortc 1\.16\.0 has no restartIce",
    ),
    Expectation(
        GLARE_MEDIA, "chromium", "*", CHROMIUM_EXTMAP,
        signature=r"RTP extension ID reassignment not supported|codec collision for header extension",
    ),
    Expectation(
        ("stress-both-sides",), "chromium", "firefox|aiortc", CHROMIUM_EXTMAP + " In the stress scenario both "
        "sides add audio in the forced round, and the other engine numbers its audio header extensions "
        "differently.",
        signature=r"RTP extension ID reassignment not supported|codec collision for header extension",
    ),
    Expectation(
        ("glare-ice-restart", "ice-restart"), "chromium", "firefox",
        "Firefox 153.7.0esr answers an ICE-restart offer with a=setup:active although it is the DTLS "
        "server of the existing association (the connection was opened by Firefox and answered "
        "'active' by Chromium); an ICE restart keeps the DTLS association, so Chromium 156 rejects the "
        "answer ('Failed to set remote answer sdp: Failed to apply the description for m= section with "
        "mid=\'0\': Failed to set SSL role for the transport'). Glare is not needed: the same happens when "
        "Chromium restarts ICE alone (scenario ice-restart).",
        signature=r"Failed to set SSL role for the transport",
    ),
    Expectation(
        ("glare-ice-restart",), "chromium", "firefox",
        "Same cell, other symptom (whichever comes first): candidates of Chromium's ignored ICE-restart "
        "offer (new ufrag) can trickle in after the answer has reset ignoreOffer; Firefox rejects them "
        "('OperationError: Unknown ufrag (...)') and the reference negotiator reports it, since it cannot "
        "tell them from candidates of the current offer: a limit of the pattern's candidate filtering.",
        signature=r"OperationError: Unknown ufrag",
    ),
    Expectation(
        ("ice-restart",), "firefox", "chromium",
        "Intermittent, Firefox 153.7.0esr restarting ICE as the offerer, Chromium 156 answering (1 in 5 runs in a "
        "full --repeat 5 matrix, 2026-11-26): Chromium can select a pair made of its new local candidate and a "
        "candidate of Firefox's previous ICE generation (its getStats pair: remote port = a candidate Firefox "
        "trickled with the old ufrag; seen in 1 of 30 runs of this cell on an idle machine, where the data still "
        "crossed). Firefox's previous generation still answers connectivity checks, so the pair succeeds; once "
        "Firefox drops that generation the pair carries nothing (Chromium: bytesSent 1782, bytesReceived 0; "
        "Firefox: no selected pair) and Chromium's data-channel message never reaches Firefox within the "
        "exchange bound (30 s), while Firefox's reaches Chromium. The same family as the polite-Firefox finding: "
        "a superseded Firefox ICE generation keeps answering checks. Evidence: "
        "fixtures/findings/evidence/ice-restart_firefox-polite--chromium-impolite.case.json; not reproduced outside "
        "the rig yet (fixtures/findings/firefox_chromium_restart_old_generation.py, 0 of 40 runs).",
        signature=r"stuck at step 'exchange' .*polite peer \(firefox[^)]*\) has not received 'impolite on",
        intermittent=True,
    ),
    Expectation(
        ("candidate-before-offer",), "firefox", "aiortc",
        "Intermittent, aiortc 1.16.0 as the answerer (1 in 5 runs, 2026-11-26): aiortc drops the candidates "
        "that overtake the offer without an error (it logs 'addIceCandidate called without remote description'), "
        "so after the offer and the end-of-candidates it has no remote candidate; it connects only if Firefox's "
        "first connectivity check arrives before aioice gives up ('Components {1} have no candidate pairs', "
        "'ICE failed'; the peer-reflexive candidate came 4 ms later). Minimal trigger: "
        "fixtures/findings/aiortc_candidates_before_offer.py (deterministic between two aiortc connections).",
        signature=r"impolite peer \(aiortc[^)]*\) not connected \(signalingState=stable, connectionState=failed\)",
        intermittent=True,
    ),
    Expectation(
        ("glare-initial",), "firefox", "aiortc",
        FIREFOX_ROLLED_BACK_SOCKETS + " Here aiortc keeps the candidates of the ignored offer that reach it before "
        "any remote description (browsers reject those), checks them as soon as the answer arrives, and "
        "nominates the first pair that answers (seen once in 5 and once in 25 runs, 2026-11-25/26).",
        signature=FIREFOX_ROLLED_BACK_SIGNATURE,
        intermittent=True,
    ),
    Expectation(
        ("glare-candidate-answer",), "firefox", "*",
        FIREFOX_ROLLED_BACK_SOCKETS + " Here the scenario delivers a candidate of the ignored offer around the "
        "answer, as a trickling app would; it carries the answer's ufrag, so the impolite peer accepts it "
        "(seen 1 in 20 runs against Firefox, once against aiortc, 2026-11-25).",
        signature=FIREFOX_ROLLED_BACK_SIGNATURE,
        intermittent=True,
    ),
    Expectation(
        ("offer-during-answer",), "*", "aiortc",
        "aiortc 1.16.0 has no operations chain: the polite peer's re-offer, handed over while "
        "setRemoteDescription(answer) is still running, is applied at once instead of after the answer, "
        "and fails with 'Cannot handle offer in signaling state \"have-local-offer\"'.",
        signature=r"Cannot handle offer in signaling state \"have-local-offer\"",
    ),
    Expectation(
        ("glare-add-remove",), "firefox", "aiortc",
        "aiortc 1.16.0 (issue 686): createOffer resets header-extension ids to aiortc's defaults, so once "
        "Firefox has made an offer on the connection, aiortc's next offer remaps them and Firefox 153 "
        "rejects it ('Remote description attempted to remap RTP extension id 3 from "
        "urn:ietf:params:rtp-hdrext:sdes:mid to ...').",
        signature=r"attempted to remap RTP extension id",
    ),
    Expectation(
        ("failed-first-sld-recovers",), "chromium|aiortc", "aiortc",
        "aiortc 1.16.0: a connection that created a data channel before it answered an offer without an "
        "application m-line replaces its ICE transport when it then offers the channel; the DTLS handshake "
        "fails and the pair never reconnects (Chromium 156 ends 'disconnected', aiortc 'connecting' or 'closed'). "
        "Minimal trigger: fixtures/findings/aiortc_channel_before_answer.py (both connections end 'closed').",
        # the first unmet condition depends on when the impolite peer closes (seen: the polite aiortc
        # peer still lacking the channel), so the impolite peer's closed end state also identifies it
        signature=r"peer \((chromium|aiortc)[^)]*\) not (connected|stable \(signalingState=closed)"
                  r"|impolite peer \(aiortc[^)]*\): signalingState=closed, connectionState=closed",
    ),
    Expectation(
        ("failed-first-sld-recovers",), "firefox", "aiortc",
        "aiortc 1.16.0 (issue 686): Firefox made the first offer, so aiortc's offer of its data channel remaps "
        "the header-extension ids and Firefox 153 rejects it ('Remote description attempted to remap RTP "
        "extension id 3 ...'); behind it, aiortc's data-channel-before-answer bug "
        "(fixtures/findings/aiortc_channel_before_answer.py).",
        signature=r"attempted to remap RTP extension id",
    ),
    Expectation(
        ("failed-sld-recovers", "late-negotiationneeded"), "*", "aiortc", AIORTC_ANSWER_PENDING,
        signature=r"ValueError: None is not in list",
    ),
    Expectation(
        ("stress-both-sides",), "*", "aiortc", AIORTC_ANSWER_PENDING + " In the stress scenario's free "
        "rounds it is a race: it fails only when an offer reaches aiortc between its addTrack and its "
        "own offer (seen with Firefox 153 and Chromium 156 as the polite peer; CI run of 2026-11-25 on "
        "firefox-polite x aiortc-impolite).",
        signature=r"ValueError: None is not in list", intermittent=True,
    ),
    Expectation(
        ("candidate-before-offer",), "*", "chromium",
        "The pattern assumes an ordered signaling channel: a candidate that overtakes its offer reaches "
        "addIceCandidate before any remote description and Chromium rejects it ('InvalidStateError: "
        "... The remote description was null'); no offer is being ignored, so the reference negotiator "
        "rightly reports it.",
        signature=r"The remote description was null",
    ),
    Expectation(
        ("candidate-before-offer",), "*", "firefox",
        "The pattern assumes an ordered signaling channel: a candidate that overtakes its offer reaches "
        "addIceCandidate before any remote description and Firefox rejects it ('InvalidStateError: No "
        "remoteDescription.'); no offer is being ignored, so the reference negotiator rightly reports it.",
        signature=r"No remoteDescription",
    ),
    Expectation(
        ("duplicate-candidate", "dropped-candidate"), "aiortc", "*",
        "aiortc 1.16.0 does not trickle candidates (they are in its SDP), so the polite aiortc peer sends no "
        "candidate message to duplicate or drop.",
        signature=r"no candidate from the polite peer passed the stub",
    ),
    Expectation(
        ("candidate-before-offer",), "aiortc", "*",
        "aiortc 1.16.0 does not trickle candidates (they are in its SDP), so there is no candidate to "
        "reorder when it offers.",
        signature=r"does not hold wait until 1 end-of-candidates",
    ),
)


class ExpectedFinding(AssertionError):
    """Raised when a cell fails exactly as one of its findings says; only this counts as XFAIL."""


def expected_failures(scenario: str, polite: PeerSpec, impolite: PeerSpec) -> list[Expectation]:
    """Every finding that applies to this cell."""
    return [exp for exp in KNOWN if exp.matches(scenario, polite, impolite)]


def strict(exps: list[Expectation]) -> bool:
    """Must the cell fail? Yes if any of its findings is deterministic."""
    return any(not e.intermittent for e in exps)


def reason_of(exps: list[Expectation]) -> str:
    return " | ".join(e.reason for e in exps)


def judge(passed: bool, reason: str, exps: list[Expectation]) -> None:
    """Raise ExpectedFinding or AssertionError for a failed case; return for a pass."""
    if passed:
        return
    hit = [e for e in exps if re.search(e.signature, reason)]
    if hit:
        raise ExpectedFinding(f"{hit[0].reason}\nobserved: {reason}")
    if exps:
        sigs = " or ".join(f"/{e.signature}/" for e in exps)
        raise AssertionError(f"failed, but not with an expected finding ({sigs}):\n{reason}")
    raise AssertionError(reason)
