"""glare-rig's pytest plugin: options, session-scoped peers' infrastructure, the
(scenario x polite x impolite x repeat) parametrization, and the results hook.

Shape after pytest-playwright: one option group; expensive things (the event loop, the
signaling stub, Playwright and its browsers) once per session or xdist worker; cheap
isolated things (a room, a browser context, an aiortc connection) per case.

Signals (docs/design.md, "Ending a run"): SIGINT, SIGTERM and SIGHUP end the session in order
in every process of it. A worker cancels the case in progress (its peers are closed) and ends
its session, which closes its browsers, peer hosts and stub, and tells the controller at once
(WORKER_SIGNALLED); the controller forwards the signal to its (other) workers and, when they
are done, writes the partial report, in which every
collected case without a result is ``not-run`` (or ``error`` when its worker died).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from . import config, install, options, processes, results, runs, scenarios, shards, variants
from .case import CaseResult, run_case
from .errors import RigError
from .model import PeerInfo
from .peers.base import Peer
from .peers.host import PeerHost
from .peerspec import PeerSpec
from .request import MatrixRequest, cases
from .signaling import LOOPBACK, STUB_HOST_ENV, SignalingStub, check_stub_host
from .versions import Installation
from .vocab import JUNIT_FILE
from .waits import bounded


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("glare-rig", "glare-rig interop matrix")
    options.add_to_pytest(group)
    group.addoption("--rig-request", dest="rig_request", default=None,
                    help="a run's request file (rig.request, written by rig matrix): the run's every option, and "
                         "its peers as resolved once; the other --rig-* options are then not read")


def _request(config_: pytest.Config) -> MatrixRequest:
    """The run's request: the file ``rig`` wrote, or one made from this pytest's own options."""
    got = getattr(config_, "_rig_request", None)
    if got is None:
        path = config_.getoption("rig_request")
        if path:
            got = MatrixRequest.load(path)
        else:
            values = {o.dest: config_.getoption(f"rig_{o.dest}") for o in options.MATRIX}
            got = MatrixRequest.from_options(values, command="pytest " + " ".join(config_.invocation_params.args))
        config_._rig_request = got  # type: ignore[attr-defined]
    return got


def _out(config_: pytest.Config) -> Path:
    return Path(_request(config_).out or Path(config_.rootpath) / "reports")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: a case of the interop matrix (real browsers and aiortc)")
    if _stub_host(config) and not hasattr(config, "workerinput"):
        try:  # a worker on another host checks its own (its stub fails to start with the same line)
            check_stub_host(_stub_host(config) or "")
        except RigError as exc:
            raise pytest.UsageError(str(exc)) from None
    config._rig_started = datetime.now(UTC)  # type: ignore[attr-defined]
    config._rig_cases = 0  # type: ignore[attr-defined]
    _install_signal_handlers(config)
    _limit_arenas()
    try:  # a bad request (a bad slice, say) is one line, before anything is collected
        req = _request(config)
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


# --- signals: a session ends in order (the module docstring) ---------------------------------

class _Signals:
    """What this process's signal handling knows."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.origin = ""
        self.at = 0.0
        self.config: pytest.Config | None = None
        self.session: RigSession | None = None  # the worker's, while it runs cases
        self.previous: dict[int, Any] = {}
        self.parent: int | None = None  # the process that started this one, when it asked to be told of its death
        #: every case of this process's session has run (pytest_sessionfinish has begun): a
        #: worker ignores signals from then on (execnet sends one when a worker's exit takes over
        #: 5 s, under heavy load), and a controller ignores its workers' notes of them
        self.session_over = False

    @property
    def interrupted(self) -> runs.Interrupted | None:
        return runs.Interrupted(self.signum, self.origin) if self.signum is not None else None


_SIG = _Signals()
#: A second signal within this many seconds of the first is the same request delivered twice (a
#: terminal's Ctrl-C reaches every process of its group, and the controller forwards it too);
#: a later one insists, and interrupts whatever is running, except a worker's teardown: that is
#: bounded, and execnet sends its worker a SIGINT 5 s after the controller stopped waiting.
REPEAT_WINDOW = 2.0


def _is_controller(cfg: pytest.Config) -> bool:
    return not hasattr(cfg, "workerinput") and cfg.pluginmanager.getplugin("dsession") is not None


