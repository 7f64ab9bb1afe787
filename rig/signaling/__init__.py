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

The package, one module per part of the stub:

- ``messages``: a member's frame, checked and weighed (``parse_frame``, ``weigh``, ``classify``)
  and the record kept of it (``MessageRecord``);
- ``room``: a room, its members and record, and its ``DeliveryController`` (hold, release,
  drop, duplicate);
- ``stub``: the aiohttp app, its handlers and runner (``SignalingStub``);
- ``stub_host``: the extra address for remote browsers and its TLS (``check_stub_host``).

The names callers use are re-exported here, so ``from rig.signaling import SignalingStub`` is
the one import a caller needs.
"""

from ..hostnet import local_addresses
from .messages import ALLOC_SLACK, FORM, FrameError, MessageRecord, classify, parse_frame, weigh
from .room import DeliveryController, HoldRule, Member, Room, StubTimeout
from .stub import READ_ERRORS, Refusal, SignalingStub
from .stub_host import LOOPBACK, STUB_HOST_ENV, check_stub_host

__all__ = [
    "ALLOC_SLACK", "FORM", "LOOPBACK", "READ_ERRORS", "STUB_HOST_ENV", "DeliveryController", "FrameError",
    "HoldRule", "Member", "MessageRecord", "Refusal", "Room", "SignalingStub", "StubTimeout", "check_stub_host",
    "classify", "local_addresses", "parse_frame", "weigh",
]
