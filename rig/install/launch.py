"""The launch check: whether the rig can drive a browser binary, and its exact version as the
browser itself reports it.

The check runs in a child process (``python -m rig.install check KIND EXECUTABLE``,
rig/install/__main__.py) with the rig's pinned Playwright, and, when that cannot drive the
binary, in rig.drivers' environments with other Playwright releases. :func:`probe` remembers the
answer per binary, so a browser that did not change costs no launch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys

from .. import config, runs
from ..errors import RigError
from ..versions import Installation, locked
from ..waits import bounded
from .cache import FIELDS, browsers_dir, write_json
from .source import first_line


def playwright_version() -> str:
    return importlib.metadata.version("playwright")


def _launch_check(kind: str, executable: str) -> dict:
    """Launch ``executable`` with the rig's pinned Playwright in a child process (a hard bound,
    nothing left running, no event loop shared with the caller); its report as a dict:
    ``{"version": ...}`` or ``{"error": first line}``."""
    bound = config.LAUNCH_TIMEOUT + 2 * config.STEP_TIMEOUT + 20  # + interpreter and Playwright start
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")])))
    try:
        r = runs.run_bounded([sys.executable, "-m", "rig.install", "check", kind, executable],
                             timeout=bound, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"launch check did not finish within {bound:.0f} s"}
    for row in reversed(r.stdout.splitlines()):
        if row.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(row)
    return {"error": first_line(r.stderr or f"launch check exited with status {r.returncode} and no report")}


async def page_check(kind: str, executable: str) -> dict:
    """In the child: launch as every run does, open a page, find RTCPeerConnection, close."""
    # Playwright only in this child, which checks one browser and exits
    from playwright.async_api import async_playwright

    from ..peers.browser import launch
    async with async_playwright() as pw:
        browser = await asyncio.wait_for(launch(pw, kind, executable), config.LAUNCH_TIMEOUT)
        try:
            page = await asyncio.wait_for(browser.new_page(), config.STEP_TIMEOUT)
            rtc = await asyncio.wait_for(page.evaluate("() => typeof RTCPeerConnection"), config.STEP_TIMEOUT)
            if rtc != "function":
                return {"error": f"typeof RTCPeerConnection is {rtc!r} in a page"}
            return {"version": browser.version}
        finally:
            await bounded(browser.close(), config.CLOSE_TIMEOUT)


def rig_drivers():
    """rig.drivers (driver environments with other Playwright and aiortc releases), or None
    when this checkout does not have it."""
    name = importlib.util.resolve_name("..drivers", __package__)  # rig.drivers, beside this package
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def verify(kind: str, executable: str) -> Installation:
    """Whether the rig can drive ``executable``, and its exact version: the pinned Playwright
    first, then rig.drivers' environments. RigError (one line, no spec: the caller prefixes
    it) names every Playwright tried and its first error line."""
    got = _launch_check(kind, executable)
    if "version" in got:
        return Installation(kind, got["version"], executable, "path")
    tried = f"Playwright {playwright_version()}: {got['error']}"
    drivers = rig_drivers()
    if drivers is None:
        raise RigError(f"cannot be driven ({tried}; no other driver: rig.drivers is not in this checkout)")
    try:
        inst = drivers.verify_browser(kind, executable)
    except RigError as exc:
        raise RigError(f"cannot be driven ({tried}; then {first_line(exc)})") from None
    return dataclasses.replace(inst, kind=kind, path=executable)


def _stamp(executable: str) -> list:
    """What must stay the same for a remembered version to hold: the binary (path, mtime,
    size), the pinned Playwright, and whether rig.drivers could be asked."""
    st = os.stat(executable)
    return [os.path.realpath(executable), st.st_mtime_ns, st.st_size, playwright_version(), rig_drivers() is not None]


def probe(kind: str, executable: str) -> Installation:
    """verify(), remembered per binary path and mtime (``browsers/probed.json``), so listing
    and resolving the system browsers costs a launch only after they change."""
    store = browsers_dir() / "probed.json"
    key = f"{kind}:{executable}"
    stamp = _stamp(executable)
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(key)
    if not (isinstance(entry, dict) and entry.get("stamp") == stamp):
        try:
            entry = {"stamp": stamp, "installation": verify(kind, executable).as_dict()}
        except RigError as exc:
            entry = {"stamp": stamp, "error": str(exc)}
        # re-read and merge under a lock: two workers probing two browsers at once must not
        # lose each other's entry (a lost entry costs a launch, and a soak counts launches)
        with locked(store.with_name(".probed.lock"), config.INSTALL_LOCK_TIMEOUT,
                    f"another rig process held {store}'s lock for {config.INSTALL_LOCK_TIMEOUT:.0f} s"):
            try:
                known = json.loads(store.read_text())
            except (OSError, ValueError):
                known = {}
            known[key] = entry
            write_json(store, known)
    if "error" in entry:
        raise RigError(entry["error"])
    return Installation(**{k: v for k, v in entry["installation"].items() if k in FIELDS})