def _install_signal_handlers(cfg: pytest.Config) -> None:
    """SIGINT, SIGTERM and SIGHUP end the session in order (a handler someone else installed,
    and a SIGHUP ignored under nohup, are left alone); and SIGTERM when the process that
    started this one dies, even by SIGKILL (``config.PARENT_ENV``: rig for the controller, the
    controller for its workers)."""
    _SIG.config = cfg
    for sig in runs.SIGNALS:
        try:
            current = signal.getsignal(sig)
            if current not in (signal.SIG_DFL, signal.default_int_handler):
                continue
            _SIG.previous[sig] = current
            signal.signal(sig, _on_signal)
        except (ValueError, OSError):  # not the main thread (pytest run inside something else)
            return
    parent = os.environ.get(config.PARENT_ENV, "")
    if parent.isdigit() and os.getppid() == int(parent):
        _SIG.parent = int(parent)
    if parent.isdigit() and not processes.die_with_parent(int(parent)):
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before we could ask: as if it had
    if not hasattr(cfg, "workerinput"):
        os.environ[config.PARENT_ENV] = str(os.getpid())  # for the xdist workers this one starts
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(WORKER_SIGNALLED) == signal.SIG_DFL:
                _SIG.previous[WORKER_SIGNALLED] = signal.SIG_DFL
                signal.signal(WORKER_SIGNALLED, _on_worker_signalled)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SIG.session_over and hasattr(config, "workerinput"):
        return  # a worker about to exit keeps ignoring execnet's SIGINT (_Signals.session_over)
    for sig, handler in _SIG.previous.items():
        with contextlib.suppress(ValueError, OSError, TypeError):
            # a worker's late note must not end this process by the default action
            signal.signal(sig, signal.SIG_IGN if sig == WORKER_SIGNALLED else handler)
    _SIG.previous.clear()
    for path in _notes():
        path.unlink(missing_ok=True)  # notes of workers that came too late to be read


def _on_signal(signum: int, frame: Any) -> None:
    now = time.monotonic()
    if _SIG.session_over and _SIG.config is not None and hasattr(_SIG.config, "workerinput"):
        return  # a worker with nothing left but its bounded teardown (a user's Ctrl-C reaches the controller too)
    if _SIG.signum is not None:
        if now - _SIG.at < REPEAT_WINDOW or (_SIG.session is not None and _SIG.session.stopping):
            return  # the same request twice, or a teardown under way (bounded: it is let finish)
        raise runs.Interrupted(signum, "again")
    _SIG.signum, _SIG.at = signum, now
    if _SIG.parent is not None and os.getppid() != _SIG.parent:
        _SIG.origin = f"its parent, pid {_SIG.parent}, died"
    cfg = _SIG.config
    if cfg is not None and hasattr(cfg, "workerinput"):
        cfg.workeroutput["rig_signal"] = int(signum)  # type: ignore[attr-defined]  # the controller says which
        if not _SIG.origin:
            _tell_controller(signum, str(cfg.workerinput.get("workerid", "?")))  # type: ignore[attr-defined]
    elif cfg is not None and _is_controller(cfg):
        _forward_to_workers(signum)
    rig = _SIG.session
    if rig is not None and (rig.stopping or rig.interrupt_case()):
        return  # the case ends itself (its peers closed), then its test raises; or teardown is under way
    raise runs.Interrupted(signum)


def _forward_to_workers(signum: int, but: int | None = None) -> None:
    """An xdist controller's children are its workers: each ends its own case and session."""
    for pid in processes.children():
        if pid != but:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)


#: A worker that got a signal tells its controller at once with this one, so that every worker
#: ends its case at the same time. Without it the controller heard of it only when that worker
#: had closed everything and its session had ended, and only then stopped the others, which
#: ran cases meanwhile: under load one ending after the other took more than 30 s
#: (docs/design.md, "Ending a run").
WORKER_SIGNALLED = signal.SIGUSR1


def _note_path(controller: int, worker: int) -> Path:
    return Path(tempfile.gettempdir()) / f"glare-rig-signal-{controller}-{worker}"


def _notes() -> list[Path]:
    """This controller's notes from its workers (and any half-written ``.tmp`` one)."""
    return list(Path(tempfile.gettempdir()).glob(f"glare-rig-signal-{os.getpid()}-*"))


def _tell_controller(signum: int, wid: str) -> None:
    """From a worker's signal handler: which signal, to which worker, in a note beside the
    controller's pid (a signal carries no data), then WORKER_SIGNALLED to the controller."""
    if _SIG.parent is None:
        return
    note = _note_path(_SIG.parent, os.getpid())
    with contextlib.suppress(OSError):
        tmp = note.with_name(note.name + ".tmp")
        tmp.write_text(f"{int(signum)} {wid}")
        tmp.replace(note)
        os.kill(_SIG.parent, WORKER_SIGNALLED)


