"""The rig's shared words: roles, peer kinds, what a plan can ask of a peer, file names.

Every part names these things from here, so a scenario, a peer, the stub, the verdict and the
report cannot drift apart on a spelling. Pins, flags and preferences live in rig.config.
"""

from __future__ import annotations

from typing import Literal, get_args

#: The two roles of the pattern, in the order the rig lists them.
Role = Literal["polite", "impolite"]
ROLES: tuple[Role, ...] = get_args(Role)

#: The kinds of peer the rig can run (a spec's part before the "@": rig.peerspec).
PEER_KINDS = ("chromium", "firefox", "aiortc")

#: Kinds of signaling message the stub records in its ledger (rig.signaling) and the report
#: colours; a frame that is none of offer, answer or candidate is "other".
STUB_MESSAGE_KINDS = ("offer", "answer", "candidate", "other", "error")

#: Marks the errors of faults a plan injects (so a negotiator that logs them is not
#: failed for it); the same text is used by fixtures/rig-peer.js.
INJECTED = "injected by glare-rig"

#: Where a plan can hand an armed message to a peer's negotiator, synchronously:
TRIGGERS = {
    "sld": "right after setLocalDescription() for an offer was called (makingOffer window, "
           "signalingState still as before)",
    "offer-start": "right after createOffer() resolved, or setLocalDescription() for an offer "
                   "was called, whichever comes first",
    "srd-answer": "right after setRemoteDescription(answer) was called (answer pending)",
    "srd-offer": "right after setRemoteDescription(offer) was called (the offer is being applied)",
    "aic": "right after addIceCandidate() was called (the candidate is still being added)",
}

#: Steps a gate can pause a peer at ("negotiationneeded": before the negotiator sees the event).
GATE_METHODS = ("createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate")
GATE_STEPS = GATE_METHODS + ("negotiationneeded",)

#: Changes a scenario may ask of a peer, and what the far side must then see.
CHANGES = {
    "add-video": "video",
    "add-audio": "audio",
    "add-datachannel": "datachannel",
    "remove-track": "removal",
    "restart-ice": "ice-restart",
}

#: The files of a report folder: the run record (rig.model.RunRecord), the index page, the JUnit
#: XML, rig compare's page, rig mutants' kill matrix (data and page).
#: a worker's note to its controller of the signal it got (rig.plugin.signals), in the temporary
#: directory as PREFIX<controller pid>-<worker pid>; runs.reap removes those of dead controllers
SIGNAL_NOTE_PREFIX = "glare-rig-signal-"
RESULTS_FILE = "results.json"
INDEX_FILE = "index.html"
JUNIT_FILE = "junit.xml"
COMPARE_FILE = "compare.html"
MUTANTS_JSON, MUTANTS_HTML = "mutants.json", "mutants.html"
REPORT_FILES = (RESULTS_FILE, INDEX_FILE, JUNIT_FILE, COMPARE_FILE, MUTANTS_JSON, MUTANTS_HTML)
