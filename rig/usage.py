"""What a run costs the machine: memory and CPU of its processes, sampled from /proc.

Every process a run starts carries the run marker (rig.processes), so a sampler in the command
that started the run (``rig soak``, scripts/benchmark.py) finds them, whoever their parent is;
with them it takes every process below one of them, since Chromium's helpers (zygotes,
renderers, GPU and utility processes) write their new command line over the memory that
/proc/PID/environ shows, and the marker is gone from theirs. Processes are grouped by what they
are: the runner (pytest, its workers, peer hosts: Python), Playwright's driver (node), and the
browsers (every process of Chromium and Firefox: main, renderers, content processes, helpers).

What a process is comes from the executable the kernel runs (/proc/PID/exe), not from its
command line: a helper between fork and exec still shows its parent's command line, and one
that rewrote it (``/proc/self/exe --type=utility``, a zygote's title) no longer names it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import config, processes

GROUPS = ("runner", "driver", "browsers", "other")
BROWSER_EXES = ("chromium", "chrome", *config.HEADLESS_SHELL_NAMES, "chrome_crashpad_handler", "firefox", "firefox-esr",
                "firefox-bin")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def group_of(exe: str, args: bytes) -> str:
    """The group of a process from its executable's name and command line."""
    if exe.startswith("python") or exe in ("pytest", "rig"):
        return "runner"
    if exe == "node":
        return "driver"
    if exe in BROWSER_EXES or b"-contentproc" in args:
        return "browsers"
    return "other"


def is_driver(exe: str, parent_exe: str) -> bool:
    """A Playwright driver: node started by something other than node. A child the driver has
    forked to launch a browser is node too, with the driver's command line, until its exec."""
    return exe == "node" and parent_exe != "node"


def is_browser_main(exe: str, parent_exe: str) -> bool:
    """A browser's main process: a browser executable that a Playwright driver started. Every
    other process of a browser is started by its main (or by a zygote), and may show the main's
    command line from its fork until its exec; ``--version`` asked of the binary comes from the
    runner."""
    return exe in BROWSER_EXES and exe != "chrome_crashpad_handler" and parent_exe == "node"


@dataclass
class Sample:
    t: float  # seconds since the sampler started
    mb: dict[str, float]  # resident memory (proportional set size where the kernel has it) per group
    done: int = 0  # what the caller's progress function said (finished cases, say)

    @property
    def total(self) -> float:
        return sum(self.mb.values())


class Sampler(threading.Thread):
    """Samples a run's processes every ``every`` seconds until ``stop`` is set; ``progress``
    (optional) is called at each sample and its number kept with it (finished cases, say)."""

    def __init__(self, run_id: str, every: float = 0.5, progress: Callable[[], int] | None = None) -> None:
        super().__init__(daemon=True)
        self.run_id, self.every, self.progress = run_id, every, progress
        self.samples: list[Sample] = []
        self.browser_mains: set[int] = set()
        self.drivers: set[int] = set()  # Playwright drivers (node) seen
        self.commands: dict[int, str] = {}  # browser main or driver pid -> its command line (diagnostics)
        self.parents: dict[int, int] = {}  # browser main or driver pid -> its parent's pid
        self._cpu: dict[int, tuple[str, float]] = {}  # pid -> (group, CPU seconds when last seen)
        self.stop = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(self.every):
                self.sample()
                return

    def sample(self) -> Sample:
        mb = dict.fromkeys(GROUPS, 0.0)
        seen = {pid: got for pid in run_processes(self.run_id) if (got := _read(pid)) is not None}
        for pid, (exe, args, kb, cpu, ppid) in seen.items():
            if not exe:  # exited (a zombie): no memory left, and its group is the one it was seen in
                if pid in self._cpu:
                    self._cpu[pid] = (self._cpu[pid][0], cpu)
                continue
            g = group_of(exe, args)
            mb[g] += kb / 1024
            self._cpu[pid] = (g, cpu)
            parent_exe = seen[ppid][0] if ppid in seen else _exe(ppid)
            if is_browser_main(exe, parent_exe):
                self.browser_mains.add(pid)
            elif is_driver(exe, parent_exe):
                self.drivers.add(pid)
            else:
                continue
            self.commands.setdefault(pid, args.decode(errors="replace")[:300])
            self.parents.setdefault(pid, ppid)
        done = self.progress() if self.progress else 0
        s = Sample(time.monotonic() - self._t0, mb, done)
        self.samples.append(s)
        return s

    @property
    def peak_mb(self) -> float:
        return max((s.total for s in self.samples), default=0.0)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) per group, of every process seen (as last seen: a process
        that lived less than one interval is missed, one that exited counts up to its last sample)."""
        out = dict.fromkeys(GROUPS, 0.0)
        for g, cpu in self._cpu.values():
            out[g] += cpu
        return out


def run_processes(run_id: str) -> set[int]:
    """The run's live processes: those with its marker, and every process below one of them."""
    found = set(processes.marked(run_id))
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (got := processes.stat(int(d.name))) is not None:
            children.setdefault(got[1], []).append(int(d.name))
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _exe(pid: int) -> str:
    """The name of the executable ``pid`` runs; "" when it has exited (a zombie) or is gone."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name.removesuffix(" (deleted)")
    except OSError:
        return ""


def _read(pid: int) -> tuple[str, bytes, int, float, int] | None:
    """(executable name, command line, memory KB, CPU seconds, parent pid) of ``pid``."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
        try:  # proportional set size: shared pages (a browser's many processes) counted once
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            kb = next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
        except (OSError, StopIteration):
            kb = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB
    except (OSError, ValueError, IndexError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return _exe(pid), b" ".join(cmd), kb, cpu, int(fields[1])


def group_trends(samples: list[Sample], skip: float = 0.1) -> dict[str, tuple[float, float, float]]:
    """``trend`` of each group's memory alone (which group a growth is in)."""
    return {g: trend([Sample(s.t, {g: s.mb.get(g, 0.0)}, s.done) for s in samples], skip) for g in GROUPS}


def trend(samples: list[Sample], skip: float = 0.1) -> tuple[float, float, float]:
    """(start MB, end MB, slope in MB per 100 units of ``done``) of the total memory, leaving out
    the first ``skip`` of the samples (browsers launching, pages being prepared): start and end
    are the medians of the first and last tenth of the rest, the slope a least-squares fit."""
    rest = samples[int(len(samples) * skip):]
    if len(rest) < 4:
        return 0.0, 0.0, 0.0
    tenth = max(1, len(rest) // 10)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    start, end = med([s.total for s in rest[:tenth]]), med([s.total for s in rest[-tenth:]])
    xs, ys = [s.done for s in rest], [s.total for s in rest]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return start, end, slope * 100
