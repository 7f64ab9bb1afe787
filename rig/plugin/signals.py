"""The xdist signal protocol of a matrix run (docs/design.md, "Ending a run").

SIGINT, SIGTERM and SIGHUP end the session in order in every process of it. A worker cancels
the case in progress (its peers are closed) and ends its session, which closes its browsers,
peer hosts and stub, and tells the controller at once (WORKER_SIGNALLED); the controller forwards
the signal to its (other) workers and, when they are done, writes the partial report
(rig.plugin.finish), in which every collected case without a result is ``not-run`` (or ``error``
when its worker died). This module also keeps what the controller learns of its workers: the
cases collected, and the workers that died and the case each was running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from .. import config, processes, runs
from ..vocab import SIGNAL_NOTE_PREFIX


class _Signals:
    """What this process's signal handling knows."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.origin = ""
        self.at = 0.0
        self.config: pytest.Config | None = None
        self.session: Any = None  # the worker's RigSession (rig.pytest_plugin), while it runs cases
        self.previous: dict[int, Any] = {}
        self.parent: int | None = None  # the process that started this one, when it asked to be told of its death
        #: every case of this process's session has run (pytest_sessionfinish has begun): a
        #: worker ignores signals from then on (execnet sends one when a worker's exit takes over
        #: 5 s, under heavy load), and a controller ignores its workers' notes of them
        self.session_over = False

    @property
    def interrupted(self) -> runs.Interrupted | None:
        return runs.Interrupted(self.signum, self.origin) if self.signum is not None else None


SIG = _Signals()
#: A second signal within this many seconds of the first is the same request delivered twice (a
#: terminal's Ctrl-C reaches every process of its group, and the controller forwards it too);
#: a later one insists, and interrupts whatever is running, except a worker's teardown: that is
#: bounded, and execnet sends its worker a SIGINT 5 s after the controller stopped waiting.
REPEAT_WINDOW = 2.0


def is_controller(cfg: pytest.Config) -> bool:
    return not hasattr(cfg, "workerinput") and cfg.pluginmanager.getplugin("dsession") is not None


def install_handlers(cfg: pytest.Config) -> None:
    """SIGINT, SIGTERM and SIGHUP end the session in order (a handler someone else installed,
    and a SIGHUP ignored under nohup, are left alone); and SIGTERM when the process that
    started this one dies, even by SIGKILL (``config.PARENT_ENV``: rig for the controller, the
    controller for its workers)."""
    SIG.config = cfg
    for sig in runs.SIGNALS:
        try:
            current = signal.getsignal(sig)
            if current not in (signal.SIG_DFL, signal.default_int_handler):
                continue
            SIG.previous[sig] = current
            signal.signal(sig, on_signal)
        except (ValueError, OSError):  # not the main thread (pytest run inside something else)
            return
    parent = os.environ.get(config.PARENT_ENV, "")
    if parent.isdigit() and os.getppid() == int(parent):
        SIG.parent = int(parent)
    if parent.isdigit() and not processes.die_with_parent(int(parent)):
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before we could ask: as if it had
    if not hasattr(cfg, "workerinput"):
        os.environ[config.PARENT_ENV] = str(os.getpid())  # for the xdist workers this one starts
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(WORKER_SIGNALLED) == signal.SIG_DFL:
                SIG.previous[WORKER_SIGNALLED] = signal.SIG_DFL
                signal.signal(WORKER_SIGNALLED, on_worker_signalled)


def pytest_unconfigure(config: pytest.Config) -> None:
    if SIG.session_over and hasattr(config, "workerinput"):
        return  # a worker about to exit keeps ignoring execnet's SIGINT (_Signals.session_over)
    for sig, handler in SIG.previous.items():
        with contextlib.suppress(ValueError, OSError, TypeError):
            # a worker's late note must not end this process by the default action
            signal.signal(sig, signal.SIG_IGN if sig == WORKER_SIGNALLED else handler)
    SIG.previous.clear()
    for path in notes():
        path.unlink(missing_ok=True)  # notes of workers that came too late to be read


def on_signal(signum: int, frame: Any) -> None:
    now = time.monotonic()
    if SIG.session_over and SIG.config is not None and hasattr(SIG.config, "workerinput"):
        return  # a worker with nothing left but its bounded teardown (a user's Ctrl-C reaches the controller too)
    if SIG.signum is not None:
        if now - SIG.at < REPEAT_WINDOW or (SIG.session is not None and SIG.session.stopping):
            return  # the same request twice, or a teardown under way (bounded: it is let finish)
        raise runs.Interrupted(signum, "again")
    SIG.signum, SIG.at = signum, now
    if SIG.parent is not None and os.getppid() != SIG.parent:
        SIG.origin = f"its parent, pid {SIG.parent}, died"
    cfg = SIG.config
    if cfg is not None and hasattr(cfg, "workerinput"):
        cfg.workeroutput["rig_signal"] = int(signum)  # type: ignore[attr-defined]  # the controller says which
        if not SIG.origin:
            tell_controller(signum, str(cfg.workerinput.get("workerid", "?")))  # type: ignore[attr-defined]
    elif cfg is not None and is_controller(cfg):
        forward_to_workers(signum)
    rig = SIG.session
    if rig is not None and (rig.stopping or rig.interrupt_case()):
        return  # the case ends itself (its peers closed), then its test raises; or teardown is under way
    raise runs.Interrupted(signum)


