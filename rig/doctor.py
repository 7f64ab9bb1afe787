"""``rig doctor`` and ``rig browsers``: which peers can be driven here, and the browser versions
installed, installable, installed on request (rig.install)."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from importlib.metadata import version

from . import config, drivers, install, options
from .errors import RigError
from .peerspec import PeerSpec
from .vocab import PEER_KINDS


def _err(msg: str) -> None:
    print(f"rig: error: {msg}", file=sys.stderr)


async def _probe_browser(spec: PeerSpec) -> str:
    # Playwright only for `rig doctor`'s probe
    from playwright.async_api import async_playwright

    from .peers.browser import BrowserPool
    async with async_playwright() as pw:
        pool = BrowserPool(pw)
        try:
            browser = await pool.get(spec)
            page = await browser.new_page()
            ok = await page.evaluate("() => typeof RTCPeerConnection === 'function' && new RTCPeerConnection().signalingState")
            await page.close()
            return f"drivable (Playwright {pool.playwright_version()}, signalingState={ok}, version {browser.version})"
        finally:
            await pool.close()


async def _probe_aiortc() -> str:
    from aiortc import RTCConfiguration, RTCPeerConnection  # only for `rig doctor`'s probe
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("doctor")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    return "drivable (offer created with iceServers=[])"


def cmd_doctor(args: argparse.Namespace) -> int:
    from .peers.browser import binary_for  # imports Playwright: only `rig doctor` needs it
    bad = 0
    for kind in PEER_KINDS:
        spec = PeerSpec(kind)
        if kind == "aiortc":
            where, ver = "(Python package)", version("aiortc")
            try:
                status = asyncio.run(asyncio.wait_for(_probe_aiortc(), config.LAUNCH_TIMEOUT))
            except Exception as exc:
                status, bad = f"NOT drivable: {exc}; fix: pip install 'aiortc>=1.16,<1.17'", bad + 1
            print(f"{kind:9} {where:28} {ver:18} {status}")
            continue
        try:
            where = binary_for(spec)
        except RigError as exc:
            print(f"{kind:9} {'-':28} {'-':18} MISSING: {exc}")
            bad += 1
            continue
        try:
            ver = subprocess.run([where, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
            ver = ver.split()[-1] if kind == "firefox" else ver.split()[1]
        except Exception as exc:
            ver = f"? ({exc})"
        try:
            status = asyncio.run(asyncio.wait_for(_probe_browser(spec), config.LAUNCH_TIMEOUT + 10))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fix = (f"fix: pip install 'playwright{config.PLAYWRIGHT_PIN}'" if kind == "firefox"
                   else f"fix: apt-get install -y {config.BINARIES[kind][1]}")
            status, bad = f"NOT drivable: {first}; {fix}", bad + 1
        print(f"{kind:9} {where:28} {ver:18} {status}")
        if kind == "chromium" and config.HEADLESS_SHELL:
            from .peers.browser import headless_shell  # imports Playwright (see above)
            shell = headless_shell(where)
            print(f"{'':9} headless runs use {shell} (the same build's headless shell)" if shell else
                  f"{'':9} headless runs use the full browser (no headless shell of {ver} beside it; "
                  "on Debian: apt-get install -y chromium-headless-shell)")
    notes: list[str] = []
    have = install.installed(notes=notes)
    print("\nbrowser versions installed (rig browsers list; more: rig browsers install KIND@VERSION):")
    print("\n".join(_installed_rows(have)) or "(none)")
    for n in notes:
        print(f"note: {n}")
    return 1 if bad else 0


def _driver_text(inst) -> str:
    if inst.driver_label:
        return inst.driver_label
    return "in the rig's process" if inst.kind == "aiortc" else f"playwright {version('playwright')} (the rig's)"


def _installed_rows(insts: list) -> list[str]:
    return [f"{i.kind:9} {i.version:18} {i.source:7} {_driver_text(i):32} {i.path}" for i in insts]


def cmd_browsers(args: argparse.Namespace) -> int:
    if args.action == "list":
        notes: list[str] = []
        have = install.installed(notes=notes) + [drivers.own_aiortc()] + drivers.installed_aiortc()
        print(f"{'kind':9} {'version':18} {'source':7} {'driver':32} path")
        print("\n".join(_installed_rows(have)))
        if args.available:
            print(f"\n{'kind':9} {'installable':18} {'source':7} {'package':35} installed")
            for kind in install.BROWSERS:
                for a in install.available(kind, notes):
                    there = [i.version for i in have if i.kind == kind and a.matches(i.version if a.exact else i.line)]
                    print(f"{kind:9} {a.version:18} {a.source:7} {a.package + ' ' + a.package_version:35} "
                          f"{', '.join(there)}")
            for kind, feed in (("chromium", install.cft), ("firefox", install.mozilla)):
                try:
                    now = ", ".join(f"{c} {v}" for c, v in feed.channels().items()) or "none listed"
                    print(f"{kind:9} {now} ({feed.NAME}: {kind}@CHANNEL, or an exact build: "
                          f"{'chromium@cft:VERSION' if kind == 'chromium' else 'firefox@VERSION'})")
                except RigError as exc:
                    mirror = f"; set {feed.mirror_env(exc.url)} to a mirror" if isinstance(exc, install.Unreachable) else ""
                    notes.append(f"{feed.NAME}'s channels not listed: {exc}{mirror}")
            try:
                releases = drivers.available_aiortc()
                print(f"aiortc    {', '.join(releases[:12])}{' ...' if len(releases) > 12 else ''} (pypi; "
                      "each release in its own environment: rig browsers install aiortc@VERSION)")
            except RigError as exc:
                notes.append(str(exc))
        for n in dict.fromkeys(notes):
            print(f"note: {n}", file=sys.stderr)
        return 0
    if args.action == "path":
        try:
            print(install.resolve(options.peer(args.specs[0])).path)
        except RigError as exc:
            _err(str(exc))
            return 1
        return 0
    failed = 0
    for text in args.specs:
        spec = options.peer(text)
        try:
            done = install.install(spec, progress=lambda m: print(f"rig: {m}", file=sys.stderr, flush=True))
        except RigError as exc:
            _err(str(exc))
            failed += 1
            continue
        i = done.installation
        what = i.source + (f", driven by {i.driver_label}" if i.driver_label else "")
        if done.already:
            print(f"{spec}: already installed: {i.kind} {i.version} ({what}) at {i.path}", flush=True)
        else:
            got = f", {done.downloaded / 1e6:.0f} MB downloaded" if done.downloaded else ""
            print(f"{spec}: installed {i.kind} {i.version} ({what}{got}) at {i.path}", flush=True)
    return 1 if failed else 0
