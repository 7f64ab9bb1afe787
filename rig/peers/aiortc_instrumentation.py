"""The instrumentation of an aiortc RTCPeerConnection: its methods wrapped, its events heard.

Each wrapper calls the original first and records what it did (a browser peer's plumbing,
rig-peer.js, does the same in the page). The wrappers also host the timing control:
planned faults, triggers that fire once the original operation has started (aiortc runs
it as a task, so an armed message is handled while it is in progress), the count of
operations in progress that negotiationneeded waits for, and gates around each method.

A mixin of rig.peers.aiortc_peer.AiortcPeer: it works on the peer's own state and timing
control (``record``, ``_fault``, ``_fire``, ``_take_gate``, ``_pause``, ``_spawn``,
``_ops``, ``_nn_fired``, ``_remote_offer_sdps``, ``_maybe_negotiationneeded``, and the
media mixin's ``_new_flow_epoch`` and ``_listen_media``), set up in the peer's __init__.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from ..vocab import GATE_METHODS

#: the methods whose originals the wrappers call, captured before any is replaced
WRAPPED = ("createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate")


class Instrumentation:
    """The wrappers and listeners an AiortcPeer puts on its RTCPeerConnection."""

    def _instrument(self, pc: RTCPeerConnection) -> None:
        """Wrap the instance's methods (call the original, then record) and listen to its events.
        Counting wraps the operations, gates wrap everything (as in rig-peer.js)."""
        orig = {name: getattr(pc, name) for name in WRAPPED}
        pc.createOffer = self._wrap_create_offer(orig["createOffer"])
        pc.createAnswer = self._wrap_create_answer(orig["createAnswer"])
        pc.setLocalDescription = self._wrap_set_local(pc, orig)
        pc.setRemoteDescription = self._wrap_set_remote(pc, orig["setRemoteDescription"])
        pc.addIceCandidate = self._wrap_add_candidate(orig["addIceCandidate"])
        for name in ("setLocalDescription", "setRemoteDescription", "addIceCandidate"):
            setattr(pc, name, self._counted(getattr(pc, name)))
        for name in GATE_METHODS:
            setattr(pc, name, self._gated(name, getattr(pc, name)))
        self._listen(pc)
        self._listen_media(pc)

    async def _recorded(self, method: str, operation: Awaitable, **context: Any) -> Any:
        """Run the original operation as a task; an error it raises is recorded as an
        api-error (with ``context``) and raised on."""
        task = asyncio.ensure_future(operation)
        try:
            return await task
        except Exception as exc:
            self.record("api-error", {"method": method, "name": type(exc).__name__, "message": str(exc), **context})
            raise

    # -- the methods ---------------------------------------------------------------
    def _wrap_create_offer(self, orig: Callable) -> Callable:
        async def createOffer():
            self._fault("createOffer")
            offer = await orig()
            if self._fire("offer-start"):
                # one scheduler pass, not a delay: the handler task _fire just created runs its
                # first step (FIFO) before createOffer returns, as a browser runs it synchronously
                await asyncio.sleep(0)
            return offer
        return createOffer

    def _wrap_create_answer(self, orig: Callable) -> Callable:
        async def createAnswer():
            self._fault("createAnswer")
            return await orig()
        return createAnswer

    def _wrap_set_local(self, pc: RTCPeerConnection, orig: dict[str, Callable]) -> Callable:
        orig_sld = orig["setLocalDescription"]

        async def implicit_sld() -> None:
            # aiortc's own implicit path calls self.createOffer()/createAnswer(), i.e. the
            # wrappers (gates, faults, offer-start); a browser's implicit
            # setLocalDescription() calls neither method of the page.
            made = await (orig["createAnswer"]() if pc.signalingState == "have-remote-offer"
                          else orig["createOffer"]())
            await orig_sld(made)

        async def setLocalDescription(desc=None):
            self._fault("setLocalDescription")
            before = pc.signalingState
            if (desc is None or desc.type == "offer") and before in ("stable", "have-local-offer"):
                self._fire("sld")
                self._fire("offer-start")
            await self._recorded("setLocalDescription", orig_sld(desc) if desc is not None else implicit_sld(),
                                 state_before=before)
            self._record_local(pc, desc, before)
        return setLocalDescription

    def _record_local(self, pc: RTCPeerConnection, desc: RTCSessionDescription | None, before: str) -> None:
        """What a setLocalDescription() that succeeded did: the SDP, and the rollback, offer or answer."""
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

    def _wrap_set_remote(self, pc: RTCPeerConnection, orig: Callable) -> Callable:
        async def setRemoteDescription(desc):
            self._fault("setRemoteDescription")
            before = pc.signalingState
            if desc.type == "offer":
                self._remote_offer_sdps.add(desc.sdp)
            if desc.type == "answer":
                self._fire("srd-answer")
            elif desc.type == "offer":
                self._fire("srd-offer")
            await self._recorded("setRemoteDescription", orig(desc), type=desc.type, state_before=before)
            self.record("sdp", {"op": "remote", "type": desc.type, "sdp": desc.sdp})
            if desc.type == "offer" and before == "have-local-offer":
                self.record("rollback", {"how": "implicit, setRemoteDescription(offer) in have-local-offer"})
            self.record("remote-description-set", {"type": desc.type, "state_before": before})
        return setRemoteDescription

    def _wrap_add_candidate(self, orig: Callable) -> Callable:
        async def addIceCandidate(candidate):
            self._fault("addIceCandidate")
            self._fire("aic")
            await self._recorded("addIceCandidate", orig(candidate))
        return addIceCandidate

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

    def _gated(self, name: str, inner: Callable) -> Callable:
        """Holds the call at a gate the plan set before or after it (same semantics as the
        browser plumbing); an after-gate holds a failed call too."""
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

    # -- the events ----------------------------------------------------------------
    def _listen(self, pc: RTCPeerConnection) -> None:
        """Record the connection's state changes and the errors of the negotiator's handlers."""
        @pc.on("signalingstatechange")
        def _on_signaling() -> None:
            self.record("signalingstatechange", {"state": pc.signalingState})
            if pc.signalingState == "stable":
                self._new_flow_epoch()
            if pc.signalingState != "stable":
                self._nn_fired = False
            # As a browser queues a task for it: the code awaiting the operation that changed the
            # state (e.g. the negotiator sending its answer) runs first. Fired synchronously, the
            # event would let a new offer overtake the answer it came after.
            asyncio.get_running_loop().call_soon(self._maybe_negotiationneeded)

        @pc.on("connectionstatechange")
        def _on_connection() -> None:
            self.record("connectionstatechange", {"state": pc.connectionState})

        @pc.on("iceconnectionstatechange")
        def _on_ice() -> None:
            self.record("iceconnectionstatechange", {"state": pc.iceConnectionState})

        @pc.on("error")
        def _on_error(exc) -> None:  # pyee reports exceptions of coroutine handlers here
            self.record("error", {"source": "negotiator handler", "text": f"{type(exc).__name__}: {exc}",
                                  "errors": [{"name": type(exc).__name__, "message": str(exc),
                                              "stack": "".join(traceback.format_exception(exc))}]})
