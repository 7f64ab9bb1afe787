"""The signaling stub: an aiohttp app that relays JSON between the two members of a room.

It is also the rig's instrument for timing: every frame is recorded, and a room's
:class:`DeliveryController` can hold frames that match a predicate and release them
when (and in the order) a scenario says. The stub binds 127.0.0.1 on a free port and
also serves ``fixtures/`` over HTTP so browser pages and the stub share one origin.

For browsers on other hosts (rig.remote) it can listen on one more address, one of this
machine's own (``--rig-stub-host``): there over HTTPS with a throw-away self-signed
certificate, because a page from any address but loopback is a secure context (which
getUserMedia needs) only over HTTPS. Peers on this machine keep using 127.0.0.1.

Joining a room needs the stub's token, a random secret made when the stub is made and carried
in :attr:`SignalingStub.ws_url`: another process on this machine cannot inject messages into a
case. Every input is bounded (rig.config, "signaling stub's limits"; docs/design.md): a bad frame
gets a one-line error frame, and nothing a client sends makes the stub hold more than the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import ipaddress
import itertools
import json
import logging
import secrets
import socket
import ssl
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from . import config
from .errors import RigError
from .hostnet import local_addresses
from .vocab import STUB_MESSAGE_KINDS

log = logging.getLogger(__name__)

#: The one frame a member sends, as error frames quote it.
FORM = '{"type": "signal", "data": ...}'


class FrameError(ValueError):
    """A frame the stub does not relay; the message names the problem in one line."""


def _short(text: str, limit: int = 64) -> str:
    """A client's string quoted for a one-line message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: Bytes the allocator adds to an object beyond ``sys.getsizeof`` (rounding, a list's slack).
ALLOC_SLACK = 16


