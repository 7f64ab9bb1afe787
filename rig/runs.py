"""A run: every process one ``rig`` command starts, ended together however the command ends.

- **The marker.** Every process of a run carries ``GLARE_RIG_RUN=<id>`` (rig.processes), so
  whatever survives the run is found in /proc and ended, whoever its parent was.
- **Signals.** SIGINT, SIGTERM and SIGHUP to ``rig`` are forwarded, once, to the pytest process
  it started (which has its own session, so a terminal's Ctrl-C or a CI runner's group signal
  reaches only ``rig``); pytest forwards them to its xdist workers, which end their case and
  close their browsers, peer hosts and stub in order (rig.pytest_plugin), and the partial
  report is written. After a bounded grace, the marker sweep ends whatever is left. ``rig`` then
  exits with 128 + the signal's number: 130, 143, 129. A second signal skips the grace.
- **The registry.** ``SIGKILL`` of ``rig`` leaves no one to clean up: each run writes a small
  file (run id, owner pid and the owner's start time, boot id) into :func:`runs_dir` and
  removes it when it ends. Every command that starts browsers or pytest first looks for runs
  whose owners are all gone, ends their marked processes and says so in one line. A run id
  can have several owners (``rig bisect`` runs ``rig matrix``, a test runs ``rig``, both
  inheriting one marker): a run counts as left behind only when every owner is gone.

Nothing here needs pytest or Playwright: the CLI, the plugin and the unit tests share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from . import config, processes
from .errors import RigError
from .versions import cache_root, locked
from .vocab import SIGNAL_NOTE_PREFIX

#: The signals that end a run in order (SIGKILL cannot be caught: the registry is for it).
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A signal asked the run to end. A KeyboardInterrupt, so that pytest ends its session as
    for Ctrl-C (fixtures torn down, sessionfinish called) and no ``except Exception`` in the
    rig or a library swallows it."""

    def __init__(self, signum: int, origin: str = "") -> None:
        self.signum = signum
        self.origin = origin
        super().__init__(self.text())

    def what(self) -> str:
        """``SIGTERM`` or ``SIGTERM (to worker gw1)``: results.json's ``interrupted``."""
        return signal_name(self.signum) + (f" ({self.origin})" if self.origin else "")

    def text(self) -> str:
        return f"interrupted by {self.what()}"

    @property
    def status(self) -> int:
        """The exit status a shell gives a process ended by this signal: 130, 143, 129."""
        return 128 + self.signum


# --- the registry ---------------------------------------------------------------------------

def runs_dir() -> Path:
    """``$GLARE_RIG_RUNS``, else ``$XDG_RUNTIME_DIR/glare-rig/runs`` (cleared at reboot, as pids
    are), else ``runs/`` in the rig's per-user cache."""
    if os.environ.get(config.RUNS_ENV):
        return Path(os.environ[config.RUNS_ENV]).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.access(runtime, os.W_OK):
        return Path(runtime) / "glare-rig" / "runs"
    return cache_root() / "runs"


def boot_id() -> str:
    """This boot's id: after a reboot, a registered pid names nothing of the old run."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Entry:
    """One owner of one run, as registered."""

    run: str
    pid: int
    start: int  # the owner's start time (clock ticks since boot): a reused pid is not the owner
    boot: str
    started: str  # ISO time, for the message
    command: str = ""

    @property
    def owner_alive(self) -> bool:
        return self.boot == boot_id() and processes.alive(self.pid, self.start)

    def file_name(self) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.run)
        return f"{safe}.{self.pid}.json"


def register(run_id: str, command: str = "", pid: int | None = None) -> Path:
    """Record that ``pid`` (default: this process) owns ``run_id``; return the entry's file."""
    pid = os.getpid() if pid is None else pid
    entry = Entry(run=run_id, pid=pid, start=processes.start_time(pid) or 0, boot=boot_id(),
                  started=datetime.now(UTC).astimezone().isoformat(timespec="seconds"), command=command)
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / entry.file_name()
    tmp = folder / f".{path.name}.tmp"
    tmp.write_text(json.dumps(asdict(entry)))
    os.replace(tmp, path)
    return path


