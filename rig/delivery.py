"""The delivery table: what gate/arm/stash/fault mean, written once, as cases.

Both implementations of the rig's timing control (fixtures/rig-peer.js for browsers,
rig.peers.aiortc_peer for aiortc) must give every case here the same outcome;
suites/system/test_delivery.py runs each case against a real peer of each kind.

A case is played by one peer under test, whose negotiator is a probe
(fixtures/delivery/probe.js and probe.py: it records what reaches it and does only what
the stimulus asks), and a driver on the other end of the signaling stub. Every message
the driver sends is held by the stub and released only by a Deliver step, so the order
in which messages reach the peer is the table's, not the network's.

Setup: Arm (a message, by label, for a trigger, optionally ``after`` a companion),
Gate, FailNext; an Arm is applied as soon as the messages it names are held by the stub,
always before either is delivered. Stimulus steps run in order.

Expected outcome, two sequences, each compared in order and in full:

``events``: what the peer's plumbing recorded, one line each:
  "stashed m1 for sld"                       an armed message arrived and is kept
  "injected m1 at sld in stable"             handed to the negotiator at its trigger
                                             (signalingState when the trigger fired)
  "gate 1 reached before createOffer() in stable"   (step(type), state when paused)
  "gate 1 opened by rig" / "... by srd-offer"       (by open_gate, or by its trigger)
  "fault setLocalDescription in stable"      an injected fault made the call reject
  "negotiationneeded delivered"              a held negotiationneeded reached the negotiator

``negotiator``: what the probe saw and did, one line each:
  "got m1 in stable"   a message reached it (an expected line without " in <state>"
                       leaves the state out of the comparison)
  "negotiationneeded"  the event reached it
  "rejected setLocalDescription: injected"   a call rejected with the INJECTED text
  "created offer" / "created answer"         explicit probe: createOffer/createAnswer resolved
  "did offer" / "did answer" / "did apply answer" / "did rollback"  an operation completed
"""

from __future__ import annotations

from dataclasses import dataclass

from .vocab import GATE_STEPS, PEER_KINDS, TRIGGERS

#: What a plan's driver can send as a peer (Send): a marker, or a real description or candidate;
#: the stub records what it relays under rig.vocab.STUB_MESSAGE_KINDS.
SENT_KINDS = ("marker", "offer", "answer", "candidate")
OPS = ("add-datachannel", "offer", "rollback")


# -- setup -------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """Keep message ``label`` when it arrives and hand it over at ``trigger``; with
    ``after``, message ``after`` is not delivered before ``label`` has arrived."""

    label: str
    trigger: str
    after: str = ""

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {self.trigger!r}")


@dataclass(frozen=True)
class Gate:
    """Pause at the next ``step`` (``when`` before/after; ``type`` narrows a description
    method), until Open(gid), or until trigger ``open_on`` fires in the peer."""

    gid: int
    step: str
    when: str = "before"
    type: str = ""
    open_on: str = ""

    def __post_init__(self) -> None:
        if self.step not in GATE_STEPS or self.when not in ("before", "after"):
            raise ValueError(f"bad gate {self}")
        if self.open_on and self.open_on not in TRIGGERS:
            raise ValueError(f"unknown trigger {self.open_on!r}")


@dataclass(frozen=True)
class FailNext:
    """The next call of ``method`` rejects with an error carrying INJECTED."""

    method: str


# -- stimulus ----------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """The driver sends a message (held by the stub until delivered). ``marker``:
    ``{"label": label}``; ``offer``: a real offer (a data channel); ``answer``: a real
    answer to the last offer the peer sent; ``candidate``: a host candidate on
    127.0.0.1 for mid 0. A description's or candidate's label is its kind."""

    label: str
    kind: str = "marker"

    def __post_init__(self) -> None:
        if self.kind not in SENT_KINDS or (self.kind != "marker" and self.label != self.kind):
            raise ValueError(f"bad message {self}")


@dataclass(frozen=True)
class Deliver:
    """Release these held messages to the peer, one after the other, in this order."""

    labels: tuple[str, ...]


@dataclass(frozen=True)
class Do:
    """The peer does ``op``: add-datachannel (Peer.change), or the probe's offer/rollback
    (started, not awaited: a gate may hold it)."""

    op: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}")


@dataclass(frozen=True)
class Await:
    """Wait (bounded) until ``line`` is among the events or the negotiator's lines."""

    line: str


