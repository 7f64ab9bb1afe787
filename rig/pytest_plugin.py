"""glare-rig's pytest plugin: options, session-scoped peers' infrastructure, the
(scenario x polite x impolite x repeat) parametrization, and the results hook.

Shape after pytest-playwright: one option group; expensive things (the event loop, the
signaling stub, Playwright and its browsers) once per session or xdist worker; cheap
isolated things (a room, a browser context, an aiortc connection) per case.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import config, options, results, scenarios, shards
from .case import CaseResult, run_case
from .model import PeerInfo
from .peers.base import Peer, PeerSpec, RigError, bounded
from .versions import Installation


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_to_pytest(parser.getgroup("glare-rig", "glare-rig interop matrix"))


def _peers(config_: pytest.Config) -> list[PeerSpec]:
    return [PeerSpec.parse(p) for p in config_.getoption("--rig-peers").split(",") if p.strip()]


def _scenarios(config_: pytest.Config) -> list[scenarios.Scenario]:
    if config_.getoption("--rig-plan"):
        return [scenarios.load_plan(Path(config_.getoption("--rig-plan")))]
    names = config_.getoption("--rig-scenarios")
    if names == "all":
        return list(scenarios.CATALOGUE.values())
    return [scenarios.get(n.strip()) for n in names.split(",") if n.strip()]


def _cells(config_: pytest.Config) -> tuple[list[shards.Cell], list[shards.Cell]]:
    """The catalogue's cells (--rig-scenarios x ordered pairs of --rig-peers, or --rig-pairs),
    and the ones this run runs: all, or the --rig-shard slice (rig.shards)."""
    pairs = options.parse_pairs(config_.getoption("--rig-pairs"))
    every = shards.catalogue([s.name for s in _scenarios(config_)], _peers(config_), pairs)
    text = config_.getoption("--rig-shard")
    return every, (shards.select(every, shards.Shard.parse(text)) if text else every)


def _out(config_: pytest.Config) -> Path:
    return Path(config_.getoption("--rig-out") or Path(config_.rootpath) / "reports")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: a case of the interop matrix (real browsers and aiortc)")
    if _stub_host(config) and not hasattr(config, "workerinput"):
        from .signaling import check_stub_host
        try:  # a worker on another host checks its own (its stub fails to start with the same line)
            check_stub_host(_stub_host(config) or "")
        except RigError as exc:
            raise pytest.UsageError(str(exc)) from None
    config._rig_started = datetime.now(UTC)  # type: ignore[attr-defined]
    config._rig_cases = 0  # type: ignore[attr-defined]
    if config.getoption("--rig-shard"):  # a bad slice is one line, before anything is collected
        try:
            _cells(config)
        except RigError as exc:
            raise pytest.UsageError(str(exc)) from None
    # The case folder is not emptied here: a pytest run that collects no interop case (the
    # unit tests, say) must leave the last matrix's report alone, even one still being
    # written. A run that wrote cases drops the older ones when it ends (pytest_sessionfinish).


def _stale_cases(cases: Path, written: set[str]) -> tuple[list[Path], list[Path]]:
    """The case files this run wrote, and the ones another run left."""
    mine, old = [], []
    for f in sorted(cases.glob("*.json")):
        (mine if f.stem in written else old).append(f)
    return mine, old


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rig_cell" not in metafunc.fixturenames:
        return
    try:
        peers, scens = _peers(metafunc.config), _scenarios(metafunc.config)
        mine = set(_cells(metafunc.config)[1])
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    repeat = metafunc.config.getoption("--rig-repeat")
    params = []
    for scen in scens:
        for polite in peers:
            for impolite in peers:
                if shards.Cell(scen.name, str(polite), str(impolite)) not in mine:  # --rig-pairs, --rig-shard
                    continue
                for r in range(repeat):
                    cid = results.case_id(scen.name, polite.label, impolite.label, r, repeat)
                    params.append(pytest.param((scen, polite, impolite, r), id=cid, marks=[pytest.mark.interop]))
    metafunc.parametrize("rig_cell", params)


@pytest.fixture(scope="session")
def rig_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop per worker; Playwright, the stub and aiortc all live on it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class RigSession:
    """The per-worker infrastructure: the signaling stub, Playwright, the browser pool."""

    def __init__(self, loop: asyncio.AbstractEventLoop, negotiator_js: str | None, negotiator_py: str | None,
                 *, out: Path | None = None, full_capture: bool = False, headed: bool = False,
                 stub_host: str | None = None) -> None:
        from .signaling import LOOPBACK, SignalingStub
        self.loop = loop
        self.out = out  # evidence goes to out/cases/<slug>/ (none without it)
        self.full_capture = full_capture
        self.headed = headed
        self.stub = SignalingStub(host=stub_host or LOOPBACK)  # stub_host: for remote browsers (rig.remote)
        self._pw_cm = None
        self.pool = None
        self.negotiator_js = negotiator_js
        self.negotiator_py = negotiator_py or str(config.REFERENCE_NEGOTIATOR_PY)
        #: spec -> what it resolved to (or why it cannot be used), once per worker
        self._installs: dict[str, Installation | RigError] = {}
        self._hosts: dict[tuple[str, str, str], Any] = {}  # PeerHost, or the RigError it failed with
        self._host_locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def start(self) -> None:
        await self.stub.start()

    async def _pool(self):
        if self.pool is None:
            from playwright.async_api import async_playwright

            from .peers.browser import BrowserPool
            self._pw_cm = async_playwright()
            pw = await asyncio.wait_for(self._pw_cm.__aenter__(), config.LAUNCH_TIMEOUT)
            self.pool = BrowserPool(pw, headed=self.headed)
        return self.pool

    def negotiators(self) -> dict[str, Any]:
        """The JS negotiator as (URL the pages load, name shown in messages); the Python one as a target."""
        path = Path(self.negotiator_js) if self.negotiator_js else config.REFERENCE_NEGOTIATOR_JS
        url = (self.stub.serve_file(path.name, path) if self.negotiator_js
               else f"{self.stub.http_url}/fixtures/negotiators/{path.name}")
        return {"js": (url, str(path)), "py": self.negotiator_py}

    def installation(self, spec: PeerSpec) -> Installation:
        """What ``spec`` resolved to here (rig.install; ``rig matrix`` installed missing
        versions before the workers started). A spec that cannot be resolved raises the same
        one-line RigError for every case that needs it: those cells say why, the rest run."""
        key = str(spec)
        if key not in self._installs:
            from . import install
            known = json.loads(os.environ.get(config.UNRESOLVED_ENV) or "{}")
            try:
                if key in known:
                    raise RigError(known[key])
                self._installs[key] = install.resolve(spec)
            except RigError as exc:
                self._installs[key] = exc
        got = self._installs[key]
        if isinstance(got, RigError):
            raise RigError(str(got))
        return got

    async def host_for(self, installation: Installation) -> Any:
        """The worker's peer host for ``installation`` (rig.peers.host.PeerHost): started on
        first use, started again if it died; a start failure is remembered, so every case that
        needs it fails fast with the same one-line reason."""
        from .peers.host import PeerHost
        key = (installation.kind, installation.path, installation.driver)
        async with self._host_locks.setdefault(key, asyncio.Lock()):
            got = self._hosts.get(key)
            if got is None or (isinstance(got, PeerHost) and not got.alive):
                if isinstance(got, PeerHost):
                    await got.close()
                host = PeerHost()
                try:
                    await host.start(installation, headed=self.headed)
                    got = host
                except RigError as exc:
                    got = exc
                self._hosts[key] = got
        if isinstance(got, RigError):
            raise RigError(str(got))
        return got

    def describe(self, spec: PeerSpec) -> dict:
        """version, source and driver of ``spec`` for the results ({} when it did not resolve)."""
        try:
            inst = self.installation(spec)
        except RigError:
            return {}
        return {"version": inst.version, "source": inst.source, "driver": inst.driver_label}

    async def make_peer(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> Peer:
        inst = self.installation(spec)
        if not inst.in_process:
            host = await self.host_for(inst)
            return await host.make_peer(spec, name, user_id, t0, base_url=self.stub.http_url,
                                        trace=self.out is not None, full_capture=self.full_capture)
        if spec.kind == "aiortc":
            from .peers.aiortc_peer import AiortcPeer
            return AiortcPeer(spec, name, user_id, t0)
        from .peers.browser import BrowserPeer
        pool = await self._pool()
        browser = await pool.get(spec, inst.path)
        base = self.stub.remote_url if spec.endpoint else self.stub.http_url
        peer = BrowserPeer(spec, name, user_id, t0, browser, base)
        peer.executable = inst.path
        try:
            prepared = await pool.page(spec, inst.path, base, trace=self.out is not None,
                                       preload=self.negotiators()["js"][0])
            await asyncio.wait_for(peer.open(trace=self.out is not None, prepared=prepared), config.LAUNCH_TIMEOUT)
        except Exception as exc:
            await peer.close()
            hint = ("; a remote browser loads the peer page from the stub: give --rig-stub-host ADDR, an address "
                    "of this machine its host can reach (docs/remote.md)" if spec.endpoint and base.startswith("http:")
                    else "")
            raise RigError(f"{spec}: could not open a page: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           f"{hint}") from None
        return peer

    async def run(self, scen: scenarios.Scenario, polite: PeerSpec, impolite: PeerSpec,
                  slug: str | None = None, fault: str | None = None) -> CaseResult:
        """The case, with a last bound over everything it does (set-up and teardown too)."""
        where = self.out / "cases" / slug if self.out is not None and slug else None
        task = asyncio.ensure_future(run_case(self.stub, scen, polite, impolite, self.make_peer, self.negotiators(),
                                              evidence_dir=where, full_capture=self.full_capture,
                                              describe=self.describe, fault=fault))
        limit = config.LAUNCH_TIMEOUT + config.CASE_TIMEOUT + 6 * config.CLOSE_TIMEOUT + config.STEP_TIMEOUT
        try:
            if not await bounded(asyncio.shield(task), limit):
                task.cancel()
                raise RigError(f"{scen.name} {polite}-polite--{impolite}-impolite: the case did not finish within "
                               f"{limit:.0f} s (set-up and teardown included); its peers were abandoned")
            return task.result()
        finally:
            if self.pool is not None:  # the next case's pages, made while this one's verdict is written
                await bounded(self.pool.refill(), config.CLOSE_TIMEOUT * 2)

    async def stop(self) -> None:
        for host in self._hosts.values():
            if not isinstance(host, RigError):
                await host.close()  # bounded inside
        self._hosts.clear()
        if self.pool is not None:
            await self.pool.close()
        if self._pw_cm is not None:
            try:
                await asyncio.wait_for(self._pw_cm.__aexit__(None, None, None), config.CLOSE_TIMEOUT)
            except Exception:
                pass
        await self.stub.stop()


def _stub_host(config_: pytest.Config) -> str | None:
    """--rig-stub-host, else $RIG_STUB_HOST (one per worker host: docs/remote.md), else None."""
    from .signaling import STUB_HOST_ENV
    return config_.getoption("--rig-stub-host") or os.environ.get(STUB_HOST_ENV) or None


@pytest.fixture(scope="session")
def rig_session(rig_loop: asyncio.AbstractEventLoop, pytestconfig: pytest.Config) -> Iterator[RigSession]:
    s = RigSession(rig_loop, pytestconfig.getoption("--negotiator-js"), pytestconfig.getoption("--negotiator-py"),
                   out=None if pytestconfig.getoption("--rig-capture") == "off" else _out(pytestconfig),
                   full_capture=pytestconfig.getoption("--rig-capture") == "full",
                   headed=pytestconfig.getoption("--rig-headed"), stub_host=_stub_host(pytestconfig))
    rig_loop.run_until_complete(s.start())
    try:
        yield s
    finally:
        rig_loop.run_until_complete(s.stop())


class CaseHandle:
    """What a suite's test gets: run the cell's case, then turn its verdict into pytest's.

    The verdict (outcome, finding, cause) is computed once, by the case itself
    (rig.findings.judge); this only maps it: passed returns, xfailed is pytest.xfail,
    unsupported is pytest.skip, failed / xpassed / error fail the test."""

    def __init__(self, node: pytest.Item, session: RigSession, cell: tuple) -> None:
        self._node, self._session = node, session
        self.scenario, self.polite, self.impolite, self.repeat = cell

    def run(self) -> CaseResult:
        result = self._session.loop.run_until_complete(
            self._session.run(self.scenario, self.polite, self.impolite, slug=results.slug(self._node.callspec.id),
                              fault=self._node.config.getoption("--rig-fault") if self.repeat == 0 else None))
        self._node._rig_result = result  # type: ignore[attr-defined]
        return result

    def judge(self, result: CaseResult) -> None:
        if result.outcome == "passed":
            return
        if result.outcome == "xfailed":
            pytest.xfail(result.reason)
        if result.outcome == "unsupported":
            pytest.skip(f"unsupported: {result.reason}")
        plan = "\n".join(f"  {line}" for line in result.plan)
        detail = _out(self._node.config) / "cases" / f"{results.slug(self._node.callspec.id)}.json"
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
        scen, polite, impolite, r = cell
        result: CaseResult | None = getattr(item, "_rig_result", None)
        error = ""
        if result is None:  # the case never ran: a fixture or the rig itself failed
            error = (str(report.longrepr).strip().splitlines() or ["unknown error"])[-1] if report.longrepr \
                else "the case did not run"
        repeats = item.config.getoption("--rig-repeat")
        summary = results.write_case(
            _out(item.config), cid=results.case_id(scen.name, polite.label, impolite.label, r, repeats),
            repeat=r, nodeid=item.nodeid, result=result, scenario=scen.name,
            polite=PeerInfo(spec=str(polite), kind=polite.kind), impolite=PeerInfo(spec=str(impolite), kind=impolite.kind),
            error=error, duration_s=report.duration, keep=item.config.getoption("--rig-keep"),
            negotiators={"js": item.config.getoption("--negotiator-js") or str(config.REFERENCE_NEGOTIATOR_JS),
                         "py": item.config.getoption("--negotiator-py") or str(config.REFERENCE_NEGOTIATOR_PY)})
        item.config._rig_cases += 1  # type: ignore[attr-defined]
        # written: the worker's items live for the whole session, so keeping the result here
        # (events, messages, SDPs) would grow the worker by every case it ran (a soak showed it)
        item._rig_result = None  # type: ignore[attr-defined]
        # travels with the report to the xdist controller, which keeps the run's own cases
        report.user_properties.append(("rig_case", summary.slug))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "rig_case":
            _WRITTEN.add(str(value))


#: slugs of the case files this pytest session wrote (filled in the controller)
_WRITTEN: set[str] = set()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if hasattr(cfg, "workerinput"):
        return
    out = _out(cfg)
    if not (out / "cases").is_dir():
        return
    mine, old = _stale_cases(out / "cases", _WRITTEN)
    if not mine:
        return
    for f in old:  # an earlier run's cases: its page, evidence folder and detail file
        f.with_suffix(".html").unlink(missing_ok=True)
        shutil.rmtree(f.with_suffix(""), ignore_errors=True)
        f.unlink(missing_ok=True)
    from . import junit, report
    try:
        peers = [str(p) for p in _peers(cfg)]
        scens = [{"name": s.name, "description": s.description} for s in _scenarios(cfg)]
        every = _cells(cfg)[0]
    except RigError:
        return
    run = results.collect(out, started=cfg._rig_started,  # type: ignore[attr-defined]
                          command=os.environ.get("RIG_COMMAND", "pytest " + " ".join(cfg.invocation_params.args)),
                          repeat=cfg.getoption("--rig-repeat"), peers=peers, scenarios=scens, versions={})
    for p in _peers(cfg):
        run.versions.setdefault(p.kind, "unavailable")
    shard = cfg.getoption("--rig-shard")
    run.shard = str(shards.Shard.parse(shard)) if shard else ""
    run.catalogue = [c.as_list() for c in every]
    run.catalogue_digest = shards.digest(every, run.repeat)
    results.write_results(out, run)
    junit.write(out / "junit.xml", run)
    index = report.write_report(out, run)
    tr = cfg.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"glare-rig: {len(run.cases)} cases: " + ", ".join(f"{v} {k}" for k, v in run.summary.items() if v)
                      + f"; report: {index}")
