"""How a worker makes a case's peers: Playwright's driver and its browsers (DriverPool), and the
peer factory (PeerFactory) that resolves a spec to its installation and makes the peer in process
(aiortc, or a page of a pooled browser) or in a peer host (rig.peers.host: another Playwright or
driver). Each is a session fixture of its own (rig.pytest_plugin: ``rig_driver_pool``,
``rig_peer_factory``), so a conftest can replace either."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from .. import config, install, variants
from ..errors import RigError
from ..peers.base import Peer
from ..peers.host import PeerHost
from ..peerspec import PeerSpec
from ..request import MatrixRequest
from ..signaling import SignalingStub
from ..versions import Installation
from ..waits import bounded


class DriverPool:
    """Playwright's driver and the browser pool of one worker: started when a case first needs a
    browser in process (a worker of aiortc peers only never starts one), restarted between cases
    every config.RECYCLE_DRIVER_PAGES pages."""

    def __init__(self, headed: bool = False) -> None:
        self.headed = headed
        self.pool: Any = None  # rig.peers.browser.BrowserPool
        self._cm: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        # One Playwright per worker. Both peers of a case are made at once: without the lock a
        # first case of two browser peers would start two drivers and keep only the second, and
        # the other (with its browser) would outlive the worker.
        async with self._lock:
            if self.pool is None:
                # Playwright only in a worker that runs browsers in process
                from playwright.async_api import async_playwright

                from ..peers.browser import BrowserPool
                self._cm = async_playwright()
                pw = await asyncio.wait_for(self._cm.__aenter__(), config.LAUNCH_TIMEOUT)
                self.pool = BrowserPool(pw, headed=self.headed)
        return self.pool

    async def restart(self) -> None:
        """Between cases: close the browsers and Playwright's driver; the next case that needs a
        browser starts a new driver (config.RECYCLE_DRIVER_PAGES)."""
        async with self._lock:
            pool, cm = self.pool, self._cm
            self.pool, self._cm = None, None
            if pool is not None:
                await bounded(pool.close(), config.CLOSE_TIMEOUT * 2)
            if cm is not None:
                await bounded(cm.__aexit__(None, None, None), config.CLOSE_TIMEOUT)

    async def close(self) -> None:
        """At the worker's end (RigSession.stop); a second call does nothing."""
        pool, cm = self.pool, self._cm
        self.pool, self._cm = None, None
        if pool is not None:
            await pool.close()
        if cm is not None:
            try:
                await asyncio.wait_for(cm.__aexit__(None, None, None), config.CLOSE_TIMEOUT)
            except Exception:
                pass


