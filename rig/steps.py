"""The step vocabulary of a plan: one frozen dataclass per kind of step, each checking its own
fields and saying in one line what it does (``describe``, what a plan and docs/scenarios.md show).

Steps are interpreted by :mod:`rig.case`; a scenario (rig.scenarios) is a list of them. A new
kind of step is one dataclass here (and in ``Step`` and ``STEPS``) and one method there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RigError
from .vocab import CHANGES, GATE_STEPS, TRIGGERS, Role


@dataclass(frozen=True)
class Join:
    """Both peers join the room; each learns the other's user id and attaches its negotiator."""

    def describe(self) -> str:
        return "both peers join the room and attach their negotiators"


@dataclass(frozen=True)
class Change:
    """One peer makes a change that needs negotiation; no hold."""

    who: Role
    action: str

    def __post_init__(self) -> None:
        if self.action not in CHANGES:
            raise RigError(f"unknown change {self.action!r} (known: {', '.join(CHANGES)})")

    def describe(self) -> str:
        return f"{self.who}: {self.action}"


def _check_change(action: str) -> None:
    if action not in CHANGES:
        raise RigError(f"unknown change {action!r} (known: {', '.join(CHANGES)})")


COLLIDE_VARIANTS = {
    "": "release both together",
    "ignored-candidate": "once a candidate of the polite peer's offer waits behind it (a peer that trickles), "
                         "release both, so that candidate reaches the impolite peer while it ignores the offer",
    "offer-during-answer": "release both; then hold the polite peer's answer and its re-offer, arm the "
                           "re-offer in the impolite peer for 'srd-answer' and release them",
    "late-candidates": "release both offers but hold the polite peer's candidates; let its answer "
                       "overtake them; release the candidates once the impolite peer applied the answer",
    "answer-after-candidate": "hold the polite peer's candidates and answer too; once one of its candidates is "
                              "held, release both offers; arm the "
                              "answer in the impolite peer for 'aic' behind the first candidate; release them",
}


@dataclass(frozen=True)
class Collide:
    """Force glare: hold the next offer on each link, make both changes at once, wait
    until the stub holds an offer from each side, then release them (see variants).

    ``reoffer``: whether the polite peer's change still needs an offer of its own after
    it answered (False when the other side's offer already negotiates it, e.g. SCTP)."""

    polite: str
    impolite: str
    variant: str = ""
    reoffer: bool = True

    def __post_init__(self) -> None:
        _check_change(self.polite)
        _check_change(self.impolite)
        if self.variant not in COLLIDE_VARIANTS:
            raise RigError(f"unknown collide variant {self.variant!r} (known: {', '.join(COLLIDE_VARIANTS)})")

    def describe(self) -> str:
        return (f"collide: hold offers both ways; polite {self.polite} || impolite {self.impolite}; "
                f"wait until both offers are held; {COLLIDE_VARIANTS[self.variant]}")


@dataclass(frozen=True)
class Race:
    """Force glare in a narrow window: ``first`` changes and its offer is held; it is then
    armed in the other peer's plumbing for ``window`` and released; the other peer
    changes, and its plumbing hands the offer to its negotiator synchronously at that
    window (see rig.vocab.TRIGGERS). The rig checks the window was reached."""

    first: Role
    first_action: str
    second_action: str
    window: str

    def __post_init__(self) -> None:
        _check_change(self.first_action)
        _check_change(self.second_action)
        if self.window not in TRIGGERS:
            raise RigError(f"unknown window {self.window!r} (known: {', '.join(TRIGGERS)})")

    @property
    def second(self) -> Role:
        return "impolite" if self.first == "polite" else "polite"

    def describe(self) -> str:
        return (f"race: {self.first} {self.first_action}, its offer held and armed in {self.second} "
                f"for '{self.window}'; {self.second} {self.second_action}; the offer lands "
                f"{TRIGGERS[self.window]}")


@dataclass(frozen=True)
class Burst:
    """``rounds`` back-to-back changes on both sides, nothing held, nothing awaited between."""

    rounds: int
    polite: str
    impolite: str

    def __post_init__(self) -> None:
        _check_change(self.polite)
        _check_change(self.impolite)

    def describe(self) -> str:
        return f"burst: {self.rounds} rounds of polite {self.polite} || impolite {self.impolite}, back to back"


