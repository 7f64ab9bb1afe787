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
import contextlib
import importlib.util
import json
import re
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcpeerconnection import and_direction
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp
from yarl import URL

from .. import config, hostnet
from ..errors import RigError
from ..peerspec import PeerSpec
from ..vocab import GATE_METHODS, INJECTED
from ..waits import bounded
from .base import Peer


def load_negotiator(target: str | Path) -> Callable:
    """Load ``attach`` from ``path.py[:attr]`` or ``package.module[:attr]``."""
    text = str(target)
    where, _, attr = text.rpartition(":") if ":" in text and not text.endswith(".py") else (text, "", "attach")
    attr = attr or "attach"
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise RigError(f"negotiator {path}: no such file")
            name = f"rig_negotiator_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except RigError:
        raise
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        at = f" ({tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        raise RigError(f"negotiator {where} failed to load{at}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RigError(f"negotiator {where} has no callable {attr}(pc, signaler, *, polite)")
    return fn


def section_directions(sdp: str) -> dict[str, str]:
    """mid -> the direction attribute of its m-section (sendrecv when none is written)."""
    out: dict[str, str] = {}
    for section in re.split(r"\r?\n(?=m=)", sdp)[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", section, re.M)
        if mid:
            out[mid.group(1)] = direction.group(1) if direction else "sendrecv"
    return out


def description_to_wire(desc: RTCSessionDescription) -> dict:
    return {"type": desc.type, "sdp": desc.sdp}


def candidate_from_wire(c: dict | None):
    if not c or not c.get("candidate"):
        return None  # end of candidates
    text = c["candidate"]
    cand = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
    cand.sdpMid = c.get("sdpMid")
    cand.sdpMLineIndex = c.get("sdpMLineIndex")
    return cand


class RigInjectedError(Exception):
    """A fault the plan injected into an aiortc call."""


class PythonSignaler:
    """What a Python negotiator sees: ``send(data)`` and ``on_message``."""

    def __init__(self, peer: AiortcPeer) -> None:
        self._peer = peer
        self.on_message: Callable[[dict], Any] | None = None

    def send(self, data: dict) -> None:
        wire: dict[str, Any] = {}
        kind = "other"
        if data.get("description") is not None:
            wire["description"] = description_to_wire(data["description"])
            kind = data["description"].type
        elif "candidate" in data:
            c = data["candidate"]
            wire["candidate"] = None if c is None else {
                "candidate": "candidate:" + candidate_to_sdp(c), "sdpMid": c.sdpMid, "sdpMLineIndex": c.sdpMLineIndex}
            kind = "candidate"
        else:
            wire = data
        self._peer.record("signal-sent", {"kind": kind})
        self._peer._outbox.put_nowait(json.dumps({"type": "signal", "data": wire}))


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


class AiortcPeer(Peer):

    def __init__(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> None:
        super().__init__(spec, name, user_id, t0)
        self.version = version("aiortc")
        self.pc: RTCPeerConnection | None = None
        self.signaler = PythonSignaler(self)
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._ws = None
        self._tasks: list[asyncio.Task] = []
        self._remote_offer_sdps: set[str] = set()
        self._channels: list[dict] = []
        self._received: list[dict] = []
        self._flow_epoch = 0  # returns to "stable"; see _consume
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
        self._ops = 0  # description/candidate operations in progress (see _counted)
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

    def _gated(self, name: str, inner: Callable) -> Callable:
        async def call(*args):
            desc = args[0] if args else None
            type_ = desc.type if isinstance(desc, RTCSessionDescription) else ""
            before = self._take_gate(name, "before", type_)
            if before is not None:
                await self._pause(before, type_)
            after = self._take_gate(name, "after", type_)
            try:
                result = await inner(*args)
            except Exception:
                if after is not None:
                    await self._pause(after, type_)
                raise
            if after is not None:
                await self._pause(after, type_)
            return result
        return call

    def _counted(self, inner: Callable) -> Callable:
        """Counts operations in progress: the browsers' rule fires negotiationneeded only
        once the operations chain is empty, and aiortc changes signalingState before its
        setLocalDescription() is done (it still gathers and starts transports)."""
        async def call(*args):
            self._ops += 1
            try:
                return await inner(*args)
            finally:
                self._ops -= 1
                if self._ops == 0:
                    asyncio.get_running_loop().call_soon(self._maybe_negotiationneeded)
        return call

    async def _emit_negotiationneeded_later(self, g: dict) -> None:
        await self._pause(g, "")
        self.record("negotiationneeded-delivered", {"state": self.pc.signalingState})
        self.pc.emit("negotiationneeded")

    def _instrument(self, pc: RTCPeerConnection) -> None:
        """Wrap the instance's methods: call the original, then record. The wrappers also
        host the timing control: planned faults, and triggers that fire once the
        original operation has started (aiortc runs it as a task, so the armed message
        is handled while it is in progress)."""
        orig_sld, orig_srd, orig_add = pc.setLocalDescription, pc.setRemoteDescription, pc.addIceCandidate
        orig_create_offer, orig_create_answer = pc.createOffer, pc.createAnswer

        async def createOffer():
            self._fault("createOffer")
            offer = await orig_create_offer()
            if self._fire("offer-start"):
                # one scheduler pass, not a delay: the handler task _fire just created runs its
                # first step (FIFO) before createOffer returns, as a browser runs it synchronously
                await asyncio.sleep(0)
            return offer

        async def createAnswer():
            self._fault("createAnswer")
            return await orig_create_answer()

        async def implicit_sld() -> None:
            # aiortc's own implicit path calls self.createOffer()/createAnswer(), i.e. the
            # wrappers (gates, faults, offer-start); a browser's implicit
            # setLocalDescription() calls neither method of the page.
            made = await (orig_create_answer() if pc.signalingState == "have-remote-offer" else orig_create_offer())
            await orig_sld(made)

        async def setLocalDescription(desc=None):
            self._fault("setLocalDescription")
            before = pc.signalingState
            if (desc is None or desc.type == "offer") and before in ("stable", "have-local-offer"):
                self._fire("sld")
                self._fire("offer-start")
            task = asyncio.ensure_future(orig_sld(desc) if desc is not None else implicit_sld())
            try:
                await task
            except Exception as exc:
                self.record("api-error", {"method": "setLocalDescription", "name": type(exc).__name__,
                                          "message": str(exc), "state_before": before})
                raise
            local = pc.localDescription
            self.record("sdp", {"op": "local", "type": desc.type if desc is not None and desc.type == "rollback"
                                else (local.type if local else "?"), "sdp": local.sdp if local else ""})
            if desc is not None and desc.type == "rollback":
                self.record("rollback", {"how": "setLocalDescription(rollback)", "state_before": before})
            elif pc.localDescription is not None:
                ufrags = sorted(set(re.findall(r"a=ice-ufrag:(\S+)", pc.localDescription.sdp)))
                if pc.localDescription.type == "offer":
                    self.record("offer-made", {"state_before": before, "implicit": desc is None, "ufrags": ufrags})
                else:
                    self.record("answer-made", {"state_before": before, "ufrags": ufrags})

        async def setRemoteDescription(desc):
            self._fault("setRemoteDescription")
            before = pc.signalingState
            if desc.type == "offer":
                self._remote_offer_sdps.add(desc.sdp)
            if desc.type == "answer":
                self._fire("srd-answer")
            elif desc.type == "offer":
                self._fire("srd-offer")
            task = asyncio.ensure_future(orig_srd(desc))
            try:
                await task
            except Exception as exc:
                self.record("api-error", {"method": "setRemoteDescription", "name": type(exc).__name__,
                                          "message": str(exc), "type": desc.type, "state_before": before})
                raise
            self.record("sdp", {"op": "remote", "type": desc.type, "sdp": desc.sdp})
            if desc.type == "offer" and before == "have-local-offer":
                self.record("rollback", {"how": "implicit, setRemoteDescription(offer) in have-local-offer"})
            self.record("remote-description-set", {"type": desc.type, "state_before": before})

        async def addIceCandidate(candidate):
            self._fault("addIceCandidate")
            self._fire("aic")
            task = asyncio.ensure_future(orig_add(candidate))
            try:
                await task
            except Exception as exc:
                self.record("api-error", {"method": "addIceCandidate", "name": type(exc).__name__, "message": str(exc)})
                raise

        pc.createOffer = createOffer
        pc.createAnswer = createAnswer
        pc.setLocalDescription = setLocalDescription
        pc.setRemoteDescription = setRemoteDescription
        pc.addIceCandidate = addIceCandidate
        for name in ("setLocalDescription", "setRemoteDescription", "addIceCandidate"):
            setattr(pc, name, self._counted(getattr(pc, name)))
        for name in GATE_METHODS:  # gates wrap everything above (see rig-peer.js)
            setattr(pc, name, self._gated(name, getattr(pc, name)))

        @pc.on("signalingstatechange")
        def _on_signaling() -> None:
            self.record("signalingstatechange", {"state": pc.signalingState})
            if pc.signalingState == "stable":
                self._flow_epoch += 1
                self._spawn(self._mark_packets(self._flow_epoch), "counting received packets")
            if pc.signalingState != "stable":
                self._nn_fired = False
            # As a browser queues a task for it: the code awaiting the operation that changed the
            # state (e.g. the negotiator sending its answer) runs first. Fired synchronously, the
            # event let a new offer overtake the answer it came after.
            asyncio.get_running_loop().call_soon(self._maybe_negotiationneeded)

        @pc.on("connectionstatechange")
        def _on_connection() -> None:
            self.record("connectionstatechange", {"state": pc.connectionState})

        @pc.on("iceconnectionstatechange")
        def _on_ice() -> None:
            self.record("iceconnectionstatechange", {"state": pc.iceConnectionState})

        @pc.on("track")
        def _on_track(track) -> None:
            mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
            entry = {"kind": track.kind, "mid": mid, "frames": 0, "track": track, "epoch": None}
            self._received.append(entry)
            self.record("track", {"kind": track.kind, "mid": mid})
            self._spawn(self._consume(entry), f"receiving {track.kind}")

        @pc.on("datachannel")
        def _on_datachannel(channel) -> None:
            self._watch_channel(channel, "remote")
            self.record("datachannel", {"label": channel.label})

        @pc.on("error")
        def _on_error(exc) -> None:  # pyee reports exceptions of coroutine handlers here
            self.record("error", {"source": "negotiator handler", "text": f"{type(exc).__name__}: {exc}",
                                  "errors": [{"name": type(exc).__name__, "message": str(exc),
                                              "stack": "".join(traceback.format_exception(exc))}]})

    async def _consume(self, entry: dict) -> None:
        track = entry["track"]
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            entry["frames"] += 1
            # Once per return to "stable" (as rig-peer.js does): media must flow after each
            # negotiation, not only once.
            if entry["epoch"] != self._flow_epoch:
                again = entry["epoch"] is not None
                entry["epoch"] = self._flow_epoch
                self.record("media-flowing", {"kind": entry["kind"], "mid": entry["mid"], "frames": entry["frames"],
                                              "epoch": self._flow_epoch, **({"again": True} if again else {})})

    async def _packets(self, entry: dict) -> int | None:
        """RTP packets the receiver of ``entry``'s track has counted (its inbound-rtp stats:
        routed to it, before its jitter buffer), or None when that cannot be read."""
        pc = self.pc
        for t in pc.getTransceivers() if pc is not None else ():
            if t.receiver.track is entry["track"]:
                try:
                    stats = (await t.receiver.getStats()).values()
                except Exception:
                    return None
                return max((s.packetsReceived for s in stats if s.type == "inbound-rtp"), default=0)
        return None

    async def _mark_packets(self, epoch: int) -> None:
        """At a return to "stable": each receiver's packet count, so that a stalled track can
        be told apart (receive_detail)."""
        for entry in list(self._received):
            with contextlib.suppress(Exception):
                entry.setdefault("packets_at", {})[epoch] = await self._packets(entry)

    async def receive_detail(self, kind: str) -> str:
        """For each ``kind`` track with no frame since the last negotiation: whether its packets
        still arrive (a receive pipeline that stalled) or not (nothing routed to it)."""
        out = []
        for entry in self._received:
            if entry["kind"] != kind or entry["epoch"] == self._flow_epoch:
                continue
            now = await self._packets(entry)
            before = entry.get("packets_at", {}).get(self._flow_epoch)
            if now is None:
                out.append(f"mid {entry['mid']}: packets unknown")
            elif before is None:
                out.append(f"mid {entry['mid']}: {now} packets received in all, {entry['frames']} frames decoded, "
                           "none since its last negotiation")
            elif now > before:
                out.append(f"mid {entry['mid']}: {now - before} packets received since its last negotiation, "
                           f"no frame decoded ({entry['frames']} before)")
            else:
                out.append(f"mid {entry['mid']}: no packet received since its last negotiation")
        return "; ".join(out)

    def _watch_channel(self, channel, origin: str) -> None:
        entry = {"channel": channel, "origin": origin, "sent": [], "received": []}
        self._channels.append(entry)

        @channel.on("open")
        def _open() -> None:
            self.record("channel-open", {"label": channel.label, "origin": origin})

        if channel.readyState == "open":
            self.record("channel-open", {"label": channel.label, "origin": origin})

        @channel.on("message")
        def _message(msg) -> None:
            entry["received"].append(str(msg))
            self.record("channel-message", {"label": channel.label, "data": str(msg)})

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
        received = []
        for r in self._received:
            received.append({"kind": r["kind"], "mid": r["mid"], "framesDecoded": r["frames"],
                             "packetsReceived": await self._packets(r) or 0, "bytesReceived": None})
        return {
            "signalingState": pc.signalingState, "connectionState": pc.connectionState,
            "iceConnectionState": pc.iceConnectionState,
            "localUfrags": sorted(set(re.findall(r"a=ice-ufrag:(\S+)", pc.localDescription.sdp)))
            if pc.localDescription else [],
            "transceivers": [{"mid": t.mid, "kind": t.kind, "direction": t.direction,
                              "currentDirection": t.currentDirection, "sending": t.sender.track is not None}
                             for t in pc.getTransceivers()],
            "received": received,
            "channels": [{"label": c["channel"].label, "origin": c["origin"], "readyState": c["channel"].readyState,
                          "sent": c["sent"], "received": c["received"]} for c in self._channels],
            "stats": await self._stats(),
        }

    async def _stats(self) -> dict:
        """getStats() reduced like the browsers' (rig-peer.js); aiortc reports no mid and no
        candidate-pair stats, so the mid comes from the transceiver and the pair from aioice."""
        pc = self.pc
        out: dict[str, Any] = {"pair": None, "inbound": [], "outbound": [], "channels": [],
                               "note": "aiortc has no candidate-pair or data-channel stats: the pair is read "
                                       "from aioice, channel counts are the rig's own"}
        for t in pc.getTransceivers():
            try:
                for st in (await t.receiver.getStats()).values():
                    if st.type == "inbound-rtp":
                        out["inbound"].append({"mid": t.mid, "kind": t.kind, "packetsReceived": st.packetsReceived,
                                               "bytesReceived": getattr(st, "bytesReceived", None)})
                for st in (await t.sender.getStats()).values():
                    if st.type == "outbound-rtp":
                        out["outbound"].append({"mid": t.mid, "kind": t.kind, "packetsSent": st.packetsSent,
                                                "bytesSent": st.bytesSent})
            except Exception:
                continue
        try:
            ice = (pc.sctp.transport.transport if pc.sctp else pc.getTransceivers()[0].receiver.transport.transport)
            nominated = getattr(ice._connection, "_nominated", {})
            pair = nominated.get(1) if nominated else None
            if pair is not None:
                def cand(c) -> dict:
                    return {"type": c.type, "protocol": c.transport, "address": c.host, "port": c.port}
                out["pair"] = {"local": cand(pair.local_candidate), "remote": cand(pair.remote_candidate),
                               "state": getattr(pair.state, "name", str(pair.state)).lower()}
        except Exception:
            pass
        out["channels"] = [{"label": c["channel"].label, "state": c["channel"].readyState,
                            "messagesSent": len(c["sent"]), "messagesReceived": len(c["received"])}
                           for c in self._channels]
        return out

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