class PeerFactory:
    """A worker's peers: each spec resolved once (a spec that cannot be resolved fails every case
    that needs it with the same one-line reason), a peer host per installation that needs one,
    and the negotiators the peers load. ``trace``: Playwright traces of the pages (a run that
    keeps evidence)."""

    def __init__(self, stub: SignalingStub, drivers: DriverPool, request: MatrixRequest | None = None, *,
                 negotiator_js: str | None = None, negotiator_py: str | None = None, trace: bool = False,
                 full_capture: bool = False, headed: bool = False) -> None:
        self.stub, self.drivers = stub, drivers
        self.request = request  # what the controller resolved each peer spec to (rig.request)
        self.negotiator_js = negotiator_js
        self.negotiator_py = negotiator_py or str(config.REFERENCE_NEGOTIATOR_PY)
        self.trace, self.full_capture, self.headed = trace, full_capture, headed
        #: spec -> what it resolved to (or why it cannot be used), once per worker
        self._installs: dict[str, Installation | RigError] = {}
        self._hosts: dict[tuple[str, str, str], Any] = {}  # PeerHost, or the RigError it failed with
        self._host_locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    def negotiators(self, variant: variants.Variant | None = None) -> dict[str, Any]:
        """The JS negotiator as (URL the pages load, name shown in messages); the Python one as a
        target. A variant's own (rig.variants) replace the session's."""
        own_js = (variant and variant.js) or self.negotiator_js
        path = Path(own_js) if own_js else config.REFERENCE_NEGOTIATOR_JS
        url = (self.stub.serve_file(path.name, path) if own_js
               else f"{self.stub.http_url}/fixtures/negotiators/{path.name}")
        return {"js": (url, str(path)), "py": (variant and variant.py) or self.negotiator_py}

    def installation(self, spec: PeerSpec) -> Installation:
        """What ``spec`` resolved to (the run's request, resolved by ``rig matrix`` before the
        workers started; else rig.install here). A spec that cannot be resolved raises the same
        one-line RigError for every case that needs it: those cells say why, the rest run."""
        key = str(spec)
        if key not in self._installs:
            try:
                got = self.request.installation(spec) if self.request is not None else None
                self._installs[key] = got if got is not None else install.resolve(spec)
            except RigError as exc:
                self._installs[key] = exc
        got = self._installs[key]
        if isinstance(got, RigError):
            raise RigError(str(got))
        return got

    async def host_for(self, installation: Installation) -> Any:
        """The worker's peer host for ``installation`` (rig.peers.host.PeerHost): started on
        first use, started again if it died; a start failure is remembered, so every case that
        needs it fails fast with the same one-line reason."""
        key = (installation.kind, installation.path, installation.driver)
        async with self._host_locks.setdefault(key, asyncio.Lock()):
            got = self._hosts.get(key)
            if got is None or (isinstance(got, PeerHost) and not got.alive):
                if isinstance(got, PeerHost):
                    await got.close()
                host = PeerHost()
                try:
                    await host.start(installation, headed=self.headed)
                    got = host
                except RigError as exc:
                    got = exc
                self._hosts[key] = got
        if isinstance(got, RigError):
            raise RigError(str(got))
        return got

    def describe(self, spec: PeerSpec) -> dict:
        """version, source and driver of ``spec`` for the results ({} when it did not resolve)."""
        try:
            inst = self.installation(spec)
        except RigError:
            return {}
        source = inst.source
        if spec.kind == "chromium" and not spec.endpoint and not self.headed and config.HEADLESS_SHELL:
            from ..peers.browser import headless_shell  # imports Playwright: not in an aiortc-only run
            if headless_shell(inst.path):
                source += ", headless shell"
        return {"version": inst.version, "source": source, "driver": inst.driver_label}

    async def make_peer(self, spec: PeerSpec, name: str, user_id: int, t0: float) -> Peer:
        inst = self.installation(spec)
        if not inst.in_process:
            host = await self.host_for(inst)
            return await host.make_peer(spec, name, user_id, t0, base_url=self.stub.http_url,
                                        trace=self.trace, full_capture=self.full_capture)
        if spec.kind == "aiortc":
            from ..peers.aiortc_peer import AiortcPeer  # aiortc: only in a worker that runs aiortc peers
            return AiortcPeer(spec, name, user_id, t0)
        from ..peers.browser import BrowserPeer  # imports Playwright (see DriverPool.get)
        pool = await self.drivers.get()
        browser = await pool.get(spec, inst.path)
        base = self.stub.remote_url if spec.endpoint else self.stub.http_url
        peer = BrowserPeer(spec, name, user_id, t0, browser, base)
        peer.executable = inst.path
        try:
            prepared = await pool.page(spec, inst.path, base, trace=self.trace,
                                       preload=self.negotiators()["js"][0])
            await asyncio.wait_for(peer.open(trace=self.trace, prepared=prepared), config.LAUNCH_TIMEOUT)
        except Exception as exc:
            await peer.close()
            hint = ("; a remote browser loads the peer page from the stub: give --rig-stub-host ADDR, an address "
                    "of this machine its host can reach (docs/remote.md)" if spec.endpoint and base.startswith("http:")
                    else "")
            raise RigError(f"{spec}: could not open a page: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           f"{hint}") from None
        return peer

    async def close(self) -> None:
        """The peer hosts, then the driver pool (each bounded inside); a second call does nothing."""
        for host in self._hosts.values():
            if not isinstance(host, RigError):
                await host.close()
        self._hosts.clear()
        await self.drivers.close()
