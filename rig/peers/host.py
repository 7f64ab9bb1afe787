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

This module imports nothing but the standard library and the rig's stdlib-only modules at
the top: a host's environment has Playwright or aiortc (and aiohttp), nothing else.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import itertools
import json
import os
import signal
import sys
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .. import config
from ..errors import RigError
from ..evidence import AiortcLog
from ..peerspec import PeerSpec
from ..versions import Installation
from ..waits import bounded
from .base import Peer, PeerTimeout

PROTOCOL = 1
#: Replies and events can carry SDPs and snapshots: lines far longer than asyncio's 64 KiB default.
LINE_LIMIT = 64 * 1024 * 1024
#: The parent waits this much longer than the host's own bound, so the host's message (which
#: knows more) arrives first when the host is alive.
MARGIN = 2.0
PARENT_ENV = "GLARE_RIG_HOST_PARENT"


def bounds() -> dict[str, float]:
    """How long each operation may take in the host (seconds). The peers bound their own
    steps (config.STEP_TIMEOUT); these are outer bounds a little above theirs."""
    step, close = config.STEP_TIMEOUT + 1, 4 * config.CLOSE_TIMEOUT
    return {"hello": step, "launch": config.LAUNCH_TIMEOUT, "open": config.LAUNCH_TIMEOUT, "probe": step,
            "join": 2 * config.STEP_TIMEOUT + 1, "change": step, "send": step, "arm": step, "fail_next": step,
            "gate": step, "open_gate": step, "snapshot": step, "receive_detail": step, "close": close,
            "shutdown": close}


def first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def exit_text(rc: int | None) -> str:
    if rc is None:
        return "is still running"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


# =========================================================================================
# The host process
# =========================================================================================

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
            from . import aiortc_peer  # noqa: F401  (fails here, with its reason, if the env lacks it)
            return {"version": _package_version("aiortc")}
        from playwright.async_api import async_playwright  # the environment's Playwright (above)
        self._pw_cm = async_playwright()
        pw = await self._pw_cm.__aenter__()
        from .browser import launch  # imports Playwright (above)
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
            from .aiortc_peer import AiortcPeer  # imports aiortc: only in an aiortc host
            obj: Peer = AiortcPeer(pspec, name, user_id, t0)
            if trace:
                self._start_log(full_capture)
        else:
            from .browser import BrowserPeer  # imports Playwright: only in a browser host
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


# =========================================================================================
# The parent side
# =========================================================================================

class HostGone(RigError):
    """The host process ended (or could not start): every call to it fails at once."""


class _NoAnswer(Exception):
    """The host did not answer within the bound."""


