"""rig.peers.page_events: a page's events by its socket, counted, and the wait for them."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from rig.peers.page_events import EventSink, PageEvents


def test_batches_are_delivered_in_order_and_a_wait_ends_when_the_count_is_reached() -> None:
    async def main() -> None:
        got: list = []
        page = PageEvents(got.extend)
        waiting = asyncio.ensure_future(page.caught_up(3, 5))
        page.on_batch({"n": 2, "events": ["a", "b"]})
        await asyncio.sleep(0)
        assert not waiting.done()  # 2 of 3 arrived
        page.on_batch({"n": 3, "events": ["c"]})
        assert await asyncio.wait_for(waiting, 5)
        assert got == ["a", "b", "c"] and page.received == 3
        assert await page.caught_up(2, 0)  # already there: no wait

    asyncio.run(main())


def test_a_count_that_never_arrives_is_false_within_the_bound() -> None:
    async def main() -> None:
        page = PageEvents(lambda _: None)
        page.on_batch({"n": 1, "events": ["a"]})
        assert await page.caught_up(2, 0.05) is False
        assert page._waiters == []

    asyncio.run(main())


def test_the_sink_takes_a_pages_socket_by_its_token_and_refuses_any_other() -> None:
    async def main() -> None:
        sink = EventSink()
        got: list = []
        page = PageEvents(got.extend)
        url = await sink.register(page)
        assert url.startswith("ws://127.0.0.1:")
        try:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(url) as ws:
                    await ws.send_str(json.dumps({"n": 1, "events": [{"type": "attached"}]}))
                    await ws.send_str("not json")
                    await ws.send_str(json.dumps({"n": 2, "events": [{"type": "closed"}]}))
                    assert await page.caught_up(2, 5)  # in order: the unreadable one was handled before
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(url.rsplit("/", 1)[0] + "/not-a-token")
                assert refused.value.status == 403
                sink.unregister(url)
                with pytest.raises(aiohttp.WSServerHandshakeError):
                    await http.ws_connect(url)
        finally:
            await sink.close()
        assert got[0] == {"type": "attached"} and got[2] == {"type": "closed"}
        assert got[1]["type"] == "error" and "an unreadable event message from the page" in got[1]["detail"]["text"]

    asyncio.run(main())
