"""The rig's side of a peer host: :class:`PeerHost` starts the host process, sends it requests
and reads its replies and events; :class:`HostPeer` is a :class:`rig.peers.base.Peer` whose every
step is a request to its host. A host that ends fails every pending call at once with one line
naming it (:class:`HostGone`).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from ... import config
from ...errors import RigError
from ...peerspec import PeerSpec
from ...versions import Installation
from ..base import Peer, PeerTimeout
from .protocol import LINE_LIMIT, MARGIN, PARENT_ENV, PROTOCOL, bounds, exit_text, first_line


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
