"""Hostile input to the signaling stub (issue 12, point 4): hypothesis throws malformed JSON,
wrong types, binary and oversized frames, unknown rooms and message kinds, missing or wrong
tokens and floods at a real stub on 127.0.0.1, and odd paths and huge requests at its HTTP side.

After every example: the offending socket got a one-line error frame (or was closed, for a frame
over the size limit), the stub still serves a normal two-member exchange in a fresh room, and what
it retains (records, held and queued frames, rooms, connections, refusals) is within the limits
of rig/config.py (docs/design.md, "Signaling stub limits").

The stub runs on its own event loop in a thread for the whole module, so state left behind by one
example is seen by the next; each example is a client on a loop of its own. Hypothesis runs
derandomized with a bounded number of examples; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
import threading
import time
import tracemalloc
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rig import config
from rig.errors import RigError
from rig.peers.browser import rebase
from rig.signaling import FrameError, Room, SignalingStub, parse_frame

#: Bounds (seconds): one expected frame, one example, and the stub's own start and stop.
RECV = 3.0
EXAMPLE = 20.0
START = 10.0

FUZZ = settings(max_examples=60, deadline=timedelta(seconds=10), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=False)
FEW = settings(FUZZ, max_examples=15)

OFFER = {"description": {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"}}
ANSWER = {"description": {"type": "answer", "sdp": "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\n"}}
FORM = '{"type": "signal", "data": ...}'


def signal(data: object) -> str:
    return json.dumps({"type": "signal", "data": data})


# -- what the stub must answer: the specification, written out apart from the stub -------------

def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _depth_and_values(data: Any) -> tuple[int, int]:
    if isinstance(data, dict):
        inner = [_depth_and_values(v) for v in data.values()]
        return 1 + max((d for d, _ in inner), default=0), 1 + len(data) + sum(n for _, n in inner)
    if isinstance(data, list):
        inner = [_depth_and_values(v) for v in data]
        return 1 + max((d for d, _ in inner), default=0), 1 + sum(n for _, n in inner)
    return 1, 1


def expected_error(text: str) -> str | None:
    """How the stub's error frame for ``text`` must begin; None when the frame is to be relayed."""
    try:
        frame = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        return "JSON nested deeper than"
    except ValueError:
        return "malformed JSON: "
    if not isinstance(frame, dict):
        return "expected a JSON object"
    if "type" not in frame:
        return 'frame has no "type"'
    if not isinstance(frame["type"], str):
        return '"type" must be a string'
    if frame["type"] != "signal":
        return "unknown message type"
    if "data" not in frame:
        return 'signal frame without "data"'
    depth, values = _depth_and_values(frame["data"])
    if depth > config.MAX_JSON_DEPTH:
        return "data nested deeper than"
    if values > config.MAX_JSON_VALUES:
        return "data has more than"
    return None


def assert_error_frame(frame: dict, starts: str = "") -> str:
    """An error frame: its text one line, short, naming the problem (beginning with ``starts``)."""
    assert frame.get("type") == "error", frame
    text = frame.get("error")
    assert isinstance(text, str) and text.strip(), frame
    assert "\n" not in text and "\r" not in text and len(text) <= 400, text
    assert text.startswith(starts), f"expected an error beginning {starts!r}, got {text!r}"
    return text


# -- the stub, live in a thread --------------------------------------------------------------

class LiveStub:
    """A started SignalingStub on its own loop and thread; clients call into it with ``on_stub``."""

    def __init__(self, static_dir: Path = config.FIXTURES) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="signaling-stub", daemon=True)
        self.thread.start()
        self.stub = SignalingStub(static_dir)
        self._sync(self.stub.start())

    def _sync(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(START)

    def sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` run on the stub's loop, from the test's thread (no client loop running)."""
        async def call() -> Any:
            return fn(*args)
        return self._sync(call())

    async def on_stub(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` run on the stub's loop (its state is that loop's alone), awaited from a client's."""
        async def call() -> Any:
            return fn(*args)
        return await asyncio.wait_for(asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self.loop)), RECV)

    def stop(self) -> None:
        self._sync(self.stub.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(START)
        self.loop.close()

    @property
    def ws_url(self) -> str:
        return self.stub.ws_url


@pytest.fixture(scope="module")
def live() -> LiveStub:
    stub = LiveStub()
    yield stub
    stub.stop()


def run(body: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(body(), EXAMPLE))


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict:
    msg = await ws.receive(timeout=RECV)
    assert msg.type == WSMsgType.TEXT, f"expected a text frame, got {msg.type!r} {msg.data!r}"
    return json.loads(msg.data)


async def recv_closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    msg = await ws.receive(timeout=RECV)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED), msg
    assert ws.closed


