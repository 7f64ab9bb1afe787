"""What a run costs the machine: memory and CPU of its processes, sampled from /proc.

Every process of a run carries the run marker (rig.processes), so a sampler in the command
that started the run (``rig soak``, scripts/benchmark.py) finds them all, whoever their
parent is. Processes are grouped by what they are: the runner (pytest, its workers, peer
hosts: Python), Playwright's driver (node), and the browsers (every process of Chromium and
Firefox: main, renderers, content processes, helpers).
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


def is_browser_main(exe: str, args: bytes) -> bool:
    """A browser's main process (not a renderer, zygote, content process or helper, nor a
    ``--version`` asked of the binary). A process whose command line is already empty (exiting,
    or a zombie) is none: its arguments, which tell a main process from a helper, are gone."""
    return exe in BROWSER_EXES and exe != "chrome_crashpad_handler" and bool(args.strip()) \
        and b"--type=" not in args and b"-contentproc" not in args and b"--version" not in args


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
        for pid in processes.marked(self.run_id):
            got = _read(pid)
            if got is None:
                continue
            exe, args, kb, cpu = got
            g = group_of(exe, args)
            mb[g] += kb / 1024
            self._cpu[pid] = (g, cpu)
            if is_browser_main(exe, args):
                self.browser_mains.add(pid)
            elif g == "driver":
                self.drivers.add(pid)
            else:
                continue
            self.commands.setdefault(pid, args.decode(errors="replace")[:300])
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


def _read(pid: int) -> tuple[str, bytes, int, float] | None:
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
    exe = Path(cmd[0].decode(errors="replace")).name if cmd and cmd[0] else stat[stat.find("(") + 1:stat.rfind(")")]
    return exe, b" ".join(cmd), kb, cpu


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
