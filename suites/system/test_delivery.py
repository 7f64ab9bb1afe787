"""The delivery table (rig/delivery.py) against a real peer of every kind.

Each case is played by a real Peer (chromium, firefox: the JS plumbing in a real page;
aiortc: rig.peers.aiortc_peer) whose negotiator is the probe (fixtures/delivery/), against
a driver that joins the real signaling stub as the other member. Every message of the
driver is held by the stub and released by the case's Deliver steps. Every kind must give
every case the table's outcome; a kind the table says cannot play a case is expected to
fail it (strict xfail, with the table's reason).

Run: ``pytest suites/system/test_delivery.py -n 2 --dist loadgroup`` (about 50 s on 2 cores;
about 90 s in one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from playwright.async_api import async_playwright

from rig import config, delivery
from rig.delivery import Arm, Await, Case, Deliver, Do, FailNext, Gate, Open, Quiet, Send
from rig.peers.aiortc_peer import AiortcPeer, load_negotiator
from rig.peers.base import Peer
from rig.peers.browser import BrowserPeer, BrowserPool
from rig.peerspec import PeerSpec
from rig.signaling import SignalingStub
from rig.vocab import GATE_STEPS, INJECTED, TRIGGERS
from rig.waits import bounded

KINDS = ("chromium", "firefox", "aiortc")
PROBE_JS = "/fixtures/delivery/probe.js"
PROBE_PY = config.FIXTURES / "delivery" / "probe.py"
WAIT = 8.0  # seconds, for any one Await or message hand-over
CASE_LIMIT = 30.0  # seconds, for a whole case, set-up and teardown included
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
EVENT_PREFIXES = ("stashed", "injected", "gate", "fault", "negotiationneeded delivered")


class Env:
    """The stub, Playwright's browsers, and one page per browser kind, kept for the session:
    a page costs 0.3-3 s to open (Firefox the most), a navigation resets the plumbing."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stub = SignalingStub()
        self._pw = None
        self.browsers: BrowserPool | None = None
        self.pages: dict[str, Any] = {}
        self.owner: dict[str, BrowserPeer | None] = {}  # kind -> the peer the page's events go to

    async def start(self) -> None:
        await self.stub.start()

    async def page(self, kind: str) -> Any:
        if kind not in self.pages:
            if self.browsers is None:
                self._pw = async_playwright()
                self.browsers = BrowserPool(await asyncio.wait_for(self._pw.__aenter__(), config.LAUNCH_TIMEOUT))
            browser = await self.browsers.get(PeerSpec(kind))
            context = await browser.new_context()
            if kind == "chromium":
                await context.grant_permissions(["camera", "microphone"])
            page = await context.new_page()
            page.set_default_timeout(WAIT * 1000)

            def to_owner(method: str):
                return lambda *a: self.owner.get(kind) and getattr(self.owner[kind], method)(*a)
            # the binding's messages, {"n": emitted so far, "events": [...]} (rig.peers.page_events)
            await page.expose_function("__rigEvent", lambda msg: to_owner("_on_event")(msg["events"]))
            page.on("console", to_owner("_on_console"))
            page.on("pageerror", lambda err: to_owner("record")("error", {"source": "pageerror", "text": str(err)}))
            page.on("crash", lambda *_: to_owner("record")("error", {"source": "crash", "text": "Target crashed"}))
            self.pages[kind] = page
        return self.pages[kind]

    async def make_peer(self, kind: str, t0: float) -> Peer:
        if kind == "aiortc":
            return AiortcPeer(PeerSpec(kind), "peer", 2, t0)
        page = await self.page(kind)
        peer = PagePeer(PeerSpec(kind), "peer", 2, t0, page.context.browser, self.stub.http_url)
        peer.context, peer.page = page.context, page
        self.owner[kind] = peer
        await page.goto(f"{self.stub.http_url}/fixtures/peer.html", wait_until="commit")
        await page.wait_for_function("() => window.rig !== undefined")
        return peer

    async def release(self, peer: Peer) -> None:
        await bounded(peer.close(), 2 * config.CLOSE_TIMEOUT)
        if peer.spec.kind in self.owner:
            self.owner[peer.spec.kind] = None  # what the closed page still says goes nowhere

    async def stop(self) -> None:
        if self.browsers is not None:
            await self.browsers.close()
        if self._pw is not None:
            await bounded(self._pw.__aexit__(None, None, None), config.CLOSE_TIMEOUT)
        await self.stub.stop()


