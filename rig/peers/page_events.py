"""How a browser peer's page reports to Python: a WebSocket from the page to a small server of
the worker's own (EventSink), not a Playwright binding.

Every event the page records (rig-peer.js ``emit``) must reach the peer's ledger. A Playwright
binding (``page.expose_function``) does that over the browser's automation protocol, and in
Firefox each binding call is handled by the JavaScript of the parent process's WebDriver BiDi
implementation: about 17-21 ms of that process's CPU per call, against 0.5 ms for a WebSocket
message and under 1 ms for a Chromium binding call (docs/measurements.md). A case's peer makes
30-60 such calls. So a page the pool prepares for a local browser gets the address of its own
WebSocket on this sink (``?events=``), with a secret token; a page without one (a remote
browser, which cannot reach the worker's loopback, or a peer host's page) keeps the binding.

A WebSocket is not ordered with the automation protocol's replies, as the binding was: a rig
call could return before the events it caused had arrived. Each message carries the count of
events the page has emitted so far, each rig call returns the count at its end (BrowserPeer's
``_call``), and the call returns to the case only once that many have arrived (``caught_up``,
bounded): what a step caused is in the ledger when the next step starts, as before."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from typing import Any

from .. import config

LOOPBACK = "127.0.0.1"
#: a batch of one task's events with its SDPs is a few KB; the signaling stub's frame limit is not
#: the page's to meet here
EVENT_FRAME_BYTES = 16 * 2**20


class PageEvents:
    """One page's events as they arrive: handed to ``deliver`` in order, counted."""

    def __init__(self, deliver: Callable[[list], None]) -> None:
        self.deliver = deliver
        self.received = 0  # the page's count at its last message (every event up to it delivered)
        self._waiters: list[tuple[int, asyncio.Future]] = []

    def on_batch(self, msg: dict) -> None:
        """A batch from the page, by either way: ``{"n": emitted so far, "events": [...]}``."""
        self.deliver(msg["events"])
        self.received = max(self.received, int(msg["n"]))
        for n, fut in list(self._waiters):
            if self.received >= n and not fut.done():
                fut.set_result(None)

    async def caught_up(self, n: int, timeout: float) -> bool:
        """Whether every event up to the page's ``n``-th has arrived within ``timeout``."""
        if self.received >= n:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        try:
            done, _ = await asyncio.wait({fut}, timeout=timeout)
            return bool(done)
        finally:
            self._waiters.remove((n, fut))
            fut.cancel()


class EventSink:
    """The worker's server for its pages' event sockets, on loopback; started on first use."""

    def __init__(self) -> None:
        self._pages: dict[str, PageEvents] = {}
        self._runner: Any = None  # aiohttp's AppRunner, once started
        self._lock = asyncio.Lock()
        self.port: int | None = None

    async def register(self, page: PageEvents) -> str:
        """The address (with its secret token) of a new page's socket for ``page``."""
        # aiohttp here, not at the top: a peer host's environment (rig.peers.host) imports this
        # module with rig.peers.browser and has only its Playwright; its pages use the binding
        from aiohttp import web

        async with self._lock:
            if self._runner is None:
                app = web.Application()
                app.router.add_get("/events/{token}", self._socket)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, LOOPBACK, 0).start()
                self._runner, self.port = runner, runner.addresses[0][1]
        token = secrets.token_urlsafe(16)
        self._pages[token] = page
        return f"ws://{LOOPBACK}:{self.port}/events/{token}"

    def unregister(self, url: str) -> None:
        self._pages.pop(url.rsplit("/", 1)[-1], None)

    async def _socket(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web  # see register

        page = self._pages.get(request.match_info["token"])
        if page is None:
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse(max_msg_size=EVENT_FRAME_BYTES)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    page.on_batch(json.loads(msg.data))
                except (ValueError, KeyError, TypeError) as exc:  # rig-peer.js sends only its own JSON
                    page.deliver([{"type": "error", "detail": {
                        "source": "rig", "text": f"an unreadable event message from the page: {exc}"}}])
        return ws

    async def close(self) -> None:
        self._pages.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await asyncio.wait_for(runner.cleanup(), config.CLOSE_TIMEOUT)

