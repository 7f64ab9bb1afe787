"""The aiortc peer: in-process, same interface as the browser peers.

aiortc lacks three things the pattern relies on, and this module supplies or reports
them honestly: ``negotiationneeded`` is raised here after a change that needs
negotiation (and again when the connection returns to "stable" while one is pending);
there is no rollback, so nothing is faked (a polite aiortc peer fails in glare with
aiortc's own error); and there is no operations chain, so incoming messages are handed
to the negotiator one at a time, in order.
"""

from __future__ import annotations

import asyncio
import json
import re
import traceback
from importlib.metadata import version
from typing import Any

import aiohttp
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcpeerconnection import and_direction
from yarl import URL

from .. import config, hostnet
from ..errors import RigError
from ..peerspec import PeerSpec
from ..vocab import INJECTED
from ..waits import bounded
from .aiortc_instrumentation import Instrumentation
from .aiortc_media import Media
from .aiortc_signaler import PythonSignaler, candidate_from_wire, load_negotiator
from .base import Peer


def section_directions(sdp: str) -> dict[str, str]:
    """mid -> the direction attribute of its m-section (sendrecv when none is written)."""
    out: dict[str, str] = {}
    for section in re.split(r"\r?\n(?=m=)", sdp)[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", section, re.M)
        if mid:
            out[mid.group(1)] = direction.group(1) if direction else "sendrecv"
    return out


class RigInjectedError(Exception):
    """A fault the plan injected into an aiortc call."""


_PROBED: dict[str, bool] | None = None


async def probe_aiortc() -> dict[str, bool]:
    """aiortc's capabilities, probed once per process on a throw-away connection: the
    methods on RTCPeerConnection, and whether setLocalDescription emits icecandidate
    events (aiortc 1.16 gathers before it resolves and writes the candidates into the SDP)."""
    global _PROBED
    if _PROBED is None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        seen: list = []
        pc.on("icecandidate", seen.append)
        try:
            pc.createDataChannel("probe")
            await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), config.STEP_TIMEOUT)
        finally:
            await bounded(pc.close(), config.CLOSE_TIMEOUT)
        _PROBED = {"removeTrack": callable(getattr(pc, "removeTrack", None)),
                   "restartIce": callable(getattr(pc, "restartIce", None)),
                   "trickle": bool(seen)}
    return dict(_PROBED)


