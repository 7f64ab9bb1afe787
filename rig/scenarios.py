"""The scenario catalogue: each scenario is a short list of named steps (data).

A scenario is a :class:`Scenario` of steps from the step vocabulary (rig.steps, whose names are
re-exported here); steps are interpreted by :mod:`rig.case`. A new scenario is a few lines here;
a new kind of step is one dataclass in rig.steps and one method in rig.case.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import RigError
from .steps import (
    COLLIDE_VARIANTS,
    STEPS,
    AwaitGate,
    AwaitHeld,
    Burst,
    Change,
    Collide,
    Drop,
    Duplicate,
    Exchange,
    FailNext,
    Gate,
    Hold,
    Join,
    OpenGate,
    Race,
    Release,
    Settle,
    Step,
)

__all__ = [
    "AwaitGate", "AwaitHeld", "Burst", "CATALOGUE", "COLLIDE_VARIANTS", "CONNECT", "CONNECT_AV", "Change",
    "Collide", "Drop", "Duplicate", "Exchange", "FailNext", "Gate", "Hold", "Join", "OpenGate", "Race",
    "Release", "STEPS", "Scenario", "Settle", "Step", "get", "load_plan", "markdown",
]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    glare: bool = False
    rationale: str = ""
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        armed: list[tuple] = []
        for s in self.steps:
            if type(s) is Gate and not s.open_on:
                armed.append(s.key)
            elif type(s) is Gate:
                continue
            elif isinstance(s, OpenGate) and s.key not in armed:
                raise RigError(f"scenario {self.name}: '{s.describe()}' has no Gate before it")
            if isinstance(s, OpenGate):
                armed.remove(s.key)
        if armed:
            raise RigError(f"scenario {self.name}: a gate is never opened ({', '.join(map(str, armed))}); "
                           "every Gate needs a later OpenGate")

    @property
    def collisions(self) -> int:
        return sum(isinstance(s, Collide | Race) for s in self.steps)

    def plan(self) -> list[str]:
        return [s.describe() for s in self.steps]

    def to_json(self) -> dict:
        """The plan as data: what --plan replays."""
        return {"name": self.name, "description": self.description, "glare": self.glare,
                "rationale": self.rationale, "steps": [{"step": type(s).__name__, **asdict(s)} for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict) -> Scenario:
        try:
            steps = tuple(STEPS[d["step"]](**{k: v for k, v in d.items() if k != "step"}) for d in data["steps"])
            return cls(str(data["name"]), str(data.get("description", "")), steps,
                       glare=bool(data.get("glare", any(isinstance(s, Collide | Race) for s in steps))),
                       rationale=str(data.get("rationale", "")))
        except RigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise RigError(f"bad plan: {type(exc).__name__}: {exc}") from None


#: Scenarios that start from a connected pair open it the same way: the impolite peer
#: creates a data channel. The change under test then comes from the side that did not
#: make the first offer (see docs/design.md, "Who opens the connection").
CONNECT = (Join(), Change("impolite", "add-datachannel"), Settle())

#: A call: the impolite peer (the caller) makes the first and only offer of the opening,
#: with audio and video in one offer (its negotiationneeded is held until both tracks
#: are added); the polite peer (the callee) adds its audio and video once that offer is
#: applied (addTrack reuses the two recvonly transceivers the offer created) and answers
#: sendrecv. So both sides send audio and video, every header-extension id of both kinds
#: is negotiated, and only the impolite peer has offered (see docs/design.md, "Who opens the
#: connection": aiortc issue 686).
CONNECT_AV = (Join(), Gate("impolite", "negotiationneeded"), Gate("polite", "setRemoteDescription", "after", "offer"),
              Change("impolite", "add-audio"), Change("impolite", "add-video"),
              AwaitGate("impolite", "negotiationneeded"), OpenGate("impolite", "negotiationneeded"),
              AwaitGate("polite", "setRemoteDescription", "after", "offer"),
              Change("polite", "add-audio"), Change("polite", "add-video"),
              OpenGate("polite", "setRemoteDescription", "after", "offer"), Settle())

_AV_NEW_MLINES = ("After the audio+video opening every transceiver has a track, so neither addTrack can reuse "
                  "one: the polite peer's second video track (a screen share) and the impolite peer's second "
                  "audio track (e.g. a second microphone) each add a new m-line, at the same mid with a "
                  "different kind, while the header-extension ids of both kinds are already negotiated: the "
                  "collision of the data-channel-opened scenario of the same name, in the state a call is in.")

CATALOGUE: dict[str, Scenario] = {s.name: s for s in [
    Scenario(
        "initial-datachannel",
        "The polite peer creates a data channel on a fresh pair; no glare. It opens on both sides "
        "and a message crosses each way.",
        (Join(), Change("polite", "add-datachannel"), Settle(), Exchange()),
    ),
    Scenario(
        "add-video",
        "After connecting, the polite peer adds a video track; no glare. The impolite peer receives "
        "it and media flows.",
        CONNECT + (Change("polite", "add-video"), Settle(), Exchange()),
    ),
    Scenario(
        "glare-add-media",
        "Connected peers change at the same moment (polite adds video, impolite adds audio); both "
        "offers are held and released together. Polite rolls back and re-offers, impolite ignores.",
        CONNECT + (Collide(polite="add-video", impolite="add-audio"), Settle(), Exchange()),
        glare=True,
    ),
    Scenario(
        "glare-initial",
        "Two fresh peers both make the first offer at once (polite wants video, impolite audio), "
        "with trickle ICE; a candidate of the polite offer is sent before the offers cross, so it "
        "reaches the impolite peer while it ignores that offer.",
        (Join(), Collide(polite="add-video", impolite="add-audio", variant="ignored-candidate"), Settle()),
        glare=True,
    ),
    Scenario(
        "glare-repeated",
        "Three forced collisions in a row on one connection (each round polite adds video, "
        "impolite adds audio), each proven.",
        CONNECT + (Collide("add-video", "add-audio"), Settle(),
                   Collide("add-video", "add-audio"), Settle(),
                   Collide("add-video", "add-audio"), Settle(), Exchange()),
        glare=True,
        rationale="Each side adds a kind the other never sends, so addTrack cannot reuse a "
                  "transceiver the other side created: every round needs a new m-line, so the "
                  "answer cannot carry the polite peer's change and a re-offer is required.",
    ),
    Scenario(
        "glare-in-sld-polite",
        "The impolite peer's offer reaches the polite peer right after its setLocalDescription() for its "
        "own offer was called: signalingState still 'stable', only makingOffer tells it is a collision.",
        CONNECT + (Race("impolite", "add-audio", "add-video", "sld"), Settle(), Exchange()),
        glare=True,
    ),
    Scenario(
        "glare-in-sld-impolite",
        "The polite peer's offer reaches the impolite peer right after its setLocalDescription() for its "
        "own offer was called (makingOffer window, signalingState still 'stable'): it must ignore it.",
        CONNECT + (Race("polite", "add-video", "add-audio", "sld"), Settle(), Exchange()),
        glare=True,
    ),
    Scenario(
        "glare-offer-start",
        "The impolite peer's offer lands as soon as the polite peer starts making its own: after "
        "createOffer() resolves, before setLocalDescription(offer) (or at setLocalDescription() when "
        "the negotiator uses the implicit form).",
        CONNECT + (Race("impolite", "add-audio", "add-video", "offer-start"), Settle(), Exchange()),
        glare=True,
    ),
    Scenario(
        "offer-during-answer",
        "After a collision, the polite peer's answer and its re-offer reach the impolite peer back to "
        "back: the re-offer is handed over right after setRemoteDescription(answer) was called, while "
        "the answer is still pending (the pending-answer guard's case).",
        CONNECT + (Collide("add-video", "add-audio", variant="offer-during-answer"), Settle(), Exchange()),
        glare=True,
    ),
    Scenario(
        "glare-add-media-av",
        "In a connected audio+video call, both peers change at the same moment (polite adds a second "
        "video track, impolite a second audio track); both offers are held and released together.",
        CONNECT_AV + (Collide(polite="add-video", impolite="add-audio"), Settle()),
        glare=True,
        rationale=_AV_NEW_MLINES,
    ),
    Scenario(
        "glare-in-sld-polite-av",
        "glare-in-sld-polite in a connected audio+video call: the impolite peer's offer (a second audio "
        "track) reaches the polite peer right after its setLocalDescription() for its own offer (a "
        "second video track) was called.",
        CONNECT_AV + (Race("impolite", "add-audio", "add-video", "sld"), Settle()),
        glare=True,
        rationale=_AV_NEW_MLINES,
    ),
    Scenario(
        "glare-in-sld-impolite-av",
        "glare-in-sld-impolite in a connected audio+video call: the polite peer's offer (a second video "
        "track) reaches the impolite peer right after its setLocalDescription() for its own offer (a "
        "second audio track) was called: it must ignore it.",
        CONNECT_AV + (Race("polite", "add-video", "add-audio", "sld"), Settle()),
        glare=True,
        rationale=_AV_NEW_MLINES,
    ),
    Scenario(
        "glare-offer-start-av",
        "glare-offer-start in a connected audio+video call: the impolite peer's offer (a second audio "
        "track) lands as soon as the polite peer starts making its own (a second video track).",
        CONNECT_AV + (Race("impolite", "add-audio", "add-video", "offer-start"), Settle()),
        glare=True,
        rationale=_AV_NEW_MLINES,
    ),
    Scenario(
        "offer-during-answer-av",
        "offer-during-answer in a connected audio+video call: after the collision (polite adds a second "
        "video track, impolite a second audio track) the polite peer's answer and re-offer reach the "
        "impolite peer back to back, the re-offer while the answer is still pending.",
        CONNECT_AV + (Collide("add-video", "add-audio", variant="offer-during-answer"), Settle()),
        glare=True,
        rationale=_AV_NEW_MLINES,
    ),
    Scenario(
        "glare-repeated-av",
        "Three forced collisions in a row in a connected audio+video call (each round polite adds a "
        "video track, impolite an audio track), each proven.",
        CONNECT_AV + (Collide("add-video", "add-audio"), Settle(), Collide("add-video", "add-audio"), Settle(),
                      Collide("add-video", "add-audio"), Settle()),
        glare=True,
        rationale="Every round adds a new m-line on each side at the same mid with a different kind (no "
                  "transceiver is free to reuse), so each answer cannot carry the polite peer's change and a "
                  "re-offer is required; a rolled-back m-line of one round sits next to the m-lines the "
                  "earlier rounds negotiated.",
    ),
    Scenario(
        "glare-late-candidates",
        "Two fresh peers both offer first; the polite peer's answer overtakes the trickled candidates "
        "of its ignored offer, which reach the impolite peer only after it applied that answer.",
        (Join(), Collide("add-video", "add-audio", variant="late-candidates"), Settle()),
        glare=True,
    ),
    Scenario(
        "glare-candidate-answer",
        "Two fresh peers both offer first; the polite peer's answer reaches the impolite peer right "
        "after it called addIceCandidate() for a candidate of the ignored offer, so that candidate is "
        "rejected only after the answer has reset the negotiator's ignoreOffer.",
        (Join(), Collide("add-video", "add-audio", variant="answer-after-candidate"), Settle()),
        glare=True,
        rationale="Whether a candidate belongs to an ignored offer must be judged when it arrives; the "
                  "W3C example reads ignoreOffer when addIceCandidate rejects (see 'Reference negotiator').",
    ),
    Scenario(
        "glare-datachannel",
        "Two fresh peers both create a data channel as their first change at the same moment; both "
        "channels open and messages cross on each.",
        (Join(), Collide("add-datachannel", "add-datachannel", reoffer=False), Settle(), Exchange()),
        glare=True,
        rationale="The impolite peer's offer negotiates SCTP, which the polite peer's channel then uses: "
                  "after its rollback the polite peer needs no offer of its own, so none is required.",
    ),
    Scenario(
        "glare-add-remove",
        "The polite peer removes its video track while the impolite peer adds audio, both offers "
        "held and released together; the removal and the addition both take effect.",
        CONNECT + (Change("polite", "add-video"), Settle(),
                   Collide("remove-track", "add-audio", reoffer=False), Settle(), Exchange()),
        glare=True,
        rationale="After its rollback the polite peer answers with its transceiver already 'recvonly', "
                  "so the answer carries the removal and no re-offer is needed; the check is that the "
                  "removal took effect (currentDirection).",
    ),
    Scenario(
        "glare-ice-restart",
        "The polite peer restarts ICE (restartIce()) while the impolite peer adds audio, both offers "
        "held and released together; the restart survives the rollback and new ICE credentials are used.",
        CONNECT + (Collide("restart-ice", "add-audio"), Settle(), Exchange()),
        glare=True,
    ),
    Scenario(
        "ice-restart",
        "After connecting, the polite peer restarts ICE (restartIce()); no glare. New ICE credentials "
        "are negotiated and the pair stays connected: the baseline for glare-ice-restart.",
        CONNECT + (Change("polite", "restart-ice"), Settle(), Exchange()),
    ),
    Scenario(
        "stress-both-sides",
        "WPT-style 10+1 rounds: one forced collision (both add audio), then ten rounds of back-to-back "
        "audio additions on both sides with nothing held; at the end every track arrives and both "
        "sides agree on every transceiver.",
        CONNECT + (Collide("add-audio", "add-audio"), Burst(10, "add-audio", "add-audio"), Settle(), Exchange()),
        glare=True,
        rationale="The first round is forced so that every run has at least one collision; the other ten "
                  "race freely, as in WPT. Audio keeps 22 live tracks within what aiortc can encode on "
                  "2 cores (with video, the encoder starved the event loop and Firefox saw the pair "
                  "disconnect).",
    ),
    Scenario(
        "late-negotiationneeded",
        "The impolite peer's negotiationneeded reaches its negotiator only once it has called "
        "setRemoteDescription() for the polite peer's offer: the handler's setLocalDescription() runs "
        "in 'have-remote-offer' and makes the answer, and the change goes out in the next offer.",
        CONNECT + (Gate("impolite", "negotiationneeded", open_on="srd-offer"), Change("impolite", "add-video"),
                   AwaitGate("impolite", "negotiationneeded"), Change("polite", "add-audio"), Settle(), Exchange()),
        rationale="An app whose negotiationneeded handler awaits anything before setLocalDescription() "
                  "(a lock, a log call) can reach it after a remote offer started to apply. The W3C form "
                  "(implicit setLocalDescription) copes; createOffer() then setLocalDescription(offer) "
                  "cannot.",
    ),
    Scenario(
        "failed-sld-recovers",
        "The impolite peer's setLocalDescription() for its change fails once (an injected "
        "OperationError); the polite peer then changes, and both changes must still be negotiated.",
        CONNECT + (FailNext("impolite", "setLocalDescription"), Change("impolite", "add-audio"),
                   Change("polite", "add-video"), Settle(), Exchange()),
        rationale="A negotiator that leaves makingOffer set after a failure treats every later offer "
                  "as a collision.",
    ),
    Scenario(
        "failed-first-sld-recovers",
        "On a fresh pair the impolite peer's first setLocalDescription() (for a data channel) fails once "
        "(an injected OperationError); the polite peer then adds video, and both changes must still be "
        "negotiated.",
        (Join(), FailNext("impolite", "setLocalDescription"), Change("impolite", "add-datachannel"),
         Change("polite", "add-video"), Settle(), Exchange()),
        rationale="The same fault as failed-sld-recovers, with a data channel as the failed change: a "
                  "pending SCTP association, unlike a pending transceiver, does not stop aiortc from "
                  "answering, so this one also runs on every aiortc pair.",
    ),
    Scenario(
        "failed-sld-reused-recovers",
        "The impolite peer adds video to the transceiver the polite peer's video created (addTrack reuses "
        "it: recvonly becomes sendrecv) and its setLocalDescription() for that change fails once (an "
        "injected OperationError); the polite peer then adds audio, and both changes must still be negotiated.",
        CONNECT + (Change("polite", "add-video"), Settle(), FailNext("impolite", "setLocalDescription"),
                   Change("impolite", "add-video"), Change("polite", "add-audio"), Settle(), Exchange()),
        rationale="The fault of failed-sld-recovers on a change that creates no transceiver, so an aiortc "
                  "impolite peer, which cannot answer past a pending new transceiver, takes part too. The "
                  "answer to the polite peer's offer may already carry the impolite peer's new direction.",
    ),
    Scenario(
        "duplicate-candidate",
        "A fresh pair connects with video while the first trickled candidate of the polite peer is "
        "delivered twice; adding a candidate twice is harmless and the pair must connect.",
        (Join(), Duplicate("polite", "candidate"), Change("polite", "add-video"), Settle()),
    ),
    Scenario(
        "dropped-candidate",
        "A fresh pair connects with video while the first trickled candidate of the polite peer is lost "
        "on the way; the pair must still connect (from its other candidates, or peer-reflexive ones).",
        (Join(), Drop("polite", "candidate"), Change("polite", "add-video"), Settle()),
    ),
    Scenario(
        "candidate-before-offer",
        "A fresh pair connects with video while every trickled candidate of the polite peer (up to its "
        "end-of-candidates) overtakes the offer it belongs to (a reordering signaling channel).",
        (Join(), Hold("polite", "offer"), Change("polite", "add-video"), AwaitHeld("polite", "end-of-candidates"),
         Release("candidate"), Release(), Settle()),
        rationale="Perfect negotiation assumes an ordered channel; this shows what a negotiator does "
                  "when that fails.",
    ),
]}


def markdown() -> str:
    """The catalogue as docs/scenarios.md shows it (kept in sync by a unit test)."""
    rows = ["| name | what it does |", "|---|---|"]
    rows += [f"| `{s.name}` | {s.description} |" for s in CATALOGUE.values()]
    plans = []
    for s in CATALOGUE.values():
        steps = "\n".join(f"{i}. {line}" for i, line in enumerate(s.plan(), 1))
        why = f"\n\n*Why this way:* {s.rationale}" if s.rationale else ""
        plans.append(f"#### `{s.name}`\n\n{steps}{why}")
    return "\n".join(rows) + "\n\n### Timing plans\n\n" + "\n\n".join(plans) + "\n"


def load_plan(path: Path) -> Scenario:
    """A plan from a file: a plan JSON (Scenario.to_json) or a case's detail JSON."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RigError(f"plan {path}: {exc}") from None
    if isinstance(data, dict) and "plan_data" in data:
        data = data["plan_data"]
    if not isinstance(data, dict) or "steps" not in data:
        raise RigError(f"plan {path}: no 'steps' (expected a plan JSON or a case's detail JSON)")
    return Scenario.from_json(data)


def get(name: str) -> Scenario:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise RigError(f"unknown scenario {name!r} (known: {', '.join(CATALOGUE)})") from None