async def join(http: aiohttp.ClientSession, url: str, room: str, name: str, user: str,
               ) -> aiohttp.ClientWebSocketResponse:
    return await asyncio.wait_for(http.ws_connect(url, params={"room": room, "name": name, "user": user}), RECV)


@contextlib.asynccontextmanager
async def room_pair(http: aiohttp.ClientSession, live: LiveStub,
                    ) -> AsyncIterator[tuple[str, aiohttp.ClientWebSocketResponse, aiohttp.ClientWebSocketResponse]]:
    """A fresh room with members a (user 101) and b (user 202), both past "ready". On the way
    out: the room's retained state is within the limits and holds no stub internal error."""
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    room: Room = await live.on_stub(live.stub.create_room, name)
    sockets = []
    try:
        a = await join(http, live.ws_url, name, "a", "101")
        sockets.append(a)
        b = await join(http, live.ws_url, name, "b", "202")
        sockets.append(b)
        assert (await recv(a))["type"] == "ready" and (await recv(b))["type"] == "ready"
        yield name, a, b
        assert await live.on_stub(room_problems, room) == []
    finally:
        for ws in sockets:
            await asyncio.wait_for(ws.close(), RECV)
        await live.on_stub(live.stub.close_room, name)


def room_problems(room: Room) -> list[str]:
    """What in ``room`` breaks a documented limit, or shows the stub failing inside."""
    out = []
    if len(room.log) > config.MAX_RECORDS + 1:
        out.append(f"{len(room.log)} records")
    kept = sum(r.weight for r in room.log)
    if kept > config.MAX_RECORD_BYTES or kept != room.log_weight:
        out.append(f"record weight {kept} (counted {room.log_weight})")
    names = {m.to for m in room.log} | set(room.members)
    for name in names:
        frames, weight = room.pending(name)
        if frames > config.MAX_PENDING_FRAMES or weight > config.MAX_PENDING_BYTES:
            out.append(f"{frames} frames, {weight} bytes pending for {name}")
    out += [r.note for r in room.log if "internal error" in r.note]
    return out


def stub_problems(stub: SignalingStub) -> list[str]:
    out = [p for room in stub.rooms.values() for p in room_problems(room)]
    if len(stub.rooms) > config.MAX_ROOMS:
        out.append(f"{len(stub.rooms)} rooms")
    if stub.connections > config.MAX_CONNECTIONS or stub.connections < 0:
        out.append(f"{stub.connections} connections")
    if len(stub.refusals) > config.MAX_REFUSALS_KEPT:
        out.append(f"{len(stub.refusals)} refusals kept")
    return out


def sent_in_a_room(live: LiveStub, texts: list[str]) -> None:
    """Send ``texts`` from one member of a fresh room (each answered or relayed, in order), then
    the liveness check."""
    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (_, a, b):
                await sent_then_probe(a, b, texts)
            await alive_and_bounded(http, live)
    run(body)


async def alive_and_bounded(http: aiohttp.ClientSession, live: LiveStub) -> None:
    """The liveness check after every example: a normal exchange in a fresh room goes through,
    then every socket of the example is gone and the stub's state is within its limits."""
    async with room_pair(http, live) as (_, a, b):
        await a.send_str(signal(OFFER))
        got = await recv(b)
        assert (got["type"], got["from"], got["data"]) == ("signal", "a", OFFER)
        await b.send_str(signal(ANSWER))
        got = await recv(a)
        assert (got["type"], got["from"], got["data"]) == ("signal", "b", ANSWER)
    deadline = time.monotonic() + RECV
    while await live.on_stub(lambda: live.stub.connections) != 0:  # handlers end once their sockets closed
        assert time.monotonic() < deadline, "a WebSocket handler outlived its socket"
        await asyncio.sleep(0.01)
    assert await live.on_stub(stub_problems, live.stub) == []


async def sent_then_probe(a: aiohttp.ClientWebSocketResponse, b: aiohttp.ClientWebSocketResponse,
                          texts: list[str]) -> None:
    """Send ``texts`` from a; then each must have been relayed to b (in order) or answered by
    an error frame to a naming its problem (in order), and nothing else may arrive."""
    for text in texts:
        await a.send_str(text)
    await a.send_str(signal({"probe": "a"}))
    wanted = [expected_error(t) for t in texts]
    relayed = [json.loads(t)["data"] for t, w in zip(texts, wanted, strict=True) if w is None]
    for data in relayed:
        got = await recv(b)
        assert (got["type"], got["from"], got["data"]) == ("signal", "a", data)
    assert (await recv(b))["data"] == {"probe": "a"}, "b got more than the valid frames"
    for w in wanted:
        if w is not None:
            assert_error_frame(await recv(a), w)
    await b.send_str(signal({"probe": "b"}))
    assert (await recv(a))["data"] == {"probe": "b"}, "a got more than one error per bad frame"


