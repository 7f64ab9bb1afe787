"""rig.runs: the registry of runs (a killed rig's leftovers are found by the next command, a
run with a live owner never is), the signal scope of a command (forwarded once to its child,
turned into an exit status, handlers and marker restored), and rig.processes' helpers that
name a process by pid and start time. No browser: marked ``sleep`` processes stand in for a
run's browsers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from rig import config, processes, runs
from rig.vocab import SIGNAL_NOTE_PREFIX


@pytest.fixture(autouse=True)
def registry(tmp_path, monkeypatch) -> Path:
    """Each test its own registry, so that no other command reaps what a test leaves there."""
    folder = tmp_path / "runs"
    monkeypatch.setenv(config.RUNS_ENV, str(folder))
    return folder


def _marked_sleeper(run_id: str) -> subprocess.Popen:
    env = dict(os.environ, **{config.RUN_MARKER_ENV: run_id})
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)


def _signal_soon(sig: int) -> None:
    """The signal arrives while the test waits in the run, as a real one would; never after the
    run (pytest's own handler would take it as an interruption of the whole session)."""
    def send() -> None:
        if runs.Run.current is not None:
            os.kill(os.getpid(), sig)
    threading.Timer(0.3, send).start()


def _dead_pid() -> tuple[int, int]:
    """A pid whose process has ended, and the start time it had."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    start = processes.start_time(p.pid)
    p.wait(timeout=10)
    return p.pid, start or 0


def _entry(run_id: str, pid: int, start: int, boot: str | None = None) -> Path:
    path = runs.register(run_id, "rig matrix (test)")
    raw = json.loads(path.read_text())
    raw.update(pid=pid, start=start, boot=runs.boot_id() if boot is None else boot)
    new = path.with_name(runs.Entry(**raw).file_name())
    new.write_text(json.dumps(raw))
    if new != path:
        path.unlink()
    return new


def test_an_entry_names_its_owner_by_pid_start_time_and_boot(registry):
    run_id = f"unit-{uuid.uuid4().hex}"
    path = runs.register(run_id, "rig matrix --peers aiortc")
    [(found, entry)] = runs.entries()
    assert found == path and path.parent == registry
    assert (entry.run, entry.pid, entry.command) == (run_id, os.getpid(), "rig matrix --peers aiortc")
    assert entry.start == processes.start_time(os.getpid()) and entry.boot == runs.boot_id() and entry.owner_alive
    runs.unregister(path)
    assert runs.entries() == []


def test_a_run_whose_rig_was_killed_is_ended_by_the_next_and_said_in_one_line(registry):
    run_id = f"unit-{uuid.uuid4().hex}"
    sleeper = _marked_sleeper(run_id)
    try:
        pid, start = _dead_pid()
        _entry(run_id, pid, start)
        said: list[str] = []
        [left] = runs.reap(say=said.append, grace=2)
        assert left.pids == [sleeper.pid] and sleeper.wait(timeout=10) is not None
        assert said == [f"rig: ended 1 process(es) left by an earlier run ({run_id}, started at {left.started}, "
                        f"its rig process (pid {pid}) was killed)"]
        assert runs.entries() == [], "the entry is removed"
        assert runs.reap(say=said.append) == [] and len(said) == 1, "and reaped once"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_nested_run_with_a_live_owner_is_not_mistaken_for_dead(registry):
    """rig bisect (alive) ran rig matrix (killed), both with one marker: the run goes on."""
    run_id = f"unit-{uuid.uuid4().hex}"
    sleeper = _marked_sleeper(run_id)
    try:
        pid, start = _dead_pid()
        _entry(run_id, pid, start)
        runs.register(run_id, "rig bisect (this test)")
        said: list[str] = []
        assert runs.reap(say=said.append, grace=1) == [] and said == []
        assert sleeper.poll() is None and len(runs.entries()) == 2
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_reused_pid_is_not_the_owner(registry):
    """The owner's pid now names another process (this one, with another start time)."""
    run_id = f"unit-{uuid.uuid4().hex}"
    sleeper = _marked_sleeper(run_id)
    try:
        _entry(run_id, os.getpid(), (processes.start_time(os.getpid()) or 0) + 12345)
        [left] = runs.reap(say=lambda _line: None, grace=1)
        assert left.pids == [sleeper.pid]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_entry_from_an_earlier_boot_is_removed_without_a_sweep(registry):
    run_id = f"unit-{uuid.uuid4().hex}"
    sleeper = _marked_sleeper(run_id)  # the same marker in this boot: not the old run's
    try:
        _entry(run_id, os.getpid(), processes.start_time(os.getpid()) or 0, boot="another-boot")
        said: list[str] = []
        [left] = runs.reap(say=said.append)
        assert left.pids == [] and said == [] and runs.entries() == []
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_killed_controllers_signal_notes_are_removed_and_a_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(runs.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that ran and is gone (read by its parent: no zombie)
    stale = tmp_path / f"{SIGNAL_NOTE_PREFIX}{dead.pid}-{dead.pid + 1}"
    live = tmp_path / f"{SIGNAL_NOTE_PREFIX}{os.getpid()}-{os.getpid() + 1}"
    other = tmp_path / "glare-rig-signal-notes-are-named-by-pid"
    for path in (stale, live, other):
        path.write_text("15 gw0")
    assert runs.remove_stale_notes() == [stale]
    assert not stale.exists() and live.exists() and other.exists()


def test_exit_statuses_are_128_plus_the_signal():
    assert [runs.Interrupted(s).status for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == [130, 143, 129]
    assert runs.Interrupted(signal.SIGTERM, "to worker gw1").text() == "interrupted by SIGTERM (to worker gw1)"


def test_a_signal_in_a_run_is_forwarded_once_to_its_child_and_raised(tmp_path, registry, monkeypatch):
    monkeypatch.delenv(config.RUN_MARKER_ENV, raising=False)
    got = tmp_path / "child-got"
    child = ("import signal, sys, time, pathlib\n"
             "def h(s, f):\n"
             f"    pathlib.Path({str(got)!r}).open('a').write(str(s) + '\\n'); sys.exit(0)\n"
             "signal.signal(signal.SIGTERM, h)\n"
             "print('ready', flush=True)\n"
             "time.sleep(30)\n")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(runs.Interrupted) as info, runs.Run("rig test") as run:
        assert os.environ[config.RUN_MARKER_ENV] == run.id and len(runs.entries()) == 1
        proc = run.popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        assert os.getsid(proc.pid) == proc.pid, "the child has its own session"
        _signal_soon(signal.SIGTERM)
        run.wait(proc, grace=10)
    assert info.value.status == 143 and proc.returncode == 0
    assert got.read_text().split() == [str(int(signal.SIGTERM))], "forwarded exactly once"
    assert signal.getsignal(signal.SIGTERM) == before and config.RUN_MARKER_ENV not in os.environ
    assert runs.entries() == [], "a run that ended unregisters itself"


def test_an_inner_command_joins_the_outer_run(registry, monkeypatch):
    monkeypatch.delenv(config.RUN_MARKER_ENV, raising=False)
    with runs.Run("rig mutants") as outer:
        with runs.Run("rig matrix") as inner:
            assert inner is outer and runs.Run.current is outer
        assert runs.Run.current is outer and len(runs.entries()) == 1, "the inner end does not end the outer"
    assert runs.Run.current is None and runs.entries() == []


def test_a_child_that_outlives_the_grace_is_ended(tmp_path, registry, monkeypatch):
    monkeypatch.delenv(config.RUN_MARKER_ENV, raising=False)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    began = time.monotonic()
    with pytest.raises(runs.Interrupted), runs.Run("rig test") as run:
        proc = run.popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        _signal_soon(signal.SIGTERM)
        run.wait(proc, grace=1)
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - began < 15


def test_processes_are_named_by_pid_and_start_time(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         env=dict(os.environ, **{config.OWNER_ENV: "unit-owner"}))
    try:
        start = processes.start_time(p.pid)
        assert processes.alive(p.pid, start) and not processes.alive(p.pid, (start or 0) + 1)
        assert p.pid in processes.children() and processes.tagged(config.OWNER_ENV, "unit-owner") == [p.pid]
        os.kill(p.pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM: end() still ends it
        assert processes.end({p.pid: start or 0}, grace=1) == {p.pid: start}
        assert p.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)
        assert not processes.alive(p.pid, start)
    finally:
        p.kill()
        p.wait()
