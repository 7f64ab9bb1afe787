"""Browser peers driven by Playwright: one browser process per spec per worker, reused;
a fresh context and page per peer, so cases never share state. A remote browser
(``chromium@ws://...``, rig.remote) is one connection to its server per worker instead."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import subprocess
import urllib.parse
from importlib.metadata import version
from typing import Any

from playwright.async_api import Browser, Playwright

from .. import config, hostnet, slots
from ..errors import RigError
from ..peerspec import PeerSpec
from ..remote import connect
from ..versions import version_key
from ..waits import bounded
from .base import Peer
from .page_events import EventSink, PageEvents


def binary_for(spec: PeerSpec) -> str:
    """Path of the browser binary for ``spec``; a one-line fix when it is missing."""
    path, package = config.BINARIES[spec.kind]
    if spec.binary:
        path = spec.binary
    elif spec.variant:
        raise RigError(f"{spec}: versioned browsers are not supported yet; give a binary path as {spec.kind}@/path/to/binary")
    resolved = shutil.which(path) or (path if os.path.exists(path) else None)
    if not resolved:
        raise RigError(f"{spec}: browser binary {path} not found; install it with "
                       f"'apt-get install -y {package}' (as root) or set RIG_{spec.kind.upper()}")
    return resolved


_SHELLS: dict[str, str | None] = {}


def headless_shell(executable: str) -> str | None:
    """The headless shell of the same Chromium build as ``executable``, if one is installed
    beside it (same folder as the real binary, or the folder a launcher script such as Debian's
    /usr/bin/chromium execs from; the binary itself, not another launcher script) and reports
    the same ``--version``; else None. Remembered per executable for the process."""
    if executable in _SHELLS:
        return _SHELLS[executable]
    found = None
    try:
        real = os.path.realpath(executable)
        dirs = [os.path.dirname(real)]
        with open(real, "rb") as f:
            head = f.read(4096)
        if head.startswith(b"#!"):  # a launcher script: the folders of the binaries it names
            dirs += [os.path.dirname(m.decode()) for m in re.findall(rb"(/[\w./+-]+/chrom\w*)", head)]
            dirs.append(os.path.join("/usr/lib", os.path.basename(real)))  # Debian's: LIBDIR=/usr/lib/$APPNAME
        for d in dirs:
            for name in config.HEADLESS_SHELL_NAMES:
                cand = os.path.join(d, name)
                if os.path.isfile(cand) and os.access(cand, os.X_OK) and cand != real and not _is_script(cand):
                    version = _version_line(cand)
                    if version and version == _version_line(executable):
                        found = cand
                    break
            if found:
                break
    except OSError:
        found = None
    _SHELLS[executable] = found
    return found


def _is_script(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"#!"


def _version_line(executable: str) -> str:
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r"\d+\.\d+\.\d+\.\d+", out)
    return m.group(0) if m else ""


async def launch(playwright: Playwright, kind: str, executable: str, *, headless: bool = True) -> Browser:
    """Launch a browser the way every run does (flags, prefs, channel from rig.config), with
    whichever Playwright this process has: the installer checks a new browser version with this
    same call, and a peer host (rig.peers.host) launches with its environment's older one.
    Playwright before 1.56 (config.PLAYWRIGHT_PUBLIC_BIDI) does not route its public ``firefox``
    to a stock Firefox; its BiDi Firefox type is reachable only through a private attribute
    (FIELD-NOTES).

    Holds a launch slot of this machine while it starts the browser (rig.slots); bounded:
    config.LAUNCH_SLOT_TIMEOUT for the slot, then config.LAUNCH_TIMEOUT for the launch, a
    one-line RigError naming the bound it passed."""
    async with slots.launch_slot(kind):
        try:
            return await asyncio.wait_for(_launch_now(playwright, kind, executable, headless),
                                          config.LAUNCH_TIMEOUT)
        except TimeoutError:
            raise slots.LaunchBound(f"{kind}: launch did not finish within {config.LAUNCH_TIMEOUT:.0f} s") from None


async def _launch_now(playwright: Playwright, kind: str, executable: str, headless: bool) -> Browser:
    lo = hostnet.loopback_only()
    if kind == "chromium":
        if headless and config.HEADLESS_SHELL:
            executable = await asyncio.to_thread(headless_shell, executable) or executable
        return await playwright.chromium.launch(executable_path=executable, headless=headless,
                                                args=config.CHROMIUM_ARGS + (hostnet.CHROMIUM_ARGS if lo else []))
    if kind != "firefox":
        raise RigError(f"{kind} is not a browser")
    prefs = {"executable_path": executable, "headless": headless,
             "firefox_user_prefs": {**config.FIREFOX_PREFS, **(hostnet.FIREFOX_PREFS if lo else {})}}
    if version_key(version("playwright")) >= config.PLAYWRIGHT_PUBLIC_BIDI:
        return await playwright.firefox.launch(channel="moz-firefox", **prefs)
    # Playwright's private API, only for a Playwright too old to reach a stock Firefox publicly
    from playwright._impl._connection import from_channel
    from playwright.async_api._generated import BrowserType
    channel = playwright._impl_obj._initializer.get("_bidiFirefox")
    if channel is None:
        raise RigError(f"playwright {version('playwright')} has no BiDi Firefox")
    impl = from_channel(channel)
    impl._playwright = playwright._impl_obj  # what Playwright's own constructor sets on its public types
    return await BrowserType(impl).launch(**prefs)


class Prepared:
    """A browser context with the peer page loaded, not yet any peer's: the pool prepares one
    ahead for the next case (so a case does not wait ~0.5-0.9 s per browser peer for a new
    context, page and fixture load), and a BrowserPeer adopts it. What the page reports before
    it is adopted (a console error while loading, say) is kept and handed to its peer."""

    def __init__(self) -> None:
        self.context: Any = None
        self.page: Any = None
        self.tracing = False
        self.peer: BrowserPeer | None = None
        self._backlog: list[tuple[str, tuple]] = []
        #: the page's events, by its socket to the pool's EventSink or by the binding
        self.events = PageEvents(lambda batch: self._to_peer("_on_event", batch))
        self.sink: EventSink | None = None
        self.sink_url = ""

    def _to_peer(self, method: str, *args: Any) -> None:
        if self.peer is None:
            self._backlog.append((method, args))
        else:
            getattr(self.peer, method)(*args)

    def adopt(self, peer: BrowserPeer) -> None:
        self.peer = peer
        for method, args in self._backlog:
            getattr(peer, method)(*args)
        self._backlog.clear()

    def release(self) -> None:
        """The page's socket address is refused from now on (its page is closing)."""
        if self.sink is not None:
            self.sink.unregister(self.sink_url)

    async def discard(self) -> None:
        self.release()
        if self.context is not None:
            if self.tracing:
                await bounded(self.context.tracing.stop(), config.CLOSE_TIMEOUT)
            await bounded(self.context.close(), config.CLOSE_TIMEOUT)