# -- hypothesis strategies -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)
wrong_frames = st.fixed_dictionaries(
    {}, optional={"type": json_values | st.sampled_from(["signal", "ready", "error", "join", "Signal", ""]),
                  "data": json_values, "from": json_values, "seq": json_values})


# -- parsing alone -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "starts"), [
    ("{not json", "malformed JSON: "),
    ('{"type": "signal", "data": NaN}', "malformed JSON: NaN is not JSON"),
    ('{"type": "signal", "data": -Infinity}', "malformed JSON: -Infinity is not JSON"),
    ('{"type": "signal", "data": ' + "9" * 5000 + "}", "malformed JSON: "),
    ("[" * 100_000 + "]" * 100_000, "JSON nested deeper than"),
    ("[1, 2]", "expected a JSON object"),
    ('{"data": 1}', 'frame has no "type"'),
    ('{"type": 7, "data": 1}', '"type" must be a string, got a number'),
    ('{"type": "hello", "data": 1}', "unknown message type 'hello'"),
    ('{"type": "' + "x" * 5000 + '", "data": 1}', "unknown message type 'xxx"),
    ('{"type": "signal"}', 'signal frame without "data"'),
    (signal(json.loads("[" * (config.MAX_JSON_DEPTH + 1) + "]" * (config.MAX_JSON_DEPTH + 1))),
     f"data nested deeper than {config.MAX_JSON_DEPTH} levels"),
    (signal([0] * config.MAX_JSON_VALUES), f"data has more than {config.MAX_JSON_VALUES} JSON values"),
], ids=["malformed", "nan", "infinity", "huge-int", "deep-parse", "array", "no-type", "type-number",
        "type-unknown", "type-huge", "no-data", "too-deep", "too-many"])
def test_parse_frame_names_each_problem_in_one_line(text, starts):
    with pytest.raises(FrameError) as exc:
        parse_frame(text)
    assert_error_frame({"type": "error", "error": str(exc.value)}, starts)
    assert expected_error(text) is not None and starts.startswith(expected_error(text)[:12])


def test_the_limits_themselves_are_accepted():
    deepest = json.loads("[" * (config.MAX_JSON_DEPTH - 1) + "]" * (config.MAX_JSON_DEPTH - 1))
    assert parse_frame(signal(deepest))[0] == deepest
    most = [0] * (config.MAX_JSON_VALUES - 1)  # the array itself is a value
    assert parse_frame(signal(most))[0] == most


_N = config.MAX_JSON_VALUES - 10


