"""glare-rig's pytest plugin: options, the (scenario x polite x impolite x repeat)
parametrization, the per-worker infrastructure and the case fixture, and the report hook.

Shape after pytest-playwright: one option group; expensive things (the event loop, the
signaling stub, Playwright and its browsers) once per session or xdist worker; cheap
isolated things (a room, a browser context, an aiortc connection) per case. The run's every
option comes from its request (rig.request, rig.plugin.run); the signal protocol
(rig.plugin.signals) and the end-of-run writing (rig.plugin.finish) are plugins of their own,
registered with this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from . import config, options, processes, results, runs, scenarios, slots, variants
from .case import run_case
from .errors import RigError
from .model import CaseDetail, PeerInfo
from .peerspec import PeerSpec
from .plugin import finish, signals
from .plugin.peers import DriverPool, PeerFactory
from .plugin.run import negotiators_of, out_of, request_of
from .request import cases
from .signaling import LOOPBACK, STUB_HOST_ENV, SignalingStub, check_stub_host
from .waits import bounded


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # the signal protocol's hooks and the end-of-run writing (rig.plugin), with this plugin
    for piece in (signals, finish):
        if not pluginmanager.is_registered(piece):
            pluginmanager.register(piece, piece.__name__)
    group = parser.getgroup("glare-rig", "glare-rig interop matrix")
    options.add_to_pytest(group)
    group.addoption("--rig-request", dest="rig_request", default=None,
                    help="a run's request file (rig.request, written by rig matrix): the run's every option, and "
                         "its peers as resolved once; the other --rig-* options are then not read")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: a case of the interop matrix (real browsers and aiortc)")
    if _stub_host(config) and not hasattr(config, "workerinput"):
        try:  # a worker on another host checks its own (its stub fails to start with the same line)
            check_stub_host(_stub_host(config) or "")
        except RigError as exc:
            raise pytest.UsageError(str(exc)) from None
    config._rig_started = datetime.now(UTC)  # type: ignore[attr-defined]
    config._rig_cases = 0  # type: ignore[attr-defined]
    signals.install_handlers(config)
    _limit_arenas()
    try:  # a bad request (a bad slice, say) is one line, before anything is collected
        req = request_of(config)
        if req.shard:
            req.cells()
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    # The case folder is not emptied here: a pytest run that collects no interop case (the
    # unit tests, say) must leave the last matrix's report alone, even one still being
    # written. A run that wrote cases drops the older ones when it ends (pytest_sessionfinish).


def _limit_arenas() -> None:
    """config.MALLOC_ARENAS for this process only (mallopt; children keep glibc's default)."""
    if config.MALLOC_ARENAS <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, config.MALLOC_ARENAS)  # M_ARENA_MAX (malloc.h); not glibc: no such call, nothing done


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rig_cell" not in metafunc.fixturenames:
        return
    try:
        params = cases(request_of(metafunc.config))
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    # pytest-timeout's bound over a cell: above the case's own (rig.config.case_limit) by the
    # bounded close of an interrupted case, so the case's one-line error always comes first
    marks = [pytest.mark.interop, pytest.mark.timeout(config.case_limit() + 2 * config.CLOSE_TIMEOUT + config.STEP_TIMEOUT)]
    metafunc.parametrize("rig_cell", [pytest.param(c.cell, id=c.id, marks=marks) for c in params])


@pytest.fixture(scope="session")
def rig_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per worker; Playwright, the stub and aiortc all live on it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class CaseInterrupted(Exception):
    """A signal ended the case in progress (RigSession.interrupt_case); the test then raises
    rig.runs.Interrupted, outside the event loop."""