def _on_worker_signalled(signum: int, frame: Any) -> None:
    """The controller's handler of WORKER_SIGNALLED: the run ends as if the controller had the
    worker's signal (every other worker ends its case now), named after that worker."""
    notes = []
    for path in _notes():
        with contextlib.suppress(OSError, ValueError):
            sig, wid = path.read_text().split(" ", 1)
            notes.append((int(path.name.rsplit("-", 1)[1]), int(sig), wid))
            path.unlink()
    if not notes or _SIG.signum is not None or _SIG.session_over:
        return  # no note; the run already ending (the worker's echo of it); or every case already ran
    pid, sig, wid = notes[0]
    _interrupted_by_worker(sig, wid, but=pid)


def _interrupted_by_worker(signum: int, wid: str, but: int | None = None) -> None:
    _SIG.signum, _SIG.origin, _SIG.at = signum, f"to worker {wid}", time.monotonic()
    _forward_to_workers(signum, but=but)
    raise _SIG.interrupted


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    # pages prepared ahead after this worker's last test would only be made to be thrown away
    # (xdist's worker holds its last item back until it knows there is no next one)
    item._rig_last = nextitem is None  # type: ignore[attr-defined]
    result = yield
    if _SIG.signum is not None:  # a case that finished just as the signal came keeps its result; then stop
        raise _SIG.interrupted
    return result


#: node id -> why its worker died while running it (controller; rig.results.unfinished)
_CRASHED: dict[str, str] = {}
#: worker id -> how it died
_DEAD: dict[str, str] = {}
#: the node ids of every test the session collected (in the controller under xdist)
_COLLECTED: dict[str, None] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        _COLLECTED.update(dict.fromkeys(item.nodeid for item in session.items))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    _COLLECTED.update(dict.fromkeys(ids))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """A worker is down. Ended by a signal (its session interrupted): the whole run ends, as if
    the controller had the signal. Died otherwise (SIGKILL, a crash): remember how, for the case
    it was running (xdist replaces the worker and the run goes on)."""
    out = getattr(node, "workeroutput", None) or {}
    wid = getattr(getattr(node, "gateway", None), "id", "?")
    if error is None and out.get("exitstatus") == pytest.ExitCode.INTERRUPTED:
        if _SIG.signum is None:  # the worker's WORKER_SIGNALLED did not come (it could not say)
            _interrupted_by_worker(int(out.get("rig_signal") or signal.SIGINT), wid)
        return
    if error is not None:
        _DEAD[wid] = f"worker {wid} {_exit_text(node)}"


def _exit_text(node: Any) -> str:
    """How a worker process ended, read from execnet's Popen of it (private: "died" otherwise)."""
    popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
    rc = None
    with contextlib.suppress(Exception):
        rc = popen.wait(timeout=2) if popen is not None else None
    if rc is None:
        return "died"
    if rc < 0:
        return f"was killed by {runs.signal_name(-rc)}"
    return f"exited with status {rc}"


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    wid = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "?")
    why = _DEAD.get(wid, f"worker {wid} died")
    text = f"{why} while running this case"
    if _SIG.signum is None:
        _CRASHED[crashitem] = text
    report.longrepr = text


def _stale_cases(cases: Path, written: set[str]) -> tuple[list[Path], list[Path]]:
    """The case files this run wrote, and the ones another run left."""
    mine, old = [], []
    for f in sorted(cases.glob("*.json")):
        (mine if f.stem in written else old).append(f)
    return mine, old


