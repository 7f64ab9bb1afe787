"""Known findings as data: the catalogue the verdict matches a case's first failure against.

A finding is a bug of a browser or of aiortc (or a stated limit of the pattern) that the
rig found, with its evidence. It covers a set of cells; it names the peer role and the
operation its error happens in, the error (name and message pattern) or, for the few
whose symptom is a state, that end state; the versions it was seen on; its upstream
report where one exists. How a case is matched against it is rig.verdict's;
docs/findings.md is made from it by rig.findings_doc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatch

from .model import Cause, PeerInfo
from .versions import in_range

GLARE_MEDIA = ("glare-add-media", "glare-initial", "glare-repeated", "glare-in-sld-polite", "glare-in-sld-impolite",
               "glare-offer-start", "offer-during-answer", "glare-late-candidates", "glare-candidate-answer")


@dataclass(frozen=True)
class Cells:
    """Cells a finding covers: globs over scenario names; ``|``-separated globs over peer kinds."""

    scenarios: tuple[str, ...]
    polite: str = "*"
    impolite: str = "*"
    #: the trigger is a race the scenario lets run, so some runs miss it: a pass there is a pass
    intermittent: bool = False

    def covers(self, scenario: str, polite_kind: str, impolite_kind: str) -> bool:
        return (any(fnmatch(scenario, s) for s in self.scenarios)
                and any(fnmatch(polite_kind, k) for k in self.polite.split("|"))
                and any(fnmatch(impolite_kind, k) for k in self.impolite.split("|")))


@dataclass(frozen=True)
class Seen:
    """Exact builds a finding was first and last seen on; it covers the release lines between
    (a Chromium or Firefox major, an aiortc minor: rig.versions.LINE_PARTS)."""

    first: str
    last: str = ""

    def __post_init__(self) -> None:
        if not self.last:
            object.__setattr__(self, "last", self.first)

    def covers(self, kind: str, version: str) -> bool:
        return in_range(version, self.first, self.last, kind)

    def __str__(self) -> str:
        return self.first if self.first == self.last else f"{self.first} .. {self.last}"


@dataclass(frozen=True)
class Upstream:
    """A public report of a finding: where it is, and one line saying what it reports."""

    url: str
    title: str

    def __post_init__(self) -> None:
        if not self.url.startswith("https://") or not self.title or "\n" in self.title:
            raise ValueError(f"upstream report {self.url!r}: give an https URL and a one-line title")

    def __str__(self) -> str:
        return f"{self.url} {self.title}"


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    #: whose bug it is: chromium, firefox, aiortc, or "pattern" (a stated limit of the pattern)
    engine: str
    cells: tuple[Cells, ...]
    #: the role of the peer the first failure happens on (None: either side)
    peer: str | None
    #: regex over the failing operation: an API method, or the step a wait was stuck in
    operation: str
    detail: str
    #: the error: its name (exact, "" for any) and a regex its message must contain
    error: str = ""
    message: str = ""
    #: or the end state the peer was stuck in (regex over "signalingState=..., connectionState=...")
    end_state: str = ""
    #: per engine, the ranges of exact builds the finding was seen on (first, last); it applies on
    #: the release lines from first to last (rig.versions.in_range), elsewhere the cell runs strict
    seen: dict[str, tuple[Seen, ...]] = field(default_factory=dict)
    #: per scenario, the ranges where that scenario's boundary differs from ``seen``'s (a bisect of
    #: that scenario measured it): scenario -> engine -> ranges; an engine it does not name keeps
    #: ``seen``'s
    seen_in: dict[str, dict[str, tuple[Seen, ...]]] = field(default_factory=dict)
    #: public reports of it (a browser's or aiortc's tracker, a library that hit it); () when none
    #: was found, and then its minimal trigger is what to file
    upstream: tuple[Upstream, ...] = ()
    #: minimal trigger outside the rig, and kept evidence (paths in the repository)
    trigger: str = ""
    evidence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.message or self.error) == bool(self.end_state):
            raise ValueError(f"finding {self.id}: give an error (name/message) or an end state, not both")
        for pattern in (self.operation, self.message, self.end_state):
            re.compile(pattern)
        for scenario in self.seen_in:
            if not any(any(fnmatch(scenario, s) for s in c.scenarios) for c in self.cells):
                raise ValueError(f"finding {self.id}: a range for {scenario}, which none of its cells covers")

    def cell(self, scenario: str, polite: PeerInfo, impolite: PeerInfo) -> Cells | None:
        """The group of cells this finding has for the cell, on the versions it was seen on.

        Each peer must be on a version the finding was seen on for its engine, except that in
        a pair of one engine (chromium x chromium) the range constrains only the peer the
        finding's failure happens on: the other is the counterpart whose version the finding
        does not state (a polite Chromium 156 fails against an impolite Chromium 110 too)."""
        if not all(self.seen_on(p, scenario) for p in self.dated(polite, impolite)):
            return None
        return self.covers(scenario, polite, impolite)

    def dated(self, polite: PeerInfo, impolite: PeerInfo) -> list[PeerInfo]:
        """The peers whose versions the finding's ranges constrain (see :meth:`cell`)."""
        if polite.kind == impolite.kind and self.peer is not None:
            return [polite if self.peer == "polite" else impolite]
        return [polite, impolite]

    def covers(self, scenario: str, polite: PeerInfo, impolite: PeerInfo) -> Cells | None:
        """The group of cells this finding has for the cell, whatever the versions."""
        return next((c for c in self.cells if c.covers(scenario, polite.kind, impolite.kind)), None)

    def seen_for(self, scenario: str = "") -> dict[str, tuple[Seen, ...]]:
        """Per engine, the ranges that hold in ``scenario``: its own where ``seen_in`` gives them,
        the finding's general ones otherwise."""
        return {**self.seen, **self.seen_in.get(scenario, {})}

    def seen_on(self, peer: PeerInfo, scenario: str = "") -> bool:
        """Was the finding seen on this peer's version in ``scenario`` (true for an engine it
        states no range for)?"""
        ranges = self.seen_for(scenario).get(peer.kind)
        return not ranges or any(r.covers(peer.kind, peer.version or "") for r in ranges)

    def matches(self, cause: Cause) -> bool:
        """Is ``cause`` this finding's first failure?"""
        if self.peer is not None and cause.peer != self.peer:
            return False
        if not re.fullmatch(self.operation, cause.operation or ""):
            return False
        if self.end_state:
            # a finding of either peer reads both peers' states, which a timeout's message lists
            where = cause.state_text() + ("; " + cause.message if self.peer is None else "")
            return cause.kind in ("timeout", "check") and bool(re.search(self.end_state, where))
        return cause.kind == "error" and self.matches_error(cause.error_name, cause.message)

    def matches_error(self, name: str, message: str) -> bool:
        if not (self.error or self.message):
            return False
        return (not self.error or name == self.error) and (not self.message or bool(re.search(self.message, message)))

    def expects(self) -> str:
        """The first failure this finding stands for, in words."""
        who = f"the {self.peer} peer" if self.peer else "either peer"
        if self.end_state:
            return f"{who} stuck in {self.operation} with {self.end_state}"
        err = f"{self.error + ' ' if self.error else ''}/{self.message}/" if self.message else self.error
        return f"{err} from {self.operation} on {who}"

    @property
    def upstream_text(self) -> str:
        """The upstream reports as a run records them (FindingInfo.upstream): one "URL title" a line."""
        return "\n".join(map(str, self.upstream))

    def ranges(self, sep: str = "; ", scenario: str = "") -> str:
        """The versions it was seen on in ``scenario`` (its general ranges without one), per
        engine ("" when it states none)."""
        return sep.join(f"{k} {', '.join(map(str, v))}" for k, v in sorted(self.seen_for(scenario).items()))


