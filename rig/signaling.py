"""The signaling stub: an aiohttp app that relays JSON between the two members of a room.

It is also the rig's instrument for timing: every frame is recorded, and a room's
:class:`DeliveryController` can hold frames that match a predicate and release them
when (and in the order) a scenario says. The stub binds 127.0.0.1 on a free port and
also serves ``fixtures/`` over HTTP so browser pages and the stub share one origin.

For browsers on other hosts (rig.remote) it can listen on one more address, one of this
machine's own (``--rig-stub-host``): there over HTTPS with a throw-away self-signed
certificate, because a page from any address but loopback is a secure context (which
getUserMedia needs) only over HTTPS. Peers on this machine keep using 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import itertools
import json
import logging
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from . import config
from .peers.base import RigError

log = logging.getLogger(__name__)

KINDS = ("offer", "answer", "candidate", "other", "error")


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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown message kind {self.kind!r}")

    def as_dict(self, with_data: bool = True) -> dict:
        d = asdict(self)
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
                                         note=f"duplicate of #{rec.seq} ({rule.name})")
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


@dataclass
class Member:
    name: str
    user_id: str
    ws: web.WebSocketResponse
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    writer: asyncio.Task | None = None


class Room:
    """Two members at most; everything they send is recorded here."""

    def __init__(self, name: str, seq: itertools.count) -> None:
        self.name = name
        self.t0 = time.monotonic()
        self.members: dict[str, Member] = {}
        self.log: list[MessageRecord] = []
        self.control = DeliveryController(self)
        self._seq = seq
        self._ready = asyncio.Event()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 6)

    def other(self, name: str) -> Member | None:
        return next((m for n, m in self.members.items() if n != name), None)

    def record(self, sender: str, to: str, kind: str, size: int, data: Any = None, note: str = "") -> MessageRecord:
        rec = MessageRecord(next(self._seq), self.now(), self.name, sender, to, kind, size, note=note, data=data)
        self.log.append(rec)
        return rec

    def _deliver(self, rec: MessageRecord) -> None:
        member = self.members.get(rec.to)
        if member is None:
            rec.note = (rec.note + "; " if rec.note else "") + "receiver gone, dropped"
            return
        member.outbox.put_nowait(rec)
        for copy in self.control._copies(rec):
            member.outbox.put_nowait(copy)

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            joined = ", ".join(self.members) or "nobody"
            raise StubTimeout(f"signaling stub: room {self.name!r} not full after {timeout:g} s (joined: {joined})") from None


LOOPBACK = "127.0.0.1"
#: Environment variable read when --rig-stub-host is not given (one value per worker host).
STUB_HOST_ENV = "RIG_STUB_HOST"


def local_addresses() -> list[str]:
    """This machine's addresses (this network namespace's), from /proc; [] where unreadable.
    Only for messages: whether an address is local is the kernel's answer to a bind."""
    out: list[str] = []
    try:
        last = ""
        for row in Path("/proc/net/fib_trie").read_text().splitlines():
            row = row.strip()
            if row.startswith(("|--", "+--")):
                last = row.split()[1]
            elif row == "/32 host LOCAL" and last and last not in out:
                out.append(last)
    except OSError:
        pass
    try:
        for row in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = row.split()[0]
            addr = str(ipaddress.IPv6Address(bytes.fromhex(raw)))
            if not addr.startswith("fe80") and addr not in out:
                out.append(addr)
    except (OSError, ValueError, IndexError):
        pass
    return out


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
    import datetime

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


