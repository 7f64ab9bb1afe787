"""The machine's slots, shared by every run, worker and peer host of one user: at most
config.CASE_SLOTS cases run at once (a case's bounds measure its peers' progress only while the
machine can carry the cases on it; docs/design.md, "slots"), and at most config.LAUNCH_SLOTS
browsers start at once.

A browser's start is the costliest thing a case can ask for (a Firefox ~3.5 CPU s, docs/
measurements.md), and runs start their browsers together: every worker of a run at its first
case, and a run's workers beside another run's. On a saturated machine each of those launches
then got a sliver of the CPU and every one of them outlived its bound. With a slot held, a launch
competes with the cases that are running, not with every other launch: config.LAUNCH_TIMEOUT
bounds the launch once it holds a slot, and config.LAUNCH_SLOT_TIMEOUT the wait for one.

A slot is an flock(2) on one of N files per kind: the kernel releases it when its holder dies,
however it dies, so a killed run never keeps a slot. Waiting tries each slot without blocking,
then again after LAUNCH_SLOT_POLL: flock has no asynchronous wait, and a blocking flock in a
thread could not be given up when the wait's bound passes. Standard library only: a peer host's
environment (rig.peers.host) has only its Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from . import config
from .errors import RigError


class LaunchBound(RigError):
    """A launch that passed one of its bounds (the slot's or the launch's): a slow or saturated
    machine, not a broken browser, so BrowserPool does not remember it."""


def slots_dir(kind: str) -> Path:
    """Per user and machine-wide: the same for every run, worker and peer host of this user."""
    return Path(tempfile.gettempdir()) / f"glare-rig-{os.getuid()}" / f"{kind}-slots"


def _try_take(count: int, kind: str) -> int | None:
    """An open fd holding one free slot, else None."""
    where = slots_dir(kind)
    where.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        fd = os.open(where / f"{i}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


@contextlib.asynccontextmanager
async def _slot(kind: str, count: int, timeout: float, refused: Callable[[], RigError]) -> AsyncIterator[float]:
    """Hold one of ``count`` slots of ``kind`` for the body, waiting at most ``timeout`` for it
    (then ``refused()`` is raised); yields the seconds waited."""
    start = time.monotonic()
    fd = _try_take(count, kind)
    while fd is None:
        if time.monotonic() - start >= timeout:
            raise refused()
        await asyncio.sleep(config.LAUNCH_SLOT_POLL)
        fd = _try_take(count, kind)
    try:
        yield time.monotonic() - start
    finally:
        os.close(fd)  # closing the only fd of the open file releases its flock


def launch_slot(what: str) -> contextlib.AbstractAsyncContextManager[float]:
    """A launch slot for the body (a browser's start); ``what`` names the browser for the
    one-line error when no slot frees within config.LAUNCH_SLOT_TIMEOUT."""
    return _slot("launch", config.LAUNCH_SLOTS, config.LAUNCH_SLOT_TIMEOUT, lambda: LaunchBound(
        f"{what}: no launch slot freed within {config.LAUNCH_SLOT_TIMEOUT:.0f} s ({config.LAUNCH_SLOTS} on this "
        "machine, all held by other launches; RIG_LAUNCH_SLOTS sets how many)"))


def case_slot(what: str) -> contextlib.AbstractAsyncContextManager[float]:
    """A case slot for the body (a case from its peers' making to their closing); ``what`` names
    the case for the one-line error when no slot frees within config.CASE_SLOT_TIMEOUT."""
    return _slot("case", config.CASE_SLOTS, config.CASE_SLOT_TIMEOUT, lambda: RigError(
        f"{what}: no case slot freed within {config.CASE_SLOT_TIMEOUT:.0f} s ({config.CASE_SLOTS} on this machine, "
        "all held by other cases; RIG_CASE_SLOTS sets how many)"))