class PagePeer(BrowserPeer):
    """A BrowserPeer on a page the Env keeps: closing it closes its connection, not the page."""

    async def close(self) -> None:
        await bounded(self.page.evaluate("() => window.rig && rig.close()"), config.CLOSE_TIMEOUT)


@pytest.fixture(scope="session")
def delivery_env(rig_loop: asyncio.AbstractEventLoop) -> Iterator[Env]:
    env = Env(rig_loop)
    rig_loop.run_until_complete(env.start())
    try:
        yield env
    finally:
        rig_loop.run_until_complete(env.stop())


class Driver:
    """The other member of the room: a bare stub client that sends what the case says."""

    def __init__(self, ws_url: str, room: str) -> None:
        self.ws_url, self.room = ws_url, room
        self.received: list[dict] = []
        self.arrived = asyncio.Event()  # set on every frame the driver receives
        self._session: aiohttp.ClientSession | None = None
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._pcs: list[RTCPeerConnection] = []

    async def connect(self) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.ws_url, params={"room": self.room, "name": "driver", "user": "1"})
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frame = msg.json()
                if frame.get("type") == "signal":
                    self.received.append(frame["data"])
                    self.arrived.set()

    async def send(self, data: dict) -> None:
        await self._ws.send_json({"type": "signal", "data": data})

    def _pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pcs.append(pc)
        return pc

    async def payload(self, msg: Send) -> dict:
        if msg.kind == "marker":
            return {"label": msg.label}
        if msg.kind == "candidate":
            return {"candidate": dict(CANDIDATE)}
        pc = self._pc()
        if msg.kind == "offer":
            pc.createDataChannel("driver")
            await pc.setLocalDescription(await pc.createOffer())
        else:
            def offers() -> list[dict]:
                return [d["description"] for d in self.received if (d.get("description") or {}).get("type") == "offer"]
            deadline = time.monotonic() + WAIT
            while not offers() and time.monotonic() < deadline:  # the peer's offer may still be on its way
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))
            assert offers(), f"the table asks for an answer, but the peer sent no offer within {WAIT:g} s"
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offers()[-1]["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        return {"description": {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp}}

    async def close(self) -> None:
        for pc in self._pcs:
            await bounded(pc.close(), config.CLOSE_TIMEOUT)
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await bounded(self._ws.close(), config.CLOSE_TIMEOUT)
        if self._session is not None:
            await bounded(self._session.close(), config.CLOSE_TIMEOUT)


def event_lines(peer: Peer, labels: dict[int, str]) -> list[str]:
    out = []
    for e in peer.events:
        d = e.detail
        if e.type == "stashed":
            out.append(f"stashed {labels.get(d.get('seq'), d.get('seq'))} for {d.get('trigger')}")
        elif e.type == "injected":
            out.append(f"injected {labels.get(d.get('seq'), d.get('seq'))} at {d.get('trigger')} in {d.get('state')}")
        elif e.type == "gate-reached":
            out.append(f"gate {d.get('id')} reached {d.get('when')} {d.get('step')}({d.get('type')}) in {d.get('state')}")
        elif e.type == "gate-opened":
            out.append(f"gate {d.get('id')} opened by {d.get('by')}")
        elif e.type == "fault-injected":
            out.append(f"fault {d.get('method')} in {d.get('state')}")
        elif e.type == "negotiationneeded-delivered":
            out.append("negotiationneeded delivered")
    return out


def negotiator_lines(peer: Peer) -> list[str]:
    out = []
    for e in peer.of_type("probe"):
        d, what = e.detail, e.detail.get("what")
        if what == "got":
            out.append(f"got {d.get('label')} in {d.get('state')}")
        elif what == "rejected":
            why = "injected" if INJECTED in str(d.get("message")) else f"{d.get('name')}: {d.get('message')}"
            out.append(f"rejected {d.get('method')}: {why}")
        elif what == "did":
            out.append(f"did {d.get('op')}")
        else:
            out.append(str(what))
    return out


def matches(expected: str, actual: str) -> bool:
    """An expected line without ' in <state>' leaves the state out of the comparison."""
    return actual == expected or (" in " not in expected and actual.startswith(expected + " in "))


def reached(line: str, events: list[str], negotiator: list[str]) -> bool:
    pool = events if line.startswith(EVENT_PREFIXES) else negotiator
    return any(a == line or a.startswith(line + " ") or a.startswith(line + ":") for a in pool)


class Play:
    """One case on one peer kind."""

    def __init__(self, env: Env, case: Case, kind: str) -> None:
        self.env, self.case, self.kind = env, case, kind
        self.room = env.stub.create_room(f"delivery-{case.name}-{kind}-{uuid.uuid4().hex[:6]}")
        self.room.control.hold(lambda m: m.sender == "driver", name="delivery table: the driver's messages")
        self.driver = Driver(env.stub.ws_url, self.room.name)
        self.peer: Peer | None = None
        self.seqs: dict[str, int] = {}
        self.arms = [s for s in case.setup if isinstance(s, Arm)]
        self.armed: set[Arm] = set()
        self.delivered: set[str] = set()
        self.ops: dict = {}
        self.tasks: list[asyncio.Task] = []

    @property
    def labels(self) -> dict[int, str]:
        return {v: k for k, v in self.seqs.items()}

    def lines(self) -> tuple[list[str], list[str]]:
        return event_lines(self.peer, self.labels), negotiator_lines(self.peer)

    def where(self) -> str:
        ev, neg = self.lines()
        errs = [f"{e.type}: {e.detail.get('text') or e.detail}" for e in self.peer.of_type("error", "api-error")]
        return f"\n  events: {ev}\n  negotiator: {neg}\n  errors: {errs}\n  {self.peer.state_text()}"

    async def until(self, ok, what: str) -> None:
        """Wait (bounded) for ``ok()``, woken by what can change it: an event the peer records
        or a change in the stub's room (no polling interval)."""
        deadline = time.monotonic() + WAIT
        while not ok():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.case.name} x {self.kind}: waited {WAIT:g} s for {what}{self.where()}")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def start(self) -> None:
        self.peer = await self.env.make_peer(self.kind, time.monotonic())
        self._wake = asyncio.Event()
        self.peer.on_record = self._wake.set
        self.room.control.on_change = self._wake.set
        if self.kind == "aiortc":
            attach = load_negotiator(PROBE_PY)
            note = lambda what, **d: self.peer.record("probe", {"what": what, **d})  # noqa: E731
            negotiator = partial(attach, note=note, ops=self.ops, explicit=self.case.explicit)
        else:
            url = f"{self.env.stub.http_url}{PROBE_JS}{'?explicit=1' if self.case.explicit else ''}"
            negotiator = (url, "fixtures/delivery/probe.js")
        await self.driver.connect()
        await asyncio.wait_for(self.peer.join(ws_url=self.env.stub.ws_url, room=self.room.name,
                                              negotiator=negotiator), WAIT)
        for s in self.case.setup:
            if isinstance(s, Gate):
                await self.peer.gate(s.gid, s.step, s.when, s.type, s.open_on)
            elif isinstance(s, FailNext):
                await self.peer.fail_next(s.method)

    async def step(self, s) -> None:
        if isinstance(s, Send):
            n = sum(m.sender == "driver" for m in self.room.log)
            await self.driver.send(await self.driver.payload(s))
            await self.until(lambda: sum(m.sender == "driver" for m in self.room.log) > n, f"the stub to take {s.label}")
            self.seqs[s.label] = [m for m in self.room.log if m.sender == "driver"][-1].seq
            for a in self.arms:
                if a not in self.armed and a.label in self.seqs and (not a.after or a.after in self.seqs):
                    assert not {a.label, a.after} & self.delivered, f"{self.case.name}: {a} applied too late"
                    await self.peer.arm(self.seqs[a.label], a.trigger, self.seqs[a.after] if a.after else None)
                    self.armed.add(a)
        elif isinstance(s, Deliver):
            for label in s.labels:
                assert all(a in self.armed for a in self.arms if label in (a.label, a.after)), \
                    f"{self.case.name}: {label} delivered before its arm was applied"
                seq = self.seqs[label]
                self.room.control.release(select=lambda m, q=seq: m.seq == q, drop_rules=False)
                self.delivered.add(label)
        elif isinstance(s, Do):
            if s.op == "add-datachannel":
                await self.peer.change(s.op)
            elif self.kind == "aiortc":
                self.tasks.append(asyncio.ensure_future(self.ops[s.op]()))
            else:
                await asyncio.wait_for(self.peer.page.evaluate("op => window.probe(op)", s.op), WAIT)
        elif isinstance(s, Await):
            await self.until(lambda: reached(s.line, *self.lines()), repr(s.line))
        elif isinstance(s, Open):
            await self.peer.open_gate(s.gid)
        elif isinstance(s, Quiet):
            await asyncio.sleep(s.seconds)
        else:
            raise AssertionError(f"unknown step {s!r}")

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.peer is not None:
            self.peer.closing = True
            await self.env.release(self.peer)
        await self.driver.close()
        self.env.stub.close_room(self.room.name)