class RigSession:
    """A worker's cases: each one's bounds and its slot, the next case's pages made while a verdict
    is written, and the ordered stop of everything the worker started. Its peers come from the
    ``rig_peer_factory`` fixture, over the ``rig_stub`` and ``rig_driver_pool`` fixtures."""

    def __init__(self, loop: asyncio.AbstractEventLoop, peers: PeerFactory, *, out: Path | None = None) -> None:
        self.loop = loop
        self.peers = peers
        self.stub, self.drivers = peers.stub, peers.drivers
        self.out = out  # evidence goes to out/cases/<slug>/ (none without it)
        #: the case in progress, and what a signal sets to end it (interrupt_case)
        self._case: asyncio.Task | None = None
        self._interrupt: asyncio.Future | None = None
        self.stopping = False
        self._owner_before = os.environ.get(config.OWNER_ENV)
        os.environ[config.OWNER_ENV] = str(os.getpid())  # every process started from here on (stop())

    def interrupt_case(self) -> bool:
        """From a signal handler: end the case in progress (cancelled, its peers closed by its own
        teardown) and make ``run`` raise CaseInterrupted. False when no case is in progress."""
        if self._case is None or self._case.done() or not self.loop.is_running():
            return False
        self.loop.call_soon_threadsafe(self._on_interrupt)
        return True

    def _on_interrupt(self) -> None:
        if self._interrupt is not None and not self._interrupt.done():
            self._interrupt.set_result(True)

    async def run(self, scen: scenarios.Scenario, polite: PeerSpec, impolite: PeerSpec,
                  slug: str | None = None, fault: str | None = None,
                  variant: variants.Variant | None = None, last: bool = False) -> CaseDetail:
        """The case, with a last bound over everything it does (set-up and teardown too).
        ``last``: no case follows on this worker, so no pages are prepared for one."""
        capture = variant is None or variant.capture
        where = self.out / "cases" / slug if self.out is not None and slug and capture else None
        async def slotted() -> CaseDetail:
            # one of the machine's case slots first (rig.slots): the case's bounds count from there
            async with slots.case_slot(f"{scen.name} {polite}-polite--{impolite}-impolite"):
                return await run_case(self.stub, scen, polite, impolite, self.peers.make_peer,
                                      self.peers.negotiators(variant), evidence_dir=where,
                                      full_capture=self.peers.full_capture, describe=self.peers.describe, fault=fault)
        task = asyncio.ensure_future(slotted())
        limit = config.case_limit()
        self._case, self._interrupt = task, self.loop.create_future()
        try:
            done, _ = await asyncio.wait({task, self._interrupt}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()
            if self._interrupt in done:  # a signal: the case's own teardown closes its peers (bounded)
                if not (await asyncio.wait({task}, timeout=2 * config.CLOSE_TIMEOUT))[0]:
                    sys.stderr.write(f"glare-rig: the interrupted case {scen.name} did not close its peers within "
                                     f"{2 * config.CLOSE_TIMEOUT:.0f} s; they are ended with the session\n")
                raise CaseInterrupted(scen.name)
            raise RigError(f"{scen.name} {polite}-polite--{impolite}-impolite: the case did not finish within "
                           f"{limit:.0f} s (set-up and teardown included); its peers were abandoned")
        finally:
            self._interrupt = None
            pool = self.drivers.pool
            if pool is not None and not self.stopping and signals.SIG.signum is None and not last:
                if pool.pages >= config.RECYCLE_DRIVER_PAGES:
                    await self.drivers.restart()
                else:  # the next case's pages, made while this one's verdict is written
                    await bounded(pool.refill(), config.CLOSE_TIMEOUT * 2)

    async def stop(self) -> None:
        """Close everything the worker started, then wait (bounded) until those processes have
        exited: Playwright's driver, a browser and Chromium's crash handlers (re-parented to
        init) are still shutting down for a moment after close() returns, and the run's sweep
        would otherwise find them."""
        self.stopping = True
        before = {p: t for p in processes.tagged(config.OWNER_ENV, str(os.getpid()))
                  if (t := processes.start_time(p)) is not None}
        if self._case is not None and not self._case.done():  # a case a signal cut short
            self._case.cancel()
            await asyncio.wait({self._case}, timeout=2 * config.CLOSE_TIMEOUT)
        await self.peers.close()
        await self._wait_exited(before)
        if self._owner_before is None:
            os.environ.pop(config.OWNER_ENV, None)
        else:
            os.environ[config.OWNER_ENV] = self._owner_before

    async def _wait_exited(self, procs: dict[int, int]) -> None:
        deadline = time.monotonic() + config.CLOSE_TIMEOUT
        left = {p: t for p, t in procs.items() if processes.alive(p, t)}
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # polling /proc for the exits, bounded by the deadline
            left = {p: t for p, t in left.items() if processes.alive(p, t)}
        if left:
            names = processes.describe(left)
            processes.end(left)
            sys.stderr.write(f"glare-rig: {names} had not exited {config.CLOSE_TIMEOUT:.0f} s after the worker "
                             "closed them; ended\n")


def _stub_host(config_: pytest.Config) -> str | None:
    """--rig-stub-host, else $RIG_STUB_HOST (one per worker host: docs/remote.md), else None."""
    try:
        own = request_of(config_).stub_host
    except RigError:  # said once, by pytest_configure
        own = config_.getoption("rig_stub_host")
    return own or os.environ.get(STUB_HOST_ENV) or None


@pytest.fixture(scope="session")
def rig_stub(rig_loop: asyncio.AbstractEventLoop, pytestconfig: pytest.Config) -> Iterator[SignalingStub]:
    """The worker's signaling stub (rig.signaling): on loopback, and with a stub host on that
    address too. A conftest may override it (a stub elsewhere, one that misbehaves)."""
    stub = SignalingStub(host=_stub_host(pytestconfig) or LOOPBACK)
    rig_loop.run_until_complete(stub.start())
    try:
        yield stub
    finally:
        rig_loop.run_until_complete(stub.stop())


@pytest.fixture(scope="session")
def rig_driver_pool(rig_loop: asyncio.AbstractEventLoop, pytestconfig: pytest.Config) -> Iterator[DriverPool]:
    """Playwright's driver and this worker's browsers. rig_session closes it in its ordered stop
    (before it waits for the worker's processes to exit); a conftest may override it."""
    drivers = DriverPool(headed=request_of(pytestconfig).headed)
    try:
        yield drivers
    finally:
        rig_loop.run_until_complete(drivers.close())


@pytest.fixture(scope="session")
def rig_peer_factory(rig_stub: SignalingStub, rig_driver_pool: DriverPool, pytestconfig: pytest.Config) -> PeerFactory:
    """How this worker makes a case's peers (rig.plugin.peers.PeerFactory), from the run's request;
    a conftest may override it (peers of its own, a factory that fails). rig_session closes it."""
    req = request_of(pytestconfig)
    return PeerFactory(rig_stub, rig_driver_pool, req, negotiator_js=req.negotiator_js,
                       negotiator_py=req.negotiator_py, trace=req.capture != "off",
                       full_capture=req.capture == "full", headed=req.headed)


@pytest.fixture(scope="session")
def rig_session(rig_loop: asyncio.AbstractEventLoop, rig_peer_factory: PeerFactory,
                pytestconfig: pytest.Config) -> Iterator[RigSession]:
    req = request_of(pytestconfig)
    s = RigSession(rig_loop, rig_peer_factory, out=None if req.capture == "off" else out_of(pytestconfig))
    signals.SIG.session = s
    try:
        yield s
    finally:
        try:
            rig_loop.run_until_complete(s.stop())
        finally:
            signals.SIG.session = None


class CaseHandle:
    """What a suite's test gets: run the cell's case, then turn its verdict into pytest's.

    The verdict (outcome, finding, cause) is computed once, by the case itself
    (rig.verdict.case_verdict); this only maps it: passed returns, xfailed is pytest.xfail,
    unsupported is pytest.skip, failed / xpassed / error fail the test."""

    def __init__(self, node: pytest.Item, session: RigSession, cell: tuple) -> None:
        self._node, self._session = node, session
        self.scenario, self.polite, self.impolite, self.repeat, self.variant = cell

    def run(self) -> CaseDetail:
        if signals.SIG.signum is not None:
            raise signals.SIG.interrupted
        try:
            result = self._session.loop.run_until_complete(
                self._session.run(self.scenario, self.polite, self.impolite, slug=results.slug(self._node.callspec.id),
                                  fault=request_of(self._node.config).fault if self.repeat == 0 else None,
                                  variant=self.variant, last=getattr(self._node, "_rig_last", False)))
        except CaseInterrupted:
            raise signals.SIG.interrupted or runs.Interrupted(signal.SIGINT) from None
        self._node._rig_result = result  # type: ignore[attr-defined]
        return result

    def judge(self, record: CaseDetail) -> None:
        result = record.case
        if result.outcome == "passed":
            return
        if result.outcome == "xfailed":
            pytest.xfail(result.reason)
        if result.outcome == "unsupported":
            pytest.skip(f"unsupported: {result.reason}")
        plan = "\n".join(f"  {line}" for line in record.plan)
        detail = out_of(self._node.config) / "cases" / f"{results.slug(self._node.callspec.id)}.json"
        pytest.fail(f"{result.outcome}: {result.reason}\nplan:\n{plan}\nreplay: rig matrix --plan {detail} "
                    f"--peers {self.polite},{self.impolite} --pairs {self.polite}:{self.impolite}", pytrace=False)


@pytest.fixture
def rig_case(request: pytest.FixtureRequest, rig_cell, rig_session: RigSession) -> CaseHandle:
    """The cell's case; the report hook records its result."""
    return CaseHandle(request.node, rig_session, rig_cell)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    cell = getattr(item, "callspec", None) and item.callspec.params.get("rig_cell")
    if cell is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        scen, polite, impolite, r, var = cell
        result: CaseDetail | None = getattr(item, "_rig_result", None)
        error = ""
        if result is None:  # the case never ran: a fixture or the rig itself failed
            error = (str(report.longrepr).strip().splitlines() or ["unknown error"])[-1] if report.longrepr \
                else "the case did not run"
        repeats = request_of(item.config).repeat
        summary = results.write_case(
            out_of(item.config), cid=var.case_id(results.case_id(scen.name, polite.label, impolite.label, r, repeats)),
            repeat=r, nodeid=item.nodeid, result=result, scenario=scen.name,
            polite=PeerInfo(spec=str(polite), kind=polite.kind), impolite=PeerInfo(spec=str(impolite), kind=impolite.kind),
            error=error, duration_s=report.duration, keep=request_of(item.config).keep,
            negotiators=negotiators_of(item.config, var))
        item.config._rig_cases += 1  # type: ignore[attr-defined]
        # written: the worker's items live for the whole session, so keeping the result here
        # (events, messages, SDPs) would grow the worker by every case it ran (a soak showed it)
        item._rig_result = None  # type: ignore[attr-defined]
        # travels with the report to the xdist controller, which keeps the run's own cases
        report.user_properties.append(("rig_case", summary.slug))