def forward_to_workers(signum: int, but: int | None = None) -> None:
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


def note_path(controller: int, worker: int) -> Path:
    return Path(tempfile.gettempdir()) / f"{SIGNAL_NOTE_PREFIX}{controller}-{worker}"


def notes() -> list[Path]:
    """This controller's notes from its workers (and any half-written ``.tmp`` one)."""
    return list(Path(tempfile.gettempdir()).glob(f"{SIGNAL_NOTE_PREFIX}{os.getpid()}-*"))


def tell_controller(signum: int, wid: str) -> None:
    """From a worker's signal handler: which signal, to which worker, in a note beside the
    controller's pid (a signal carries no data), then WORKER_SIGNALLED to the controller."""
    if SIG.parent is None:
        return
    note = note_path(SIG.parent, os.getpid())
    with contextlib.suppress(OSError):
        tmp = note.with_name(note.name + ".tmp")
        tmp.write_text(f"{int(signum)} {wid}")
        tmp.replace(note)
        os.kill(SIG.parent, WORKER_SIGNALLED)


def on_worker_signalled(signum: int, frame: Any) -> None:
    """The controller's handler of WORKER_SIGNALLED: the run ends as if the controller had the
    worker's signal (every other worker ends its case now), named after that worker."""
    got = []
    for path in notes():
        with contextlib.suppress(OSError, ValueError):
            sig, wid = path.read_text().split(" ", 1)
            got.append((int(path.name.rsplit("-", 1)[1]), int(sig), wid))
            path.unlink()
    if not got or SIG.signum is not None or SIG.session_over:
        return  # no note; the run already ending (the worker's echo of it); or every case already ran
    pid, sig, wid = got[0]
    interrupted_by_worker(sig, wid, but=pid)


def interrupted_by_worker(signum: int, wid: str, but: int | None = None) -> None:
    SIG.signum, SIG.origin, SIG.at = signum, f"to worker {wid}", time.monotonic()
    forward_to_workers(signum, but=but)
    raise SIG.interrupted


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    # pages prepared ahead after this worker's last test would only be made to be thrown away
    # (xdist's worker holds its last item back until it knows there is no next one)
    item._rig_last = nextitem is None  # type: ignore[attr-defined]
    result = yield
    if SIG.signum is not None:  # a case that finished just as the signal came keeps its result; then stop
        raise SIG.interrupted
    return result


#: node id -> why its worker died while running it (controller; rig.results.unfinished)
CRASHED: dict[str, str] = {}
#: worker id -> how it died
DEAD: dict[str, str] = {}
#: the node ids of every test the session collected (in the controller under xdist)
COLLECTED: dict[str, None] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        COLLECTED.update(dict.fromkeys(item.nodeid for item in session.items))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    COLLECTED.update(dict.fromkeys(ids))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object | None) -> None:
    """A worker is down. Ended by a signal (its session interrupted): the whole run ends, as if
    the controller had the signal. Died otherwise (SIGKILL, a crash): remember how, for the case
    it was running (xdist replaces the worker and the run goes on)."""
    out = getattr(node, "workeroutput", None) or {}
    wid = getattr(getattr(node, "gateway", None), "id", "?")
    if error is None and out.get("exitstatus") == pytest.ExitCode.INTERRUPTED:
        if SIG.signum is None:  # the worker's WORKER_SIGNALLED did not come (it could not say)
            interrupted_by_worker(int(out.get("rig_signal") or signal.SIGINT), wid)
        return
    if error is not None:
        DEAD[wid] = f"worker {wid} {exit_text(node)}"


def exit_text(node: Any) -> str:
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
    why = DEAD.get(wid, f"worker {wid} died")
    text = f"{why} while running this case"
    if SIG.signum is None:
        CRASHED[crashitem] = text
    report.longrepr = text


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
def pytest_sessionfinish_session_over(session: pytest.Session, exitstatus: int):
    """From here every case has run and been reported: a worker only tears down (bounded) and a
    controller only collects and writes. A worker's signal now cannot cost a case, so it must
    not end the whole run: execnet's own SIGINT to a worker slow to exit is one (heavy load)."""
    SIG.session_over = True
    return (yield)