@pytest.mark.parametrize("data_text", [
    "[" + ",".join(["{}"] * _N) + "]",
    "[" + ",".join(["[]"] * _N) + "]",
    "[" + ",".join(["[[1.5]]"] * (_N // 3)) + "]",
    "[" + ",".join(['{"a": 1}'] * (_N // 3)) + "]",
    "{" + ",".join(f'"k{i}": 0.5' for i in range(_N // 2)) + "}",
    "[" + ",".join(['"\U0001F600"'] * _N) + "]",
    "[" + ",".join(["123456789012345678901234567890"] * _N) + "]",
    '"\U0001F600' + "x" * 200_000 + '"',
    json.dumps(OFFER["description"]["sdp"] * 2000),
], ids=["objects", "arrays", "nested", "one-key", "keys", "emoji", "big-ints", "wide-string", "sdp"])
def test_weight_is_not_less_than_the_memory_the_parsed_frame_holds(data_text):
    """The byte budgets count a frame's weight; the memory its parsed data holds (tracemalloc)
    must not exceed it, or the limits bound less than they say."""
    text = '{"type": "signal", "data": ' + data_text + "}"
    tracemalloc.start()
    try:
        data, weight = parse_frame(text)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held <= weight * 1.02 + 512, f"parsed data holds {held} bytes, weighed {weight}"


@given(value=json_values | wrong_frames)
@settings(FUZZ, max_examples=200)
def test_parse_frame_relays_exactly_the_valid_frames(value):
    text = json.dumps(value)
    wanted = expected_error(text)
    if wanted is None:
        data, weight = parse_frame(text)
        assert data == value["data"] and weight > 0
    else:
        with pytest.raises(FrameError) as exc:
            parse_frame(text)
        assert_error_frame({"type": "error", "error": str(exc.value)}, wanted)


# -- frames from a member ------------------------------------------------------------------------

@given(text=st.text(max_size=300))
@example(text="")
@example(text="null")
@example(text='{"type": "signal", "data": NaN}')
@example(text='{"type": "signal", "data": {"x": 1}}')
@FUZZ
def test_arbitrary_text(live, text):
    sent_in_a_room(live, [text])


@given(value=json_values)
@FUZZ
def test_arbitrary_json_values(live, value):
    sent_in_a_room(live, [json.dumps(value)])


@given(frame=wrong_frames)
@example(frame={"type": "signal", "data": None})
@example(frame={"type": ["signal"], "data": 1})
@example(frame={"type": None, "data": OFFER})
@example(frame={"type": "ready", "self": {}, "peer": {}})
@FUZZ
def test_right_keys_wrong_types_and_unknown_kinds(live, frame):
    sent_in_a_room(live, [json.dumps(frame)])


@given(payload=st.binary(max_size=2000))
@FEW
def test_binary_frames_get_an_error_and_the_socket_goes_on(live, payload):
    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (_, a, b):
                await a.send_bytes(payload)
                assert_error_frame(await recv(a), "binary frame")
                await sent_then_probe(a, b, [])
            await alive_and_bounded(http, live)
    run(body)


@given(payload=st.binary(min_size=1, max_size=200).filter(lambda b: not _is_utf8(b)))
@FEW
def test_a_text_frame_that_is_not_utf8_is_answered_and_closed(live, payload):
    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                await a.send_frame(payload, WSMsgType.TEXT)
                assert_error_frame(await recv(a), "text frame that is not UTF-8")
                closing = await a.receive(timeout=RECV)
                assert (closing.type, closing.data) == (WSMsgType.CLOSE, aiohttp.WSCloseCode.INVALID_TEXT)
                notes = await live.on_stub(lambda: [r.note for r in live.stub.rooms[room].log])
                assert notes == ["text frame that is not UTF-8: this socket is closed (1007)"]
            await alive_and_bounded(http, live)
    run(body)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _padded(size: int) -> str:
    head, tail = '{"type": "signal", "data": {"pad": "', '"}}'
    return head + "x" * (size - len(head) - len(tail)) + tail


async def send_over_the_limit(ws: aiohttp.ClientWebSocketResponse, text: str) -> bool:
    """Send a frame over the size limit; True when the stub cut the connection before the
    sender had handed all of it to the kernel. The stub closes once it has read the frame's
    header and leaves the rest unread, so the kernel resets the connection: a sender still
    writing (a frame larger than the socket buffers take at once) sees it lost. That is the
    refusal arriving early, not a failure; any other error is."""
    try:
        await ws.send_str(text)
    except ConnectionError:  # aiohttp: "Connection lost" while draining, or a write to the closing transport
        return True
    return False


async def refused_over_the_limit(http: aiohttp.ClientSession, live: LiveStub, room: str,
                                 a: aiohttp.ClientWebSocketResponse, b: aiohttp.ClientWebSocketResponse,
                                 cut_off: bool) -> None:
    """After a sent a frame over the size limit: a gets the stub's error frame and close (1009)
    and nothing else; the stub recorded the refusal and relayed nothing; the room takes a back.

    ``cut_off`` (a's send was cut short by the reset): a's reader may be torn down before it
    read what the stub sent first, so the error frame may be missing and the close may show as
    the lost connection itself (1006)."""
    too_big = f"frame over {config.MAX_FRAME_BYTES} bytes"
    msg = await a.receive(timeout=RECV)
    if msg.type == WSMsgType.TEXT or not cut_off:
        assert msg.type == WSMsgType.TEXT, f"expected the stub's error frame, got {msg.type!r} {msg.data!r}"
        assert_error_frame(json.loads(msg.data), too_big)
        msg = await a.receive(timeout=RECV)
    if msg.type == WSMsgType.CLOSE or not cut_off:
        # the server's close frame says 1009; a.close_code may read 1006 instead, when the stub
        # dropped the connection (the unread rest of the frame) before a's reply went out
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, aiohttp.WSCloseCode.MESSAGE_TOO_BIG), msg
    else:
        assert msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR), f"after the reset a got {msg.type!r} {msg.data!r}"
        assert a.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE, a.close_code
    assert a.closed
    again = await join(http, live.ws_url, room, "a", "101")  # joins only once a's old handler has ended
    try:
        assert (await recv(again))["type"] == "ready" and (await recv(b))["type"] == "ready"
        from_a = await live.on_stub(lambda: [(r.to, r.kind, r.note) for r in live.stub.rooms[room].log
                                             if r.sender == "a"])
        assert len(from_a) == 1 and from_a[0][:2] == ("stub", "error") and from_a[0][2].startswith(too_big), from_a
        await sent_then_probe(again, b, [signal(OFFER)])  # b gets the offer and nothing before it
    finally:
        await asyncio.wait_for(again.close(), RECV)


@given(size=st.integers(config.MAX_FRAME_BYTES - 64, config.MAX_FRAME_BYTES + 64)
       | st.sampled_from([config.MAX_FRAME_BYTES * 4, 2 * 1024 * 1024]))
@example(size=config.MAX_FRAME_BYTES)
@example(size=config.MAX_FRAME_BYTES + 1)
@FEW
def test_frames_around_the_size_limit(live, size):
    """Up to the limit a frame is relayed; over it, aiohttp stops at the header, so the stub
    sends its error frame and closes that socket (1009); the room takes the member back."""
    text = _padded(size)
    assert len(text.encode()) == size

    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                if size <= config.MAX_FRAME_BYTES:
                    await a.send_str(text)
                    got = await recv(b)
                    assert got["data"] == json.loads(text)["data"]
                    await sent_then_probe(a, b, [])
                else:
                    await refused_over_the_limit(http, live, room, a, b, await send_over_the_limit(a, text))
            await alive_and_bounded(http, live)
    run(body)


def test_a_frame_over_the_limit_still_being_sent_when_the_stub_closes(live):
    """The sender's socket buffer made small, so most of a 2 MB frame is still to be written when
    the stub refuses it: the same refusal, whichever end sees the reset first."""
    text = _padded(2 * 1024 * 1024)

    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                a.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
                await refused_over_the_limit(http, live, room, a, b, await send_over_the_limit(a, text))
            await alive_and_bounded(http, live)
    run(body)


@given(frames=st.lists(st.one_of(json_values.map(signal), st.text(max_size=40), wrong_frames.map(json.dumps)),
                       min_size=1, max_size=150))
@FEW
def test_a_burst_of_mixed_frames_is_answered_frame_by_frame_in_order(live, frames):
    sent_in_a_room(live, frames)


# -- joining ---------------------------------------------------------------------------------------

@given(token=st.none() | st.text(max_size=80))
@example(token="")
@FUZZ
def test_no_or_wrong_token_is_refused_before_the_upgrade_and_recorded(live, token):
    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                url = live.ws_url.split("?")[0]
                params = {"room": room, "name": "c", "user": "303"}
                if token is not None:
                    params["token"] = token
                before = await live.on_stub(lambda: live.stub.refused)
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await asyncio.wait_for(http.ws_connect(url, params=params), RECV)
                assert refused.value.status == 403
                last = await live.on_stub(lambda: (live.stub.refused, live.stub.refusals[-1]))
                assert last[0] == before + 1
                assert last[1].reason.startswith("join refused: " + ("no token" if token is None else "wrong token"))
                assert last[1].peer == "127.0.0.1"
                # nothing reached the room: no record, no member, and a and b go on
                assert await live.on_stub(lambda: [r.sender for r in live.stub.rooms[room].log]) == []
                await sent_then_probe(a, b, [signal(OFFER)])
            await alive_and_bounded(http, live)

    if token is not None and token == live.stub.token:
        return
    run(body)


def test_a_refusal_says_why_over_http(live):
    async def body():
        async with aiohttp.ClientSession() as http:
            url = live.ws_url.split("?")[0] + "?token=nope&room=r&name=a&user=1"
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=RECV)) as resp:
                assert resp.status == 403
                text = (await resp.text()).strip()
            assert text.startswith("signaling stub: join refused: wrong token") and "\n" not in text
            assert live.stub.token not in text
    run(body)


@given(room=st.text(max_size=100), name=st.text(max_size=20), user=st.text(max_size=20))
@example(room="", name="a", user="1")
@FUZZ
def test_unknown_rooms_and_odd_names_are_refused_with_the_token(live, room, name, user):
    """With the token, a join to an unknown room (and a frame sent at once, before any join
    could be accepted) gets one error frame and a close; nothing is relayed or recorded."""
    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (known, a, b):
                target = room if room != known else room + "x"
                ws = await join(http, live.ws_url, target, name, user)
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(signal(OFFER))
                text = assert_error_frame(await recv(ws), "unknown room")
                assert repr(target[:64]) in text
                await recv_closed(ws)
                await sent_then_probe(a, b, [])
                assert await live.on_stub(lambda: [r.kind for r in live.stub.rooms[known].log]) == [
                    "other", "other"]  # the two probes
            await alive_and_bounded(http, live)
    run(body)


@given(name=st.text(min_size=1, max_size=40), user=st.text(min_size=1, max_size=40))
@FEW
def test_a_third_member_is_refused_whatever_its_name(live, name, user):
    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                ws = await join(http, live.ws_url, room, name, user)
                assert_error_frame(await recv(ws), "room ")
                await recv_closed(ws)
                await sent_then_probe(a, b, [signal(ANSWER)])
            await alive_and_bounded(http, live)
    run(body)


# -- floods --------------------------------------------------------------------------------------

def test_a_flood_of_bad_frames_caps_the_record_and_says_so(live):
    extra = 50

    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                started = time.monotonic()
                for _ in range(config.MAX_RECORDS + extra):
                    await a.send_str("garbage")
                for _ in range(config.MAX_RECORDS + extra):  # every bad frame still gets its error
                    assert_error_frame(await recv(a), "malformed JSON")
                await sent_then_probe(a, b, [signal(OFFER)])
                log = await live.on_stub(lambda: list(live.stub.rooms[room].log))
                assert len(log) == config.MAX_RECORDS + 1
                cap = log[-1]
                assert (cap.kind, cap.sender, cap.to) == ("error", "stub", "stub")
                assert cap.note.startswith(f"record capped at {config.MAX_RECORDS} records")
                # the frames past the cap: the 50 bad ones, the two probes and the offer
                assert f": {extra + 3} later frame(s)" in cap.note
                assert time.monotonic() - started < EXAMPLE / 2
            await alive_and_bounded(http, live)
    run(body)


def test_a_flood_while_a_hold_is_on_is_refused_past_the_pending_limit(live):
    """Held frames count against the receiver's budget: past it the sender is told, frame by
    frame; what was held is released whole and in order."""
    extra = 20

    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                rooms = live.stub.rooms
                await live.on_stub(lambda: rooms[room].control.hold(lambda m: m.sender == "a", name="all of a's"))
                for i in range(config.MAX_PENDING_FRAMES + extra):
                    await a.send_str(signal({"n": i}))
                await a.send_str("end of flood")  # its error comes after those of the flood
                for _ in range(extra):
                    assert_error_frame(await recv(a), f"frame not relayed: {config.MAX_PENDING_FRAMES} frames")
                assert_error_frame(await recv(a), "malformed JSON")
                assert await live.on_stub(lambda: rooms[room].pending("b")[0]) == config.MAX_PENDING_FRAMES
                released = await live.on_stub(lambda: rooms[room].control.release())
                assert len(released) == config.MAX_PENDING_FRAMES
                got = [(await recv(b))["data"] for _ in range(config.MAX_PENDING_FRAMES)]
                assert got == [{"n": i} for i in range(config.MAX_PENDING_FRAMES)]
                await sent_then_probe(a, b, [])
            await alive_and_bounded(http, live)
    run(body)


def _kernel_max(path: str) -> int:
    return int(Path(path).read_text().split()[2])


def test_a_member_that_stops_reading_holds_the_stub_to_its_budget(live):
    """b stops reading (its receive buffer made small); a floods it with frames near the size
    limit. The kernel and aiohttp take a few MB, the stub keeps at most MAX_PENDING_BYTES for b,
    and refuses the rest to a, one error per frame; once b reads, it gets every frame that was
    not refused, in order."""
    pad = config.MAX_FRAME_BYTES - 1000
    absorbed = _kernel_max("/proc/sys/net/ipv4/tcp_wmem") + 1024 * 1024  # b's small buffer, aiohttp's, in flight
    count = math.ceil((absorbed + config.MAX_PENDING_BYTES) / pad) + 10

    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                b.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                for i in range(count):
                    await a.send_str(signal({"n": i, "pad": "x" * pad}))
                await a.send_str("end of flood")
                refused = 0
                while True:
                    text = assert_error_frame(await recv(a))
                    if text.startswith("malformed JSON"):
                        break
                    assert text.startswith("frame not relayed: ") and "already wait for 'b'" in text
                    refused += 1
                frames, weight = await live.on_stub(lambda: live.stub.rooms[room].pending("b"))
                assert frames <= config.MAX_PENDING_FRAMES and weight <= config.MAX_PENDING_BYTES
                assert refused >= 10, f"only {refused} of {count} frames refused: the budget was never reached"
                got = [(await recv(b))["data"]["n"] for _ in range(count - refused)]
                assert got == sorted(got) and len(set(got)) == len(got)
                await sent_then_probe(a, b, [])
                assert await live.on_stub(lambda: live.stub.rooms[room].pending("b")) == (0, 0)
            await alive_and_bounded(http, live)
    run(body)


def test_a_member_that_takes_nothing_is_cut_off_after_the_send_timeout(live, monkeypatch):
    monkeypatch.setattr(config, "STUB_SEND_TIMEOUT", 0.5)
    pad = config.MAX_FRAME_BYTES - 1000
    count = math.ceil((_kernel_max("/proc/sys/net/ipv4/tcp_wmem") + 1024 * 1024) / pad) + 4

    async def body():
        async with aiohttp.ClientSession() as http:
            async with room_pair(http, live) as (room, a, b):
                b.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                for i in range(count):
                    await a.send_str(signal({"n": i, "pad": "x" * pad}))
                deadline = time.monotonic() + RECV
                while await live.on_stub(lambda: "b" in live.stub.rooms[room].members):
                    assert time.monotonic() < deadline, "b was never cut off"
                    await asyncio.sleep(0.02)
                notes = await live.on_stub(lambda: [r.note for r in live.stub.rooms[room].log])
                assert "receiver took nothing for 0.5 s: cut off, dropped" in notes
                while True:  # b sees what its buffers held, then the end of the connection
                    msg = await b.receive(timeout=RECV)
                    if msg.type != WSMsgType.TEXT:
                        break
                assert b.closed
            await alive_and_bounded(http, live)
    run(body)


# -- connections, rooms, listening sockets ---------------------------------------------------------

def test_connections_past_the_limit_are_refused_with_503(live):
    """Sockets refused for an unknown room linger while the stub waits for their close (the
    client here never answers): they count, and past MAX_CONNECTIONS the upgrade is refused."""
    async def body():
        async with aiohttp.ClientSession() as http:
            lingering = []
            try:
                assert await live.on_stub(lambda: live.stub.connections) == 0
                for i in range(config.MAX_CONNECTIONS):
                    lingering.append(await join(http, live.ws_url, "no-such-room", f"n{i}", "1"))
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await join(http, live.ws_url, "no-such-room", "one-more", "1")
                assert refused.value.status == 503
                reason = await live.on_stub(lambda: live.stub.refusals[-1].reason)
                assert reason.startswith(f"join refused: {config.MAX_CONNECTIONS} WebSocket connections open")
            finally:
                for ws in lingering:
                    await asyncio.wait_for(ws.close(), RECV)
            await alive_and_bounded(http, live)
    run(body)


def test_rooms_past_the_limit_are_refused_and_closing_one_frees_it(live):
    async def body():
        async with aiohttp.ClientSession() as http:
            def fill() -> list[str]:
                made = []
                while len(live.stub.rooms) < config.MAX_ROOMS:
                    made.append(live.stub.create_room(f"fill-{uuid.uuid4().hex[:8]}").name)
                return made
            made = await live.on_stub(fill)
            try:
                with pytest.raises(RigError, match=f"{config.MAX_ROOMS} rooms are open"):
                    await live.on_stub(live.stub.create_room, "one-more")
                await live.on_stub(live.stub.close_room, made.pop())
                async with room_pair(http, live) as (_, a, b):
                    await sent_then_probe(a, b, [signal(OFFER)])
            finally:
                for name in made:
                    await live.on_stub(live.stub.close_room, name)
            await alive_and_bounded(http, live)
    run(body)


def test_closing_a_room_disconnects_its_members(live):
    async def body():
        async with aiohttp.ClientSession() as http:
            name = f"closing-{uuid.uuid4().hex[:8]}"
            await live.on_stub(live.stub.create_room, name)
            a = await join(http, live.ws_url, name, "a", "101")
            b = await join(http, live.ws_url, name, "b", "202")
            assert (await recv(a))["type"] == "ready" and (await recv(b))["type"] == "ready"
            await live.on_stub(live.stub.close_room, name)
            for ws in (a, b):  # the stub's close frame says 1001 (ws.close_code may read 1006: aiohttp's
                # server drops the connection without waiting for the reply when it closes from another task)
                closing = await ws.receive(timeout=RECV)
                assert (closing.type, closing.data) == (WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY)
                assert ws.closed
            await alive_and_bounded(http, live)
    run(body)


def listening_sockets() -> set[tuple[str, int]]:
    """TCP sockets this process has listening, read from /proc, not from aiohttp's account."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    out = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                    continue
                addr_hex, port_hex = fields[1].split(":")
                raw = bytes.fromhex(addr_hex)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
                out.add((socket.inet_ntop(family, raw), int(port_hex, 16)))
    return out


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2"], ids=["loopback", "with-stub-host"])
def test_the_stub_listens_on_loopback_and_the_stub_host_only(host):
    async def body() -> tuple[set, set, SignalingStub]:
        before = listening_sockets()
        stub = SignalingStub(host=host)
        await stub.start()
        try:
            return before, listening_sockets(), stub
        finally:
            await stub.stop()
    before, during, stub = asyncio.run(body())
    wanted = {("127.0.0.1", stub.port)} | ({(host, stub.remote_port)} if host != "127.0.0.1" else set())
    assert during - before == wanted


def test_the_token_works_and_is_needed_on_the_remote_https_site():
    async def body():
        stub = SignalingStub(host="127.0.0.2")
        await stub.start()
        try:
            room = stub.create_room("remote")
            # what a remote page is handed keeps the token (rebase: another host, over WSS) ...
            far = rebase(stub.ws_url, "https://10.231.0.1:4443")
            assert far == f"wss://10.231.0.1:4443/ws?token={stub.token}"
            # ... and the token opens the HTTPS site (127.0.0.2 here: rebase leaves loopback alone)
            url = f"wss://127.0.0.2:{stub.remote_port}/ws?{urllib.parse.urlsplit(far).query}"
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await join(http, url.split("?")[0], "remote", "a", "101")
                assert refused.value.status == 403
                a = await join(http, url, "remote", "a", "101")
                b = await join(http, url, "remote", "b", "202")
                assert (await recv(a))["type"] == "ready" and (await recv(b))["type"] == "ready"
                await a.send_str(signal(OFFER))
                assert (await recv(b))["data"] == OFFER
                await a.close()
                await b.close()
            assert [r.kind for r in room.log] == ["offer"] and stub.refused == 1
        finally:
            await stub.stop()
    run(body)


# -- the HTTP side -----------------------------------------------------------------------------

SECRET = f"secret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def web_root(tmp_path_factory) -> tuple[LiveStub, dict[str, bytes]]:
    """A stub whose static folder has a few files, a symlink out of it, and a secret beside it."""
    top = tmp_path_factory.mktemp("www")
    (top / "secret.txt").write_text(SECRET)
    static = top / "static"
    (static / "sub").mkdir(parents=True)
    inside = {"index.html": b"<p>inside</p>", "sub/a.txt": b"a", "neg.js": b"export default 1;"}
    for rel, body in inside.items():
        (static / rel).write_bytes(body)
    (static / "escape").symlink_to(top / "secret.txt")
    (static / "up").symlink_to(top, target_is_directory=True)
    stub = LiveStub(static)
    stub.sync(stub.stub.serve_file, "neg.js", static / "neg.js")  # /files/ serves registered names only
    yield stub, inside
    stub.stop()


async def raw_request(port: int, head: bytes) -> tuple[int, bytes]:
    """One request written byte for byte (no client normalises the path); status and body."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), RECV)
    try:
        writer.write(head)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), RECV)  # Connection: close, so read to the end
    finally:
        writer.close()
    if not data:
        return 0, b""  # closed without an answer
    status_line, _, rest = data.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


