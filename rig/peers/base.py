"""What every peer kind shares: its spec, its event timeline, bounded waits."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KNOWN_KINDS = ("chromium", "firefox", "aiortc")
#: A spec variant with one of these prefixes is a Playwright server's address (a remote browser).
ENDPOINT_SCHEMES = ("ws://", "wss://")

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

#: Changes a scenario may ask of a peer, and what the far side must then see.
#: Steps a gate can pause a peer at ("negotiationneeded": before the negotiator sees the event).
GATE_METHODS = ("createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate")
GATE_STEPS = GATE_METHODS + ("negotiationneeded",)

CHANGES = {
    "add-video": "video",
    "add-audio": "audio",
    "add-datachannel": "datachannel",
    "remove-track": "removal",
    "restart-ice": "ice-restart",
}


async def bounded(aw: Any, timeout: float) -> bool:
    """Await ``aw`` for at most ``timeout`` seconds, whatever it does with cancellation.

    asyncio.wait_for waits for a cancelled task to finish, so a library that swallows
    CancelledError (seen in teardown paths) would hang it; this gives up on the task
    instead. True when it completed (its exception, if any, is retrieved and dropped).
    """
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        return False
    if not task.cancelled():
        task.exception()
    return True


class RigError(Exception):
    """A failure the rig explains in one line (bad input, missing browser, ...)."""


class PeerTimeout(RigError):
    """A bounded wait ran out; the message names the peer, the step and its states."""


@dataclass(frozen=True)
class PeerSpec:
    """A peer as the user names it: ``kind[@version|@/binary|@first..last|@ws://endpoint]``.

    ``chromium`` (whatever is installed), ``chromium@147`` (a version: a prefix of an exact
    one, resolved by rig.install to the newest installed or installable match),
    ``chromium@/opt/c/chrome`` (a binary), ``chromium@110..156`` (a range, for ``rig
    bisect`` only), ``chromium@ws://host:3000/path`` (a browser on another host, behind a
    Playwright server: docs/remote.md). Specs stay one short string in ids and reports; the
    exact version they resolved to is recorded beside them (rig.versions.Installation).
    """

    kind: str
    variant: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KNOWN_KINDS:
            raise RigError(f"unknown peer kind {self.kind!r} (known: {', '.join(KNOWN_KINDS)})")
        if self.variant.startswith(ENDPOINT_SCHEMES):
            self._check_endpoint()
            return
        if re.fullmatch(r"[a-z][a-z0-9+.-]*://.*", self.variant, re.I):
            raise RigError(f"{self}: a remote browser is reached through a Playwright server: write "
                           f"{self.kind}@ws://HOST:PORT/PATH (or wss://), the address the server printed")
        if self.variant and not re.fullmatch(r"[\w./:=+-]+", self.variant):
            raise RigError(f"bad peer variant {self.variant!r} in {self}")
        if self.variant and not self.binary:
            bad = [v for v in (self.range or (self.variant,)) if not re.fullmatch(r"\d+(\.\d+)*(esr)?", v)]
            if bad:
                raise RigError(f"{self}: {bad[0]!r} is not a version (write {self.kind}@147, "
                               f"{self.kind}@147.0.7727.0, {self.kind}@110..156 or {self.kind}@/path/to/binary)")
        if self.kind == "aiortc" and self.binary:
            raise RigError(f"{self}: aiortc is chosen by version (aiortc@1.14), not by path")

    def _check_endpoint(self) -> None:
        """A Playwright server's address: ws:// or wss://, a host, a valid port; no spaces and no
        commas (specs are listed comma-separated)."""
        if self.kind not in ("chromium", "firefox"):
            raise RigError(f"{self}: only a browser can be remote (a Playwright server runs browsers); "
                           f"{self.kind} peers run on the rig's host or one of its xdist workers")
        if re.search(r"[\s,]", self.variant):
            raise RigError(f"{self}: an endpoint has no spaces or commas")
        try:
            url = urllib.parse.urlsplit(self.variant)
            port = url.port
        except ValueError as exc:
            raise RigError(f"{self}: bad endpoint ({exc}); write {self.kind}@ws://HOST:PORT/PATH") from None
        if not url.hostname:
            raise RigError(f"{self}: the endpoint names no host; write {self.kind}@ws://HOST:PORT/PATH")
        if port is None:
            raise RigError(f"{self}: the endpoint names no port; write {self.kind}@ws://{url.hostname}:PORT"
                           f"{url.path or '/'} (the address the Playwright server printed)")

    @classmethod
    def parse(cls, text: str) -> PeerSpec:
        text = text.strip()
        if not text:
            raise RigError("empty peer spec")
        kind, _, variant = text.partition("@")
        return cls(kind.lower(), variant)

    @property
    def binary(self) -> str | None:
        return self.variant if self.variant.startswith("/") else None

    @property
    def endpoint(self) -> str | None:
        """The Playwright server's address for ``chromium@ws://host:3000/path``; None otherwise."""
        return self.variant if self.variant.startswith(ENDPOINT_SCHEMES) else None

    @property
    def range(self) -> tuple[str, str] | None:
        """``("110", "156")`` for ``chromium@110..156``; None otherwise."""
        if ".." in self.variant and not self.binary and not self.endpoint:
            first, _, last = self.variant.partition("..")
            return first, last
        return None

    @property
    def version(self) -> str:
        """The version asked for (a prefix of an exact version); "" for any, a binary, a range or an endpoint."""
        return "" if self.binary or self.range or self.endpoint else self.variant

    def __str__(self) -> str:
        return f"{self.kind}@{self.variant}" if self.variant else self.kind

    @property
    def label(self) -> str:
        """Spec made safe for a pytest id or a file name."""
        return re.sub(r"[^\w.]+", "_", str(self)).strip("_")


@dataclass
class PeerEvent:
    """One thing a peer did; ``t`` is seconds since the case started."""

    t: float
    type: str
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"t": round(self.t, 4), "type": self.type, "detail": self.detail}


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