class SignalingStub:
    """The aiohttp app plus its runner; one per test session (or xdist worker).

    ``host``: the address remote browsers reach the stub at (rig.signaling.check_stub_host);
    other than 127.0.0.1, the stub listens there too, over HTTPS (see the module's doc)."""

    def __init__(self, static_dir: Path = config.FIXTURES, host: str = LOOPBACK) -> None:
        self.rooms: dict[str, Room] = {}
        self.files: dict[str, Path] = {}
        self._seq = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_get("/ws", self._ws)
        self.app.router.add_get("/favicon.ico", self._favicon)
        self.app.router.add_get("/files/{name}", self._file)
        self.app.router.add_static("/fixtures/", static_dir)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.host = host
        self.remote_port: int | None = None  # the HTTPS site's, when host is not loopback

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> SignalingStub:
        host = check_stub_host(self.host) if self.host != LOOPBACK else LOOPBACK
        self._runner = web.AppRunner(self.app, access_log=None)
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
        return f"ws://127.0.0.1:{self.port}/ws"

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
        room = self.rooms[name] = Room(name, self._seq)
        return room

    def close_room(self, name: str) -> None:
        self.rooms.pop(name, None)

    def serve_file(self, name: str, path: Path) -> str:
        """Serve a file (a user's negotiator, say) at /files/NAME; return its URL."""
        self.files[name] = Path(path)
        return f"{self.http_url}/files/{name}"

    # -- handlers --------------------------------------------------------------
    async def _favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        path = self.files.get(request.match_info["name"])
        if path is None or not path.is_file():
            raise web.HTTPNotFound()
        ctype = "text/javascript" if path.suffix in (".js", ".mjs") else None
        return web.FileResponse(path, headers={"Content-Type": ctype} if ctype else None)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, heartbeat=None)
        await ws.prepare(request)
        q = request.query
        room_name, name, user_id = q.get("room", ""), q.get("name", ""), q.get("user", "")
        room = self.rooms.get(room_name)
        reject = None
        if room is None:
            reject = f"unknown room {room_name!r}"
        elif not name or not user_id:
            reject = "join needs name and user query parameters"
        elif name in room.members or len(room.members) >= 2:
            reject = f"room {room_name!r} is full (members: {', '.join(room.members)})"
        if reject:
            if room is not None:
                room.record(name or "?", "stub", "error", 0, note=f"join refused: {reject}")
            await ws.send_json({"type": "error", "error": reject})
            await ws.close()
            return ws
        assert room is not None
        member = Member(name, user_id, ws)
        member.writer = asyncio.create_task(self._writer(room, member))
        room.members[name] = member
        if len(room.members) == 2:
            for m in room.members.values():
                other = room.other(m.name)
                await m.ws.send_json({"type": "ready", "self": {"name": m.name, "user_id": m.user_id},
                                      "peer": {"name": other.name, "user_id": other.user_id}})
            room._ready.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(room, member, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._error(room, member, "binary frames are not signaling messages", len(msg.data))
        finally:
            member.writer.cancel()
            if room.members.get(name) is member:
                del room.members[name]
        return ws

    async def _on_text(self, room: Room, member: Member, text: str) -> None:
        size = len(text.encode())
        if size > config.MAX_FRAME_BYTES:
            return await self._error(room, member, f"frame of {size} bytes exceeds {config.MAX_FRAME_BYTES}", size)
        try:
            frame = json.loads(text)
        except ValueError as exc:
            return await self._error(room, member, f"malformed JSON: {exc}", size)
        if not isinstance(frame, dict) or frame.get("type") != "signal" or "data" not in frame:
            return await self._error(room, member, 'expected {"type": "signal", "data": ...}', size)
        other = room.other(member.name)
        if other is None:
            return await self._error(room, member, "no other member in the room yet", size)
        rec = room.record(member.name, other.name, classify(frame["data"]), size, data=frame["data"])
        if room.control._admit(rec):
            await room.control.notify()
            return
        room._deliver(rec)

    async def _error(self, room: Room, member: Member, why: str, size: int) -> None:
        room.record(member.name, "stub", "error", size, note=why)
        log.info("room %s: %s: %s", room.name, member.name, why)
        if not member.ws.closed:
            await member.ws.send_json({"type": "error", "error": why})

    async def _writer(self, room: Room, member: Member) -> None:
        """One writer per member keeps deliveries in order."""
        while True:
            rec: MessageRecord = await member.outbox.get()
            if member.ws.closed:
                rec.note = (rec.note + "; " if rec.note else "") + "receiver closed, dropped"
                continue
            await member.ws.send_json({"type": "signal", "from": rec.sender, "seq": rec.seq, "data": rec.data})
            rec.delivered_t = room.now()
