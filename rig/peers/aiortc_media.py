"""What an aiortc peer receives: its tracks' frames, its data channels, and their stats.

Media must flow after each negotiation, not only once: each track is consumed frame by
frame and "media-flowing" is recorded once per return to "stable" (a flow epoch), as the
browser plumbing (rig-peer.js) does. When a track stays silent, its receiver's packet
counts, taken at each return to "stable", tell a stalled receive pipeline from a track
nothing is routed to.

A mixin of rig.peers.aiortc_peer.AiortcPeer: it works on the peer's ``pc``, ``record``,
``_spawn``, and on ``_received``, ``_channels`` and ``_flow_epoch``, set up in the peer's
__init__.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError


class Media:
    """The received tracks and the data channels of an AiortcPeer."""

    def _listen_media(self, pc: RTCPeerConnection) -> None:
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

    def _new_flow_epoch(self) -> None:
        """A return to "stable": media must flow again, and each receiver's packet count is taken."""
        self._flow_epoch += 1
        self._spawn(self._mark_packets(self._flow_epoch), "counting received packets")

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

    async def _received_snapshot(self) -> list[dict]:
        return [{"kind": r["kind"], "mid": r["mid"], "framesDecoded": r["frames"],
                 "packetsReceived": await self._packets(r) or 0, "bytesReceived": None} for r in self._received]

    def _channels_snapshot(self) -> list[dict]:
        return [{"label": c["channel"].label, "origin": c["origin"], "readyState": c["channel"].readyState,
                 "sent": c["sent"], "received": c["received"]} for c in self._channels]

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
        out["pair"] = _nominated_pair(pc)
        out["channels"] = [{"label": c["channel"].label, "state": c["channel"].readyState,
                            "messagesSent": len(c["sent"]), "messagesReceived": len(c["received"])}
                           for c in self._channels]
        return out


def _nominated_pair(pc: RTCPeerConnection) -> dict | None:
    """The ICE candidate pair aioice nominated (aiortc does not report it), or None."""
    try:
        ice = (pc.sctp.transport.transport if pc.sctp else pc.getTransceivers()[0].receiver.transport.transport)
        nominated = getattr(ice._connection, "_nominated", {})
        pair = nominated.get(1) if nominated else None
        if pair is not None:
            def cand(c) -> dict:
                return {"type": c.type, "protocol": c.transport, "address": c.host, "port": c.port}
            return {"local": cand(pair.local_candidate), "remote": cand(pair.remote_candidate),
                    "state": getattr(pair.state, "name", str(pair.state)).lower()}
    except Exception:
        pass
    return None