async def prepare(browser: Browser, kind: str, base_url: str, trace: bool, title: str = "",
                  preload: str = "", sink: EventSink | None = None) -> Prepared:
    """A fresh context and page with the rig's peer page loaded (bounded by the caller).
    ``preload``: the negotiator's URL, imported now so that joining a case does not fetch and
    compile it; a negotiator that fails to load fails the same way at join, where the page's
    module map hands the same rejection to rig.join's own import(). ``sink``: where the page
    sends its events (rig.peers.page_events); without one, the binding carries them."""
    prep = Prepared()
    # the stub's HTTPS site for remote browsers has a throw-away self-signed certificate
    prep.context = await browser.new_context(ignore_https_errors=base_url.startswith("https:"))
    try:
        if trace:  # a Playwright trace of the page: saved at close when the case keeps evidence
            # Without DOM snapshots: the peer page's DOM never changes, and snapshotting it around
            # every call cost ~0.3 s per browser case (docs/design.md, "Evidence")
            await prep.context.tracing.start(snapshots=False, screenshots=False, sources=False, title=title)
            prep.tracing = True
        if kind == "chromium":
            await prep.context.grant_permissions(["camera", "microphone"])
        page = prep.page = await prep.context.new_page()
        page.set_default_timeout(config.STEP_TIMEOUT * 1000)
        await page.expose_function("__rigEvent", prep.events.on_batch)
        page.on("console", lambda msg: prep._to_peer("_on_console", msg))
        page.on("pageerror", lambda err: prep._to_peer("record", "error", {"source": "pageerror", "text": str(err)}))
        page.on("crash", lambda *_: prep._to_peer("record", "error", {"source": "crash", "text": "Target crashed"}))
        # at teardown the rig closes the page itself (errors then are marked as while closing)
        page.on("close", lambda *_: prep._to_peer("record", "error", {
            "source": "page", "text": "the page closed in the middle of the case: its browser or its page's process "
            "exited or was killed"}))
        query = ""
        if sink is not None:
            prep.sink, prep.sink_url = sink, await sink.register(prep.events)
            query = "?" + urllib.parse.urlencode({"events": prep.sink_url})
        await page.goto(f"{base_url}/fixtures/peer.html{query}")  # waits for load: module scripts have run
        if not await page.evaluate("() => window.rig !== undefined"):
            raise RigError(f"{base_url}/fixtures/peer.html loaded without defining window.rig")
        if preload:
            await page.evaluate("u => import(u).then(() => true, () => false)", rebase(preload, base_url))
    except BaseException:
        await prep.discard()
        raise
    return prep


