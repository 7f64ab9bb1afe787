"""Peer hosts: peers that live in another process, running another Python environment.

A peer host runs ``<env python> -P -m rig.peers.host`` with ``PYTHONPATH`` at the rig's root:
the rig's own peer classes (rig.peers.browser, rig.peers.aiortc_peer) on that environment's
Playwright or aiortc. It hosts every peer of one :class:`rig.versions.Installation` a worker
needs (one browser launched once, a context and page per peer; or aiortc connections).

Protocol: JSON lines. Requests on the host's stdin, ``{"id": n, "op": "join", "args": {...}}``;
replies ``{"id": n, "ok": result, "state": {...}}`` or ``{"id": n, "error": "one line",
"type": "RigError" | "PeerTimeout"}``; events, as the host's peers record them, at any time:
``{"peer": "p1", "event": {"t": ..., "type": ..., "detail": {...}}}``, where ``t`` is seconds
since the case's t0 (CLOCK_MONOTONIC is one clock for every process on Linux, so the host's
times are kept). The host writes its replies and events on a private copy of its stdout and
points fd 1 at stderr: whatever a library, a negotiator or a child process prints cannot break
the protocol.

Lifetime: the host exits when its stdin closes (its parent is gone or done), on SIGTERM, SIGHUP or
SIGINT after closing its peers (bounded), and the kernel sends it SIGTERM when its parent dies
(PR_SET_PDEATHSIG). Like every process of a run it carries the run's marker (rig.processes).

This package imports nothing but the standard library and the rig's stdlib-only modules at
the top: a host's environment has Playwright or aiortc (and aiohttp), nothing else.

The package: ``protocol`` (what both sides agree on), ``server`` (the host process) and
``client`` (the rig's side); their public names are re-exported here (``from rig.peers.host
import PeerHost``), and ``python -m rig.peers.host`` runs the host (``__main__``).
"""

from .client import HostGone, HostPeer, PeerHost
from .protocol import LINE_LIMIT, MARGIN, PARENT_ENV, PROTOCOL, bounds, exit_text, first_line
from .server import Host, main

__all__ = [
    "LINE_LIMIT", "MARGIN", "PARENT_ENV", "PROTOCOL", "Host", "HostGone", "HostPeer", "PeerHost", "bounds",
    "exit_text", "first_line", "main",
]
