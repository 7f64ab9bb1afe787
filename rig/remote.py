"""Remote browsers: a browser peer on another host, behind a Playwright server.

A spec ``chromium@ws://HOST:PORT/PATH`` names the server. The server is Playwright's own
``launch-server`` command, started on the browser's host with a launch config this module
writes (``python -m rig.remote config chromium ...``): the executable, the rig's flags or
prefs (rig.config), headless. Why not ``run-server``: it launches the browser from the
options a client sends, and without ``--unsafe`` it drops the executable, the flags and the
prefs (so Playwright's own download, absent here, and no fake media, mDNS host candidates);
with ``--unsafe`` anyone who reaches its port may start any program with any arguments.
``launch-server`` fixes all of that on the browser's host; a client can only ask for
contexts, each connection isolated from the others (docs/design.md, "Remote browsers").

A remote browser is driven by the rig's own (pinned) Playwright; the server must run the
same minor release, which Playwright checks when connecting. Its pages load the peer page
from the signaling stub's address for remote peers (``--rig-stub-host``, rig.signaling),
over HTTPS with a throw-away certificate: getUserMedia needs a secure context, and only
loopback is one over plain HTTP.

Standard library only at the top: Playwright is imported where it is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import urllib.parse
from typing import Any

from . import config, runs
from .errors import RigError
from .peerspec import PeerSpec
from .versions import Installation
from .waits import bounded

#: Where the launch config goes in the recipe's commands (docs/remote.md).
RECIPE = "docs/remote.md"


def playwright_version() -> str:
    return importlib.metadata.version("playwright")


def server_config(kind: str, executable: str, *, host: str, port: int = 0, path: str = "/glare-rig") -> dict:
    """The options of ``python -m playwright launch-server --browser KIND --config FILE``
    that launch ``executable`` as every local run does (rig.peers.browser.launch) and listen on
    ``host:port`` (0: any free port; the server prints its address) at ``path``."""
    if kind == "chromium":
        opts: dict[str, Any] = {"executablePath": executable, "args": list(config.CHROMIUM_ARGS)}
    elif kind == "firefox":
        opts = {"executablePath": executable, "channel": "moz-firefox",
                "firefoxUserPrefs": dict(config.FIREFOX_PREFS)}
    else:
        raise RigError(f"{kind}: only chromium and firefox can be remote")
    return {**opts, "headless": True, "host": host, "port": port,
            "wsPath": path if path.startswith("/") else f"/{path}"}


def _first_line(text: str) -> str:
    lines = [x.strip() for x in str(text).strip().splitlines() if x.strip()]
    return lines[0] if lines else ""


def explain(spec: PeerSpec, exc: BaseException | str) -> RigError:
    """Playwright's connect error (several lines, an ASCII box) as one line naming the
    endpoint and the fix."""
    text = str(exc)
    url = urllib.parse.urlsplit(spec.endpoint or "")
    where = f"{url.hostname}:{url.port}"
    mine = playwright_version()
    m = re.search(r"server version: v?(\d+\.\d+)", text)
    if m or "version mismatch" in text.lower():
        server = m.group(1) if m else "another release"
        return RigError(f"{spec}: the Playwright server runs Playwright {server}, the rig {mine}: install "
                        f"playwright=={mine} on the browser's host and restart the server ({RECIPE})")
    if re.search(r"\b400 Bad Request\b", text):
        return RigError(f"{spec}: the Playwright server at {where} has no endpoint {url.path or '/'} (400 Bad "
                        f"Request); use the ws:// address the server printed")
    m = re.search(r"\b(E[A-Z]{4,})\b[^\n]*", text)
    if m:
        return RigError(f"{spec}: cannot reach the Playwright server at {where} ({m.group(0).strip()}); start it "
                        f"on the browser's host with the rig's launch config ({RECIPE}), or fix the address")
    if isinstance(exc, TimeoutError) or re.search(r"\b[Tt]imeout\b|timed out", text):
        return RigError(f"{spec}: no answer from a Playwright server at {where} within "
                        f"{config.LAUNCH_TIMEOUT:.0f} s; check that this host can reach it (route, firewall)")
    first = _first_line(text.replace("BrowserType.connect: ", "")) or type(exc).__name__
    return RigError(f"{spec}: cannot connect to the Playwright server at {where}: {first}")


async def connect(playwright: Any, spec: PeerSpec) -> Any:
    """A Browser on the server ``spec`` names, within config.LAUNCH_TIMEOUT; one-line RigError
    (rig.remote.explain) otherwise."""
    assert spec.endpoint
    btype = getattr(playwright, spec.kind)
    task = asyncio.ensure_future(btype.connect(spec.endpoint, timeout=config.LAUNCH_TIMEOUT * 1000))
    done, _ = await asyncio.wait({task}, timeout=config.LAUNCH_TIMEOUT + 1)
    if not done:
        task.cancel()
        raise explain(spec, TimeoutError())
    try:
        return task.result()
    except Exception as exc:
        raise explain(spec, exc) from None


#: Run in a page served by Playwright itself (page.route): the same checks as a peer page
#: needs, before any media permission is used (Chromium shows real host addresses once a
#: page holds a camera, whatever the flags say).
_PROBE = """async () => {
  const out = {};
  const pc = new RTCPeerConnection();
  pc.createDataChannel("probe");
  const host = new Promise((resolve) => {
    pc.onicecandidate = (e) => {
      if (!e.candidate) resolve(null);
      else if (/ typ host/.test(e.candidate.candidate)) resolve(e.candidate.candidate.split(" ")[4]);
    };
    setTimeout(() => resolve(null), 2000);  // a bound on gathering, not a timing: no host candidate then
  });
  await pc.setLocalDescription();
  out.host = await host;
  pc.close();
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    stream.getTracks().forEach((t) => t.stop());
  } catch (e) {
    out.media = `${e.name}: ${e.message}`;
  }
  return out;
}"""
PROBE_URL = "https://glare-rig.invalid/probe"


async def check(spec: PeerSpec) -> dict:
    """Connect, read the version, and check in a secure page that the remote browser runs with
    the rig's flags (fake media devices, real host addresses): ``{"version": ...}`` or
    ``{"error": one line}``."""
    from playwright.async_api import async_playwright  # only in the `rig.remote check` child
    async with async_playwright() as pw:
        try:
            browser = await connect(pw, spec)
        except RigError as exc:
            return {"error": str(exc)}
        try:
            context = await asyncio.wait_for(browser.new_context(), config.STEP_TIMEOUT)
            if spec.kind == "chromium":
                await asyncio.wait_for(context.grant_permissions(["camera", "microphone"]), config.STEP_TIMEOUT)
            page = await asyncio.wait_for(context.new_page(), config.STEP_TIMEOUT)
            await page.route(PROBE_URL, lambda route: route.fulfill(body="<!doctype html><title>probe</title>",
                                                                     content_type="text/html"))
            await asyncio.wait_for(page.goto(PROBE_URL), config.STEP_TIMEOUT)
            got = await asyncio.wait_for(page.evaluate(_PROBE), config.STEP_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - Playwright's errors: their first line says it
            return {"error": f"{spec}: connected, but a page could not be opened: "
                             f"{_first_line(str(exc)) or type(exc).__name__}"}
        finally:
            await bounded(browser.close(), config.CLOSE_TIMEOUT)  # disconnects; the server's browser stays
    wrong = []
    if got.get("media"):
        wrong.append(f"no fake camera and microphone: getUserMedia failed with {got['media']}")
    if str(got.get("host") or "").endswith(".local"):
        wrong.append(f"host candidates are mDNS names ({got['host']})")
    if wrong:
        return {"error": f"{spec}: the remote {spec.kind} {browser.version} was not launched with the rig's "
                         f"{'flags' if spec.kind == 'chromium' else 'prefs'} ({'; '.join(wrong)}); start its server "
                         f"with the config of python -m rig.remote config {spec.kind} ({RECIPE})"}
    return {"version": browser.version}


def resolve(spec: PeerSpec) -> Installation:
    """The Installation of a remote spec: source "remote", path the endpoint, the version the
    browser reports once connected. The check runs in a child process (a hard bound, nothing
    left running, no event loop shared with the caller, which may be inside one)."""
    bound = config.LAUNCH_TIMEOUT + 4 * config.STEP_TIMEOUT + 20  # + interpreter and Playwright start
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")])))
    try:
        r = runs.run_bounded([sys.executable, "-m", "rig.remote", "check", str(spec)], timeout=bound, env=env)
    except subprocess.TimeoutExpired:
        raise RigError(f"{spec}: the check of the remote browser did not finish within {bound:.0f} s") from None
    got: dict = {}
    for row in reversed(r.stdout.splitlines()):
        if row.startswith("{"):
            with contextlib.suppress(ValueError):
                got = json.loads(row)
                break
    if "version" in got:
        assert spec.endpoint
        return Installation(spec.kind, str(got["version"]), spec.endpoint, "remote")
    raise RigError(got.get("error") or f"{spec}: the check of the remote browser failed: "
                   f"{_first_line(r.stderr) or f'exit status {r.returncode}'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rig.remote", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    cp = sub.add_parser("config", help="print a launch config for: python -m playwright launch-server "
                                       "--browser KIND --config FILE (on the browser's host)")
    cp.add_argument("kind", choices=("chromium", "firefox"))
    cp.add_argument("--executable", help="the browser on that host (default: rig.config's system browser path)")
    cp.add_argument("--host", required=True, help="the address to listen on (one the rig's host can reach)")
    cp.add_argument("--port", type=int, default=0, help="port (default 0: any free one; the server prints it)")
    cp.add_argument("--path", default="/glare-rig", help="endpoint path (default: %(default)s)")
    ck = sub.add_parser("check", help="connect to a remote browser and check it as a run would")
    ck.add_argument("spec", help="KIND@ws://HOST:PORT/PATH")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "config":
            exe = args.executable or config.BINARIES[args.kind][0]
            print(json.dumps(server_config(args.kind, exe, host=args.host, port=args.port, path=args.path), indent=1))
            return 0
        spec = PeerSpec.parse(args.spec)
        if not spec.endpoint:
            raise RigError(f"{spec}: not a remote spec; write {spec.kind}@ws://HOST:PORT/PATH")
        try:
            result = asyncio.run(check(spec))
        except Exception as exc:  # noqa: BLE001 - one line, whatever Playwright raised
            result = {"error": f"{spec}: {_first_line(str(exc)) or type(exc).__name__}"}
        print(json.dumps(result), flush=True)
        return 0 if "version" in result else 1
    except RigError as exc:
        print(f"rig: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
