"""Faults the rig injects into a case on purpose (``rig matrix --fault NAME``), to prove that it
reports each one by name and that the rest of the run goes on.

A fault is injected into the first repeat of every cell, right after both peers joined the
room (the peers exist, negotiation starts with the next step); later repeats of the cell run
clean, so ``--repeat 2`` shows the fault's case and then the next case on that worker, on a
fresh browser where the fault took one down. A case with an injected fault is never a pass:
its outcome is ``error`` and its reason starts with the fault, then what the rig saw
(the case's first failure, or that the pair still met every check).
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .errors import RigError
from .peers.base import Peer
from .vocab import ROLES

if TYPE_CHECKING:
    from .signaling import Room, SignalingStub

BROWSERS = ("chromium", "firefox")


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # for --help and docs
    needs: tuple[str, ...]  # peer kinds one of which it acts on ((): the stub)


FAULTS = {f.name: f for f in (
    Fault("kill-browser", "SIGKILL the browser process of a browser peer (the polite one when both are)", BROWSERS),
    Fault("crash-page", "crash the page of a browser peer (its renderer or content process)", BROWSERS),
    Fault("aiortc-raise", "the aiortc peer's negotiator raises inside its message handler, at the next message",
          ("aiortc",)),
    Fault("restart-stub", "stop the signaling stub and start it again on the same port (every WebSocket drops)", ()),
    Fault("delay-message", f"the stub holds the next signaling message for RIG_FAULT_DELAY seconds "
                           f"(default {config.FAULT_DELAY:g}) before delivering it", ()),
)}


def get(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise RigError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}") from None


def target(fault: Fault, peers: dict[str, Peer]) -> str | None:
    """The role the fault acts on (polite first), None for a stub fault; raises RigError (the
    cell is unsupported) when neither peer is of a kind it needs or can be reached here."""
    if not fault.needs:
        return None
    for role in ROLES:
        p = peers[role]
        if p.spec.kind in fault.needs and (fault.name == "aiortc-raise" or getattr(p, "page", None) is not None):
            return role
    kinds = " or ".join(f"an in-process {k} peer" if k in BROWSERS else f"an {k} peer" for k in fault.needs)
    raise RigError(f"fault {fault.name} needs {kinds}; this pair is {peers['polite'].spec} x {peers['impolite'].spec}")


async def inject(fault: Fault, role: str | None, peers: dict[str, Peer], stub: SignalingStub, room: Room,
                 tasks: list[asyncio.Task]) -> str:
    """Do it; return what was done, in words for the case's reason. A fault that goes on after
    this returns (a delayed message) leaves its task in ``tasks`` for the case to end."""
    peer = peers[role] if role else None
    if fault.name == "kill-browser":
        assert peer is not None
        pids = browser_pids(peer)
        if not pids:
            raise RigError(f"fault kill-browser: no {peer.spec.kind} process found under this worker")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return f"{role} {peer.spec}'s browser process (pid {', '.join(map(str, pids))}) killed with SIGKILL"
    if fault.name == "crash-page":
        assert peer is not None
        return f"{role} {peer.spec}'s page crashed ({await crash_page(peer)})"
    if fault.name == "aiortc-raise":
        assert peer is not None
        peer.raise_in_handler(RuntimeError("fault injected by the rig: the negotiator's message handler raised"))
        return f"{role} {peer.spec}'s negotiator made to raise RuntimeError in its next message handler"
    if fault.name == "restart-stub":
        await stub.restart()
        return f"the signaling stub stopped and started again on port {stub.port}"
    if fault.name == "delay-message":
        delay = config.FAULT_DELAY
        ctl = room.control
        ctl.hold(lambda m: m.kind != "error", name="fault: delay-message", count=1)

        async def deliver_late() -> None:
            await ctl.wait_held(bool, timeout=config.STEP_TIMEOUT, what="the next message, to delay it")
            seq = ctl.held()[0].seq
            await asyncio.sleep(delay)  # the fault itself: a delay of this length, not a wait for anything
            ctl.release(select=lambda m: m.seq == seq, drop_rules=False)

        tasks.append(asyncio.ensure_future(deliver_late()))
        return f"the next signaling message held {delay:g} s by the stub before delivery"
    raise RigError(f"fault {fault.name}: not implemented")


def browser_pids(peer: Peer) -> list[int]:
    """The main process of ``peer``'s browser among this process's descendants (the Playwright
    driver's children): by executable, when several browsers of the kind run here."""
    want = os.path.realpath(getattr(peer, "executable", "") or "") if getattr(peer, "executable", "") else ""
    names = {"chromium": ("chromium", "chrome", *config.HEADLESS_SHELL_NAMES), "firefox": ("firefox", "firefox-esr", "firefox-bin")}
    found, exact = [], []
    for pid in descendants(os.getpid()):
        try:
            exe = os.path.realpath(f"/proc/{pid}/exe")
            args = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if os.path.basename(exe) in names[peer.spec.kind] and b"--type=" not in args and b"-contentproc" not in args:
            found.append(pid)
            if want and (exe == want or os.path.dirname(exe) == os.path.dirname(want)):
                exact.append(pid)
    return exact or found


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, stack = [], [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


async def crash_page(peer: Any) -> str:
    """Chromium: the DevTools protocol's Page.crash. Firefox has no such command (WebDriver
    BiDi), and about:crashcontent does not load from a driven tab: its content process is
    killed instead, found as the one whose CPU time grows most while the page spins for 0.5 s."""
    page = peer.page
    if peer.spec.kind == "chromium":
        cdp = await page.context.new_cdp_session(page)
        try:
            await asyncio.wait_for(cdp.send("Page.crash"), 2)  # it answers only by crashing
        except Exception:
            pass
        return "DevTools Page.crash"
    pid = await content_process(page)
    os.kill(pid, signal.SIGKILL)
    return f"its content process, pid {pid}, killed with SIGKILL"


async def content_process(page: Any) -> int:
    def cpu() -> dict[int, float]:
        out = {}
        for pid in descendants(os.getpid()):
            try:
                if b"-contentproc" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = int(f[11]) + int(f[12])
        return out
    # On a loaded machine the page's 0.5 s of wall time may be a small share of one core: the
    # process whose CPU time grew most, and clearly more than any other, is the page's.
    for _ in range(3):
        before = cpu()
        await asyncio.wait_for(page.evaluate("() => { const t = performance.now(); while (performance.now() - t < 500); }"),
                               config.STEP_TIMEOUT)
        after = cpu()
        grew = sorted(((after[p] - before.get(p, after[p]), p) for p in after), reverse=True) + [(0, 0)]
        if grew[0][0] >= 2 and grew[0][0] >= 2 * grew[1][0]:
            return grew[0][1]
    raise RigError("fault crash-page: no content process of this Firefox stood out while the page spun for "
                   "0.5 s (3 tries)")


class Injection:
    """One case's fault: where it acts (checked when the case is set up: a pair it cannot act
    on raises RigError, and the cell is unsupported), fired after the join step, ended with
    the case."""

    def __init__(self, fault: Fault, peers: dict[str, Peer], stub: SignalingStub, room: Room) -> None:
        self.fault, self.peers, self.stub, self.room = fault, peers, stub, room
        self.role = target(fault, peers)
        self.done = ""  # what was done, in words, once fired
        self.tasks: list[asyncio.Task] = []

    async def fire(self) -> None:
        self.done = await inject(self.fault, self.role, self.peers, self.stub, self.room, self.tasks)

    async def end(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def reason(self, then: str) -> str:
        fired = self.done or "not fired: the case ended before its join step completed"
        return f"injected fault {self.fault.name} ({fired}); then: {then}"