@dataclass(frozen=True)
class Open:
    gid: int


@dataclass(frozen=True)
class Quiet:
    """A bounded quiet period for a negative observation: what must not happen yet (a stashed
    message handed over early, a gate that opens by itself) gets a chance to show up before the
    next step. It orders nothing: every step that must come after another is ordered by a hold,
    a gate or an awaited line, never by this."""

    seconds: float = 0.3


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    setup: tuple
    stimulus: tuple
    events: tuple[str, ...]
    negotiator: tuple[str, ...]
    explicit: bool = False  # the probe calls createOffer/createAnswer, then setLocalDescription(desc)
    #: kinds that cannot play this case, each with the reason; the test expects them to fail
    cannot: tuple[tuple[str, str], ...] = ()
    #: negotiator lines left out of the comparison after the first expected one, each with the reason
    ignore: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for kind, reason in self.cannot:
            if kind not in PEER_KINDS or not reason:
                raise ValueError(f"{self.name}: bad 'cannot' entry {kind!r}")
        if any(not reason for _, reason in self.ignore):
            raise ValueError(f"{self.name}: every ignored line needs its reason")


def D(*labels: str) -> Deliver:
    return Deliver(labels)


NN = (Do("add-datachannel"), Await("negotiationneeded"))  # something to offer, and the event seen

