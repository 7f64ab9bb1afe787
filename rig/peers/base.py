"""What every peer kind shares: its event timeline (rig.events.PeerEvent, the one event type),
its interface, its timeout error."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import RigError
from ..events import PeerEvent
from ..peerspec import PeerSpec
from ..vocab import INJECTED

__all__ = ["Peer", "PeerEvent", "PeerTimeout"]


class PeerTimeout(RigError):
    """A bounded wait ran out; the message names the peer, the step and its states."""


class Peer:
    """One side of a case. Subclasses implement join/change/send/snapshot/close."""

    def __init__(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> None:
        self.spec = spec
        self.name = name  # "polite" or "impolite": the role the rig asked for
        self.user_id = user_id
        self.t0 = t0
        self.events: list[PeerEvent] = []
        self.version = "unknown"
        self.polite: bool | None = None  # what the peer itself computed from the ids
        self.signaling_state = "new"
        self.connection_state = "new"
        self.on_record: Callable[[], None] | None = None
        self.closing = False  # set by the case once its verdict window is over
        self.evidence_dir: Path | None = None  # where close() saves the peer's own evidence (traces)
        #: what the peer offers (rig.capabilities.CAPABILITIES), set by probe()
        self.capabilities: dict[str, bool] = {}

    def __str__(self) -> str:
        return f"{self.name} peer ({self.spec} {self.version})"

    def record(self, type_: str, detail: dict | None = None, t: float | None = None) -> PeerEvent:
        """Append an event; ``t`` (seconds since ``t0``) when it was taken elsewhere: a peer
        host records its peers' events in its own process and streams them here."""
        if self.closing and type_ == "error":
            type_ = "error-while-closing"  # e.g. a data channel aborted by close(): not a finding
        elif type_ == "error" and INJECTED in str(detail):
            type_ = "injected-error"  # the consequence of a fault the plan injected
        evt = PeerEvent(time.monotonic() - self.t0 if t is None else t, type_, detail or {})
        if type_ == "signalingstatechange":
            self.signaling_state = evt.detail.get("state", self.signaling_state)
        elif type_ == "connectionstatechange":
            self.connection_state = evt.detail.get("state", self.connection_state)
        elif type_ == "attached":
            self.signaling_state = "stable"
        self.events.append(evt)
        if self.on_record is not None:
            self.on_record()
        return evt

    def of_type(self, *types: str) -> list[PeerEvent]:
        return [e for e in self.events if e.type in types]

    def errors(self) -> list[PeerEvent]:
        return self.of_type("error")

    def state_text(self) -> str:
        return f"signalingState={self.signaling_state}, connectionState={self.connection_state}"

    # -- interface ---------------------------------------------------------------
    async def probe(self) -> dict[str, bool]:
        """Find out, on the engine's own objects, which capabilities it has (never by version)."""
        raise NotImplementedError

    async def join(self, *, ws_url: str, room: str, negotiator: Any) -> None:
        raise NotImplementedError

    async def change(self, action: str) -> dict:
        raise NotImplementedError

    async def send(self, label: str, text: str) -> None:
        raise NotImplementedError

    async def arm(self, seq: int, trigger: str, after: int | None = None) -> None:
        """Keep stub message ``seq`` when it arrives and hand it over at ``trigger``; with
        ``after``, that earlier message waits until ``seq`` has arrived."""
        raise NotImplementedError

    async def fail_next(self, method: str) -> None:
        """Make the next call of ``method`` reject (an injected fault)."""
        raise NotImplementedError

    async def gate(self, gid: int, step: str, when: str, type_: str = "", open_on: str = "") -> None:
        """Pause at the next ``step`` (``when``: before it starts, or after it settles but
        before the negotiator continues) until ``open_gate(gid)``, or with ``open_on`` until
        that trigger fires in the peer; records gate-reached and gate-opened."""
        raise NotImplementedError

    async def open_gate(self, gid: int) -> None:
        raise NotImplementedError

    async def snapshot(self) -> dict:
        raise NotImplementedError

    async def receive_detail(self, kind: str) -> str:
        """What the peer can tell about its ``kind`` tracks that got no media since the last
        negotiation (added to a settle's timeout message); "" when it has nothing to add."""
        return ""

    async def close(self) -> None:
        raise NotImplementedError
