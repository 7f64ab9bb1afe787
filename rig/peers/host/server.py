"""The host process: ``python -m rig.peers.host`` in another Python environment. It reads
requests from stdin, runs each as a task on the rig's own peer classes (rig.peers.browser,
rig.peers.aiortc_peer, imported when first asked for), and writes replies and the peers' events
on a private copy of its stdout.

Only the standard library and the rig's stdlib-only modules are imported at the top: a host's
environment has Playwright or aiortc (and aiohttp), nothing else.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ... import config
from ...errors import RigError
from ...evidence import AiortcLog
from ...peerspec import PeerSpec
from ...versions import Installation
from ...waits import bounded
from ..base import Peer
from .protocol import LINE_LIMIT, PARENT_ENV, PROTOCOL, bounds, first_line


def _die_with_parent() -> None:
    """SIGTERM from the kernel when the parent dies (belt and braces with stdin EOF)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    parent = os.environ.get(PARENT_ENV)
    if parent and os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(3)


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


class Host:
    """The host side: reads requests, runs them as tasks, writes replies and events."""

    def __init__(self, out: asyncio.WriteTransport) -> None:
        self.out = out
        self.peers: dict[str, Peer] = {}
        self.installation: Installation | None = None
        self.headed = False
        self._pw_cm: Any = None
        self.browser: Any = None
        self.log: Any = None  # rig.evidence.AiortcLog while aiortc peers with evidence are open
        self.stop = asyncio.Event()

    def write(self, msg: dict) -> None:
        if not self.out.is_closing():
            self.out.write(json.dumps(msg, default=str).encode() + b"\n")

    def emit(self, key: str, peer: Peer) -> None:
        evt = peer.events[-1]
        self.write({"peer": key, "event": {"t": evt.t, "type": evt.type, "detail": evt.detail}})

    @staticmethod
    def state(peer: Peer | None) -> dict | None:
        if peer is None:
            return None
        return {"version": peer.version, "polite": peer.polite, "capabilities": peer.capabilities,
                "signaling_state": peer.signaling_state, "connection_state": peer.connection_state}

    def peer(self, key: str) -> Peer:
        try:
            return self.peers[key]
        except KeyError:
            raise RigError(f"peer host: no peer {key!r} here") from None

    async def handle(self, req: dict) -> None:
        rid, op, args = req.get("id"), str(req.get("op")), dict(req.get("args") or {})
        step = str(req.get("step") or op)  # the step as the rig names it in messages
        fn = getattr(self, f"op_{op}", None)
        try:
            if fn is None or op not in bounds():
                raise TypeError(f"unknown operation {op!r}")
            task = asyncio.ensure_future(fn(**args))
        except TypeError as exc:
            self.write({"id": rid, "error": f"peer host: bad request: {exc}", "type": "RigError"})
            return
        bound = bounds()[op]
        done, _ = await asyncio.wait({task}, timeout=bound)
        peer = self.peers.get(args.get("peer", ""))
        if not done or task.cancelled():
            task.cancel()
            who = str(peer) if peer else "peer host"
            states = f": {peer.state_text()}" if peer else ""
            why = f"after {bound:.0f} s in its peer host" if not done else "in its peer host, which is shutting down"
            self.write({"id": rid, "error": f"{who} stuck at step '{step}' {why}{states}",
                        "type": "PeerTimeout", "state": self.state(peer)})
            return
        exc = task.exception()
        if exc is None:
            self.write({"id": rid, "ok": task.result(), "state": self.state(peer)})
            return
        if not isinstance(exc, RigError):
            traceback.print_exception(exc, file=sys.stderr)
        # Playwright's errors are all of class Error: its name adds nothing to the message
        text = str(exc) if isinstance(exc, RigError) else first_line(exc) if type(exc).__name__ == "Error" \
            else f"{type(exc).__name__}: {first_line(exc)}"
        self.write({"id": rid, "error": text.splitlines()[0] if text else type(exc).__name__,
                    "type": type(exc).__name__ if isinstance(exc, RigError) else "Exception",
                    "state": self.state(peer)})

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task] = set()

        async def read() -> None:
            while True:
                line = await reader.readline()
                if not line:
                    break  # stdin closed: the parent is gone or done with us
                try:
                    req = json.loads(line)
                except ValueError:
                    print(f"rig.peers.host: not a request: {line[:200]!r}", file=sys.stderr)
                    continue
                t = asyncio.ensure_future(self.handle(req))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            self.stop.set()

        reading = asyncio.ensure_future(read())
        await self.stop.wait()
        reading.cancel()
        await self.shutdown()
        for t in list(tasks):
            t.cancel()
        return 0

    async def shutdown(self) -> None:
        """Close every peer, the browser and the driver: each step bounded."""
        for key in list(self.peers):
            peer = self.peers.pop(key)
            peer.closing = True
            await bounded(peer.close(), 4 * config.CLOSE_TIMEOUT)
        if self.browser is not None:
            await bounded(self.browser.close(), config.CLOSE_TIMEOUT)
        if self._pw_cm is not None:
            await bounded(self._pw_cm.__aexit__(None, None, None), config.CLOSE_TIMEOUT)
        if self.log is not None:
            self.log.__exit__(None, None, None)

    # -- operations -------------------------------------------------------------------
    async def op_hello(self) -> dict:
        return {"protocol": PROTOCOL, "pid": os.getpid(), "python": sys.version.split()[0],
                "playwright": _package_version("playwright"), "aiortc": _package_version("aiortc")}

    async def op_launch(self, installation: dict, headed: bool = False) -> dict:
        """Start hosting ``installation``: launch its browser (and open one page, as the
        Playwright releases that cannot drive a browser fail there or at launch), or load
        aiortc. Returns the version the engine itself reports."""
        inst = self.installation = Installation(**installation)
        self.headed = headed
        if inst.kind == "aiortc":
            # a host's environment has one engine: aiortc or Playwright, imported for its kind only
            from .. import aiortc_peer  # noqa: F401  (fails here, with its reason, if the env lacks it)
            return {"version": _package_version("aiortc")}
        from playwright.async_api import async_playwright  # the environment's Playwright (above)
        self._pw_cm = async_playwright()
        pw = await self._pw_cm.__aenter__()
        from ..browser import launch  # imports Playwright (above)
        self.browser = await launch(pw, inst.kind, inst.path, headless=not headed)
        context = await self.browser.new_context()
        try:
            page = await context.new_page()
            await page.evaluate("() => 1")
        finally:
            await context.close()
        return {"version": self.browser.version}

    async def op_open(self, peer: str, spec: str, name: str, user_id: int, t0: float, base_url: str = "",
                      trace: bool = False, full_capture: bool = False) -> dict:
        if self.installation is None:
            raise RigError("peer host: open before launch")
        pspec = PeerSpec.parse(spec)
        if self.installation.kind == "aiortc":
            from ..aiortc_peer import AiortcPeer  # imports aiortc: only in an aiortc host
            obj: Peer = AiortcPeer(pspec, name, user_id, t0)
            if trace:
                self._start_log(full_capture)
        else:
            from ..browser import BrowserPeer  # imports Playwright: only in a browser host
            if self.browser is None or not self.browser.is_connected():
                raise RigError(f"{pspec}: the peer host's browser is gone")
            obj = BrowserPeer(pspec, name, user_id, t0, self.browser, base_url)
        obj.on_record = lambda: self.emit(peer, obj)
        self.peers[peer] = obj
        if self.installation.kind != "aiortc":
            try:
                await obj.open(trace=trace)
            except Exception as exc:
                self.peers.pop(peer, None)
                await obj.close()
                raise RigError(f"{pspec}: could not open a page: {first_line(exc)}") from None
        return {}

    def _start_log(self, full: bool) -> None:
        if self.log is None:
            self.log = AiortcLog(full=full).__enter__()
        if not any(getattr(p, "pc", None) is not None for p in self.peers.values()):
            self.log.lines.clear()  # a new case: its log starts here
            self.log.dropped = 0

    async def op_probe(self, peer: str) -> dict:
        return await self.peer(peer).probe()

    async def op_join(self, peer: str, ws_url: str, room: str, negotiator: Any) -> None:
        neg = tuple(negotiator) if isinstance(negotiator, list) else negotiator
        await self.peer(peer).join(ws_url=ws_url, room=room, negotiator=neg)

    async def op_change(self, peer: str, action: str) -> dict:
        return await self.peer(peer).change(action)

    async def op_send(self, peer: str, label: str, text: str) -> None:
        await self.peer(peer).send(label, text)

    async def op_arm(self, peer: str, seq: int, trigger: str, after: int | None = None) -> None:
        await self.peer(peer).arm(seq, trigger, after)

    async def op_fail_next(self, peer: str, method: str) -> None:
        await self.peer(peer).fail_next(method)

    async def op_gate(self, peer: str, gid: int, step: str, when: str, type_: str = "", open_on: str = "") -> None:
        await self.peer(peer).gate(gid, step, when, type_, open_on)

    async def op_open_gate(self, peer: str, gid: int) -> None:
        await self.peer(peer).open_gate(gid)

    async def op_snapshot(self, peer: str) -> dict:
        return await self.peer(peer).snapshot()

    async def op_receive_detail(self, peer: str, kind: str) -> str:
        return await self.peer(peer).receive_detail(kind)

    async def op_close(self, peer: str, evidence_dir: str | None = None) -> None:
        obj = self.peers.get(peer)
        if obj is None:
            return
        obj.closing = True
        obj.evidence_dir = Path(evidence_dir) if evidence_dir else None
        try:
            await obj.close()
        finally:
            self.peers.pop(peer, None)
            if self.log is not None and obj.evidence_dir is not None and self.installation is not None:
                self.log.write(obj.evidence_dir / f"aiortc-{obj.name}.log")

    async def op_shutdown(self) -> None:
        self.stop.set()


def main() -> int:
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # print() and children's stdout now go to stderr, never into the protocol
    _die_with_parent()

    async def run() -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, proto)
        try:
            return await Host(transport).serve()
        finally:
            transport.close()
    try:
        return asyncio.run(run())
    except Exception as exc:
        print(f"rig.peers.host: fatal: {type(exc).__name__}: {first_line(exc)}", file=sys.stderr)
        return 1