class PeerHost:
    """One peer host process, seen from the rig: start it, make peers in it, close it."""

    def __init__(self) -> None:
        self.installation: Installation | None = None
        self.version = ""  # what the hosted engine reports (browser.version, aiortc's version)
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._pending: dict[int, asyncio.Future] = {}
        self._peers: dict[str, HostPeer] = {}
        self._ids = itertools.count(1)
        self._keys = itertools.count(1)
        self._tasks: list[asyncio.Task] = []
        self._gone: str | None = None  # the one line every call gets once the host has ended
        self.why = ""  # how it ended: "exited with status 1: <its last stderr line>"
        self._exited = asyncio.Event()

    @property
    def label(self) -> str:
        inst = self.installation
        if inst is None:
            return "peer host"
        what = inst.driver_label or Path(inst.driver).parent.parent.name
        pid = f", pid {self.proc.pid}" if self.proc else ""
        return f"peer host ({what}, {inst.kind} {inst.path if inst.kind != 'aiortc' else inst.version}{pid})"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self._gone is None

    def last_stderr(self) -> str:
        return next((ln for ln in reversed(self.stderr) if ln.strip()), "")

    async def start(self, installation: Installation, *, headed: bool = False) -> None:
        """Start the host and have it launch ``installation`` (its browser, or aiortc),
        within config.LAUNCH_TIMEOUT; a one-line RigError when it cannot."""
        if not installation.driver:
            raise RigError(f"{installation.kind} {installation.version}: runs in process, not in a peer host")
        self.installation = installation
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
        env.update({"PYTHONPATH": str(config.ROOT), PARENT_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"})
        try:
            self.proc = await asyncio.create_subprocess_exec(
                installation.driver, "-P", "-m", "rig.peers.host", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, limit=LINE_LIMIT)
        except OSError as exc:
            raise RigError(f"{self.label} could not start: {installation.driver}: {exc.strerror or exc}") from None
        self._tasks = [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._read_stderr())]
        deadline = time.monotonic() + config.LAUNCH_TIMEOUT
        try:
            hello = await self.request("hello", {}, timeout=config.STEP_TIMEOUT)
            if hello.get("ok", {}).get("protocol") != PROTOCOL:
                raise RigError(f"speaks protocol {hello.get('ok', {}).get('protocol')}, the rig {PROTOCOL}")
            left = max(1.0, deadline - time.monotonic())
            got = await self.request("launch", {"installation": installation.as_dict(), "headed": headed},
                                     timeout=left)
            if "error" in got:
                raise RigError(got["error"])
            self.version = got["ok"]["version"]
        except _NoAnswer:
            await self.close()
            raise RigError(f"{self.label} did not start within {config.LAUNCH_TIMEOUT:.0f} s"
                           + (f" (last output: {self.last_stderr()[:200]})" if self.last_stderr() else "")) from None
        except HostGone:
            await self.close()
            raise RigError(f"{self.label} could not start: it {self.why or 'ended'}") from None
        except RigError as exc:
            await self.close()
            raise RigError(f"{self.label} could not start: {first_line(exc)}") from None

    async def request(self, op: str, args: dict, *, timeout: float, step: str = "") -> dict:
        """Send one request; its reply (``ok`` or ``error``), HostGone when the host ended,
        _NoAnswer after ``timeout``."""
        if self._gone is not None or self.proc is None or self.proc.stdin is None:
            raise HostGone(self._gone or f"{self.label} is not running")
        rid = next(self._ids)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        deadline = time.monotonic() + timeout
        try:
            line = {"id": rid, "op": op, "args": args, "step": step or op}
            self.proc.stdin.write(json.dumps(line, default=str).encode() + b"\n")
            drain = asyncio.ensure_future(self.proc.stdin.drain())
            done, _ = await asyncio.wait({drain}, timeout=timeout)
            if not done:
                drain.cancel()
                raise _NoAnswer()
            if drain.exception() is not None:
                raise HostGone(await self._gone_now())
            done, _ = await asyncio.wait({fut}, timeout=max(0.0, deadline - time.monotonic()))
            if not done:
                raise _NoAnswer()
            return fut.result()
        finally:
            self._pending.pop(rid, None)

    async def _gone_now(self) -> str:
        """Why writing to the host failed: it is gone (its status, once known)."""
        await self._wait_exit(1.0)
        return self._gone or f"{self.label} closed its input"

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.stderr.append(f"(protocol) {line[:200]!r}")
                    continue
                if "event" in msg:
                    peer = self._peers.get(msg.get("peer", ""))
                    if peer is not None:
                        evt = msg["event"]
                        peer.record(evt.get("type", "unknown"), evt.get("detail") or {}, t=evt.get("t"))
                elif msg.get("id") in self._pending:
                    fut = self._pending[msg["id"]]
                    if not fut.done():
                        fut.set_result(msg)
        except (ValueError, asyncio.LimitOverrunError) as exc:
            self.stderr.append(f"(protocol) {first_line(exc)}")
        finally:
            await self._wait_exit(config.CLOSE_TIMEOUT)

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            try:
                line = await self.proc.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            self.stderr.append(line.decode(errors="replace").rstrip())

    async def _wait_exit(self, timeout: float) -> None:
        """The host's output ended: wait (bounded) for its status, fail every pending call."""
        if self.proc is None or self._exited.is_set():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout)
        except TimeoutError:
            pass
        if len(self._tasks) > 1 and self.proc.returncode is not None:
            await asyncio.wait({self._tasks[1]}, timeout=1.0)  # the stderr reader takes the last lines
        if self._exited.is_set():
            return
        last = self.last_stderr()
        self.why = exit_text(self.proc.returncode) + (f": {last[:300]}" if last else "")
        self._gone = f"{self.label} {self.why}"
        self._exited.set()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(HostGone(self._gone))

    async def make_peer(self, spec: PeerSpec, name: str, user_id: int, t0: float, *, base_url: str = "",
                        trace: bool = False, full_capture: bool = False) -> HostPeer:
        key = f"p{next(self._keys)}"
        peer = HostPeer(self, key, spec, name, user_id, t0)
        peer.version = self.version
        self._peers[key] = peer
        try:
            await peer._call("open", "open", config.LAUNCH_TIMEOUT + MARGIN, spec=str(spec), name=name,
                             user_id=user_id, t0=t0, base_url=base_url, trace=trace, full_capture=full_capture)
        except RigError:
            self._peers.pop(key, None)
            raise
        return peer

    def forget(self, key: str) -> None:
        self._peers.pop(key, None)

    async def close(self) -> None:
        """Ask the host to shut down; stdin EOF, TERM and KILL follow if it does not (bounded)."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            if self._gone is None:
                try:
                    proc.stdin.write(json.dumps({"id": 0, "op": "shutdown", "args": {}}).encode() + b"\n")
                except (BrokenPipeError, ConnectionResetError, RuntimeError):
                    pass
            try:
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError, RuntimeError):
                pass
            for sig, wait in ((None, bounds()["shutdown"] + config.CLOSE_TIMEOUT), (signal.SIGTERM, config.CLOSE_TIMEOUT),
                              (signal.SIGKILL, config.CLOSE_TIMEOUT)):
                if sig is not None and proc.returncode is None:
                    try:
                        proc.send_signal(sig)
                    except ProcessLookupError:
                        pass
                try:
                    await asyncio.wait_for(asyncio.shield(proc.wait()), wait)
                    break
                except TimeoutError:
                    continue
        if self._gone is None:
            self._gone = f"{self.label} was closed"
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(HostGone(self._gone))
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


class HostPeer(Peer):
    """A peer in a peer host: every interface method is a bounded request; the host's events
    are recorded here with the host's times, and its states mirrored."""

    def __init__(self, host: PeerHost, key: str, spec: PeerSpec, name: str, user_id: int, t0: float) -> None:
        super().__init__(spec, name, user_id, t0)
        self.host = host
        self.key = key

    def _apply(self, state: dict | None) -> None:
        if not state:
            return
        self.version = state.get("version") or self.version
        if state.get("polite") is not None:
            self.polite = bool(state["polite"])
        if state.get("capabilities"):
            self.capabilities = dict(state["capabilities"])
        # signalingState and connectionState are NOT taken from replies: a reply is applied when
        # the awaiting call resumes, after the reader may have recorded later events, so its
        # state can be stale (seen: Firefox 140 shown in have-local-offer after its event said
        # stable). The host streams every state change as an event, in order; record() mirrors it.

    async def _call(self, step: str, op: str, timeout: float, **args: Any) -> Any:
        try:
            msg = await self.host.request(op, dict(args, peer=self.key), timeout=timeout, step=step)
        except HostGone as exc:
            raise RigError(f"{self} failed at step '{step}': {exc}") from None
        except _NoAnswer:
            raise PeerTimeout(f"{self} stuck at step '{step}' after {timeout:.0f} s: its {self.host.label} did "
                              f"not answer; {self.state_text()}") from None
        self._apply(msg.get("state"))
        if "error" in msg:
            raise (PeerTimeout if msg.get("type") == "PeerTimeout" else RigError)(msg["error"])
        return msg.get("ok")

    def _bound(self, op: str) -> float:
        return bounds()[op] + MARGIN

    async def probe(self) -> dict[str, bool]:
        self.capabilities = dict(await self._call("probe", "probe", self._bound("probe")))
        return self.capabilities

    async def join(self, *, ws_url: str, room: str, negotiator: Any) -> None:
        if callable(negotiator):
            raise RigError(f"{self}: a negotiator function cannot be sent to a peer host; give path.py[:attr]")
        if isinstance(negotiator, str) and negotiator.endswith(".py") and Path(negotiator).is_file():
            negotiator = str(Path(negotiator).resolve())  # the host may not share our working directory
        elif isinstance(negotiator, str) and ".py:" in negotiator and Path(negotiator.rsplit(":", 1)[0]).is_file():
            where, attr = negotiator.rsplit(":", 1)
            negotiator = f"{Path(where).resolve()}:{attr}"
        await self._call("join", "join", self._bound("join"), ws_url=ws_url, room=room,
                         negotiator=list(negotiator) if isinstance(negotiator, tuple) else negotiator)

    async def change(self, action: str) -> dict:
        return await self._call(f"change {action}", "change", self._bound("change"), action=action)

    async def send(self, label: str, text: str) -> None:
        await self._call(f"send on {label}", "send", self._bound("send"), label=label, text=text)

    async def arm(self, seq: int, trigger: str, after: int | None = None) -> None:
        await self._call(f"arm #{seq} at {trigger}", "arm", self._bound("arm"), seq=seq, trigger=trigger, after=after)

    async def fail_next(self, method: str) -> None:
        await self._call(f"plan a fault in {method}", "fail_next", self._bound("fail_next"), method=method)

    async def gate(self, gid: int, step: str, when: str, type_: str = "", open_on: str = "") -> None:
        await self._call(f"gate #{gid} {when} {step}", "gate", self._bound("gate"), gid=gid, step=step, when=when,
                         type_=type_, open_on=open_on)

    async def open_gate(self, gid: int) -> None:
        await self._call(f"open gate #{gid}", "open_gate", self._bound("open_gate"), gid=gid)

    async def snapshot(self) -> dict:
        return await self._call("snapshot", "snapshot", self._bound("snapshot"))

    async def receive_detail(self, kind: str) -> str:
        return str(await self._call(f"{kind} receive detail", "receive_detail", self._bound("receive_detail"),
                                    kind=kind) or "")

    async def close(self) -> None:
        """Never raises: a host that is gone or stuck leaves a teardown note instead."""
        try:
            if self.host.alive:
                await self._call("close", "close", bounds()["close"],
                                 evidence_dir=str(self.evidence_dir) if self.evidence_dir else None)
        except RigError as exc:
            self.record("teardown", {"text": first_line(exc)})
        finally:
            self.host.forget(self.key)


if __name__ == "__main__":
    sys.exit(main())