ATOMS = ["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", ".", "", "secret.txt", "static", "sub", "a.txt", "escape",
         "up", "index.html", "neg.js", "%00", "..;", "%252e%252e", "%c0%ae%c0%ae", "~", "fixtures", "files"]
SEPARATORS = ["/", "\\", "%2f", "%2F", "%5c", "//"]
odd_paths = st.builds(
    lambda prefix, parts: prefix + "".join(atom + sep for atom, sep in parts),
    st.sampled_from(["/fixtures/", "/files/", "/", "/fixtures", "//fixtures/", "/fixtures/sub/", "/ws/"]),
    st.lists(st.tuples(st.sampled_from(ATOMS) | st.text(alphabet="abc.%2fe_-~", max_size=6),
                       st.sampled_from(SEPARATORS)), max_size=8)).map(lambda p: p.rstrip("/\\") or "/")


@given(path=odd_paths)
@example(path="/fixtures/../secret.txt")
@example(path="/fixtures/%2e%2e/secret.txt")
@example(path="/fixtures/escape")
@example(path="/fixtures/up/secret.txt")
@example(path="/files/..%2fsecret.txt")
@example(path="/files/secret.txt")
@FUZZ
def test_odd_paths_never_leave_the_static_folder(web_root, path):
    live_web, inside = web_root

    async def body():
        status, content = await raw_request(
            live_web.stub.port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        assert SECRET.encode() not in content, f"{path} escaped the static folder"
        assert status in (0, 200, 204, 301, 302, 400, 403, 404, 405), (path, status)
        if status == 200:
            assert content in inside.values(), (path, content[:80])
        async with aiohttp.ClientSession() as http:
            await alive_and_bounded(http, live_web)
    run(body)


@given(query=st.integers(0, 40_000), header=st.integers(0, 40_000))
@example(query=9000, header=0)
@example(query=0, header=9000)
@FEW
def test_huge_query_strings_and_headers_are_refused_and_the_stub_goes_on(web_root, query, header):
    live_web, _ = web_root

    async def body():
        head = (f"GET /fixtures/index.html?q={'a' * query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"X-Pad: {'b' * header}\r\nConnection: close\r\n\r\n")
        status, content = await raw_request(live_web.stub.port, head.encode())
        assert status in (0, 200, 400, 414, 431), status
        if status == 200:
            assert content == b"<p>inside</p>"
        ws_status = None
        async with aiohttp.ClientSession() as http:
            try:  # the same on the WebSocket path: a huge room name is refused, not a crash
                ws = await join(http, live_web.ws_url, "r" * query, "a", "1")
                assert_error_frame(await recv(ws), "unknown room")
                await ws.close()
            except aiohttp.WSServerHandshakeError as exc:
                ws_status = exc.status
            assert ws_status in (None, 400, 414, 431)
            await alive_and_bounded(http, live_web)
    run(body)