def unregister(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


def entries() -> list[tuple[Path, Entry]]:
    """Every registered owner; an unreadable file is skipped (a writer's temporary file, say)."""
    out = []
    folder = runs_dir()
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            out.append((path, Entry(**{k: raw[k] for k in Entry.__dataclass_fields__ if k in raw})))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return out


@dataclass
class Leftover:
    """A run whose owners are all gone, and what its sweep ended."""

    run: str
    started: str
    pids: list[int]
    owners: list[int]

    def text(self) -> str:
        who = ", ".join(str(p) for p in self.owners)
        return (f"rig: ended {len(self.pids)} process(es) left by an earlier run ({self.run}, started at "
                f"{self.started}, its rig process (pid {who}) was killed)")


def run_bounded(cmd: list[str], *, timeout: float, env: dict | None = None, run_id: str | None = None,
                **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` for a command that starts a process tree (``rig matrix``: pytest,
    its workers, browsers): the tree carries its own run marker (``run_id``, or a new one), and
    on a timeout or any interruption (pytest-timeout, Ctrl-C) every process of it is ended,
    not just the child. The marker is registered while the command runs, so that if
    this process is killed, the next rig command ends the tree."""
    for ignored in ("capture_output", "text", "check"):  # always captured, as text; the caller checks
        kwargs.pop(ignored, None)
    run_id = run_id or f"bounded-{uuid.uuid4().hex}"
    env = dict(os.environ if env is None else env, **{config.RUN_MARKER_ENV: run_id})
    entry = None
    try:
        entry = register(run_id, " ".join(cmd))
    except OSError:
        pass  # an unwritable registry: the sweeps below still run
    try:
        proc = subprocess.Popen(cmd, env=env, text=True, stdout=kwargs.pop("stdout", subprocess.PIPE),
                                stderr=kwargs.pop("stderr", subprocess.PIPE), **kwargs)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            processes.sweep(run_id)
            proc.kill()
            proc.wait()
            raise
        processes.sweep(run_id)  # anything the command left behind
    finally:
        unregister(entry)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def reap(say: Callable[[str], None] | None = None, grace: float = 3.0) -> list[Leftover]:
    """End the marked processes of every registered run whose owners are all gone, remove their
    entries, and say one line per run that had processes left (a run that left nothing is
    removed silently). Bounded: another command reaping at the same moment holds the lock for
    at most a few sweeps; past that, this one leaves the reaping to it."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    found: list[Leftover] = []
    try:
        with locked(runs_dir() / ".lock", timeout=4 * grace, busy="runs registry busy"):
            by_run: dict[str, list[tuple[Path, Entry]]] = {}
            for path, entry in entries():
                by_run.setdefault(entry.run, []).append((path, entry))
            for run_id, owned in by_run.items():
                if any(e.owner_alive for _, e in owned):
                    continue
                same_boot = any(e.boot == boot_id() for _, e in owned)
                pids = processes.sweep(run_id, grace) if same_boot else []
                for path, _ in owned:
                    path.unlink(missing_ok=True)
                left = Leftover(run_id, min(e.started for _, e in owned), pids, sorted(e.pid for _, e in owned))
                if pids:
                    say(left.text())
                found.append(left)
    except (RigError, OSError):
        pass  # a registry that cannot be read or locked must not stop the command; the sweep at its end still runs
    remove_stale_notes()
    return found


def remove_stale_notes() -> list[Path]:
    """The signal notes (vocab.SIGNAL_NOTE_PREFIX) of controllers that are gone: a controller
    removes its own at its end, so these are a killed run's (a note of a live one is left)."""
    gone = []
    for path in Path(tempfile.gettempdir()).glob(f"{SIGNAL_NOTE_PREFIX}*"):
        controller = path.name[len(SIGNAL_NOTE_PREFIX):].split("-", 1)[0]
        if controller.isdigit() and not processes.alive(int(controller)):
            with contextlib.suppress(OSError):
                path.unlink()
                gone.append(path)
    return gone


# --- the scope of one command ---------------------------------------------------------------

class Run:
    """The run of one ``rig`` command (``with Run(command) as run:``): reaps what earlier runs
    left, sets the marker for every process it starts, registers itself, and turns SIGINT,
    SIGTERM and SIGHUP into :class:`Interrupted` after forwarding them to its child.

    Re-entrant: ``rig mutants`` and ``rig debug`` run ``rig matrix`` in the same process, and
    the inner command joins the outer run (same marker, same handlers)."""

    current: Run | None = None

    def __init__(self, command: str = "") -> None:
        self.command = command
        self.id = ""
        self.signals: list[int] = []
        self.child: subprocess.Popen | None = None
        self._entry: Path | None = None
        self._previous: dict[int, object] = {}
        self._grace = False  # waiting for the child to end after a forwarded signal
        self._finishing = False
        self._marker_before: str | None = None
        self._joined: Run | None = None  # the outer run this one joined

    # -- entering and leaving

    def __enter__(self) -> Run:
        outer = Run.current
        if outer is not None:
            self._joined = outer
            return outer
        reap()
        self._marker_before = os.environ.get(config.RUN_MARKER_ENV)
        self.id = self._marker_before or uuid.uuid4().hex
        os.environ[config.RUN_MARKER_ENV] = self.id  # inherited by every process this command starts
        try:
            self._entry = register(self.id, self.command)
        except OSError as exc:
            print(f"rig: note: cannot register the run in {runs_dir()} ({exc}); if this rig is killed, "
                  "the next run cannot end what it left", file=sys.stderr)
        for sig in (*SIGNALS, signal.SIGTSTP):
            try:
                self._previous[sig] = signal.getsignal(sig)
                if sig == signal.SIGHUP and self._previous[sig] == signal.SIG_IGN:
                    continue  # started under nohup: a hangup is meant to be ignored
                signal.signal(sig, self._on_signal if sig != signal.SIGTSTP else self._on_stop)
            except (ValueError, OSError):  # not the main thread
                self._previous.pop(sig, None)
        Run.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        if self._joined is not None:
            return
        self._finishing = True
        try:
            left = processes.sweep(self.id)
            if left:
                print(f"rig: ended {len(left)} process(es) the run left behind: {processes.describe(left)}",
                      file=sys.stderr)
        finally:
            for sig, handler in self._previous.items():
                with contextlib.suppress(ValueError, OSError, TypeError):
                    signal.signal(sig, handler)  # type: ignore[arg-type]
            unregister(self._entry)
            if self._marker_before is None:
                os.environ.pop(config.RUN_MARKER_ENV, None)
            Run.current = None

    # -- signals

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)
        first = len(self.signals) == 1
        if first and self.child is not None and self.child.poll() is None:
            with contextlib.suppress(OSError):
                self.child.send_signal(signum)
        if self._finishing or self._grace:
            return  # the grace loop sees a second signal; the end of the run is under way
        raise Interrupted(signum)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-Z: the child has its own session, so stop it too, then stop; resume both."""
        group = self._child_group()
        if group:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stops here until SIGCONT
        signal.signal(signal.SIGTSTP, self._on_stop)
        if group:
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGCONT)

    def _child_group(self) -> int | None:
        if self.child is None or self.child.poll() is not None:
            return None
        try:
            return os.getpgid(self.child.pid)
        except OSError:
            return None

    # -- children

    def popen(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        """Start the run's child in its own session (terminal and group signals reach only
        ``rig``, which forwards them once), with the run's marker and this process's pid, so
        the child can ask to be signalled when ``rig`` dies (rig.processes.die_with_parent)."""
        env = dict(kwargs.pop("env", None) or os.environ)
        env[config.RUN_MARKER_ENV] = self.id or env.get(config.RUN_MARKER_ENV) or uuid.uuid4().hex
        env[config.PARENT_ENV] = str(os.getpid())
        self.child = subprocess.Popen(cmd, env=env, start_new_session=True, **kwargs)
        return self.child

    def wait(self, proc: subprocess.Popen, *, timeout: float | None = None,
             grace: float = config.INTERRUPT_GRACE) -> int:
        """The child's exit status. On a signal (already forwarded by the handler), wait up to
        ``grace`` seconds for the child to write its partial results and end, then end what is
        left of the run, and raise :class:`Interrupted`. On ``timeout``, end the run the same
        way and raise subprocess.TimeoutExpired."""
        return self._watched(lambda: proc.wait(timeout=timeout), proc, grace)

    def communicate(self, proc: subprocess.Popen, *, timeout: float,
                    grace: float = config.INTERRUPT_GRACE) -> tuple[str, str]:
        """As :meth:`wait`, for a child whose output is piped."""
        return self._watched(lambda: proc.communicate(timeout=timeout), proc, grace)

    def _watched(self, call: Callable[[], Any], proc: subprocess.Popen, grace: float) -> Any:
        try:
            return call()
        except Interrupted:
            self._after_signal(proc, grace)
            raise
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGTERM)
            self._after_signal(proc, grace)
            raise

    def _after_signal(self, proc: subprocess.Popen, grace: float) -> None:
        self._grace = True
        try:
            deadline = time.monotonic() + grace
            seen = len(self.signals)
            while proc.poll() is None and time.monotonic() < deadline and len(self.signals) <= seen:
                try:
                    if proc.stdout is not None or proc.stderr is not None:
                        proc.communicate(timeout=0.2)
                    else:
                        proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
            if proc.poll() is None:
                left = processes.sweep(self.id)
                why = "a second signal came" if len(self.signals) > seen else \
                    f"the run did not end within {grace:.0f} s of the signal"
                print(f"rig: {why}; ended {len(left)} process(es) at once: {processes.describe(left)}",
                      file=sys.stderr)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        finally:
            self._grace = False


def run_command(command: str, fn: Callable[[], int]) -> int:
    """``fn()`` as the run of ``command`` (or inside the run already under way): its exit
    status, or 128+N when signal N ended it (said in one line unless already said)."""
    nested = Run.current is not None
    try:
        with Run(command) as run:
            rc = fn()
    except Interrupted as exc:
        if nested:
            raise
        if not getattr(exc, "reported", False):
            print(f"rig: {exc.text()}", file=sys.stderr)
        return exc.status
    if not nested and run.signals:  # a signal that came while a child's time ran out
        return 128 + run.signals[0]
    return rc