async def play(env: Env, case: Case, kind: str) -> tuple[list[str], list[str], list[str], Play]:
    p = Play(env, case, kind)
    try:
        await p.start()
        for s in case.stimulus:
            await p.step(s)
        # Not timing control: the table's steps are ordered by holds, gates and awaited lines. This
        # bounded quiet period only lets an event the plumbing must NOT record (a message handed
        # over twice, a gate opened early) show up before the lines are compared.
        await asyncio.sleep(0.05)
        events, negotiator = p.lines()
        errors = [f"{e.type}: {e.detail.get('text') or e.detail}" for e in p.peer.of_type("error")]
        return events, negotiator, errors, p
    finally:
        await p.close()


def _params():
    for case in delivery.CASES:
        cannot = dict(case.cannot)
        for kind in KINDS:
            marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=cannot[kind])] if kind in cannot else []
            # with -n 2 --dist loadgroup: Firefox (the slowest pages) on one worker, the rest on the other
            marks.append(pytest.mark.xdist_group("delivery-firefox" if kind == "firefox" else "delivery-other"))
            yield pytest.param(case, kind, id=f"{case.name}-{kind}", marks=marks)


@pytest.mark.timeout(CASE_LIMIT + 15)
@pytest.mark.parametrize(("case", "kind"), list(_params()))
def test_delivery(case: Case, kind: str, delivery_env: Env) -> None:
    loop = delivery_env.loop
    task = asyncio.ensure_future(play(delivery_env, case, kind), loop=loop)
    if not loop.run_until_complete(bounded(asyncio.shield(task), CASE_LIMIT)):
        task.cancel()
        raise AssertionError(f"{case.name} x {kind}: did not finish within {CASE_LIMIT:g} s")
    events, negotiator, errors, _ = task.result()
    assert not errors, f"{case.name} x {kind}: the peer reported errors: {errors}"
    want_e, want_n = list(case.events), list(case.negotiator)
    for line, _why in case.ignore:  # kept where the table expects it, dropped after that
        n = want_n.count(line)
        negotiator = [x for i, x in enumerate(negotiator) if x != line or negotiator[:i].count(line) < n]
    ok_e = len(events) == len(want_e) and all(map(matches, want_e, events))
    ok_n = len(negotiator) == len(want_n) and all(map(matches, want_n, negotiator))
    assert ok_e and ok_n, (f"{case.name} x {kind} ({case.what}):\n  events     want {want_e}\n"
                           f"             got  {events}\n  negotiator want {want_n}\n             got  {negotiator}")


def test_table_covers_the_interface() -> None:
    """Every trigger armed, every gate step and every method the plans can fail appears in the table."""
    setup = [s for c in delivery.CASES for s in c.setup]
    assert {a.trigger for a in setup if isinstance(a, Arm)} == set(TRIGGERS)
    assert any(isinstance(a, Arm) and a.after for a in setup)
    gates = {g.step for g in setup if isinstance(g, Gate)}
    assert gates == set(GATE_STEPS) - {"setRemoteDescription"} | {"setRemoteDescription"}
    assert {t for g in setup if isinstance(g, Gate) for t in [g.type] if t} == {"offer", "answer", "rollback"}
    assert any(isinstance(g, Gate) and g.open_on for g in setup)
    assert {f.method for f in setup if isinstance(f, FailNext)} == set(GATE_STEPS) - {"negotiationneeded"}
