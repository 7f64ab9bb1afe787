"""glare-rig's pytest plugin: options, session-scoped peers' infrastructure, the
(scenario x polite x impolite x repeat) parametrization, and the results hook.

Shape after pytest-playwright: one option group; expensive things (the event loop, the
signaling stub, Playwright and its browsers) once per session or xdist worker; cheap
isolated things (a room, a browser context, an aiortc connection) per case.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import config, evidence, expectations, results, scenarios
from .case import CaseResult, run_case
from .peers.base import Peer, PeerSpec, RigError, bounded

DEFAULT_PEERS = "chromium,firefox,aiortc"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("glare-rig", "glare-rig interop matrix")
    g.addoption("--rig-peers", default=DEFAULT_PEERS,
                help="comma-separated peer specs, every ordered pair is run (default: %(default)s)")
    g.addoption("--rig-scenarios", default="all", help="comma-separated scenario names, or 'all'")
    g.addoption("--rig-plan", default=None,
                help="run this plan (a plan JSON, or a case's cases/<case>.json) instead of the catalogue")
    g.addoption("--rig-repeat", type=int, default=1, help="run every cell N times")
    g.addoption("--rig-out", default=None,
                help="write results.json, cases/ and index.html here (default: reports/ when interop cases ran)")
    g.addoption("--negotiator-js", default=None, help="ES module to use as the browsers' negotiator")
    g.addoption("--negotiator-py", default=None, help="path.py[:attr] or module:attr for aiortc peers")
    g.addoption("--rig-keep", choices=evidence.KEEP, default="failed",
                help="keep the evidence (SDPs, Playwright traces, aiortc log) of every case that did not pass "
                     "(failed, the default), or of all cases (all)")
    g.addoption("--rig-capture", choices=("off", "normal", "full"), default="normal",
                help="evidence files: off (no Playwright traces, no aiortc log), normal, or full (aiortc's "
                     "per-packet debug lines too; rig debug uses it)")
    g.addoption("--rig-headed", action="store_true", help="show the browsers (needs a display)")


def _peers(config_: pytest.Config) -> list[PeerSpec]:
    return [PeerSpec.parse(p) for p in config_.getoption("--rig-peers").split(",") if p.strip()]


def _scenarios(config_: pytest.Config) -> list[scenarios.Scenario]:
    if config_.getoption("--rig-plan"):
        return [scenarios.load_plan(Path(config_.getoption("--rig-plan")))]
    names = config_.getoption("--rig-scenarios")
    if names == "all":
        return list(scenarios.CATALOGUE.values())
    return [scenarios.get(n.strip()) for n in names.split(",") if n.strip()]


def _out(config_: pytest.Config) -> Path:
    return Path(config_.getoption("--rig-out") or Path(config_.rootpath) / "reports")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: a case of the interop matrix (real browsers and aiortc)")
    config._rig_started = datetime.now(UTC)  # type: ignore[attr-defined]
    config._rig_cases = 0  # type: ignore[attr-defined]
    if not hasattr(config, "workerinput"):
        # the controller starts each run with an empty case folder; workers only add to it
        shutil.rmtree(_out(config) / "cases", ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rig_cell" not in metafunc.fixturenames:
        return
    try:
        peers, scens = _peers(metafunc.config), _scenarios(metafunc.config)
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    repeat = metafunc.config.getoption("--rig-repeat")
    params = []
    for scen in scens:
        for polite in peers:
            for impolite in peers:
                exps = expectations.expected_failures(scen.name, polite, impolite)
                marks = [pytest.mark.interop]
                if expectations.strict(exps):
                    marks.append(pytest.mark.xfail(strict=True, reason=expectations.reason_of(exps),
                                                   raises=expectations.ExpectedFinding))
                for r in range(repeat):
                    cid = results.case_id(scen.name, polite.label, impolite.label, r, repeat)
                    params.append(pytest.param((scen, polite, impolite, r), id=cid, marks=marks))
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
                 *, out: Path | None = None, full_capture: bool = False, headed: bool = False) -> None:
        from .signaling import SignalingStub
        self.loop = loop
        self.out = out  # evidence goes to out/cases/<slug>/ (none without it)
        self.full_capture = full_capture
        self.headed = headed
        self.stub = SignalingStub()
        self._pw_cm = None
        self.pool = None
        self.negotiator_js = negotiator_js
        self.negotiator_py = negotiator_py or str(config.REFERENCE_NEGOTIATOR_PY)

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

    async def make_peer(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> Peer:
        if spec.kind == "aiortc":
            from .peers.aiortc_peer import AiortcPeer
            return AiortcPeer(spec, name, user_id, t0)
        from .peers.browser import BrowserPeer
        browser = await (await self._pool()).get(spec)
        peer = BrowserPeer(spec, name, user_id, t0, browser, self.stub.http_url)
        try:
            await asyncio.wait_for(peer.open(trace=self.out is not None), config.LAUNCH_TIMEOUT)
        except Exception as exc:
            await peer.close()
            raise RigError(f"{spec}: could not open a page: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return peer

    async def run(self, scen: scenarios.Scenario, polite: PeerSpec, impolite: PeerSpec,
                  slug: str | None = None) -> CaseResult:
        """The case, with a last bound over everything it does (set-up and teardown too)."""
        where = self.out / "cases" / slug if self.out is not None and slug else None
        task = asyncio.ensure_future(run_case(self.stub, scen, polite, impolite, self.make_peer, self.negotiators(),
                                              evidence_dir=where, full_capture=self.full_capture))
        limit = config.LAUNCH_TIMEOUT + config.CASE_TIMEOUT + 6 * config.CLOSE_TIMEOUT + config.STEP_TIMEOUT
        if not await bounded(asyncio.shield(task), limit):
            task.cancel()
            raise RigError(f"{scen.name} {polite}-polite--{impolite}-impolite: the case did not finish within "
                           f"{limit:.0f} s (set-up and teardown included); its peers were abandoned")
        return task.result()

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self._pw_cm is not None:
            try:
                await asyncio.wait_for(self._pw_cm.__aexit__(None, None, None), config.CLOSE_TIMEOUT)
            except Exception:
                pass
        await self.stub.stop()


@pytest.fixture(scope="session")
def rig_session(rig_loop: asyncio.AbstractEventLoop, pytestconfig: pytest.Config) -> Iterator[RigSession]:
    s = RigSession(rig_loop, pytestconfig.getoption("--negotiator-js"), pytestconfig.getoption("--negotiator-py"),
                   out=None if pytestconfig.getoption("--rig-capture") == "off" else _out(pytestconfig),
                   full_capture=pytestconfig.getoption("--rig-capture") == "full",
                   headed=pytestconfig.getoption("--rig-headed"))
    rig_loop.run_until_complete(s.start())
    try:
        yield s
    finally:
        rig_loop.run_until_complete(s.stop())


class CaseHandle:
    """What a suite's test gets: run the cell's case, then judge it against its expectation."""

    def __init__(self, node: pytest.Item, session: RigSession, cell: tuple) -> None:
        self._node, self._session = node, session
        self.scenario, self.polite, self.impolite, self.repeat = cell
        self.expectations = expectations.expected_failures(self.scenario.name, self.polite, self.impolite)

    def run(self) -> CaseResult:
        result = self._session.loop.run_until_complete(
            self._session.run(self.scenario, self.polite, self.impolite, slug=results.slug(self._node.callspec.id)))
        self._node._rig_result = result  # type: ignore[attr-defined]
        return result

    def judge(self, result: CaseResult) -> None:
        try:
            expectations.judge(result.passed, result.reason, self.expectations)
        except expectations.ExpectedFinding as exc:
            if not expectations.strict(self.expectations):
                # An intermittent finding: the cell has no xfail marker (a pass is a real
                # pass), so the hit is declared here.
                pytest.xfail(str(exc))
            raise
        except AssertionError as exc:
            plan = "\n".join(f"  {line}" for line in result.plan)
            detail = _out(self._node.config) / "cases" / f"{results.slug(self._node.callspec.id)}.json"
            raise AssertionError(
                f"{exc}\nplan:\n{plan}\nreplay: rig matrix --plan {detail} --peers {self.polite},{self.impolite}"
                f" -- -k '{self.polite.label}-polite--{self.impolite.label}-impolite'") from None


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
        xfail = item.get_closest_marker("xfail")
        if hasattr(report, "wasxfail"):
            state = "xpassed" if report.passed else "xfailed"
        elif report.when == "setup" or (result is None and report.failed):
            state = "error"
        elif report.passed:
            state = "passed"
        elif xfail is not None and "XPASS" in str(report.longrepr):
            state = "xpassed"
        elif xfail is not None and result is not None and result.passed:
            state = "xpassed"
        else:
            state = "failed"
        if result is not None and result.setup_error and state == "failed":
            state = "error"
        reason = result.reason if result is not None and result.reason else ""
        if state == "xfailed" and xfail is None:
            reason = f"expected failure (intermittent): {report.wasxfail}"
        elif state == "xfailed":
            reason = f"expected failure: {xfail.kwargs.get('reason', '')}\nobserved: {reason}"
        elif state == "xpassed":
            reason = f"passed although expected to fail ({xfail.kwargs.get('reason', '')}): remove the expectation"
        elif not reason and not report.passed:
            reason = str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "unknown failure"
        repeats = item.config.getoption("--rig-repeat")
        exps = expectations.expected_failures(scen.name, polite, impolite)
        def info(spec: PeerSpec, key: str) -> dict:
            if result is not None:
                return getattr(result, key)
            return {"spec": str(spec), "kind": spec.kind, "version": "unavailable", "user_id": None}
        results.write_case(
            _out(item.config), cid=results.case_id(scen.name, polite.label, impolite.label, r, repeats),
            repeat=r, outcome=state, expected="xfail" if xfail else ("xfail or pass" if exps else "pass"), result=result, reason=reason,
            duration_s=result.duration_s if result else report.duration, nodeid=item.nodeid,
            scenario=scen.name, polite=info(polite, "polite"), impolite=info(impolite, "impolite"),
            keep=item.config.getoption("--rig-keep"), findings=[e.reason for e in exps],
            negotiators={"js": item.config.getoption("--negotiator-js") or str(config.REFERENCE_NEGOTIATOR_JS),
                         "py": item.config.getoption("--negotiator-py") or str(config.REFERENCE_NEGOTIATOR_PY)})
        item.config._rig_cases += 1  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if hasattr(cfg, "workerinput"):
        return
    out = _out(cfg)
    if not (out / "cases").is_dir() or not any((out / "cases").glob("*.json")):
        return
    from . import report
    try:
        peers = [str(p) for p in _peers(cfg)]
        scens = [{"name": s.name, "description": s.description} for s in _scenarios(cfg)]
    except RigError:
        return
    run = results.collect(out, started=cfg._rig_started,  # type: ignore[attr-defined]
                          command=os.environ.get("RIG_COMMAND", "pytest " + " ".join(cfg.invocation_params.args)),
                          repeat=cfg.getoption("--rig-repeat"), peers=peers, scenarios=scens, versions={})
    for p in _peers(cfg):
        run["versions"].setdefault(p.kind, "unavailable")
    results.write_results(out, run)
    index = report.write_report(out, run)
    tr = cfg.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        s = run["summary"]
        tr.write_line(f"glare-rig: {len(run['cases'])} cases: " + ", ".join(f"{v} {k}" for k, v in s.items() if v)
                      + f"; report: {index}")