CASES: tuple[Case, ...] = (
    # -- plain delivery --------------------------------------------------------------
    Case("plain-in-order", "messages nobody armed reach the negotiator as they arrive",
         (), (Send("m1"), Send("m2"), D("m1", "m2"), Await("got m2")),
         (), ("got m1 in stable", "got m2 in stable")),
    Case("plain-arrival-order", "without arms the plumbing keeps arrival order, not seq order",
         (), (Send("m1"), Send("m2"), D("m2"), Await("got m2"), D("m1"), Await("got m1")),
         (), ("got m2 in stable", "got m1 in stable")),
    # -- arm: one case per trigger -----------------------------------------------------
    Case("arm-sld", "an armed message waits in the stash, then lands right after setLocalDescription() "
                    "for an offer was called, signalingState still stable",
         (Arm("m1", "sld"),),
         NN + (Send("m1"), D("m1"), Await("stashed m1 for sld"), Do("offer"), Await("did offer")),
         ("stashed m1 for sld", "injected m1 at sld in stable"),
         ("negotiationneeded", "got m1 in stable", "did offer")),
    Case("stash-holds-later-only", "while a message is stashed, a later message (higher seq) waits "
                                   "behind it and an earlier one passes",
         (Arm("m2", "sld"),),
         NN + (Send("m1"), Send("m2"), Send("m3"), D("m2"), Await("stashed m2 for sld"), D("m1", "m3"),
               Await("got m1"), Quiet(), Do("offer"), Await("did offer"), Await("got m3")),
         ("stashed m2 for sld", "injected m2 at sld in stable"),
         ("negotiationneeded", "got m1 in stable", "got m2 in stable", "got m3", "did offer")),
    Case("arm-offer-start-explicit", "offer-start fires when createOffer() resolves, before "
                                     "setLocalDescription(offer) is called",
         (Arm("m1", "offer-start"),),
         NN + (Send("m1"), D("m1"), Await("stashed m1 for offer-start"), Do("offer"), Await("did offer")),
         ("stashed m1 for offer-start", "injected m1 at offer-start in stable"),
         ("negotiationneeded", "got m1 in stable", "created offer", "did offer"), explicit=True),
    Case("arm-offer-start-implicit", "with the implicit setLocalDescription(), offer-start fires at that call",
         (Arm("m1", "offer-start"),),
         NN + (Send("m1"), D("m1"), Await("stashed m1 for offer-start"), Do("offer"), Await("did offer")),
         ("stashed m1 for offer-start", "injected m1 at offer-start in stable"),
         ("negotiationneeded", "got m1 in stable", "did offer")),
    Case("arm-srd-answer-after", "the answer (the companion, 'after') is held until the armed message "
                                 "arrives; the armed one lands right after setRemoteDescription(answer) "
                                 "was called, answer still pending",
         (Arm("m1", "srd-answer", after="answer"),),
         NN + (Do("offer"), Await("did offer"), Send("answer", "answer"), Send("m1"), D("answer"), Quiet(),
               D("m1"), Await("did apply answer")),
         ("stashed m1 for srd-answer", "injected m1 at srd-answer in have-local-offer"),
         ("negotiationneeded", "did offer", "got answer in have-local-offer", "got m1 in have-local-offer",
          "did apply answer")),
    Case("arm-srd-offer", "an armed message lands right after setRemoteDescription(offer) was called; "
                          "a message with a lower seq is not held behind the stash",
         (Arm("m1", "srd-offer"),),
         (Send("offer", "offer"), Send("m1"), D("m1"), Await("stashed m1 for srd-offer"), D("offer"),
          Await("did answer")),
         ("stashed m1 for srd-offer", "injected m1 at srd-offer in stable"),
         ("got offer in stable", "got m1 in stable", "did answer")),
    Case("arm-aic", "an armed message lands right after addIceCandidate() was called",
         (Arm("m1", "aic"),),
         (Send("offer", "offer"), Send("candidate", "candidate"), Send("m1"), D("offer"), Await("did answer"),
          D("m1"), Await("stashed m1 for aic"), D("candidate"), Await("got m1")),
         ("stashed m1 for aic", "injected m1 at aic in stable"),
         ("got offer in stable", "did answer", "got candidate in stable", "got m1 in stable")),
    # -- gates -------------------------------------------------------------------------
    Case("gate-before-sld-offer", "a gate typed 'offer' holds setLocalDescription(offer) before it "
                                  "starts, until the rig opens it",
         (Gate(1, "setLocalDescription", "before", "offer"),),
         NN + (Do("offer"), Await("gate 1 reached"), Quiet(), Open(1), Await("did offer")),
         ("gate 1 reached before setLocalDescription(offer) in stable", "gate 1 opened by rig"),
         ("negotiationneeded", "created offer", "did offer"), explicit=True),
    Case("gate-typed-skips-untyped", "a gate typed 'offer' is not taken by setLocalDescription() "
                                     "without a description",
         (Gate(1, "setLocalDescription", "before", "offer"),),
         NN + (Do("offer"), Await("did offer")),
         (), ("negotiationneeded", "did offer")),
    # aiortc 1.16 has no rollback, but its setLocalDescription(rollback) resolves, doing
    # nothing (FIELD-NOTES): the gate, which is what this case is about, works the same.
    Case("gate-before-rollback", "a gate typed 'rollback' lets the offer through and holds "
                                 "setLocalDescription(rollback)",
         (Gate(1, "setLocalDescription", "before", "rollback"),),
         NN + (Do("offer"), Await("did offer"), Do("rollback"), Await("gate 1 reached"), Open(1),
               Await("did rollback")),
         ("gate 1 reached before setLocalDescription(rollback) in have-local-offer", "gate 1 opened by rig"),
         ("negotiationneeded", "did offer", "did rollback"),
         ignore=(("negotiationneeded", "after the rollback the data channel again needs negotiation; when the "
                                       "event lands relative to the rollback's resolution differs between "
                                       "browsers (Chromium before, Firefox after) and is not the plumbing's"),)),
    Case("gate-after-srd-answer", "a gate typed 'answer' after setRemoteDescription lets the call "
                                  "complete, then holds the negotiator's continuation",
         (Gate(1, "setRemoteDescription", "after", "answer"),),
         NN + (Do("offer"), Await("did offer"), Send("answer", "answer"), D("answer"), Await("gate 1 reached"),
               Quiet(), Open(1), Await("did apply answer")),
         ("gate 1 reached after setRemoteDescription(answer) in stable", "gate 1 opened by rig"),
         ("negotiationneeded", "did offer", "got answer in have-local-offer", "did apply answer")),
    Case("gate-before-createOffer", "a gate holds createOffer() before it starts",
         (Gate(1, "createOffer"),),
         NN + (Do("offer"), Await("gate 1 reached"), Open(1), Await("did offer")),
         ("gate 1 reached before createOffer() in stable", "gate 1 opened by rig"),
         ("negotiationneeded", "created offer", "did offer"), explicit=True),
    Case("gate-createOffer-not-implicit", "setLocalDescription() without a description does not go "
                                          "through createOffer(): a createOffer gate is not taken",
         (Gate(1, "createOffer"),),
         NN + (Do("offer"), Await("did offer")),
         (), ("negotiationneeded", "did offer")),
    Case("gate-before-createAnswer", "a gate holds createAnswer() before it starts",
         (Gate(1, "createAnswer"),),
         (Send("offer", "offer"), D("offer"), Await("gate 1 reached"), Open(1), Await("did answer")),
         ("gate 1 reached before createAnswer() in have-remote-offer", "gate 1 opened by rig"),
         ("got offer in stable", "created answer", "did answer"), explicit=True),
    Case("gate-after-aic", "a gate after addIceCandidate (untyped: a candidate has no description type)",
         (Gate(1, "addIceCandidate", "after"),),
         (Send("offer", "offer"), Send("candidate", "candidate"), D("offer"), Await("did answer"),
          D("candidate"), Await("gate 1 reached"), Open(1)),
         ("gate 1 reached after addIceCandidate() in stable", "gate 1 opened by rig"),
         ("got offer in stable", "did answer", "got candidate in stable")),
    Case("gate-nn-open-on-srd-offer", "negotiationneeded is held before the negotiator sees it and "
                                      "released by the srd-offer trigger",
         (Gate(1, "negotiationneeded", open_on="srd-offer"),),
         (Do("add-datachannel"), Await("gate 1 reached"), Send("offer", "offer"), D("offer"),
          Await("did answer"), Await("negotiationneeded")),
         ("gate 1 reached before negotiationneeded() in stable", "gate 1 opened by srd-offer",
          "negotiationneeded delivered"),
         ("got offer in stable", "negotiationneeded", "did answer")),
    Case("gate-nn-open-on-sld", "a held negotiationneeded released by the sld trigger",
         (Gate(1, "negotiationneeded", open_on="sld"),),
         (Do("add-datachannel"), Await("gate 1 reached"), Do("offer"), Await("did offer"),
          Await("negotiationneeded")),
         ("gate 1 reached before negotiationneeded() in stable", "gate 1 opened by sld",
          "negotiationneeded delivered"),
         ("negotiationneeded", "did offer")),
    Case("gate-then-fault", "a before-gate holds the call before a planned fault is applied",
         (Gate(1, "setLocalDescription"), FailNext("setLocalDescription")),
         NN + (Do("offer"), Await("gate 1 reached"), Open(1), Await("rejected setLocalDescription")),
         ("gate 1 reached before setLocalDescription() in stable", "gate 1 opened by rig",
          "fault setLocalDescription in stable"),
         ("negotiationneeded", "rejected setLocalDescription: injected")),
    # -- faults ------------------------------------------------------------------------
    Case("fault-sld", "setLocalDescription rejects once with the injected error, then works",
         (FailNext("setLocalDescription"),),
         NN + (Do("offer"), Await("rejected setLocalDescription"), Do("offer"), Await("did offer")),
         ("fault setLocalDescription in stable",),
         ("negotiationneeded", "rejected setLocalDescription: injected", "did offer")),
    Case("fault-createOffer", "createOffer rejects once with the injected error, then works",
         (FailNext("createOffer"),),
         NN + (Do("offer"), Await("rejected createOffer"), Do("offer"), Await("did offer")),
         ("fault createOffer in stable",),
         ("negotiationneeded", "rejected createOffer: injected", "created offer", "did offer"), explicit=True),
    Case("fault-createOffer-not-implicit", "setLocalDescription() without a description does not call "
                                           "createOffer(): a createOffer fault stays pending",
         (FailNext("createOffer"),),
         NN + (Do("offer"), Await("did offer")),
         (), ("negotiationneeded", "did offer")),
    Case("fault-srd", "setRemoteDescription rejects once with the injected error",
         (FailNext("setRemoteDescription"),),
         (Send("offer", "offer"), D("offer"), Await("rejected setRemoteDescription")),
         ("fault setRemoteDescription in stable",),
         ("got offer in stable", "rejected setRemoteDescription: injected")),
    Case("fault-createAnswer", "createAnswer rejects once with the injected error",
         (FailNext("createAnswer"),),
         (Send("offer", "offer"), D("offer"), Await("rejected createAnswer")),
         ("fault createAnswer in have-remote-offer",),
         ("got offer in stable", "rejected createAnswer: injected"), explicit=True),
    Case("fault-aic", "addIceCandidate rejects once with the injected error",
         (FailNext("addIceCandidate"),),
         (Send("offer", "offer"), Send("candidate", "candidate"), D("offer"), Await("did answer"),
          D("candidate"), Await("rejected addIceCandidate")),
         ("fault addIceCandidate in stable",),
         ("got offer in stable", "did answer", "got candidate in stable", "rejected addIceCandidate: injected")),
)

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