def weigh(data: Any) -> int:
    """The memory parsed JSON ``data`` holds: ``sys.getsizeof`` of each value and key plus
    ``ALLOC_SLACK`` (shared objects counted each time), checked against the depth and count
    limits on the way; iterative, so no input can exhaust the stack here. On the heaviest
    frames, tracemalloc counts no more than this (suites/unit/test_stub_hostile.py checks it)."""
    values = weight = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > config.MAX_JSON_DEPTH:
            raise FrameError(f"data nested deeper than {config.MAX_JSON_DEPTH} levels")
        values += 1
        weight += sys.getsizeof(value) + ALLOC_SLACK
        if isinstance(value, dict):
            values += len(value)
            weight += sum(sys.getsizeof(k) + ALLOC_SLACK for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        if values > config.MAX_JSON_VALUES:
            raise FrameError(f"data has more than {config.MAX_JSON_VALUES} JSON values")
    return weight


def parse_frame(text: str) -> tuple[Any, int]:
    """The ``data`` of a member's text frame and its weight (what it counts for in the
    stub's byte budgets: :func:`weigh`). Raises :class:`FrameError` naming the problem in
    one line."""
    try:
        frame = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise FrameError(f"JSON nested deeper than {config.MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise FrameError(f"malformed JSON: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(frame, dict):
        raise FrameError(f"expected a JSON object {FORM}, got {_json_type(frame)}")
    if "type" not in frame:
        raise FrameError(f'frame has no "type": expected {FORM}')
    kind = frame["type"]
    if not isinstance(kind, str):
        raise FrameError(f'"type" must be a string, got {_json_type(kind)}: expected {FORM}')
    if kind != "signal":
        raise FrameError(f"unknown message type {_short(kind)}: expected {FORM}")
    if "data" not in frame:
        raise FrameError(f'signal frame without "data": expected {FORM}')
    return frame["data"], weigh(frame["data"])


def classify(data: Any) -> str:
    """Kind of a signaling payload as the perfect-negotiation wire form spells it."""
    if isinstance(data, dict):
        desc = data.get("description")
        if isinstance(desc, dict) and desc.get("type") in ("offer", "answer"):
            return desc["type"]
        if "candidate" in data:
            return "candidate"
    return "other"


@dataclass
class MessageRecord:
    """One frame seen by the stub; times are seconds since the room was created."""

    seq: int
    t: float
    room: str
    sender: str
    to: str
    kind: str
    size: int
    held: bool = False
    released_t: float | None = None
    delivered_t: float | None = None
    note: str = ""
    data: Any = None
    dropped: bool = False  # never delivered, by plan
    weight: int = field(default=0, repr=False)  # what ``data`` counts for in the stub's budgets (parse_frame)

    def __post_init__(self) -> None:
        if self.kind not in STUB_MESSAGE_KINDS:
            raise ValueError(f"unknown message kind {self.kind!r}")

    def as_dict(self, with_data: bool = True) -> dict:
        d = asdict(self)
        d.pop("weight")
        d["from"] = d.pop("sender")
        if not with_data:
            d.pop("data")
        return d


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

    def _admit(self, rec: MessageRecord) -> bool:
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


class StubTimeout(Exception):
    pass


def _add_note(rec: MessageRecord, note: str) -> None:
    rec.note = (rec.note + "; " if rec.note else "") + note


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
            return (f"{frames} frames ({pending} bytes) already wait for {_short(name)}, the most the stub keeps "
                    f"for a member is {config.MAX_PENDING_FRAMES} frames or {config.MAX_PENDING_BYTES} bytes")
        return ""

    def _deliver(self, rec: MessageRecord) -> None:
        member = self.members.get(rec.to)
        if member is None:
            _add_note(rec, "receiver gone, dropped")
            return
        member.put(rec)
        for copy in self.control._copies(rec):
            full = self.room_for(rec.to, copy.weight)
            if full:
                copy.dropped = True
                _add_note(copy, f"not sent: {full}")
            else:
                member.put(copy)

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            joined = ", ".join(self.members) or "nobody"
            raise StubTimeout(f"signaling stub: room {self.name!r} not full after {timeout:g} s (joined: {joined})") from None


LOOPBACK = "127.0.0.1"
#: Environment variable read when --rig-stub-host is not given (one value per worker host).
STUB_HOST_ENV = "RIG_STUB_HOST"


def check_stub_host(text: str, *, what: str = "--rig-stub-host") -> str:
    """The address the stub may also listen on for remote browsers: an IP address of this
    machine (the network rule: traffic only to this machine's own addresses), never a name
    (nothing is resolved) nor every interface. One-line RigError otherwise."""
    addr = str(text).strip()
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise RigError(f"{what} {text!r}: not an IP address; give one of this machine's own addresses "
                       f"({', '.join(local_addresses()) or 'see ip addr'}), names are not resolved") from None
    if ip.is_unspecified or ip.is_multicast:
        raise RigError(f"{what} {addr}: the stub listens on one of this machine's own addresses, not "
                       f"{'every interface' if ip.is_unspecified else 'a multicast group'}; give one of: "
                       f"{', '.join(local_addresses()) or 'see ip addr'}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EINVAL):
            raise RigError(f"{what} {addr}: not an address of this machine (the stub listens only on this "
                           f"machine's own addresses: {', '.join(local_addresses()) or 'see ip addr'})") from None
        raise RigError(f"{what} {addr}: cannot listen there ({exc.strerror or exc})") from None
    return str(ip)


def _url_host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def _self_signed(addr: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``addr`` (EC P-256, one
    day). The remote peers' browser contexts ignore certificate errors: this encrypts nothing
    worth keeping, it only makes the page a secure context. Uses ``cryptography`` (an aiortc
    dependency), imported here only."""

    # cryptography only for a TLS stub (remote peers)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glare-rig signaling stub")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(addr))]), critical=False)
            .sign(key, hashes.SHA256()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="glare-rig-tls-") as tmp:  # load_cert_chain reads files
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


#: Close codes aiohttp closes a socket with when what the client sent cannot be read on.
READ_ERRORS = (WSCloseCode.PROTOCOL_ERROR, WSCloseCode.UNSUPPORTED_DATA, WSCloseCode.INVALID_TEXT,
               WSCloseCode.MESSAGE_TOO_BIG)


def _closing_error(code: int) -> str:
    """The error frame (and record) for a socket aiohttp closes while reading it."""
    if code == WSCloseCode.MESSAGE_TOO_BIG:
        return f"frame over {config.MAX_FRAME_BYTES} bytes: this socket is closed (1009)"
    if code == WSCloseCode.INVALID_TEXT:
        return "text frame that is not UTF-8: this socket is closed (1007)"
    if code == WSCloseCode.ABNORMAL_CLOSURE:
        return "connection lost (1006)"
    return f"WebSocket protocol error: this socket is closed ({int(code)})"


class _Socket(web.WebSocketResponse):
    """aiohttp's server WebSocket, telling the client why before it closes for bad input.

    aiohttp refuses a frame over ``max_msg_size`` from its header, before buffering any of its
    payload, and then closes the socket from inside ``receive()`` (the stream cannot go on: the
    rest of that frame was never read). That close is where the stub's error frame can still go
    out first, so it is sent here."""

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code in READ_ERRORS and not self.closed:
            with contextlib.suppress(Exception):  # the client may be gone already
                async with asyncio.timeout(config.CLOSE_TIMEOUT):
                    await self.send_json({"type": "error", "error": _closing_error(code)})
        return await super().close(code=code, message=message, drain=drain)


@dataclass
class Refusal:
    """A WebSocket upgrade the stub refused before any room was joined."""

    t: float  # seconds since the stub was made
    peer: str  # the client's address
    room: str  # as asked, quoted and cut short
    reason: str


class SignalingStub:
    """The aiohttp app plus its runner; one per test session (or xdist worker).

    ``host``: the address remote browsers reach the stub at (rig.signaling.check_stub_host);
    other than 127.0.0.1, the stub listens there too, over HTTPS (see the module's doc).

    ``token``: made here, a URL-safe random secret; a WebSocket upgrade without it is refused
    with HTTP 403 (and kept in ``refusals``). ``ws_url`` carries it, so every client the rig
    hands that URL joins as before."""

    def __init__(self, static_dir: Path = config.FIXTURES, host: str = LOOPBACK) -> None:
        self.rooms: dict[str, Room] = {}
        self.files: dict[str, Path] = {}
        self.token = secrets.token_urlsafe(24)
        self.t0 = time.monotonic()
        self.refusals: deque[Refusal] = deque(maxlen=config.MAX_REFUSALS_KEPT)
        self.refused = 0  # every refusal, also those no longer in ``refusals``
        self.connections = 0  # WebSocket connections open now
        self._seq = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_get("/ws", self._ws)
        self.app.router.add_get("/favicon.ico", self._favicon)
        self.app.router.add_get("/files/{name}", self._file)
        # aiohttp resolves the path and refuses any outside static_dir (symlinks included)
        self.app.router.add_static("/fixtures/", static_dir, follow_symlinks=False)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.host = host
        self.remote_port: int | None = None  # the HTTPS site's, when host is not loopback

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> SignalingStub:
        host = check_stub_host(self.host) if self.host != LOOPBACK else LOOPBACK
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=config.STUB_KEEPALIVE_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self.port or 0)  # the same port again on restart()
        await site.start()
        self.port = self._runner.addresses[0][1]
        if host != LOOPBACK:
            try:
                tls = _self_signed(host)
            except ImportError as exc:
                await self.stop()
                raise RigError(f"the stub cannot serve remote browsers over HTTPS: {exc} (install cryptography)") from None
            await web.TCPSite(self._runner, host, self.remote_port or 0, ssl_context=tls).start()
            self.host = host
            self.remote_port = next(a[1] for a in self._runner.addresses if a[0] == host)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        """Stop listening (every open WebSocket drops) and listen again on the same port(s),
        keeping the rooms: rig.faults' restart-stub."""
        for room in self.rooms.values():
            for m in list(room.members.values()):
                await m.ws.close(code=1012, message=b"signaling stub restarting")  # 1012: service restart
        await self.stop()
        await self.start()

    async def __aenter__(self) -> SignalingStub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket URL with the token; clients add room, name and user to its query."""
        return f"ws://127.0.0.1:{self.port}/ws?token={self.token}"

    @property
    def remote_url(self) -> str:
        """The base URL for browsers on other hosts: https://HOST:PORT when the stub listens on
        a host address, else the loopback one (reachable only from this host)."""
        if self.remote_port is None:
            return self.http_url
        return f"https://{_url_host(self.host)}:{self.remote_port}"

    def create_room(self, name: str) -> Room:
        if name in self.rooms:
            raise ValueError(f"room {name!r} exists")
        if len(self.rooms) >= config.MAX_ROOMS:
            raise RigError(f"signaling stub: {len(self.rooms)} rooms are open, the most it keeps "
                           f"(config.MAX_ROOMS); close_room() each case's room when the case ends")
        room = self.rooms[name] = Room(name, self._seq)
        return room

    def close_room(self, name: str) -> None:
        """Forget room ``name``; members still connected are disconnected (close code 1001)."""
        room = self.rooms.pop(name, None)
        if room is None:
            return
        for member in list(room.members.values()):
            member.closing = asyncio.get_running_loop().create_task(
                self._close(member.ws, member.transport, WSCloseCode.GOING_AWAY))

    def serve_file(self, name: str, path: Path) -> str:
        """Serve a file (a user's negotiator, say) at /files/NAME; return its URL."""
        self.files[name] = Path(path)
        return f"{self.http_url}/files/{name}"

    # -- handlers --------------------------------------------------------------
    async def _favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        # only names the rig registered: the request never names a path on disk
        path = self.files.get(request.match_info["name"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound()
        ctype = "text/javascript" if path.suffix in (".js", ".mjs") else None
        return web.FileResponse(path, headers={"Content-Type": ctype} if ctype else None)

    def _refuse(self, request: web.Request, why: str) -> str:
        self.refused += 1
        self.refusals.append(Refusal(round(time.monotonic() - self.t0, 6), str(request.remote or "?"),
                                     _short(request.query.get("room", "")), why))
        log.warning("signaling stub: refused a WebSocket from %s: %s", request.remote, why)
        return f"signaling stub: {why}\n"

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        given = request.query.get("token")
        if given is None or not secrets.compare_digest(given.encode(), self.token.encode()):
            why = "no token" if given is None else "wrong token"
            raise web.HTTPForbidden(text=self._refuse(request, f"join refused: {why} (the run's ws_url carries it)"))
        if self.connections >= config.MAX_CONNECTIONS:
            raise web.HTTPServiceUnavailable(text=self._refuse(
                request, f"join refused: {self.connections} WebSocket connections open, the most the stub "
                         f"takes (config.MAX_CONNECTIONS)"))
        self.connections += 1
        try:
            return await self._join(request)
        finally:
            self.connections -= 1

    async def _join(self, request: web.Request) -> web.WebSocketResponse:
        # max_msg_size: aiohttp refuses a frame of max_msg_size bytes or more; no compression, so
        # a frame's size on the wire is its size here
        ws = _Socket(max_msg_size=config.MAX_FRAME_BYTES + 1, heartbeat=None, compress=False,
                     timeout=config.CLOSE_TIMEOUT)
        await ws.prepare(request)
        q = request.query
        room_name, name, user_id = q.get("room", ""), q.get("name", ""), q.get("user", "")
        room = self.rooms.get(room_name)
        reject = None
        if room is None:
            reject = f"unknown room {_short(room_name)}"
        elif not name or not user_id:
            reject = "join needs name and user query parameters"
        elif name in room.members or len(room.members) >= config.ROOM_MEMBERS:
            reject = f"room {_short(room_name)} is full (members: {', '.join(_short(n) for n in room.members)})"
        if reject:
            if room is not None:
                room.record(name[:64] or "?", "stub", "error", 0, note=f"join refused: {reject}")
            await self._send(ws, request.transport, {"type": "error", "error": reject})
            await self._close(ws, request.transport)
            return ws
        assert room is not None
        member = Member(name, user_id, ws, request.transport)
        member.writer = asyncio.create_task(self._writer(room, member))
        room.members[name] = member
        try:
            if len(room.members) == config.ROOM_MEMBERS:
                for m in list(room.members.values()):
                    other = room.other(m.name)
                    await self._send(m.ws, m.transport, {
                        "type": "ready", "self": {"name": m.name, "user_id": m.user_id},
                        "peer": {"name": other.name, "user_id": other.user_id}})
                room._ready.set()
            async for msg in ws:
                try:
                    if msg.type == WSMsgType.TEXT:
                        await self._on_text(room, member, msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        await self._error(room, member, "binary frame: signaling messages are JSON text frames",
                                          len(msg.data))
                    elif msg.type == WSMsgType.ERROR:  # aiohttp closed the socket (_Socket.close told the client)
                        code = getattr(msg.data, "code", WSCloseCode.ABNORMAL_CLOSURE)  # a WebSocketError's
                        await self._error(room, member, _closing_error(code), 0)
                except Exception as exc:  # a bug of the stub's own: say so, keep serving
                    log.exception("room %s: %s: handling a frame failed", room.name, member.name)
                    await self._error(room, member, f"stub internal error: {type(exc).__name__}: {exc}"
                                      .splitlines()[0], 0)
        finally:
            member.writer.cancel()
            if member.closing is not None:  # returning ends the connection: let the close handshake finish
                await member.closing
            if room.members.get(name) is member:
                del room.members[name]
                room.left[name] = ws.close_code
            while not member.outbox.empty():
                rec = member.outbox.get_nowait()
                member.taken(rec)
                _add_note(rec, "receiver closed, dropped")
        return ws

    async def _on_text(self, room: Room, member: Member, text: str) -> None:
        size = len(text.encode())  # aiohttp refused anything over config.MAX_FRAME_BYTES already
        try:
            data, weight = parse_frame(text)
        except FrameError as exc:
            return await self._error(room, member, str(exc), size)
        other = room.other(member.name)
        if other is None:
            gone = next(((n, code) for n, code in room.left.items() if n != member.name), None)
            why = (f"the other member, {gone[0]}, left the room (its WebSocket closed, code {gone[1]})" if gone
                   else "no other member in the room yet")
            return await self._error(room, member, why, size)
        full = room.room_for(other.name, weight)
        if full:
            return await self._error(room, member, f"frame not relayed: {full}", size)
        rec = room.record(member.name, other.name, classify(data), size, data=data, weight=weight)
        if room.control._admit(rec):
            await room.control.notify()
            return
        room._deliver(rec)

    async def _error(self, room: Room, member: Member, why: str, size: int) -> None:
        room.record(member.name, "stub", "error", size, note=why)
        log.info("room %s: %s: %s", room.name, member.name, why)
        if not member.ws.closed:
            await self._send(member.ws, member.transport, {"type": "error", "error": why})

    async def _send(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None, frame: dict) -> str:
        """Send ``frame``, bounded: a client that has not taken it after ``config.STUB_SEND_TIMEOUT``
        has stopped reading, and is cut off. "" when the frame went out, else why not."""
        if ws.closed:
            return "receiver closed"
        try:
            async with asyncio.timeout(config.STUB_SEND_TIMEOUT):
                await ws.send_json(frame)
            return ""
        except TimeoutError:
            if transport is not None:
                transport.abort()
            return f"receiver took nothing for {config.STUB_SEND_TIMEOUT:g} s: cut off"
        except ConnectionError:
            return "receiver closed"

    async def _close(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None,
                     code: int = WSCloseCode.OK) -> None:
        """Close ``ws`` within ``config.CLOSE_TIMEOUT``, else cut the connection."""
        try:
            async with asyncio.timeout(config.CLOSE_TIMEOUT):
                await ws.close(code=code)
        except TimeoutError:
            if transport is not None:
                transport.abort()

    async def _writer(self, room: Room, member: Member) -> None:
        """One writer per member keeps deliveries in order."""
        while True:
            rec: MessageRecord = await member.outbox.get()
            try:
                if member.ws.closed:
                    _add_note(rec, "receiver closed, dropped")
                    continue
                why = await self._send(member.ws, member.transport,
                                       {"type": "signal", "from": rec.sender, "seq": rec.seq, "data": rec.data})
                if why:
                    _add_note(rec, f"{why}, dropped")
                else:
                    rec.delivered_t = room.now()
            finally:
                member.taken(rec)