def _negotiators(config_: pytest.Config, var: variants.Variant | None) -> dict[str, str]:
    """The negotiators a case ran with, as the results record them."""
    req = _request(config_)
    return {"js": (var and var.js) or req.negotiator_js or str(config.REFERENCE_NEGOTIATOR_JS),
            "py": (var and var.py) or req.negotiator_py or str(config.REFERENCE_NEGOTIATOR_PY)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rig_cell" not in metafunc.fixturenames:
        return
    try:
        params = cases(_request(metafunc.config))
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None
    metafunc.parametrize("rig_cell", [pytest.param(c.cell, id=c.id, marks=[pytest.mark.interop]) for c in params])


def _collected_cases(config_: pytest.Config) -> dict[str, tuple[str, str, tuple]]:
    """slug -> (node id, case id, cell) of every interop case the session collected (after -k,
    --deselect and the like), read back from the node ids: under xdist the controller has only
    those."""
    by_id = {c.id: c.cell for c in cases(_request(config_))}
    out = {}
    for nodeid in _COLLECTED:
        name = nodeid.rsplit("::", 1)[-1]
        if "[" in name and name.endswith("]"):
            cid = name[name.index("[") + 1:-1]
            if cid in by_id:
                out[results.slug(cid)] = (nodeid, cid, by_id[cid])
    return out


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
    """The per-worker infrastructure: the signaling stub, Playwright, the browser pool."""

    def __init__(self, loop: asyncio.AbstractEventLoop, negotiator_js: str | None, negotiator_py: str | None,
                 *, out: Path | None = None, full_capture: bool = False, headed: bool = False,
                 stub_host: str | None = None, request: MatrixRequest | None = None) -> None:
        self.loop = loop
        self.request = request  # what the controller resolved each peer spec to (rig.request)
        self.out = out  # evidence goes to out/cases/<slug>/ (none without it)
        self.full_capture = full_capture
        self.headed = headed
        self.stub = SignalingStub(host=stub_host or LOOPBACK)  # stub_host: for remote browsers (rig.remote)
        self._pw_cm = None
        self.pool = None
        self._pool_lock = asyncio.Lock()
        self.negotiator_js = negotiator_js
        self.negotiator_py = negotiator_py or str(config.REFERENCE_NEGOTIATOR_PY)
        #: spec -> what it resolved to (or why it cannot be used), once per worker
        self._installs: dict[str, Installation | RigError] = {}
        self._hosts: dict[tuple[str, str, str], Any] = {}  # PeerHost, or the RigError it failed with
        self._host_locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        #: the case in progress, and what a signal sets to end it (interrupt_case)
        self._case: asyncio.Task | None = None
        self._interrupt: asyncio.Future | None = None
        self.stopping = False
        self._owner_before = os.environ.get(config.OWNER_ENV)
        os.environ[config.OWNER_ENV] = str(os.getpid())  # every process started from here on (stop())

    async def start(self) -> None:
        await self.stub.start()

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

    async def _pool(self):
        # One Playwright per worker. Both peers of a case are made at once, so without the lock
        # a first case of two browser peers started two drivers and kept only the second: the
        # other (and its browser) outlived the worker, and the run's sweep ended it ("ended 4
        # process(es) the run left behind" after every run).
        async with self._pool_lock:
            if self.pool is None:
                # Playwright only in a worker that runs browsers in process
                from playwright.async_api import async_playwright

                from .peers.browser import BrowserPool
                self._pw_cm = async_playwright()
                pw = await asyncio.wait_for(self._pw_cm.__aenter__(), config.LAUNCH_TIMEOUT)
                self.pool = BrowserPool(pw, headed=self.headed)
        return self.pool

    def negotiators(self, variant: variants.Variant | None = None) -> dict[str, Any]:
        """The JS negotiator as (URL the pages load, name shown in messages); the Python one as a
        target. A variant's own (rig.variants) replace the session's."""
        own_js = (variant and variant.js) or self.negotiator_js
        path = Path(own_js) if own_js else config.REFERENCE_NEGOTIATOR_JS
        url = (self.stub.serve_file(path.name, path) if own_js
               else f"{self.stub.http_url}/fixtures/negotiators/{path.name}")
        return {"js": (url, str(path)), "py": (variant and variant.py) or self.negotiator_py}

    def installation(self, spec: PeerSpec) -> Installation:
        """What ``spec`` resolved to (the run's request, resolved by ``rig matrix`` before the
        workers started; else rig.install here). A spec that cannot be resolved raises the same
        one-line RigError for every case that needs it: those cells say why, the rest run."""
        key = str(spec)
        if key not in self._installs:
            try:
                got = self.request.installation(spec) if self.request is not None else None
                self._installs[key] = got if got is not None else install.resolve(spec)
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
        source = inst.source
        if spec.kind == "chromium" and not spec.endpoint and not self.headed and config.HEADLESS_SHELL:
            from .peers.browser import headless_shell  # imports Playwright: not in an aiortc-only run
            if headless_shell(inst.path):
                source += ", headless shell"
        return {"version": inst.version, "source": source, "driver": inst.driver_label}

    async def make_peer(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> Peer:
        inst = self.installation(spec)
        if not inst.in_process:
            host = await self.host_for(inst)
            return await host.make_peer(spec, name, user_id, t0, base_url=self.stub.http_url,
                                        trace=self.out is not None, full_capture=self.full_capture)
        if spec.kind == "aiortc":
            from .peers.aiortc_peer import AiortcPeer  # aiortc: only in a worker that runs aiortc peers
            return AiortcPeer(spec, name, user_id, t0)
        from .peers.browser import BrowserPeer  # imports Playwright (see _pool)
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
                  slug: str | None = None, fault: str | None = None,
                  variant: variants.Variant | None = None, last: bool = False) -> CaseResult:
        """The case, with a last bound over everything it does (set-up and teardown too).
        ``last``: no case follows on this worker, so no pages are prepared for one."""
        capture = variant is None or variant.capture
        where = self.out / "cases" / slug if self.out is not None and slug and capture else None
        task = asyncio.ensure_future(run_case(self.stub, scen, polite, impolite, self.make_peer,
                                              self.negotiators(variant),
                                              evidence_dir=where, full_capture=self.full_capture,
                                              describe=self.describe, fault=fault))
        limit = config.LAUNCH_TIMEOUT + config.CASE_TIMEOUT + 6 * config.CLOSE_TIMEOUT + config.STEP_TIMEOUT
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
            if self.pool is not None and not self.stopping and _SIG.signum is None and not last:
                if self.pool.pages >= config.RECYCLE_DRIVER_PAGES:
                    await self._restart_driver()
                else:  # the next case's pages, made while this one's verdict is written
                    await bounded(self.pool.refill(), config.CLOSE_TIMEOUT * 2)

    async def _restart_driver(self) -> None:
        """Between cases: close the browsers and Playwright's driver; the next case that needs a
        browser starts a new driver (config.RECYCLE_DRIVER_PAGES)."""
        async with self._pool_lock:
            pool, cm = self.pool, self._pw_cm
            self.pool, self._pw_cm = None, None
            if pool is not None:
                await bounded(pool.close(), config.CLOSE_TIMEOUT * 2)
            if cm is not None:
                await bounded(cm.__aexit__(None, None, None), config.CLOSE_TIMEOUT)

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
        own = _request(config_).stub_host
    except RigError:  # said once, by pytest_configure
        own = config_.getoption("rig_stub_host")
    return own or os.environ.get(STUB_HOST_ENV) or None


@pytest.fixture(scope="session")
def rig_session(rig_loop: asyncio.AbstractEventLoop, pytestconfig: pytest.Config) -> Iterator[RigSession]:
    req = _request(pytestconfig)
    s = RigSession(rig_loop, req.negotiator_js, req.negotiator_py,
                   out=None if req.capture == "off" else _out(pytestconfig), full_capture=req.capture == "full",
                   headed=req.headed, stub_host=_stub_host(pytestconfig), request=req)
    rig_loop.run_until_complete(s.start())
    _SIG.session = s
    try:
        yield s
    finally:
        try:
            rig_loop.run_until_complete(s.stop())
        finally:
            _SIG.session = None


class CaseHandle:
    """What a suite's test gets: run the cell's case, then turn its verdict into pytest's.

    The verdict (outcome, finding, cause) is computed once, by the case itself
    (rig.verdict.case_verdict); this only maps it: passed returns, xfailed is pytest.xfail,
    unsupported is pytest.skip, failed / xpassed / error fail the test."""

    def __init__(self, node: pytest.Item, session: RigSession, cell: tuple) -> None:
        self._node, self._session = node, session
        self.scenario, self.polite, self.impolite, self.repeat, self.variant = cell

    def run(self) -> CaseResult:
        if _SIG.signum is not None:
            raise _SIG.interrupted
        try:
            result = self._session.loop.run_until_complete(
                self._session.run(self.scenario, self.polite, self.impolite, slug=results.slug(self._node.callspec.id),
                                  fault=_request(self._node.config).fault if self.repeat == 0 else None,
                                  variant=self.variant, last=getattr(self._node, "_rig_last", False)))
        except CaseInterrupted:
            raise _SIG.interrupted or runs.Interrupted(signal.SIGINT) from None
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
        scen, polite, impolite, r, var = cell
        result: CaseResult | None = getattr(item, "_rig_result", None)
        error = ""
        if result is None:  # the case never ran: a fixture or the rig itself failed
            error = (str(report.longrepr).strip().splitlines() or ["unknown error"])[-1] if report.longrepr \
                else "the case did not run"
        repeats = _request(item.config).repeat
        summary = results.write_case(
            _out(item.config), cid=var.case_id(results.case_id(scen.name, polite.label, impolite.label, r, repeats)),
            repeat=r, nodeid=item.nodeid, result=result, scenario=scen.name,
            polite=PeerInfo(spec=str(polite), kind=polite.kind), impolite=PeerInfo(spec=str(impolite), kind=impolite.kind),
            error=error, duration_s=report.duration, keep=_request(item.config).keep,
            negotiators=_negotiators(item.config, var))
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


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_session_over(session: pytest.Session, exitstatus: int):
    """From here every case has run and been reported: a worker only tears down (bounded) and a
    controller only collects and writes. A worker's signal now cannot cost a case, so it must
    not end the whole run: execnet's own SIGINT to a worker slow to exit is one (heavy load)."""
    _SIG.session_over = True
    return (yield)


@pytest.hookimpl(trylast=True)  # after xdist has waited for its workers, and the fixtures are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if hasattr(cfg, "workerinput"):
        return
    out = _out(cfg)
    cases_dir = out / "cases"
    try:
        collected = {} if cfg.option.collectonly else _collected_cases(cfg)
    except RigError:
        collected = {}
    # this run's results: reported to the controller, or written by a worker after the controller
    # stopped listening (an interrupted run)
    since = cfg._rig_started.timestamp()  # type: ignore[attr-defined]
    finished = set(_WRITTEN) | {f.stem for f in cases_dir.glob("*.json")
                                if f.stem in collected and f.stat().st_mtime >= since}
    interrupted = _SIG.interrupted.what() if _SIG.signum is not None else ""
    dsession = cfg.pluginmanager.getplugin("dsession")
    stopped = str(session.shouldstop or session.shouldfail or getattr(dsession, "shouldstop", "") or "")
    if not stopped and exitstatus == pytest.ExitCode.INTERRUPTED and not interrupted:
        stopped = "pytest interrupted the session"
    unfinished = results.unfinished({slug_: c[0] for slug_, c in collected.items()}, finished, _CRASHED,
                                    interrupted, stopped)
    # a worker killed after its case's verdict was written but before pytest heard of it: the
    # case keeps its evidence and becomes an error saying so (the run must not end green on it)
    for slug_, c in collected.items():
        if slug_ in finished and c[0] in _CRASHED:
            results.mark_crashed(out, slug_, _CRASHED[c[0]])
    for slug_, (outcome, reason) in unfinished.items():
        nodeid, cid, (scen, polite, impolite, r, var) = collected[slug_]
        results.write_case(
            out, cid=cid, repeat=r, nodeid=nodeid, scenario=scen.name, outcome=outcome, error=reason,
            polite=PeerInfo(spec=str(polite), kind=polite.kind), impolite=PeerInfo(spec=str(impolite), kind=impolite.kind),
            keep=_request(cfg).keep, negotiators=_negotiators(cfg, var))
        finished.add(slug_)
    if _SIG.signum is not None:
        session.exitstatus = 128 + _SIG.signum  # rig exits with it too: 130, 143, 129
    elif unfinished and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not cases_dir.is_dir():
        return
    mine, old = _stale_cases(cases_dir, finished)
    if not mine:
        return
    for f in old:  # an earlier run's cases: its page, evidence folder and detail file
        f.with_suffix(".html").unlink(missing_ok=True)
        shutil.rmtree(f.with_suffix(""), ignore_errors=True)
        f.unlink(missing_ok=True)
    from . import junit, report  # jinja2: only the controller writes the report, not the workers
    try:
        req = _request(cfg)
        peers = list(req.peers)
        scens = [{"name": s.name, "description": s.description} for s in req.scenario_objects()]
        every = req.catalogue()
    except RigError:
        return
    run = results.collect(out, started=cfg._rig_started,  # type: ignore[attr-defined]
                          command=req.command, repeat=req.repeat, peers=peers, scenarios=scens, versions={})
    for p in req.specs():
        run.versions.setdefault(p.kind, "unavailable")
    shard = req.shard
    run.shard = str(shards.Shard.parse(shard)) if shard else ""
    run.catalogue = [c.as_list() for c in every]
    run.catalogue_digest = shards.digest(every, run.repeat)
    run.interrupted = interrupted
    results.write_results(out, run)
    junit.write(out / JUNIT_FILE, run)
    index = report.write_report(out, run)
    tr = cfg.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        head = f"glare-rig: {interrupted and 'interrupted by ' + interrupted + ': '}{len(run.cases)} cases: "
        tr.write_line(head + ", ".join(f"{v} {k}" for k, v in run.summary.items() if v) + f"; report: {index}")
