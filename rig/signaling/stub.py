"""The stub's aiohttp app: its routes (the WebSocket at /ws, fixtures/ and registered files), the
handler that admits a member to a room and relays its frames, one writer per member, and the
runner that listens on 127.0.0.1 (and on ``--rig-stub-host`` over HTTPS, rig.signaling.stub_host).

What happens to a frame once it is in a room (recorded, held, dropped, duplicated, budgeted) is
the room's (rig.signaling.room); whether it is a frame at all is rig.signaling.messages'.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web

from .. import config
from ..errors import RigError
from .messages import FrameError, MessageRecord, classify, parse_frame, short
from .room import Member, Room
from .stub_host import LOOPBACK, check_stub_host, self_signed, url_host

log = logging.getLogger(__name__)


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

    ``host``: the address remote browsers reach the stub at (rig.signaling.stub_host.check_stub_host);
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
                tls = self_signed(host)
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
        return f"https://{url_host(self.host)}:{self.remote_port}"

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
                                     short(request.query.get("room", "")), why))
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
            reject = f"unknown room {short(room_name)}"
        elif not name or not user_id:
            reject = "join needs name and user query parameters"
        elif name in room.members or len(room.members) >= config.ROOM_MEMBERS:
            reject = f"room {short(room_name)} is full (members: {', '.join(short(n) for n in room.members)})"
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
                room.set_ready()
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
                rec.add_note("receiver closed, dropped")
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
        if room.control.admit(rec):
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
                    rec.add_note("receiver closed, dropped")
                    continue
                why = await self._send(member.ws, member.transport,
                                       {"type": "signal", "from": rec.sender, "seq": rec.seq, "data": rec.data})
                if why:
                    rec.add_note(f"{why}, dropped")
                else:
                    rec.delivered_t = room.now()
            finally:
                member.taken(rec)