AIORTC = "https://github.com/aiortc/aiortc"

FINDINGS: tuple[Finding, ...] = (
    Finding(
        "aiortc-no-rollback", "aiortc has no rollback: a polite aiortc peer cannot yield in glare", "aiortc",
        (Cells(("glare-*", "offer-during-answer*", "stress-both-sides"), "aiortc", "*"),),
        peer="polite", operation="setRemoteDescription",
        error="InvalidStateError", message=r"Cannot handle offer in signaling state \"have-local-offer\"",
        detail="aiortc 1.14.0 and 1.16.0 have no rollback (a description of type 'rollback' is parsed as SDP and nothing restores "
               "the signaling state): as the polite peer it cannot yield in glare, and setRemoteDescription(offer) in "
               "have-local-offer raises InvalidStateError ('Cannot handle offer in signaling state "
               "\"have-local-offer\"').",
        seen={"aiortc": (Seen("1.14.0", "1.16.0"),)},
        upstream=(Upstream(f"{AIORTC}/issues/975", "aiortc issue 975: Does aiortc support perfect negotiation? (open)"),),
    ),
    Finding(
        "chromium-rollback-extmap", "Chromium keeps a rolled-back m-line's header-extension ids", "chromium",
        (Cells(GLARE_MEDIA, "chromium", "*"), Cells(("stress-both-sides",), "chromium", "firefox|aiortc")),
        peer="polite", operation="setRemoteDescription|setLocalDescription",
        message=r"RTP extension ID reassignment not supported|codec collision for header extension",
        detail="Chromium 148 to 156 (seen 148.0.7778.0, 149.0.7827.0, 150.0.7871.100, 153.0.8010.0, 156.0.8078.108 "
               "and .114; 147.0.7727.0 and older pass these cells, found by rig bisect): after a rollback (implicit or explicit) the rolled-back "
               "m-line keeps its header-extension ids, so when the two offers put different media kinds (or "
               "differently numbered extensions) at the same mid, the polite Chromium rejects the remote offer "
               "('Failed to set remote offer sdp: RTP extension ID reassignment not supported (collision on active "
               "MID 1 ...)') or, on a fresh connection, its own re-offer ('A BUNDLE group contains a codec collision "
               "for header extension id=1'). Firefox 153 accepts both. The collisions are the first on their "
               "connection to carry media; in stress-both-sides both sides add audio in the forced round, and the "
               "other engine numbers its audio header extensions differently. glare-initial's boundary is one "
               "version later: a polite Chromium 148.0.7778.0 passes it against Firefox 153.8.0 (3 of 3 runs), "
               "149.0.7827.0, 150.0.7871.100 and 156.0.8078.129 fail it, each 3 of 3, on their re-offer after the "
               "rollback ('Failed to set local offer sdp: A BUNDLE group contains a codec collision for header "
               "extension id=1'), found by rig bisect glare-initial --polite chromium@147..156 --impolite "
               "firefox@153.",
        seen={"chromium": (Seen("148.0.7778.0", "156.0.8078.114"),)},
        seen_in={"glare-initial": {"chromium": (Seen("149.0.7827.0", "156.0.8078.129"),)}},
        upstream=(Upstream("https://issues.webrtc.org/issues/503013383",
                           "libwebrtc issue 503013383: RTP header-extension id reassignment rejected since Chrome 148"),
                  Upstream("https://github.com/versatica/mediasoup-client/issues/368",
                           "mediasoup-client issue 368: \"RTP extension ID reassignment not supported\" in Chrome "
                           "148+, a libwebrtc regression")),
        trigger="fixtures/findings/chromium-rollback-extmap.html",
    ),
    Finding(
        "chromium-impolite-extmap-renumbered", "Chromium 147-148 reject a re-offer that renumbers a header extension",
        "chromium",
        (Cells(GLARE_MEDIA + ("stress-both-sides",), "firefox", "chromium"),),
        peer="impolite", operation="setRemoteDescription",
        message=r"RTP extension ID reassignment",
        detail="Chromium 147 and 148 as the impolite peer (seen 147.0.7727.0 and 148.0.7778.0; 143.0.7499.0 and "
               "149.0.7827.0 and later accept it, found by rig bisect): after a collision the impolite Chromium "
               "completes its own offer, the polite Firefox rolls back, answers it and offers its own change again; "
               "that re-offer numbers Firefox's audio header extensions its own way, so an id Chromium's offer had "
               "given to abs-send-time now names csrc-audio-level, and Chromium rejects it ('Failed to set remote "
               "offer sdp: Failed to update RTP header extensions for m-section with mid=...: RTP extension ID "
               "reassignment from http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time to "
               "urn:ietf:params:rtp-hdrext:csrc-audio-level for ID 2'; 148: 'RTP extension ID reassignment not "
               "supported (id=2, ...)'). Firefox 140 and 153 both send such re-offers; a polite Chromium, whose "
               "re-offer keeps the ids, does not trigger it.",
        seen={"chromium": (Seen("147.0.7727.0", "148.0.7778.0"),), "firefox": (Seen("140.12.0", "153.8.0"),)},
    ),
    Finding(
        "firefox-restart-answer-setup-active", "Firefox answers an ICE restart with a=setup:active as DTLS server",
        "firefox",
        (Cells(("glare-ice-restart", "ice-restart"), "chromium", "firefox"),),
        peer="polite", operation="setRemoteDescription",
        message=r"Failed to set SSL role for the transport",
        detail="Firefox 153 answers an ICE-restart offer with a=setup:active although it is the DTLS server of the "
               "existing association (the connection was opened by Firefox and answered 'active' by Chromium); an "
               "ICE restart keeps the DTLS association, so Chromium 156 rejects the answer ('Failed to set remote "
               "answer sdp: Failed to apply the description for m= section with mid='0': Failed to set SSL role for "
               "the transport'). Glare is not needed: the same happens when Chromium restarts ICE alone (ice-restart).",
        seen={"firefox": (Seen("153.7.0", "153.8.0"),), "chromium": (Seen("110.0.5478.0", "156.0.8078.114"),)},
        upstream=(Upstream("https://bugzilla.mozilla.org/show_bug.cgi?id=1329028",
                           "Bugzilla 1329028: Firefox's DTLS role (a=setup) in answers to an ICE restart"),
                  Upstream("https://bugzilla.mozilla.org/show_bug.cgi?id=1240897",
                           "Bugzilla 1240897: Firefox's DTLS role (a=setup) in a renegotiation's answer")),
    ),
    Finding(
        "pattern-late-ignored-candidates", "Candidates of an ignored offer that arrive after the answer are rejected",
        "pattern",
        (Cells(("glare-ice-restart",), "chromium", "firefox"),
         Cells(("glare-candidate-answer",), "chromium", "firefox", intermittent=True)),
        peer="impolite", operation="addIceCandidate",
        error="OperationError", message=r"Unknown ufrag",
        detail="Same cell as firefox-restart-answer-setup-active, other symptom (whichever comes first): candidates "
               "of Chromium's ignored ICE-restart offer (new ufrag) can trickle in after the answer has reset "
               "ignoreOffer; Firefox rejects them ('OperationError: Unknown ufrag (...)') and the reference "
               "negotiator reports it, since it cannot tell them from candidates of the current offer: a limit of "
               "the pattern's candidate filtering. Seen too in glare-candidate-answer with a polite Chromium (2026-11-30): "
               "the candidates of Chromium's rolled-back offer, held with its answer, carry that offer's ufrag and reach "
               "Firefox after the answer; there it follows chromium-rollback-extmap, which is the first failure.",
        seen={"firefox": (Seen("153.7.0", "153.8.0"),)},
    ),
    Finding(
        "firefox-restart-old-generation", "Chromium selects a pair on Firefox's previous ICE generation", "firefox",
        (Cells(("ice-restart", "glare-ice-restart"), "firefox", "chromium", intermittent=True),),
        peer="polite", operation="exchange", end_state=r"connectionState=connected",
        detail="Firefox 153 restarting ICE as the offerer, Chromium 156 answering (1 in 5 runs in a full --repeat 5 "
               "matrix, 2026-11-26): Chromium can select a pair made of its new local candidate and a candidate of "
               "Firefox's previous ICE generation. That generation still answers connectivity checks, so the pair "
               "succeeds; once Firefox drops it the pair carries nothing (Chromium: bytesReceived 0; Firefox: no "
               "selected pair) and Chromium's data-channel message never reaches Firefox within the exchange bound, "
               "while both stay 'connected'. Not reproduced outside the rig yet "
               "(fixtures/findings/firefox_chromium_restart_old_generation.py, 0 of 40 runs). In glare-ice-restart "
               "(the restart rolled back and offered again; 1 of 6 in a 1,026-case soak, 2026-12-01) Chromium's pair "
               "used the candidate Firefox trickled two generations back, before its rolled-back restart offer.",
        seen={"firefox": (Seen("153.7.0", "153.8.0"),), "chromium": (Seen("156.0.8078.108", "156.0.8078.114"),)},
        trigger="fixtures/findings/firefox_chromium_restart_old_generation.py",
        evidence=("fixtures/findings/evidence/firefox-restart-old-generation.case.json",
                  "fixtures/findings/evidence/firefox-restart-old-generation.glare-ice-restart.case.json"),
    ),
    Finding(
        "aiortc-early-candidates-dropped", "aiortc drops candidates that arrive before the offer", "aiortc",
        (Cells(("candidate-before-offer",), "firefox", "aiortc", intermittent=True),),
        peer=None, operation="settle",
        end_state=r"impolite peer \(aiortc [^)]*\): signalingState=[\w-]+, connectionState=failed",
        detail="aiortc 1.16.0 as the answerer (1 in 5 runs, 2026-11-26): aiortc drops the candidates that overtake "
               "the offer without an error (it logs 'addIceCandidate called without remote description'), so after "
               "the offer and the end-of-candidates it has no remote candidate; it connects only if Firefox's first "
               "connectivity check arrives before aioice gives up ('Components {1} have no candidate pairs', "
               "'ICE failed'). The aiortc peer ends 'failed'; Firefox ends 'connected' or still 'connecting', so "
               "the rig may report either peer first (both seen, 2026-11-26 and 2026-11-30): the finding names the "
               "failed aiortc peer's state wherever the timeout lists it.",
        seen={"aiortc": (Seen("1.16.0"),)},
        trigger="fixtures/findings/aiortc_candidates_before_offer.py",
        evidence=("fixtures/findings/evidence/aiortc-early-candidates-dropped.aiortc.log",
                  "fixtures/findings/evidence/aiortc-early-candidates-dropped.polite-first.case.json"),
    ),
    Finding(
        "chromium-rollback-before-networks",
        "Chromium never gathers for an answer after rolling back before its first network list",
        "chromium",
        (Cells(("glare-datachannel",), "chromium", "aiortc", intermittent=True),),
        peer="polite", operation="settle", end_state=r"signalingState=stable, connectionState=new",
        detail="Chromium 156: a connection in a fresh renderer whose offer is rolled back (here implicitly, by the "
               "other peer's offer in glare) before the renderer has received its first network list from the "
               "browser process makes an answer that never gathers: no ICE candidate at all, iceGatheringState "
               "stays 'gathering', and with the other peer's candidates in hand the pair stays 'new'. A new offer "
               "on that connection, even after restartIce(), gathers nothing either; a new connection in the same "
               "page gathers at once. The minimal trigger rolls back at once after setLocalDescription(offer): "
               "22 of 50 answers without a candidate on the host (49 of 50 with aiortc's recorded offer), also "
               "with the full browser inside a network namespace; 0 of 100 without the rollback. Chromium's log "
               "shows the order in every failure: the offer starts getting ports while still waiting for the "
               "network list, the rollback, the list, the answer starts getting ports, then nothing. Seen once in "
               "the rig (2026-12-06, fresh-clone CI: the remote-browser test's Chromium in a network namespace, "
               "polite against aiortc): its rollback came 62 ms after its offer, with no candidate trickled for "
               "the offer by then, where on an idle machine the first one comes 1-13 ms after it, so the list had "
               "not arrived; the trigger did not fail at 10-60 ms on an idle machine (0 of 420).",
        seen={"chromium": (Seen("156.0.8078.114"),)},
        trigger="fixtures/findings/chromium_rollback_before_networks.py",
        evidence=("fixtures/findings/evidence/chromium-rollback-before-networks.case.json",
                  "fixtures/findings/evidence/chromium-rollback-before-networks.aiortc.log"),
    ),
    Finding(
        "firefox-rolled-back-sockets", "Firefox's rolled-back offer keeps live sockets with the answer's credentials",
        "firefox",
        (Cells(("glare-initial",), "firefox", "aiortc", intermittent=True),
         Cells(("glare-datachannel",), "firefox", "aiortc", intermittent=True),
         Cells(("glare-late-candidates",), "firefox", "aiortc", intermittent=True),
         Cells(("glare-candidate-answer",), "firefox", "*", intermittent=True)),
        peer="polite", operation="settle", end_state=r"signalingState=stable, connectionState=connecting",
        detail="Firefox 153 as the polite peer of a fresh pair: after its implicit rollback Firefox answers with the "
               "ICE ufrag and password of the rolled-back offer, and the sockets it gathered for that offer keep "
               "answering connectivity checks until the rollback reaches its socket process (up to a few ms after "
               "setLocalDescription(answer) resolves). A peer that holds those candidates cannot tell them from the "
               "answer's, and if the first pair that answers is one of them it nominates a pair that dies at once: "
               "ICE completes, DTLS never does, Firefox stays 'connecting'. In glare-initial aiortc keeps the "
               "candidates of the ignored offer that reach it before any remote description; in "
               "glare-candidate-answer the scenario delivers one around the answer, as a trickling app would. "
               "glare-datachannel is the same fresh-pair glare with data channels: seen once against aiortc on "
               "2026-12-01 (the workflow test's shard run; evidence kept), the same end state. glare-late-candidates "
               "holds the rolled-back offer's candidates and delivers them after the answer, which carries the same "
               "ufrag: seen once against aiortc on 2026-12-06 (a default matrix; aiortc's check to one of those "
               "candidates succeeded, ICE completed on it, DTLS timed out; evidence kept).",
        seen={"firefox": (Seen("153.7.0", "153.8.0"),)},
        trigger="fixtures/findings/firefox_rollback_stale_sockets.py",
        evidence=("fixtures/findings/evidence/firefox-rolled-back-sockets.case.json",
                  "fixtures/findings/evidence/glare-initial_firefox-polite--aiortc-impolite.aiortc.log",
                  "fixtures/findings/evidence/glare-initial_firefox-polite--aiortc-impolite.firefox-mtransport.log",
                  "fixtures/findings/evidence/firefox-rolled-back-sockets.glare-datachannel.case.json",
                  "fixtures/findings/evidence/firefox-rolled-back-sockets.glare-datachannel.aiortc.log",
                  "fixtures/findings/evidence/firefox-rolled-back-sockets.glare-late-candidates.case.json",
                  "fixtures/findings/evidence/firefox-rolled-back-sockets.glare-late-candidates.aiortc.log"),
    ),
    Finding(
        "aiortc-no-operations-chain", "aiortc has no operations chain: overlapping descriptions interleave", "aiortc",
        (Cells(("offer-during-answer*",), "*", "aiortc"),),
        peer="impolite", operation="setRemoteDescription",
        error="InvalidStateError", message=r"Cannot handle offer in signaling state \"have-local-offer\"",
        detail="aiortc 1.16.0 has no operations chain: the polite peer's re-offer, handed over while "
               "setRemoteDescription(answer) is still running, is applied at once instead of after the answer, and "
               "fails with 'Cannot handle offer in signaling state \"have-local-offer\"'.",
        seen={"aiortc": (Seen("1.16.0"),)},
    ),
    Finding(
        "aiortc-extmap-remap", "aiortc's offers reset header-extension ids (aiortc issue 686)", "aiortc",
        (Cells(("glare-add-remove", "failed-first-sld-recovers"), "firefox", "aiortc"),),
        peer="polite", operation="setRemoteDescription",
        message=r"attempted to remap RTP extension id",
        detail="aiortc 1.16.0: createOffer resets header-extension ids to aiortc's defaults, so once Firefox has made "
               "an offer on the connection, aiortc's next offer remaps them and Firefox 153 rejects it ('Remote "
               "description attempted to remap RTP extension id 3 from urn:ietf:params:rtp-hdrext:sdes:mid to "
               "...'). In failed-first-sld-recovers it is aiortc's offer of its data channel, behind which lies "
               "aiortc-channel-before-answer.",
        seen={"aiortc": (Seen("1.16.0"),), "firefox": (Seen("153.7.0", "153.8.0"),)},
        upstream=(Upstream(f"{AIORTC}/issues/686",
                           "aiortc issue 686: header-extension ids remapped in a later offer (closed as stale)"),),
    ),
    Finding(
        "aiortc-payload-type-remap", "aiortc's re-offers renumber payload types its receivers keep: media stops",
        "aiortc",
        (Cells(("glare-repeated", "glare-repeated-av"), "firefox", "aiortc"),),
        peer=None, operation="settle",
        end_state=r"impolite peer \(aiortc [^)]*\) receives \d+ of \d+ expected video track\(s\) with media since "
                  r"its last negotiation(?! \([^)]*packets received since its last negotiation, no frame decoded)",
        detail="aiortc 1.16.0: once it has answered a video m-line with Firefox's payload types (VP8 as 120), "
               "aiortc's next offer lists that m-line with its own numbers (VP8 as 97). Firefox accepts and sends 97, "
               "but aiortc's RtpReceiver registered its payload types once, when it started, so aiortc's RtpRouter "
               "discards every later packet of that track: both sides stay stable and connected and the track gets "
               "no more frames (in glare-repeated, Firefox sent 288 packets on mid 2, aiortc received 7). The "
               "payload-type twin of aiortc-extmap-remap; the rig sees it since a settle waits for media flowing "
               "after the last negotiation (2026-12-01).",
        seen={"aiortc": (Seen("1.16.0"),), "firefox": (Seen("153.8.0"),)},
        trigger="fixtures/findings/aiortc_payload_type_remap.py",
        evidence=("fixtures/findings/evidence/aiortc-payload-type-remap.case.json",),
    ),
    Finding(
        "aiortc-unrepaired-packet-loss", "aiortc's video stalls for good after one packet lost and not retransmitted",
        "aiortc",
        (Cells(("glare-add-media-av", "glare-in-sld-polite-av", "glare-in-sld-impolite-av", "glare-offer-start-av",
                "glare-repeated-av"), "chromium", "aiortc", intermittent=True),),
        peer=None, operation="settle",
        end_state=r"impolite peer \(aiortc [^)]*\) receives \d+ of \d+ expected video track\(s\) with media since "
                  r"its last negotiation \([^)]*mid \w+: \d{2,} packets received since its last negotiation, no frame "
                  r"decoded",
        detail="aiortc 1.16.0: when one RTP packet of a video track is lost and its retransmission does not arrive, "
               "the receiver's jitter buffer waits for that sequence number until 512 later packets have come (25-65 "
               "s at the rig's frame rates); aiortc sends one NACK for the gap, never repeats it, and sends no "
               "keyframe request (PLI) before that overflow. Packets keep arriving and are counted, no frame comes "
               "out. On loopback a loss needs load (a starved event loop); Chromium 156 did not answer NACKs that "
               "fell within about 0.1-0.2 s of it applying a description, and aiortc cannot route retransmissions of "
               "an m-line added by renegotiation at all (it learns an RTX SSRC only while one receiver has that "
               "payload type). Its cells are the audio+video scenarios in which a polite Chromium keeps sending "
               "aiortc video on mid 1 while it applies its collided offer, the rollback, its answer and its re-offer, "
               "and then sends a new video m-line; offer-during-answer-av has that shape too but "
               "aiortc-no-operations-chain ends every run of it before a settle could see a stall. Seen twice, both "
               "times in a fresh-clone CI run under load and with mid 1 stopping during collision 1: "
               "glare-repeated-av (2026-12-06, Chromium 156.0.8078.114; 144 packets, 9 frames) and "
               "glare-in-sld-impolite-av (2026-12-06, Chromium 156.0.8078.129, load 11-14 on 2 cores; 79 packets "
               "since the last negotiation, no frame, 8 before). Neither record has a packet-level log, so the lost "
               "packet is inferred: routing, a decoder error and the connection are ruled out (an RTCP BYE stopping "
               "the decoder is not, but none was seen from Chromium 156 in 63 instrumented runs). Dropping on purpose "
               "the first mid-1 packet after aiortc's collided offer stalled glare-in-sld-impolite-av and "
               "glare-add-media-av with the same message when Chromium did not answer the NACK (2 of 7 drops across "
               "four of these scenarios; Chromium retransmitted the other 5 within 2-105 ms of the NACK). The settle "
               "message says whether a silent track's packets still arrive, which tells this apart from "
               "aiortc-payload-type-remap (no packets).",
        seen={"aiortc": (Seen("1.16.0"),), "chromium": (Seen("156.0.8078.114", "156.0.8078.129"),)},
        trigger="fixtures/findings/aiortc_unrepaired_packet_loss.py",
        evidence=("fixtures/findings/evidence/aiortc-unrepaired-packet-loss.glare-in-sld-impolite-av.case.json",
                  "fixtures/findings/evidence/aiortc-unrepaired-packet-loss.glare-in-sld-impolite-av.aiortc.log"),
    ),
    Finding(
        "aiortc-channel-before-answer", "aiortc breaks its connection offering a channel created before it answered",
        "aiortc",
        (Cells(("failed-first-sld-recovers",), "chromium|aiortc", "aiortc"),),
        peer=None, operation="settle|exchange", end_state=r"connectionState=(?!connected\b)\w+",
        detail="aiortc 1.16.0: a connection that created a data channel before it answered an offer without an "
               "application m-line replaces its ICE transport when it then offers the channel; the DTLS handshake "
               "fails and the pair never reconnects (Chromium 156 ends 'disconnected', aiortc 'connecting' or "
               "'closed'), so the case is stuck waiting for a connected pair (which peer the rig sees first depends "
               "on when aiortc closes).",
        seen={"aiortc": (Seen("1.16.0"),)},
        trigger="fixtures/findings/aiortc_channel_before_answer.py",
    ),
    Finding(
        "aiortc-answer-with-pending-transceiver", "aiortc cannot answer while its own new transceiver awaits an offer",
        "aiortc",
        (Cells(("failed-sld-recovers", "late-negotiationneeded"), "*", "aiortc"),
         Cells(("stress-both-sides",), "*", "aiortc", intermittent=True)),
        peer="impolite", operation="setLocalDescription",
        error="ValueError", message=r"None is not in list",
        detail="aiortc 1.16.0 cannot answer an offer while one of its own transceivers awaits negotiation: "
               "setLocalDescription(answer) raises 'ValueError: None is not in list' (rtcpeerconnection.py, "
               "and_direction(t.direction, t._offerDirection) with _offerDirection None). In stress-both-sides it is "
               "a race: it fails only when an offer reaches aiortc between its addTrack and its own offer.",
        seen={"aiortc": (Seen("1.16.0"),)},
        trigger="fixtures/findings/aiortc_answer_with_pending_track.py",
    ),
    Finding(
        "pattern-candidate-before-offer-chromium", "Unordered signaling: a candidate before its offer (Chromium)",
        "pattern",
        (Cells(("candidate-before-offer",), "*", "chromium"),),
        peer="impolite", operation="addIceCandidate",
        message=r"The remote description was null",
        detail="The pattern assumes an ordered signaling channel: a candidate that overtakes its offer reaches "
               "addIceCandidate before any remote description and Chromium rejects it ('InvalidStateError: ... The "
               "remote description was null'); no offer is being ignored, so the reference negotiator rightly "
               "reports it.",
    ),
    Finding(
        "pattern-candidate-before-offer-firefox", "Unordered signaling: a candidate before its offer (Firefox)",
        "pattern",
        (Cells(("candidate-before-offer",), "*", "firefox"),),
        peer="impolite", operation="addIceCandidate",
        message=r"No remoteDescription",
        detail="The pattern assumes an ordered signaling channel: a candidate that overtakes its offer reaches "
               "addIceCandidate before any remote description and Firefox rejects it ('InvalidStateError: No "
               "remoteDescription.'); no offer is being ignored, so the reference negotiator rightly reports it.",
    ),
)

BY_ID = {f.id: f for f in FINDINGS}
assert len(BY_ID) == len(FINDINGS), "finding ids must be unique"