class BrowserPool:
    """Launches each browser spec once and hands it out; remembers launch failures so
    every case that needs a broken browser fails fast with the same one-line reason, but not a
    launch that passed its bound (a slow machine is not a broken browser: the next case that
    needs it launches it again); keeps SPARES pages of each browser prepared ahead (Prepared).

    Spares are made between cases (``refill``, called when a case has ended), not while one
    runs: preparing a page is the browser's heaviest work (Firefox: ~0.4 s of its main thread,
    the thread that also carries the case's WebDriver BiDi calls and WebSocket), and made in
    the background of a running case it slowed that case's join and settle instead of
    overlapping them (docs/measurements.md)."""

    SPARES = 2

    def __init__(self, playwright: Playwright, headed: bool = False) -> None:
        self.playwright = playwright
        self.headed = headed
        self._browsers: dict[str, Browser | RigError] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: per browser, the pages being prepared for the next peers (SPARES ahead: a case of
        #: two peers of one browser takes two)
        self._spares: dict[str, list[asyncio.Task]] = {}
        #: per browser, what its last page was made with (refill makes the next ones alike)
        self._recipes: dict[str, tuple] = {}
        #: per browser process, pages made so far (config.RECYCLE_PAGES)
        self._served: dict[str, int] = {}
        self.recycled = 0
        #: pages made in all (config.RECYCLE_DRIVER_PAGES: the worker restarts its driver)
        self.pages = 0
        #: the pages' event sockets (rig.peers.page_events), for every browser but a remote one
        self.sink = EventSink()

    async def get(self, spec: PeerSpec, executable: str | None = None) -> Browser:
        """The browser for ``spec`` (launched from ``executable`` when given: the binary the
        spec resolved to), one process per binary: specs naming the same build share it; for a
        remote spec, one connection per endpoint."""
        key = spec.endpoint or executable or str(spec)
        async with self._locks.setdefault(key, asyncio.Lock()):
            got = self._browsers.get(key)
            if got is None or (isinstance(got, Browser) and not got.is_connected()):
                try:
                    got = await self._launch(spec, executable)
                except TimeoutError:  # a remote browser's connection
                    raise RigError(f"{spec}: connection did not finish within {config.LAUNCH_TIMEOUT:.0f} s") from None
                except slots.LaunchBound as exc:  # for this case only (the class's docstring)
                    raise RigError(f"{spec}: {str(exc).split(': ', 1)[1]}") from None
                except RigError as exc:
                    got = exc
                except Exception as exc:  # Playwright's errors are long; keep the first line
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    got = RigError(f"{spec}: Playwright {self.playwright_version()} cannot drive it: {first}")
                self._browsers[key] = got
        if isinstance(got, RigError):
            raise RigError(str(got))
        return got

    async def page(self, spec: PeerSpec, executable: str | None, base_url: str, trace: bool,
                   preload: str = "") -> Prepared:
        """A prepared page of ``spec``'s browser: one made ahead if it is ready and sound, else
        a new one. Remembers how to make the next ones (``refill``). Bounded."""
        browser = await self.get(spec, executable)
        key = executable or str(spec)
        self._recipes[key] = (browser, spec, base_url, trace, preload)
        self._served[key] = self._served.get(key, 0) + 1
        self.pages += 1
        spares = self._spares.setdefault(key, [])
        prep = None
        while spares and prep is None:
            spare = spares.pop(0)
            if await bounded(asyncio.shield(spare), config.LAUNCH_TIMEOUT) and not spare.cancelled() \
                    and spare.exception() is None:
                prep = spare.result()
                if prep.page.is_closed() or not browser.is_connected():
                    await prep.discard()
                    prep = None
            elif not spare.done():
                spare.cancel()
        if prep is None:
            prep = await asyncio.wait_for(prepare(browser, spec.kind, base_url, trace, str(spec), preload,
                                                  self._sink(spec)), config.LAUNCH_TIMEOUT)
        return prep

    async def refill(self) -> None:
        """Between cases: recycle a browser that has served config.RECYCLE_PAGES pages (close
        it and its spares; the next case launches it anew), then start preparing pages (in the
        background, up to SPARES per browser) for every browser a case has asked for."""
        for key, (browser, spec, base_url, trace, preload) in list(self._recipes.items()):
            if self._served.get(key, 0) >= config.RECYCLE_PAGES and not spec.endpoint:
                await self._recycle(key, browser)
                continue
            spares = self._spares.setdefault(key, [])
            if not browser.is_connected():
                continue
            while len(spares) < self.SPARES:
                spares.append(asyncio.ensure_future(prepare(browser, spec.kind, base_url, trace, str(spec), preload,
                                                            self._sink(spec))))

    def _sink(self, spec: PeerSpec) -> EventSink | None:
        """A remote browser's page cannot reach this worker's loopback: its events take the binding."""
        return None if spec.endpoint else self.sink

    async def _recycle(self, key: str, browser: Browser) -> None:
        await self._discard_spares(self._spares.pop(key, []))
        self._recipes.pop(key, None)
        self._served.pop(key, None)
        if self._browsers.get(key) is browser:
            del self._browsers[key]
        await bounded(browser.close(), config.CLOSE_TIMEOUT)
        self.recycled += 1

    @staticmethod
    async def _discard_spares(tasks: list[asyncio.Task]) -> None:
        for task in tasks:
            if await bounded(asyncio.shield(task), config.CLOSE_TIMEOUT) and not task.cancelled() \
                    and task.exception() is None:
                await task.result().discard()
            else:
                task.cancel()

    def playwright_version(self) -> str:
        return version("playwright")

    async def _launch(self, spec: PeerSpec, executable: str | None = None) -> Browser:
        if spec.kind not in ("chromium", "firefox"):
            raise RigError(f"{spec} is not a browser")
        if spec.endpoint:
            return await asyncio.wait_for(connect(self.playwright, spec), config.LAUNCH_TIMEOUT)
        return await launch(self.playwright, spec.kind, executable or binary_for(spec), headless=not self.headed)

    async def close(self) -> None:
        await self._discard_spares([t for tasks in self._spares.values() for t in tasks])
        self._spares.clear()
        # a connected (remote) browser's close() ends this connection and its contexts only
        for b in self._browsers.values():
            if isinstance(b, Browser):
                try:
                    await asyncio.wait_for(b.close(), config.CLOSE_TIMEOUT)
                except Exception:
                    pass
        self._browsers.clear()
        await bounded(self.sink.close(), config.CLOSE_TIMEOUT)


def rebase(url: str, base: str) -> str:
    """One of the stub's loopback URLs (the page, its WebSocket, a negotiator) as a peer whose
    page came from ``base`` must use it: a remote browser reaches the stub at another address,
    over HTTPS and WSS (rig.signaling). Unchanged when ``base`` is on loopback too."""
    u, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    try:
        loopback = [ipaddress.ip_address(h).is_loopback for h in (u.hostname or "", b.hostname or "")]
    except ValueError:
        return url
    if not loopback[0] or loopback[1]:
        return url
    secure = b.scheme == "https"
    scheme = ("wss" if secure else "ws") if u.scheme in ("ws", "wss") else b.scheme
    return urllib.parse.urlunsplit((scheme, b.netloc, u.path, u.query, u.fragment))


class BrowserPeer(Peer):
    def __init__(self, spec: PeerSpec, name: str, user_id: int, t0: float, browser: Browser, base_url: str) -> None:
        super().__init__(spec, name, user_id, t0)
        self.browser = browser
        self.base_url = base_url
        self.version = browser.version
        self.context = None
        self.page = None
        self._negotiator: tuple[str, str] = ("", "")  # (URL served, name shown in messages)
        self._tracing = False
        self._prep: Prepared | None = None

    async def open(self, trace: bool = False, prepared: Prepared | None = None) -> None:
        """Take ``prepared`` (a page the pool made ahead) or prepare one now, and adopt it."""
        prep = prepared or await prepare(self.browser, self.spec.kind, self.base_url, trace, f"{self.name} {self.spec}")
        self.context, self.page, self._tracing = prep.context, prep.page, prep.tracing
        self._prep = prep
        prep.adopt(self)

    def _on_event(self, batch: list) -> None:
        """The page's events, a batch of one task's events in order (rig-peer.js)."""
        for evt in batch:
            detail = dict(evt.get("detail") or {})
            detail["pt"] = evt.get("pt")
            self.record(evt.get("type", "unknown"), detail)

    def _on_console(self, msg: Any) -> None:
        # console.error calls are captured in the page, with the error's name and message
        # (Firefox's console text for a DOMException is just "Error"); those reach here
        # again from rig-peer.js and are skipped. Any other console error (the browser's
        # own, a resource that failed to load) fails the case like a logged error.
        try:
            where = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
        except Exception:
            where = ""
        if msg.type == "error" and not where.endswith("/fixtures/rig-peer.js"):
            self.record("error", {"source": f"browser console ({where or 'no location'})", "text": msg.text[:500]})
        elif msg.type in ("warning", "error"):
            self.record("console", {"level": msg.type, "text": msg.text[:500], "url": where})

    async def _call(self, step: str, expr: str, arg: Any = None) -> Any:
        """``expr`` (a function of ``arg``) evaluated in the page; returns once every event the
        page emitted until then has arrived too (rig.peers.page_events), bounded."""
        counted = f"async (arg) => {{ const value = await ({expr})(arg); return [value, rig.emitted()]; }}"
        try:
            value, emitted = await asyncio.wait_for(self.page.evaluate(counted, arg), config.STEP_TIMEOUT)
        except TimeoutError:
            raise RigError(f"{self} stuck at step '{step}' after {config.STEP_TIMEOUT:.0f} s: {self.state_text()}") from None
        except Exception as exc:
            text = str(exc).strip().splitlines()
            first = text[0] if text else type(exc).__name__
            url, name = self._negotiator
            if url and name:
                first = first.replace(url, name)
            raise RigError(f"{self} failed at step '{step}': {first.removeprefix('Page.evaluate: ')}") from None
        events = self._prep.events if self._prep is not None else None
        if events is not None and not await events.caught_up(emitted, config.STEP_TIMEOUT):
            raise RigError(f"{self} at step '{step}': the page had emitted {emitted} events, {events.received} "
                           f"arrived within {config.STEP_TIMEOUT:.0f} s (its event socket to the rig stalled)")
        return value

    async def join(self, *, ws_url: str, room: str, negotiator: Any) -> None:
        negotiator = (rebase(negotiator[0], self.base_url), negotiator[1])  # (URL served, name shown)
        self._negotiator = negotiator
        res = await self._call("join", "cfg => rig.join(cfg)", {
            "wsUrl": rebase(ws_url, self.base_url), "room": room, "name": self.name, "userId": str(self.user_id),
            "negotiatorUrl": negotiator[0], "timeoutMs": int(config.STEP_TIMEOUT * 1000)})
        if "error" in res:
            raise RigError(f"{self} failed at step 'join': {res['error'].replace(*negotiator)}")
        self.polite = bool(res["ok"]["polite"])

    async def probe(self) -> dict[str, bool]:
        self.capabilities = await self._call("probe", """() => ({
            removeTrack: typeof RTCPeerConnection.prototype.removeTrack === "function",
            restartIce: typeof RTCPeerConnection.prototype.restartIce === "function",
            trickle: "onicecandidate" in RTCPeerConnection.prototype,
        })""")
        if hostnet.loopback_only():
            await hostnet.check_gathering(self)
        return self.capabilities

    async def change(self, action: str) -> dict:
        return await self._call(f"change {action}", "a => rig.change(a)", action)

    async def send(self, label: str, text: str) -> None:
        await self._call(f"send on {label}", "([l, t]) => rig.send(l, t)", [label, text])

    async def snapshot(self) -> dict:
        snap = await self._call("snapshot", "() => rig.snapshot()")
        if isinstance(snap, dict) and self.page is not None:
            snap["page"] = self.page.url  # where the page came from: the stub's loopback or remote address
        return snap

    async def arm(self, seq: int, trigger: str, after: int | None = None) -> None:
        await self._call(f"arm #{seq} at {trigger}", "([s, t, a]) => rig.arm(s, t, a)", [seq, trigger, after])

    async def fail_next(self, method: str) -> None:
        await self._call(f"plan a fault in {method}", "m => rig.failNext(m)", method)

    async def gate(self, gid: int, step: str, when: str, type_: str = "", open_on: str = "") -> None:
        await self._call(f"gate #{gid} {when} {step}", "([i, s, w, t, o]) => rig.gate(i, s, w, t, o)",
                         [gid, step, when, type_, open_on])

    async def open_gate(self, gid: int) -> None:
        await self._call(f"open gate #{gid}", "i => rig.openGate(i)", gid)

    async def close(self) -> None:
        if self.page is not None and not self.page.is_closed():
            # what closing the connection made the page record is in the ledger before the page goes
            closing = asyncio.ensure_future(self.page.evaluate(
                "async () => window.rig ? [await rig.close(), rig.emitted()] : [null, 0]"))
            if await bounded(closing, config.CLOSE_TIMEOUT) and not closing.cancelled() \
                    and closing.exception() is None and self._prep is not None:
                await self._prep.events.caught_up(closing.result()[1], config.CLOSE_TIMEOUT)
        if self._prep is not None:
            self._prep.release()
        if self._tracing and self.context is not None:
            path = str(self.evidence_dir / f"trace-{self.name}.zip") if self.evidence_dir else None
            if self.evidence_dir:
                self.evidence_dir.mkdir(parents=True, exist_ok=True)
            if not await bounded(self.context.tracing.stop(path=path), config.CLOSE_TIMEOUT):
                self.record("teardown", {"text": f"Playwright trace did not stop within {config.CLOSE_TIMEOUT:g} s"})
        if self.context is not None and not await bounded(self.context.close(), config.CLOSE_TIMEOUT):
            self.record("teardown", {"text": f"browser context did not close within {config.CLOSE_TIMEOUT:g} s"})
