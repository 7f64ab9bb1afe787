"""The scenario catalogue: each scenario is a short list of named steps (data).

Steps are interpreted by :mod:`rig.case`. A new scenario is a few lines here; a new
kind of step is one dataclass here and one method there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .peers.base import CHANGES, RigError

Role = Literal["polite", "impolite"]


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


@dataclass(frozen=True)
class Collide:
    """Force glare: hold the next offer on each link, make both changes at once, wait
    until the stub holds an offer from each side, then release both together."""

    polite: str
    impolite: str

    def __post_init__(self) -> None:
        for action in (self.polite, self.impolite):
            if action not in CHANGES:
                raise RigError(f"unknown change {action!r} (known: {', '.join(CHANGES)})")

    def describe(self) -> str:
        return (f"collide: hold offers both ways; polite {self.polite} || impolite {self.impolite}; "
                "wait until both offers are held; release both")


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


Step = Join | Change | Collide | Settle | Exchange


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    glare: bool = False
    rationale: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def collisions(self) -> int:
        return sum(isinstance(s, Collide) for s in self.steps)

    def plan(self) -> list[str]:
        return [s.describe() for s in self.steps]


#: Scenarios that start from a connected pair open it the same way: the impolite peer
#: creates a data channel. The change under test then comes from the side that did not
#: make the first offer (see README, "Who opens the connection").
CONNECT = (Join(), Change("impolite", "add-datachannel"), Settle())

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
        "with trickle ICE, so candidates of the ignored offer reach the impolite peer.",
        (Join(), Collide(polite="add-video", impolite="add-audio"), Settle()),
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
]}


def get(name: str) -> Scenario:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise RigError(f"unknown scenario {name!r} (known: {', '.join(CATALOGUE)})") from None
