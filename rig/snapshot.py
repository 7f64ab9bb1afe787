"""A peer's end state as it reported it (``peer.snapshot()``: rig-peer.js ``snapshot``,
rig.peers.aiortc_peer): signaling and connection states, transceivers, received media, data
channels, local ICE ufrags and reduced transport stats; or ``{"error": ...}`` alone when the
peer could not report one. rig.model.CaseDetail keeps one per role; the verdict's final checks
and the case page read it.

Field names are the peers' own (camelCase, as the W3C API spells them), so the file holds what
the peer said. Every field is optional: an old page, a peer host on another version or a failed
snapshot reports less.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_serializer, model_validator


class Sparse(BaseModel):
    """A record that writes back only the keys it was given, in the order it was given them (its
    defaults are for reading), so a file read and written again is the same file, and a field
    one peer or variant leaves out stays out."""

    model_config = ConfigDict(extra="ignore")
    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _keep_order(cls, data: Any, handler: Any) -> Any:
        made = handler(data)
        if isinstance(data, dict) and isinstance(made, Sparse):
            made._order = tuple(data)
        return made

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> Any:
        out = handler(self)
        if not isinstance(out, dict):
            return out
        keys = [*(k for k in self._order if k in out), *(k for k in out if k not in self._order)]
        return {k: out[k] for k in keys if k in self.model_fields_set}


#: Peers report more than the rig reads (a browser adds its page's address, a newer page more
#: counters): these models keep unknown keys (docs/design.md, "Unknown keys").
Count = int | float | None


class Reported(Sparse):
    model_config = ConfigDict(extra="allow")


class Transceiver(Reported):
    mid: str | None = None
    kind: str | None = None
    direction: str | None = None
    currentDirection: str | None = None
    sending: bool = False


class Media(Reported):
    """What a receiver counted of one track (a snapshot's ``received``, its stats' inbound-rtp)."""

    kind: str | None = None
    mid: str | None = None
    bytesReceived: Count = None
    packetsReceived: Count = None
    framesDecoded: Count = None


class ReceivedMedia(Media):
    """``error``: the page could not read the receiver's counters."""

    error: str = ""


class Channel(Reported):
    label: str = ""
    origin: str = ""
    readyState: str = ""
    sent: list[Any] = Field(default_factory=list)
    received: list[Any] = Field(default_factory=list)


class Endpoint(Reported):
    type: str | None = None
    protocol: str | None = None
    address: str | None = None
    port: int | None = None


class Traffic(Reported):
    """The bytes that went each way over one path: a candidate pair, a data channel."""

    bytesSent: Count = None
    bytesReceived: Count = None


class CandidatePair(Traffic):
    local: Endpoint | None = None
    remote: Endpoint | None = None
    state: str | None = None
    currentRoundTripTime: Count = None


class RtpStats(Media):
    """An inbound-rtp (the counters received) or outbound-rtp (these, sent) entry."""

    bytesSent: Count = None
    packetsSent: Count = None


class ChannelStats(Traffic):
    label: str | None = None
    state: str | None = None  # the channel's readyState, as getStats() names it
    messagesSent: Count = None
    messagesReceived: Count = None


class Stats(Reported):
    """getStats() reduced: the selected pair, RTP streams and data channels; ``note`` says what
    the peer could not report (aiortc: no pair or data-channel stats, so the rig counts the
    channels' messages itself, without bytes; a browser: getStats() failed)."""

    pair: CandidatePair | None = None
    inbound: list[RtpStats] = Field(default_factory=list)
    outbound: list[RtpStats] = Field(default_factory=list)
    channels: list[ChannelStats] = Field(default_factory=list)
    note: str = ""


class Snapshot(Reported):
    """A peer's end state as it reported it, or ``error`` alone when it could not report one."""

    signalingState: str | None = None
    connectionState: str | None = None
    iceConnectionState: str | None = None
    localUfrags: list[str] = Field(default_factory=list)
    transceivers: list[Transceiver] = Field(default_factory=list)
    received: list[ReceivedMedia] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    stats: Stats | None = None
    #: a browser peer: the address its page came from
    page: str = ""
    error: str = ""
