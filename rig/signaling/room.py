"""A room of the stub: its two members, the record of every frame they send, and the
:class:`DeliveryController` a scenario uses to hold, release, drop and duplicate those frames.

The room is where the stub's per-member budgets are kept (``config.MAX_PENDING_FRAMES``,
``config.MAX_PENDING_BYTES``) and where its record is capped (``config.MAX_RECORDS``,
``config.MAX_RECORD_BYTES``); the aiohttp side (rig.signaling.stub) only hands frames in.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .. import config
from .messages import MessageRecord, short


class StubTimeout(Exception):
    """A wait on the stub (a room filling, frames being held) ran past its bound."""


@dataclass
class HoldRule:
    """Hold frames for which ``match`` is true, at most ``count`` of them (None: no limit)."""

    match: Callable[[MessageRecord], bool]
    name: str
    count: int | None = None
    matched: int = 0

    @property
    def active(self) -> bool:
        return self.count is None or self.matched < self.count


class DeliveryController:
    """Holds and releases a room's frames.

    A link (sender -> receiver) is FIFO: once one frame on a link is held, every later
    frame on that link waits behind it, so trickled candidates never overtake the offer
    they belong to.
    """

    def __init__(self, room: Room) -> None:
        self._room = room
        self.rules: list[HoldRule] = []
        self.duplicates: list[HoldRule] = []
        self.drops: list[HoldRule] = []
        self._queues: dict[tuple[str, str], list[MessageRecord]] = {}
        self._changed = asyncio.Condition()
        self.on_change: Callable[[], None] | None = None  # a waiter outside (the case) may listen

    def hold(self, match: Callable[[MessageRecord], bool], *, name: str, count: int | None = None) -> HoldRule:
        rule = HoldRule(match=match, name=name, count=count)
        self.rules.append(rule)
        return rule

    def held(self) -> list[MessageRecord]:
        return sorted((m for q in self._queues.values() for m in q), key=lambda m: m.seq)

    def drop(self, match: Callable[[MessageRecord], bool], *, name: str, count: int = 1) -> HoldRule:
        """Never deliver the next ``count`` frames matching ``match`` (recorded as dropped)."""
        rule = HoldRule(match=match, name=name, count=count)
        self.drops.append(rule)
        return rule

    def admit(self, rec: MessageRecord) -> bool:
        """True if ``rec`` must not be delivered now (held, or dropped); called for every frame."""
        for rule in self.drops:
            if rule.active and rule.match(rec):
                rule.matched += 1
                rec.dropped = True
                rec.note = f"dropped by {rule.name}"
                return True
        link = (rec.sender, rec.to)
        if self._queues.get(link):
            rec.held = True
            rec.note = f"queued behind held #{self._queues[link][0].seq}"
            self._queues[link].append(rec)
            return True
        for rule in self.rules:
            if rule.active and rule.match(rec):
                rule.matched += 1
                rec.held = True
                rec.note = f"held by {rule.name}"
                self._queues.setdefault(link, []).append(rec)
                return True
        return False

    async def notify(self) -> None:
        if self.on_change is not None:
            self.on_change()
        async with self._changed:
            self._changed.notify_all()

    async def wait_held(self, predicate: Callable[[list[MessageRecord]], bool], *, timeout: float, what: str) -> None:
        """Wait until the held frames satisfy ``predicate``; a timeout says what was held."""
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.held()))
        try:
            await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            held = ", ".join(f"#{m.seq} {m.kind} {m.sender}->{m.to}" for m in self.held()) or "nothing"
            raise StubTimeout(f"signaling stub: waited {timeout:g} s for {what}; held so far: {held}") from None

    def duplicate(self, match: Callable[[MessageRecord], bool], *, name: str, count: int = 1) -> HoldRule:
        """Deliver the next ``count`` frames matching ``match`` twice (the copy right after)."""
        rule = HoldRule(match=match, name=name, count=count)
        self.duplicates.append(rule)
        return rule

    def _copies(self, rec: MessageRecord) -> list[MessageRecord]:
        out = []
        for rule in self.duplicates:
            if rule.active and rule.match(rec):
                rule.matched += 1
                copy = self._room.record(rec.sender, rec.to, rec.kind, rec.size, data=rec.data,
                                         note=f"duplicate of #{rec.seq} ({rule.name})", weight=rec.weight)
                out.append(copy)
        return out

    def release(self, *links: tuple[str, str], select: Callable[[MessageRecord], bool] | None = None,
                drop_rules: bool = True) -> list[MessageRecord]:
        """Deliver held frames of ``links`` (all links if none given) in arrival order;
        with ``select``, only the held frames it accepts (the rest stay held, so a
        selected frame overtakes the ones queued before it: a reorder)."""
        if drop_rules:
            self.rules.clear()
        chosen = links or tuple(self._queues)
        out: list[MessageRecord] = []
        for link in chosen:
            queue = self._queues.pop(link, [])
            keep = [m for m in queue if select is not None and not select(m)]
            out.extend(m for m in queue if m not in keep)
            if keep:
                self._queues[link] = keep
        now = self._room.now()
        out.sort(key=lambda m: m.seq)
        for rec in out:
            rec.released_t = now
            self._room._deliver(rec)
        return out


@dataclass
class Member:
    name: str
    user_id: str
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None = None  # to cut off a client that stopped reading
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    writer: asyncio.Task | None = None
    closing: asyncio.Task | None = None  # close_room's close of this socket, which the handler waits for
    queued: int = 0  # frames in the outbox (or being sent) and their weight
    queued_weight: int = 0

    def put(self, rec: MessageRecord) -> None:
        self.queued += 1
        self.queued_weight += rec.weight
        self.outbox.put_nowait(rec)

    def taken(self, rec: MessageRecord) -> None:
        self.queued -= 1
        self.queued_weight -= rec.weight


class Room:
    """Two members at most; everything they send is recorded here, up to the record's limits
    (``config.MAX_RECORDS``, ``config.MAX_RECORD_BYTES``)."""

    def __init__(self, name: str, seq: itertools.count) -> None:
        self.name = name
        self.t0 = time.monotonic()
        self.members: dict[str, Member] = {}
        #: members whose WebSocket closed, with its close code (who went away, for the error frames)
        self.left: dict[str, int | None] = {}
        self.log: list[MessageRecord] = []
        self.log_weight = 0
        #: frames not recorded once the record was full, and the record that says so (last in ``log``)
        self.unrecorded = 0
        self.cap_record: MessageRecord | None = None
        self.control = DeliveryController(self)
        self._seq = seq
        self._ready = asyncio.Event()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 6)

    def other(self, name: str) -> Member | None:
        return next((m for n, m in self.members.items() if n != name), None)

    def record(self, sender: str, to: str, kind: str, size: int, data: Any = None, note: str = "",
               weight: int = 0) -> MessageRecord:
        rec = MessageRecord(next(self._seq), self.now(), self.name, sender, to, kind, size, note=note, data=data,
                            weight=weight)
        self._keep(rec)
        return rec

    def _keep(self, rec: MessageRecord) -> None:
        """Append ``rec`` to the log unless the log is full; the first frame past the limits adds
        one record saying the log was capped, and its note counts every frame left out."""
        if (self.cap_record is None and len(self.log) < config.MAX_RECORDS
                and self.log_weight + rec.weight <= config.MAX_RECORD_BYTES):
            self.log.append(rec)
            self.log_weight += rec.weight
            return
        self.unrecorded += 1
        if self.cap_record is None:
            self.cap_record = MessageRecord(next(self._seq), rec.t, self.name, "stub", "stub", "error", 0)
            self.log.append(self.cap_record)
        self.cap_record.note = (
            f"record capped at {len(self.log) - 1} records, {self.log_weight} bytes (limits "
            f"{config.MAX_RECORDS} records, {config.MAX_RECORD_BYTES} bytes): {self.unrecorded} later "
            f"frame(s) relayed or refused but not recorded, the first at t={self.cap_record.t:g} s")

    def pending(self, name: str) -> tuple[int, int]:
        """Frames waiting for member ``name`` (held, or queued to be sent) and their weight."""
        held = [m for (_, to), q in self.control._queues.items() if to == name for m in q]
        member = self.members.get(name)
        frames = len(held) + (member.queued if member else 0)
        return frames, sum(m.weight for m in held) + (member.queued_weight if member else 0)

    def room_for(self, name: str, weight: int) -> str:
        """Why one more frame of ``weight`` cannot wait for ``name`` ("" when it can)."""
        frames, pending = self.pending(name)
        if frames + 1 > config.MAX_PENDING_FRAMES or pending + weight > config.MAX_PENDING_BYTES:
            return (f"{frames} frames ({pending} bytes) already wait for {short(name)}, the most the stub keeps "
                    f"for a member is {config.MAX_PENDING_FRAMES} frames or {config.MAX_PENDING_BYTES} bytes")
        return ""

    def _deliver(self, rec: MessageRecord) -> None:
        member = self.members.get(rec.to)
        if member is None:
            rec.add_note("receiver gone, dropped")
            return
        member.put(rec)
        for copy in self.control._copies(rec):
            full = self.room_for(rec.to, copy.weight)
            if full:
                copy.dropped = True
                copy.add_note(f"not sent: {full}")
            else:
                member.put(copy)

    def set_ready(self) -> None:
        """Both members are in and each has been told who the other is: wakes :meth:`wait_ready`."""
        self._ready.set()

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            joined = ", ".join(self.members) or "nobody"
            raise StubTimeout(f"signaling stub: room {self.name!r} not full after {timeout:g} s (joined: {joined})") from None

