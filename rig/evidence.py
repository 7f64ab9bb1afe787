"""Per-case evidence beyond the detail JSON: aiortc's debug log, and what to keep.

Browser peers save their own Playwright traces (rig.peers.browser); this module holds
the aiortc log capture and the keep policy applied once a case has its outcome.
"""

from __future__ import annotations

import logging
import shutil
from collections import deque
from pathlib import Path
from typing import Any

KEEP = ("failed", "all")  # evidence of passing cases is kept only with "all"

#: Loggers that write a line per RTP packet or SCTP chunk: kept at INFO unless the
#: capture is "full" (rig debug), or a stress case's log would be megabytes.
_PER_PACKET = ("aiortc.rtcrtpsender", "aiortc.rtcrtpreceiver", "aiortc.rtcsctptransport")
_ROOTS = ("aiortc", "aioice")


class AiortcLog(logging.Handler):
    """Collects aiortc's and aioice's log lines during one case (the last ``limit``)."""

    def __init__(self, *, full: bool = False, limit: int = 20000) -> None:
        super().__init__(logging.DEBUG)
        self.full = full
        self.lines: deque[str] = deque(maxlen=limit)
        self.dropped = 0
        self._saved: dict[str, int] = {}
        self._propagate: dict[str, bool] = {}
        self.setFormatter(logging.Formatter("%(relativeCreated)10.1f ms %(levelname)-7s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted must not break the case
            self.lines.append(f"(unformattable log record from {record.name})")

    def __enter__(self) -> AiortcLog:
        names = _ROOTS + (() if self.full else _PER_PACKET)
        for name in names:
            lg = logging.getLogger(name)
            self._saved[name] = lg.level
        for name in _ROOTS:
            lg = logging.getLogger(name)
            lg.setLevel(logging.DEBUG)
            lg.addHandler(self)
            # DEBUG lines go to this case's log file only: propagated, they filled pytest's
            # "Captured log" of every failing case (rig mutants printed 2.6 MB of them)
            self._propagate[name] = lg.propagate
            lg.propagate = False
        if not self.full:
            for name in _PER_PACKET:
                logging.getLogger(name).setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in _ROOTS:
            logging.getLogger(name).removeHandler(self)
        for name, propagate in self._propagate.items():
            logging.getLogger(name).propagate = propagate
        for name, level in self._saved.items():
            logging.getLogger(name).setLevel(level)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        head = [f"# aiortc/aioice log of this case ({'full' if self.full else 'per-packet loggers at INFO'})"]
        if self.dropped:
            head.append(f"# the first {self.dropped} lines were dropped (kept the last {self.lines.maxlen})")
        path.write_text("\n".join(head + list(self.lines)) + "\n")


def list_files(evidence_dir: Path, report_dir: Path) -> dict:
    """The ``evidence`` entry of a case's detail JSON."""
    files = []
    if evidence_dir.is_dir():
        for f in sorted(evidence_dir.iterdir()):
            # aiortc.log: the rig's process; aiortc-<role>.log: a peer host's (rig.peers.host)
            kind = ("playwright-trace" if f.name.startswith("trace-") and f.suffix == ".zip"
                    else "aiortc-log" if f.name.startswith("aiortc") and f.suffix == ".log" else "file")
            role = f.stem.split("-", 1)[1] if kind == "playwright-trace" or (kind == "aiortc-log" and "-" in f.stem) else ""
            files.append({"name": f.name, "kind": kind, "role": role, "bytes": f.stat().st_size})
    try:
        rel = evidence_dir.relative_to(report_dir).as_posix() + "/"
    except ValueError:
        rel = str(evidence_dir) + "/"
    return {"kept": True, "dir": rel, "files": files}


def discard(evidence_dir: Path) -> None:
    shutil.rmtree(evidence_dir, ignore_errors=True)