class AiortcPeer(Instrumentation, Media, Peer):
    """An aiortc RTCPeerConnection run by a Python negotiator: joined to the signaling stub,
    instrumented (rig.peers.aiortc_instrumentation), its media received and counted
    (rig.peers.aiortc_media), its incoming messages handed to the negotiator one at a time,
    under the plan's timing control (armed messages, gates, faults)."""

    def __init__(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> None:
        super().__init__(spec, name, user_id, t0)
        self.version = version("aiortc")
        self.pc: RTCPeerConnection | None = None
        self._outbox: asyncio.Queue = asyncio.Queue()
        self.signaler = PythonSignaler(self.record, self._outbox)
        self._session: aiohttp.ClientSession | None = None
        self._ws = None
        self._tasks: list[asyncio.Task] = []
        self._remote_offer_sdps: set[str] = set()
        self._channels: list[dict] = []  # rig.peers.aiortc_media
        self._received: list[dict] = []
        self._flow_epoch = 0  # returns to "stable"; see Media._consume
        self._negotiation_pending = False
        self._nn_fired = False
        self._changes = 0
        self._attached: asyncio.Future | None = None
        self._pending: list[dict] = []
        self._armed: dict[int, str] = {}
        self._barriers: dict[int, int] = {}
        self._stash: tuple[dict, str] | None = None
        self._injected: asyncio.Task | None = None
        self._wake_dispatch = asyncio.Event()
        self._faults: dict[str, int] = {}
        self._gates: list[dict] = []
        self._ops = 0  # description/candidate operations in progress (see Instrumentation._counted)
        self._raise_next: BaseException | None = None  # rig.faults' aiortc-raise

    # -- plumbing ----------------------------------------------------------------
    def _spawn(self, coro, what: str) -> asyncio.Task:
        async def guarded():
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.record("error", {"source": what, "text": f"{type(exc).__name__}: {exc}",
                                      "errors": [{"name": type(exc).__name__, "message": str(exc),
                                                  "stack": traceback.format_exc()}]})
        task = asyncio.create_task(guarded())
        # A task cancelled before its first step (close() cancels every task at once) never
        # runs guarded(), so nothing awaits ``coro``: it is closed when the task is done (a
        # no-op for a coroutine guarded() ran to its end).
        task.add_done_callback(lambda _: coro.close())
        self._tasks.append(task)
        return task

    def _fault(self, method: str) -> None:
        if self._faults.get(method):
            self._faults[method] -= 1
            self.record("fault-injected", {"method": method, "state": self.pc.signalingState})
            raise RigInjectedError(f"{INJECTED}: {method} fails once")

    def _fire(self, trigger: str) -> bool:
        """Open the gates waiting for ``trigger``; hand the stashed message over now: the
        negotiator's handler is started as a task at once, so its first step runs before
        the operation that fired does (the wrappers start that operation after firing),
        as a browser runs it synchronously while the operation is only enqueued. True
        when a message was handed over."""
        for g in self._gates:
            if g["taken"] and g["open_on"] == trigger and not g["opened"].is_set():
                self.record("gate-opened", {"id": g["id"], "step": g["step"], "when": g["when"], "by": trigger,
                                            "state": self.pc.signalingState})
                g["opened"].set()
        if self._stash is None or self._stash[1] != trigger:
            return False
        frame, _ = self._stash
        self._stash = None
        self.record("injected", {"seq": frame.get("seq"), "trigger": trigger, "state": self.pc.signalingState})
        self._injected = self._spawn(self._finish(frame, self._hand_over(frame)), "injected message")
        self._prescan()
        self._wake_dispatch.set()
        return True

    # -- gates (same semantics as the browser plumbing) --------------------------
    def _take_gate(self, step: str, when: str, type_: str) -> dict | None:
        for g in self._gates:
            if not g["taken"] and g["step"] == step and g["when"] == when and g["type"] in ("", type_):
                g["taken"] = True
                return g
        return None

    async def _pause(self, g: dict, type_: str) -> None:
        self.record("gate-reached", {"id": g["id"], "step": g["step"], "when": g["when"], "type": type_,
                                     "state": self.pc.signalingState})
        await g["opened"].wait()

    async def _emit_negotiationneeded_later(self, g: dict) -> None:
        await self._pause(g, "")
        self.record("negotiationneeded-delivered", {"state": self.pc.signalingState})
        self.pc.emit("negotiationneeded")

    def _needs_negotiation(self) -> bool:
        pc = self.pc
        unmapped = any(t.mid is None for t in pc.getTransceivers())
        channel_unnegotiated = bool(self._channels) and (pc.sctp is None or pc.sctp.mid is None)
        return unmapped or channel_unnegotiated or self._direction_changed()

    def _direction_changed(self) -> bool:
        """The spec's rule for a negotiated transceiver whose direction changed since the
        last local description (e.g. addTrack() reusing a recvonly transceiver): against a
        local offer, its direction must match the offered one; against a local answer, its
        direction intersected with the remote offer's (reversed) must match the answered one."""
        local = self.pc.localDescription
        if local is None:
            return False
        negotiated = section_directions(local.sdp)
        for t in self.pc.getTransceivers():
            if t.mid is None or t.mid not in negotiated:
                continue
            if local.type == "offer":
                wanted = t.direction
            elif t._offerDirection is None:  # aiortc keeps the remote offer's direction, reversed, here
                continue
            else:
                wanted = and_direction(t.direction, t._offerDirection)
            if negotiated[t.mid] != wanted:
                return True
        return False

    def _maybe_negotiationneeded(self) -> None:
        """aiortc has no negotiationneeded: fire it when a change awaits negotiation and
        the connection is "stable", once per stable period, as the spec's rule does."""
        pc = self.pc
        if pc is None or self.closing or self._ops or pc.signalingState != "stable" or self._nn_fired:
            return
        if not self._needs_negotiation():
            return
        self._nn_fired = True
        self.record("negotiationneeded", {"state": pc.signalingState, "raised_by": "rig"})
        g = self._take_gate("negotiationneeded", "before", "")
        if g is not None:
            self._spawn(self._emit_negotiationneeded_later(g), "held negotiationneeded")
            return
        pc.emit("negotiationneeded")

    async def _writer(self) -> None:
        while True:
            text = await self._outbox.get()
            await self._ws.send_str(text)

    async def _reader(self, ready: asyncio.Future) -> None:
        await self._read(ready)
        if not self.closing:  # the peer closes its own socket only at teardown
            code = self._ws.close_code
            self.record("error", {"source": "signaling", "text": f"signaling WebSocket closed by the other end "
                                                                 f"(code {code}) in the middle of the case"})

    async def _read(self, ready: asyncio.Future) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("type") == "ready":
                if not ready.done():
                    ready.set_result(frame)
            elif frame.get("type") == "error":
                self.record("error", {"source": "signaling stub", "text": frame.get("error", "")})
            elif frame.get("type") == "signal":
                self._pending.append(frame)
                self._prescan()
                self._wake_dispatch.set()

    def _prescan(self) -> None:
        """An armed message is taken out of the line as soon as it arrives (the stash)."""
        if self._stash is not None:
            return
        for f in self._pending:
            if f.get("seq") in self._armed:
                self._pending.remove(f)
                self._stash = (f, self._armed.pop(f["seq"]))
                self.record("stashed", {"seq": f["seq"], "trigger": self._stash[1]})
                return

    def _next(self) -> dict | None:
        if not self._pending:
            return None
        head = self._pending[0]
        if self._stash is not None and head["seq"] > self._stash[0]["seq"]:
            return None  # later messages wait behind the stash
        need = self._barriers.get(head["seq"])
        if need is not None and need in self._armed:
            return None  # its armed companion has not arrived
        self._barriers.pop(head["seq"], None)
        return self._pending.pop(0)

    async def _dispatcher(self) -> None:
        """Hands messages to the negotiator one at a time, in order (aiortc has no
        operations chain); an injected message is awaited before the next one."""
        await self._attached  # never deliver before the negotiator is attached
        while True:
            if self._injected is not None:
                await asyncio.gather(self._injected, return_exceptions=True)
                self._injected = None
            frame = self._next()
            if frame is None:
                self._wake_dispatch.clear()
                await self._wake_dispatch.wait()  # woken by the reader or a trigger; cancelled at close
                continue
            await self._finish(frame, self._hand_over(frame))

    def _hand_over(self, frame: dict) -> tuple[str, dict, asyncio.Future | None] | None:
        """Hand one message to the negotiator now: its handler is called, and a coroutine
        it returns is started as a task (its first step runs next). None when the message
        could not be handed over (recorded)."""
        data, seq = frame.get("data") or {}, frame.get("seq")
        kind = "other"
        try:
            if data.get("description") is not None:
                d = data["description"]
                kind = d.get("type", "other")
                obj: dict[str, Any] = {"description": RTCSessionDescription(sdp=d.get("sdp", ""), type=d["type"])}
            elif "candidate" in data:
                kind = "candidate"
                obj = {"candidate": candidate_from_wire(data["candidate"])}
            else:
                obj = dict(data)
        except Exception as exc:
            self.record("error", {"source": "rig signaler", "text": f"message #{seq} could not be converted: {exc}"})
            return None
        self.record("signal-received", {"seq": seq, "kind": kind})
        handler = self.signaler.on_message
        if self._raise_next is not None and handler is not None:  # rig.faults' aiortc-raise
            exc, self._raise_next = self._raise_next, None

            def handler(obj: dict, exc: BaseException = exc) -> None:
                raise exc
        if handler is None:
            self.record("error", {"source": "rig", "text": f"message #{seq} arrived but the negotiator set no signaler.on_message"})
            return None
        try:
            ret = handler(obj)
        except Exception as exc:
            self._handler_error(exc)
            return None
        running = asyncio.ensure_future(ret) if asyncio.iscoroutine(ret) or isinstance(ret, asyncio.Future) else None
        return kind, obj, running

    def raise_in_handler(self, exc: BaseException) -> None:
        """The negotiator's handler raises ``exc`` at the next message (rig.faults)."""
        self._raise_next = exc

    def _handler_error(self, exc: BaseException) -> None:
        self.record("error", {"source": "negotiator on_message", "text": f"{type(exc).__name__}: {exc}",
                              "errors": [{"name": type(exc).__name__, "message": str(exc),
                                          "stack": "".join(traceback.format_exception(exc))}]})

    async def _finish(self, frame: dict, handed: tuple[str, dict, asyncio.Future | None] | None) -> None:
        """Wait (bounded) until the negotiator has handled a message handed over (no overlap)."""
        if handed is None:
            return
        kind, obj, running = handed
        seq = frame.get("seq")
        if running is not None:
            try:
                await asyncio.wait_for(running, config.STEP_TIMEOUT)
            except TimeoutError:
                self.record("error", {"source": "negotiator on_message",
                                      "text": f"handling message #{seq} took over {config.STEP_TIMEOUT:.0f} s"})
                return
            except Exception as exc:
                self._handler_error(exc)
                return
        if kind == "offer" and obj["description"].sdp not in self._remote_offer_sdps:
            self.record("offer-ignored", {"seq": seq, "state": self.pc.signalingState})

    # -- interface ---------------------------------------------------------------
    async def join(self, *, ws_url: str, room: str, negotiator: Any) -> None:
        attach = load_negotiator(negotiator) if not callable(negotiator) else negotiator
        self._session = aiohttp.ClientSession()
        # ws_url carries the stub's token in its query: add to it, never replace it
        url = URL(ws_url).update_query({"room": room, "name": self.name, "user": str(self.user_id)})
        try:
            self._ws = await asyncio.wait_for(self._session.ws_connect(url), config.STEP_TIMEOUT)
        except aiohttp.WSServerHandshakeError as exc:  # its message would repeat the URL, token and all
            raise RigError(f"{self}: the signaling stub refused the join (HTTP {exc.status})") from None
        except Exception as exc:
            raise RigError(f"{self} could not reach the signaling stub: {exc}") from None
        loop = asyncio.get_running_loop()
        ready: asyncio.Future = loop.create_future()
        self._attached = loop.create_future()
        self._spawn(self._writer(), "signaling writer")
        self._spawn(self._reader(ready), "signaling reader")
        self._spawn(self._dispatcher(), "signaling dispatcher")
        try:
            frame = await asyncio.wait_for(asyncio.shield(ready), config.STEP_TIMEOUT)
        except TimeoutError:
            raise RigError(f"{self} got no 'ready' from the signaling stub within {config.STEP_TIMEOUT:.0f} s") from None
        other = frame["peer"]["user_id"]
        self.polite = int(self.user_id) > int(other)
        if hostnet.loopback_only():
            hostnet.aiortc_loopback()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._instrument(self.pc)
        try:
            attach(self.pc, self.signaler, polite=self.polite)
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            at = f" ({tb[-1].filename}:{tb[-1].lineno})" if tb else ""
            raise RigError(f"negotiator attach() raised{at}: {type(exc).__name__}: {exc}") from None
        self.record("attached", {"polite": self.polite, "userId": self.user_id, "otherUserId": other})
        self._attached.set_result(True)

    async def change(self, action: str) -> dict:
        self._changes += 1
        if action in ("add-video", "add-audio"):
            track = VideoStreamTrack() if action == "add-video" else AudioStreamTrack()
            self.pc.addTrack(track)
            self.record("change", {"action": action, "kind": track.kind})
            out = {"kind": track.kind}
        elif action in ("remove-track", "restart-ice"):
            # the case runs only if probe() found the method (rig.capabilities): an aiortc that
            # grows it needs its call written here, and the cell says so instead of passing
            raise RigError(f"{self}: {action} is not implemented in the rig's aiortc peer yet")
        elif action == "add-datachannel":
            label = f"{self.name}-dc-{self._changes}"
            self._watch_channel(self.pc.createDataChannel(label), "local")
            self.record("change", {"action": action, "label": label})
            out = {"label": label}
        else:
            raise RigError(f"unknown change {action}")
        self._maybe_negotiationneeded()
        return out

    async def probe(self) -> dict[str, bool]:
        self.capabilities = await probe_aiortc()
        return self.capabilities

    async def arm(self, seq: int, trigger: str, after: int | None = None) -> None:
        self._armed[seq] = trigger
        if after is not None:
            self._barriers[after] = seq

    async def fail_next(self, method: str) -> None:
        self._faults[method] = self._faults.get(method, 0) + 1

    async def gate(self, gid: int, step: str, when: str, type_: str = "", open_on: str = "") -> None:
        self._gates.append({"id": gid, "step": step, "when": when, "type": type_, "open_on": open_on,
                            "taken": False, "opened": asyncio.Event()})

    async def open_gate(self, gid: int, by: str = "rig") -> None:
        g = next((g for g in self._gates if g["id"] == gid), None)
        if g is None:
            raise RigError(f"{self}: no gate #{gid}")
        self.record("gate-opened", {"id": gid, "step": g["step"], "when": g["when"], "by": by,
                                    "state": self.pc.signalingState if self.pc else "new"})
        g["opened"].set()

    async def send(self, label: str, text: str) -> None:
        entry = next((c for c in self._channels if c["channel"].label == label), None)
        if entry is None:
            raise RigError(f"{self}: no data channel {label}")
        entry["channel"].send(text)
        entry["sent"].append(text)

    async def snapshot(self) -> dict:
        pc = self.pc
        if pc is None:
            return {"signalingState": "new", "connectionState": "new", "transceivers": [], "received": [], "channels": []}
        received = await self._received_snapshot()
        return {
            "signalingState": pc.signalingState, "connectionState": pc.connectionState,
            "iceConnectionState": pc.iceConnectionState,
            "localUfrags": sorted(set(re.findall(r"a=ice-ufrag:(\S+)", pc.localDescription.sdp)))
            if pc.localDescription else [],
            "transceivers": [{"mid": t.mid, "kind": t.kind, "direction": t.direction,
                              "currentDirection": t.currentDirection, "sending": t.sender.track is not None}
                             for t in pc.getTransceivers()],
            "received": received,
            "channels": self._channels_snapshot(),
            "stats": await self._stats(),
        }

    async def close(self) -> None:
        """Every step bounded: aiortc's teardown has been seen to swallow cancellation."""
        for task in self._tasks:
            task.cancel()
        stuck = []
        if self.pc is not None and not await bounded(self.pc.close(), config.CLOSE_TIMEOUT):
            stuck.append("RTCPeerConnection.close()")
        if self._ws is not None and not await bounded(self._ws.close(), config.CLOSE_TIMEOUT):
            stuck.append("signaling WebSocket close")
        if self._session is not None and not await bounded(self._session.close(), config.CLOSE_TIMEOUT):
            stuck.append("HTTP session close")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks and not await bounded(asyncio.gather(*self._tasks, return_exceptions=True), config.CLOSE_TIMEOUT):
            stuck.append("its tasks")
        if stuck:
            self.record("teardown", {"text": f"did not finish within {config.CLOSE_TIMEOUT:g} s: {', '.join(stuck)}"})
