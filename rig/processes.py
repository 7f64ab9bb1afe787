"""Finds and ends processes a run left behind.

Every process a run starts (pytest workers, Playwright's driver, the browsers) inherits
``GLARE_RIG_RUN=<id>`` from the environment, so after the run (success, failure, Ctrl-C
or timeout) one sweep of /proc finds any survivor, whoever its parent was.

A process is named by its pid *and* its start time (``/proc/<pid>/stat``, field 22): a pid
is reused once its process is gone, so a pid alone could name an unrelated process later.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from . import config

#: prctl option: a signal the kernel sends this process when its parent (thread) exits
PR_SET_PDEATHSIG = 1


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks since boot) of ``pid``, None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[1]), int(fields[19])


def start_time(pid: int) -> int | None:
    got = stat(pid)
    return got[2] if got else None


def alive(pid: int, start: int | None = None) -> bool:
    """``pid`` runs (a zombie has ended; it only waits for its parent to read its status), and,
    given ``start``, it is the same process that had that start time."""
    got = stat(pid)
    return got is not None and got[0] != "Z" and (start is None or got[2] == start)


def children(pid: int | None = None) -> list[int]:
    """The live processes whose parent is ``pid`` (default: this one)."""
    parent = os.getpid() if pid is None else pid
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            got = stat(int(d.name))
            if got is not None and got[1] == parent and got[0] != "Z":
                out.append(int(d.name))
    return out


def wait_gone(procs: dict[int, int], timeout: float) -> dict[int, int]:
    """Wait at most ``timeout`` seconds for ``procs`` (pid -> start time) to end; return the
    ones still running."""
    deadline = time.monotonic() + timeout
    left = {p: s for p, s in procs.items() if alive(p, s)}
    while left and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc for exits, bounded by the deadline
        left = {p: s for p, s in left.items() if alive(p, s)}
    return left


def end(procs: dict[int, int], grace: float = 3.0) -> dict[int, int]:
    """SIGTERM (and SIGCONT, so a stopped process can act on it), then SIGKILL after ``grace``
    seconds, each process of ``procs`` that is still the one named; return those signalled."""
    sent = {}
    for pid, start in procs.items():
        if alive(pid, start):
            for sig in (signal.SIGTERM, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            sent[pid] = start
    for pid in wait_gone(sent, grace):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return sent


def die_with_parent(parent: int, sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel for ``sig`` when this process's parent exits, even by SIGKILL (Linux
    PR_SET_PDEATHSIG), when ``parent`` (from ``config.PARENT_ENV``) is that parent; the variable
    may also come from further up (a test's ``rig`` inherits its pytest's), and then nothing is
    asked. False when ``parent`` is gone (it died before the request took effect, or before
    this process looked): the caller then acts as if ``sig`` had arrived."""
    if os.getppid() != parent:
        return alive(parent)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    return os.getppid() == parent


def describe(pids: Iterable[int]) -> str:
    """``1234 (firefox-esr), 1240 (node)``: pids with their process names, for one-line messages."""
    out = []
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            name = "gone"
        out.append(f"{pid} ({name})")
    return ", ".join(out)


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
    return tagged(config.RUN_MARKER_ENV, run_id)


def tagged(name: str, value: str) -> list[int]:
    """PIDs of live processes whose environment has ``name=value`` (set by an ancestor when it
    started them, so a daemon re-parented to init still has it), never this process nor one of
    its ancestors."""
    needle = f"{name}={value}".encode()
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
    found = {pid: start for pid in marked(run_id) if (start := start_time(pid)) is not None}
    end(found, grace)
    for pid in marked(run_id):  # started while the first ones were ending (a browser's helper)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return sorted(found)
