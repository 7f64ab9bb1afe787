"""Peer versions: exact version strings, release lines, ranges, and what a spec resolves to.

A peer spec names a kind and optionally a version (``chromium@147``, ``firefox@140``,
``aiortc@1.14``), a binary (``chromium@/opt/c/chrome``) or, for ``rig bisect`` only, a range
(``chromium@110..156``). It resolves to one :class:`Installation`: one exact version, one
executable, one driver. This module is pure data (no I/O but the cache location), shared by
the installer (rig.install), the peer hosts (rig.peers.host), the findings and the report;
the only I/O here is the cache: its location and its lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import RigError

#: How many leading components make a release line: a Chromium or Firefox major is a release
#: branch (its patch builds share the WebRTC code, and Debian's security channel replaces them
#: under you); aiortc releases minors (1.14, 1.16) that differ in behaviour.
LINE_PARTS = {"chromium": 1, "firefox": 1, "aiortc": 2}


def version_key(version: str) -> tuple[int, ...]:
    """``"153.8.0esr"`` -> ``(153, 8, 0)``; non-numeric tails are ignored, so keys sort."""
    out = []
    for part in str(version).split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
    return tuple(out)


def line(kind: str, version: str) -> str:
    """The release line of an exact version: ``156`` for Chromium 156.0.8078.114, ``1.16`` for aiortc 1.16.0."""
    key = version_key(version)
    if not key:
        return str(version)
    return ".".join(str(p) for p in key[: LINE_PARTS.get(kind, 1)])


def matches(prefix: str, version: str) -> bool:
    """Component-wise prefix match: ``147`` matches ``147.0.7727.0``; ``1.1`` does not match ``1.16.0``."""
    want, have = version_key(prefix), version_key(version)
    return bool(want) and have[: len(want)] == want


def in_range(version: str, first: str, last: str, kind: str) -> bool:
    """Whether ``version`` lies in the lines from ``first``'s to ``last``'s (inclusive)."""
    k = LINE_PARTS.get(kind, 1)
    v = version_key(version)[:k]
    return bool(v) and version_key(first)[:k] <= v <= version_key(last)[:k]


def cache_root() -> Path:
    """Where installed browsers, aiortc releases and driver environments live, per user:
    ``$GLARE_RIG_CACHE``, else ``$XDG_CACHE_HOME/glare-rig``, else ``~/.cache/glare-rig``."""
    if os.environ.get("GLARE_RIG_CACHE"):
        return Path(os.environ["GLARE_RIG_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "glare-rig"


@dataclass(frozen=True)
class Installation:
    """What one peer spec resolves to.

    ``path``: for a browser, its executable; for aiortc, the Python interpreter whose
    environment has that aiortc (``sys.executable`` for the rig's own). ``driver``: empty when
    the rig's own Playwright (or aiortc) drives it in process; otherwise the Python of the
    environment that runs a peer host for it (rig.peers.host), e.g. one with Playwright 1.55.
    """

    kind: str
    version: str
    path: str
    source: str  # system | debian | npm | pypi | path | rig (the rig's own aiortc)
    driver: str = ""
    driver_label: str = ""  # "playwright 1.55.0", "aiortc 1.14.0": what the host runs

    @property
    def in_process(self) -> bool:
        return not self.driver

    @property
    def line(self) -> str:
        return line(self.kind, self.version)

    def as_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def locked(path: Path, timeout: float, busy: str, poll: float = 0.2) -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``path`` (two installers, two xdist workers), waiting at
    most ``timeout`` seconds; then ``busy`` is raised as the one-line error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RigError(busy) from None
                time.sleep(poll)  # another process holds the lock; bounded by the deadline above
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