@dataclass(frozen=True)
class FailNext:
    """The next call of ``method`` on ``who`` rejects with an injected OperationError."""

    who: Role
    method: str

    def describe(self) -> str:
        return f"fault: the next {self.method} of {self.who} rejects (injected)"


@dataclass(frozen=True)
class Hold:
    """Hold the next ``count`` messages of ``kind`` from ``sender`` (later ones on the link queue behind)."""

    sender: Role
    kind: str
    count: int = 1

    def describe(self) -> str:
        return f"hold the next {self.count} {self.kind}(s) from {self.sender}"


@dataclass(frozen=True)
class AwaitHeld:
    """Wait until at least ``count`` messages of ``kind`` from ``sender`` are held."""

    sender: Role
    kind: str
    count: int = 1

    def describe(self) -> str:
        return f"wait until {self.count} {self.kind}(s) from {self.sender} are held"


@dataclass(frozen=True)
class Release:
    """Release held messages; with ``kind``, only those (they overtake the others)."""

    kind: str = ""

    def describe(self) -> str:
        return f"release the held {self.kind or 'message'}s" + (" (they overtake the rest)" if self.kind else "")


@dataclass(frozen=True)
class Duplicate:
    """Deliver the next message of ``kind`` from ``sender`` twice."""

    sender: Role
    kind: str

    def describe(self) -> str:
        return f"duplicate the next {self.kind} from {self.sender}"


@dataclass(frozen=True)
class Drop:
    """Never deliver the next message of ``kind`` from ``sender`` (a lossy channel)."""

    sender: Role
    kind: str

    def describe(self) -> str:
        return f"drop the next {self.kind} from {self.sender}"


@dataclass(frozen=True)
class Gate:
    """Pause ``who`` at its next step ``at`` (one of GATE_STEPS): ``before`` it starts, or
    ``after`` it settled but before the negotiator's code continues; ``type`` narrows a
    description method to offer/answer/rollback. The peer stays paused until OpenGate;
    AwaitGate checks the pause was reached. Every Gate needs a later OpenGate."""

    who: Role
    at: str
    when: str = "before"
    type: str = ""
    #: a trigger (rig.vocab.TRIGGERS) at which the peer opens the gate itself,
    #: synchronously; such a gate needs no OpenGate
    open_on: str = ""

    def __post_init__(self) -> None:
        if self.at not in GATE_STEPS:
            raise RigError(f"unknown gate step {self.at!r} (known: {', '.join(GATE_STEPS)})")
        if self.when not in ("before", "after") or (self.at == "negotiationneeded" and self.when != "before"):
            raise RigError(f"gate {self.at}: 'when' must be 'before'" + ("" if self.at == "negotiationneeded"
                                                                           else " or 'after'"))
        if self.open_on and self.open_on not in TRIGGERS:
            raise RigError(f"unknown trigger {self.open_on!r} to open a gate (known: {', '.join(TRIGGERS)})")

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.who, self.at, self.when, self.type)

    def what(self) -> str:
        return f"{self.who} {self.when} its next {self.at}{f'({self.type})' if self.type else ''}"

    def describe(self) -> str:
        until = f", until {TRIGGERS[self.open_on]}" if self.open_on else ""
        return f"gate: pause {self.what()}{until}"


@dataclass(frozen=True)
class AwaitGate(Gate):
    """Wait (bounded) until the peer is paused at that gate."""

    def describe(self) -> str:
        return f"wait until {self.what()} is reached (paused)"


@dataclass(frozen=True)
class OpenGate(Gate):
    """Let the paused peer go on."""

    def describe(self) -> str:
        return f"open the gate: {self.what()} goes on"


@dataclass(frozen=True)
class Settle:
    """Wait until both peers are stable and connected and every change so far is applied."""

    def describe(self) -> str:
        return "settle: both stable + connected, every change applied, media flowing, channels open"


@dataclass(frozen=True)
class Exchange:
    """Each side sends a message on every open data channel; each must arrive."""

    def describe(self) -> str:
        return "exchange: a message each way on every data channel"


Step = (Join | Change | Collide | Race | Burst | FailNext | Hold | AwaitHeld | Release | Duplicate | Drop | Gate
        | AwaitGate | OpenGate | Settle | Exchange)
STEPS = {cls.__name__: cls for cls in (Join, Change, Collide, Race, Burst, FailNext, Hold, AwaitHeld, Release,
                                       Duplicate, Drop, Gate, AwaitGate, OpenGate, Settle, Exchange)}
