"""Finds and ends processes a run left behind.

Every process a run starts (pytest workers, Playwright's driver, the browsers) inherits
``GLARE_RIG_RUN=<id>`` from the environment, so after the run (success, failure, Ctrl-C
or timeout) one sweep of /proc finds any survivor, whoever its parent was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from . import config


def ancestors(pid: int | None = None) -> set[int]:
    """This process and every process above it (parent, grandparent ...), from /proc."""
    out: set[int] = set()
    pid = os.getpid() if pid is None else pid
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state is the parent's pid
    return out


def marked(run_id: str) -> list[int]:
    """PIDs of live processes that carry this run's marker, never this process nor one of its
    ancestors: a command run inside a marked command (``rig bisect`` runs ``rig matrix``, a
    test runs either) inherits the marker, and its sweep must not end the command that
    started it."""
    needle = f"{config.RUN_MARKER_ENV}={run_id}".encode()
    mine = ancestors()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in mine:
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(d.name))
    return found


def sweep(run_id: str, grace: float = 3.0) -> list[int]:
    """TERM, then KILL after ``grace`` seconds, every process of the run; return their PIDs."""
    pids = marked(run_id)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and marked(run_id):
        time.sleep(0.1)  # polling for exit after SIGTERM, bounded by grace
    for pid in marked(run_id):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids


def run_bounded(cmd: list[str], *, timeout: float, env: dict | None = None, run_id: str | None = None,
                **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` for a command that starts a process tree (``rig matrix``: pytest,
    its workers, browsers): the tree carries its own run marker (``run_id``, or a new one), and
    on a timeout or any interruption (pytest-timeout, Ctrl-C) every process of it is ended,
    not just the child."""
    for ignored in ("capture_output", "text", "check"):  # always captured, as text; the caller checks
        kwargs.pop(ignored, None)
    run_id = run_id or f"bounded-{uuid.uuid4().hex}"
    env = dict(os.environ if env is None else env, **{config.RUN_MARKER_ENV: run_id})
    proc = subprocess.Popen(cmd, env=env, text=True, stdout=kwargs.pop("stdout", subprocess.PIPE),
                            stderr=kwargs.pop("stderr", subprocess.PIPE), **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        sweep(run_id)
        proc.kill()
        proc.wait()
        raise
    sweep(run_id)  # anything the command left behind
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
