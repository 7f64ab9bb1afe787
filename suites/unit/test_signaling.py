"""The signaling stub, driven over real WebSockets on 127.0.0.1: no browser, no aiortc.

The stub is the rig's instrument for forcing glare, so these tests pin what a case
relies on: relay with ``from``/``seq``/data intact, a faithful log, holds that keep a
link FIFO and release in ``seq`` order, bounded waits that say what they waited for,
and bad input answered with an error frame while the stub keeps serving.

There is no pytest-asyncio: each test is a sync function running one bounded scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType

from rig import config
from rig.signaling import HoldRule, MessageRecord, Room, SignalingStub, StubTimeout, classify

#: Bound on a whole scenario, on one expected frame, and on a check that expects nothing.
SCENARIO_BOUND = 5.0
RECV = 2.0
ABSENT = 0.15

OFFER = {"description": {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"}}
OFFER_B = {"description": {"type": "offer", "sdp": "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\n"}}
ANSWER = {"description": {"type": "answer", "sdp": "v=0\r\no=- 3 1 IN IP4 127.0.0.1\r\ns=-\r\n"}}
END_OF_CANDIDATES = {"candidate": None}


def candidate(i: int) -> dict:
    line = f"candidate:{i} 1 udp 2122260223 127.0.0.1 {50000 + i} typ host"
    return {"candidate": {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}}


def run(scenario: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_BOUND))


def signal(data: object) -> str:
    return json.dumps({"type": "signal", "data": data})


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict:
    msg = await ws.receive(timeout=RECV)
    assert msg.type == WSMsgType.TEXT, f"expected a text frame, got {msg.type!r} {msg.data!r}"
    return json.loads(msg.data)


async def recv_closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    msg = await ws.receive(timeout=RECV)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED), msg
    assert ws.closed


async def absent(*sockets: aiohttp.ClientWebSocketResponse) -> None:
    """Nothing arrives within ABSENT seconds (the one short wait: it expects absence)."""
    for ws in sockets:
        with pytest.raises(TimeoutError):
            msg = await ws.receive(timeout=ABSENT)
            pytest.fail(f"expected nothing, got {msg.type!r} {msg.data!r}")


async def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + RECV
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def connect(http: aiohttp.ClientSession, stub: SignalingStub, room: str, name: str, user: str,
                  ) -> aiohttp.ClientWebSocketResponse:
    params = {"room": room, "name": name, "user": user}
    return await asyncio.wait_for(http.ws_connect(stub.ws_url, params=params), RECV)


@dataclass
class Setup:
    stub: SignalingStub
    http: aiohttp.ClientSession
    room: Room
    a: aiohttp.ClientWebSocketResponse | None = None
    b: aiohttp.ClientWebSocketResponse | None = None
    ready_a: dict | None = None
    ready_b: dict | None = None

    def records(self, kind: str | None = None) -> list[MessageRecord]:
        return [r for r in self.room.log if kind is None or r.kind == kind]

    async def held_count(self, n: int) -> None:
        await self.room.control.wait_held(lambda held: len(held) >= n, timeout=RECV, what=f"{n} held frames")


@contextlib.asynccontextmanager
async def stub_room(join: tuple[str, ...] = ("a", "b"), room: str = "r") -> AsyncIterator[Setup]:
    """A running stub with room ``room``; members a (user 101) and b (user 202) joined as asked."""
    users = {"a": "101", "b": "202"}
    async with SignalingStub() as stub, aiohttp.ClientSession() as http:
        s = Setup(stub, http, stub.create_room(room))
        sockets = []
        try:
            for name in join:
                ws = await connect(http, stub, room, name, users[name])
                sockets.append(ws)
                setattr(s, name, ws)
            if len(join) == 2:
                s.ready_a, s.ready_b = await recv(s.a), await recv(s.b)
            yield s
        finally:
            for ws in sockets:
                await asyncio.wait_for(ws.close(), RECV)


def offer_from(sender: str) -> Callable[[MessageRecord], bool]:
    return lambda m: m.kind == "offer" and m.sender == sender


# -- binding and joining ----------------------------------------------------------------

def test_binds_loopback_on_a_free_port():
    async def scenario():
        async with SignalingStub() as stub:
            assert stub.port and stub.port > 0
            host, port = stub._runner.addresses[0][:2]
            assert (host, port) == ("127.0.0.1", stub.port)
            assert stub.http_url == f"http://127.0.0.1:{stub.port}"
            assert stub.ws_url == f"ws://127.0.0.1:{stub.port}/ws?token={stub.token}"
            assert len(stub.token) >= 32 and stub.token != SignalingStub().token
    run(scenario)


def test_ready_frames_name_the_other_member():
    async def scenario():
        async with stub_room() as s:
            assert s.ready_a == {"type": "ready", "self": {"name": "a", "user_id": "101"},
                                 "peer": {"name": "b", "user_id": "202"}}
            assert s.ready_b == {"type": "ready", "self": {"name": "b", "user_id": "202"},
                                 "peer": {"name": "a", "user_id": "101"}}
            await s.room.wait_ready(RECV)
            await absent(s.a, s.b)  # one ready frame each, nothing else
    run(scenario)


def test_wait_ready_times_out_naming_who_joined():
    async def scenario():
        async with stub_room(join=("a",)) as s:
            with pytest.raises(StubTimeout, match=r"room 'r' not full .*joined: a\)"):
                await s.room.wait_ready(0.05)
    run(scenario)


# -- relay and log ----------------------------------------------------------------------

def test_relay_both_ways_keeps_from_seq_and_data():
    async def scenario():
        async with stub_room() as s:
            await s.a.send_str(signal(OFFER))
            got_b = await recv(s.b)
            await s.b.send_str(signal(ANSWER))
            got_a = await recv(s.a)
            offer_rec, answer_rec = s.records()
            assert got_b == {"type": "signal", "from": "a", "seq": offer_rec.seq, "data": OFFER}
            assert got_a == {"type": "signal", "from": "b", "seq": answer_rec.seq, "data": ANSWER}
            assert answer_rec.seq > offer_rec.seq
            await absent(s.a, s.b)  # no echo to the sender
    run(scenario)


@pytest.mark.parametrize(("data", "kind"), [
    (OFFER, "offer"),
    (ANSWER, "answer"),
    (candidate(1), "candidate"),
    (END_OF_CANDIDATES, "candidate"),
    ({"candidate": ""}, "candidate"),
    ({"description": {"type": "rollback"}}, "other"),
    ({"description": {"type": "pranswer", "sdp": ""}}, "other"),
    ({"description": "offer"}, "other"),
    ({"description": None}, "other"),
    ({"hello": "world"}, "other"),
    ({}, "other"),
    ("candidate", "other"),
    (["candidate"], "other"),
    (None, "other"),
    (42, "other"),
])
def test_classify(data, kind):
    assert classify(data) == kind


def test_log_records_each_frame():
    payloads = [("a", OFFER), ("a", candidate(1)), ("a", END_OF_CANDIDATES),
                ("b", ANSWER), ("b", {"note": "héllo ✓"})]

    async def scenario():
        async with stub_room() as s:
            texts = []
            for sender, data in payloads:
                # ensure_ascii=False: the size must count UTF-8 bytes, not characters
                text = json.dumps({"type": "signal", "data": data}, ensure_ascii=False)
                texts.append(text)
                await getattr(s, sender).send_str(text)
                receiver = s.b if sender == "a" else s.a
                assert (await recv(receiver))["data"] == data
            recs = s.records()
            await eventually(lambda: all(r.delivered_t is not None for r in recs), "delivered_t on every record")
            assert [r.kind for r in recs] == ["offer", "candidate", "candidate", "answer", "other"]
            assert [(r.sender, r.to) for r in recs] == [("a", "b")] * 3 + [("b", "a")] * 2
            assert [r.size for r in recs] == [len(t.encode()) for t in texts]
            assert recs[-1].size > len(texts[-1])
            assert [r.data for r in recs] == [d for _, d in payloads]
            seqs, ts = [r.seq for r in recs], [r.t for r in recs]
            assert seqs == sorted(set(seqs))
            assert ts == sorted(ts) and ts[0] >= 0 and ts[-1] > ts[0]
            for r in recs:
                assert r.room == "r"
                assert not r.held and r.released_t is None and r.note == ""
                assert r.delivered_t >= r.t
            d = recs[0].as_dict()
            assert d["from"] == "a" and "sender" not in d and d["data"] == OFFER
            assert "data" not in recs[0].as_dict(with_data=False)
    run(scenario)


def test_message_record_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown message kind"):
        MessageRecord(1, 0.0, "r", "a", "b", "pranswer", 10)


# -- hold and release -------------------------------------------------------------------

def test_hold_offers_then_release_delivers_fifo_per_link():
    async def scenario():
        async with stub_room() as s:
            ctl = s.room.control
            rule_a = ctl.hold(offer_from("a"), name="a's offer", count=1)
            rule_b = ctl.hold(offer_from("b"), name="b's offer", count=1)
            a_frames = [OFFER, candidate(1), candidate(2), END_OF_CANDIDATES]
            for data in a_frames:
                await s.a.send_str(signal(data))
            await s.held_count(len(a_frames))
            await s.b.send_str(signal(OFFER_B))

            def both_offers(held: list[MessageRecord]) -> bool:
                return {m.sender for m in held if m.kind == "offer"} >= {"a", "b"}
            await ctl.wait_held(both_offers, timeout=RECV, what="an offer from each side")

            held = ctl.held()
            assert [(m.sender, m.kind) for m in held] == [
                ("a", "offer"), ("a", "candidate"), ("a", "candidate"), ("a", "candidate"), ("b", "offer")]
            offer_a = held[0]
            assert offer_a.note == "held by a's offer"
            assert all(m.note == f"queued behind held #{offer_a.seq}" for m in held[1:4])
            assert held[4].note == "held by b's offer"
            assert all(m.held and m.released_t is None and m.delivered_t is None for m in held)
            assert (rule_a.matched, rule_a.active, rule_b.matched, rule_b.active) == (1, False, 1, False)
            await absent(s.a, s.b)  # nothing delivered while held

            out = ctl.release()
            assert sorted(m.seq for m in out) == [m.seq for m in held]
            assert ctl.held() == [] and ctl.rules == []

            got_b = [await recv(s.b) for _ in a_frames]
            assert [f["data"] for f in got_b] == a_frames  # the offer before its candidates
            assert [f["seq"] for f in got_b] == [m.seq for m in held[:4]]
            got_a = await recv(s.a)
            assert (got_a["from"], got_a["seq"], got_a["data"]) == ("b", held[4].seq, OFFER_B)

            await eventually(lambda: all(m.delivered_t is not None for m in held), "delivered_t after release")
            for m in held:
                assert m.held and m.note
                assert m.released_t is not None and m.t <= m.released_t <= m.delivered_t
            assert len({m.released_t for m in held}) == 1
    run(scenario)


def test_count_one_rule_stops_holding_after_one_match():
    async def scenario():
        async with stub_room() as s:
            ctl = s.room.control
            rule = ctl.hold(lambda m: m.kind == "offer", name="first offer", count=1)
            await s.a.send_str(signal(OFFER))
            await s.held_count(1)
            # another link, another offer: the spent rule lets it through
            await s.b.send_str(signal(OFFER_B))
            assert (await recv(s.a))["data"] == OFFER_B
            assert [m.sender for m in ctl.held()] == ["a"]
            assert (rule.matched, rule.active) == (1, False)

            # keep the spent rule: a's next offer on the released link is not held either
            ctl.release(drop_rules=False)
            assert ctl.rules == [rule]
            assert (await recv(s.b))["data"] == OFFER
            await s.a.send_str(signal(OFFER_B))
            assert (await recv(s.b))["data"] == OFFER_B
            assert ctl.held() == [] and rule.matched == 1
            assert [m.held for m in s.records()] == [True, False, False]
    run(scenario)


def test_drop_rule_loses_one_frame_and_the_link_goes_on():
    async def scenario():
        async with stub_room() as s:
            ctl = s.room.control
            ctl.drop(lambda m: m.kind == "offer", name="plan: drop offer from a")
            await s.a.send_str(signal(OFFER))
            await s.a.send_str(signal(OFFER_B))
            assert (await recv(s.b))["data"] == OFFER_B  # the first never arrives, the next is not held behind it
            first = s.records()[0]
            assert first.dropped and "dropped by plan" in first.note and first.delivered_t is None
            assert ctl.held() == []
    run(scenario)


def test_rule_without_count_stays_active():
    rule = HoldRule(match=lambda m: True, name="all", count=None, matched=1000)
    assert rule.active
    assert HoldRule(match=lambda m: True, name="two", count=2, matched=1).active
    assert not HoldRule(match=lambda m: True, name="two", count=2, matched=2).active


def test_release_of_one_link_leaves_the_other_held():
    async def scenario():
        async with stub_room() as s:
            ctl = s.room.control
            ctl.hold(offer_from("a"), name="a's offer")
            ctl.hold(offer_from("b"), name="b's offer")
            await s.a.send_str(signal(OFFER))
            await s.b.send_str(signal(OFFER_B))
            await s.held_count(2)
            offer_b = next(m for m in ctl.held() if m.sender == "b")

            out = ctl.release(("a", "b"))
            assert [(m.sender, m.to) for m in out] == [("a", "b")]
            assert (await recv(s.b))["data"] == OFFER
            await absent(s.a)
            assert ctl.held() == [offer_b] and offer_b.released_t is None

            # the rules are gone, yet b -> a is still FIFO behind the held offer
            await s.b.send_str(signal(candidate(1)))
            await s.held_count(2)
            cand = ctl.held()[-1]
            assert cand.note == f"queued behind held #{offer_b.seq}"
            await absent(s.a)

            ctl.release(("b", "a"))
            assert [(await recv(s.a))["data"] for _ in range(2)] == [OFFER_B, candidate(1)]
            assert ctl.held() == []
    run(scenario)


@pytest.mark.parametrize("links", [(), (("a", "b"), ("b", "a"))], ids=["all", "links-given"])
def test_release_order_across_links_follows_seq(links):
    async def scenario():
        async with stub_room() as s:
            ctl = s.room.control
            ctl.hold(lambda m: m.kind == "offer", name="every offer")
            # b's frames come first, so the b -> a link is older than a -> b
            steps = [("b", OFFER_B), ("a", OFFER), ("b", candidate(1)), ("a", candidate(2))]
            for n, (sender, data) in enumerate(steps, 1):
                await getattr(s, sender).send_str(signal(data))
                await s.held_count(n)
            held_seqs = [m.seq for m in ctl.held()]
            assert [m.sender for m in ctl.held()] == ["b", "a", "b", "a"]

            delivered: list[int] = []
            deliver = s.room._deliver

            def spy(rec: MessageRecord) -> None:
                delivered.append(rec.seq)
                deliver(rec)
            s.room._deliver = spy
            ctl.release(*links)
            assert delivered == held_seqs
            assert [(await recv(s.a))["seq"] for _ in range(2)] == held_seqs[0::2]
            assert [(await recv(s.b))["seq"] for _ in range(2)] == held_seqs[1::2]
    run(scenario)


def test_wait_held_timeout_says_what_was_awaited_and_what_is_held():
    async def scenario():
        async with stub_room() as s:
            ctl = s.room.control
            started = time.monotonic()
            with pytest.raises(StubTimeout) as nothing:
                await ctl.wait_held(lambda held: False, timeout=0.1, what="an offer from b")
            assert time.monotonic() - started < 1.0
            assert "an offer from b" in str(nothing.value)
            assert "held so far: nothing" in str(nothing.value)

            ctl.hold(offer_from("a"), name="a's offer")
            await s.a.send_str(signal(OFFER))
            await s.a.send_str(signal(candidate(1)))
            await s.held_count(2)
            offer, cand = ctl.held()
            with pytest.raises(StubTimeout) as some:
                await ctl.wait_held(lambda held: any(m.sender == "b" for m in held), timeout=0.1,
                                    what="an offer from b")
            msg = str(some.value)
            assert "an offer from b" in msg
            assert f"held so far: #{offer.seq} offer a->b, #{cand.seq} candidate a->b" in msg
    run(scenario)


# -- bad input ------------------------------------------------------------------------------

def _oversized() -> str:
    head, tail = '{"type": "signal", "data": {"pad": "', '"}}'
    return head + "x" * (config.MAX_FRAME_BYTES + 1 - len(head) - len(tail)) + tail


@pytest.mark.parametrize(("frame", "error"), [
    ("{not json", "malformed JSON"),
    ("[1, 2]", '{"type": "signal", "data": ...}'),
    ('"signal"', '{"type": "signal", "data": ...}'),
    ("null", '{"type": "signal", "data": ...}'),
    ('{"type": "hello", "data": {}}', '{"type": "signal", "data": ...}'),
    ('{"data": {}}', '{"type": "signal", "data": ...}'),
    ('{"type": "signal"}', '{"type": "signal", "data": ...}'),
    (b"\x00\x01binary", "binary frame"),
], ids=["malformed", "list", "string", "null", "wrong-type", "no-type", "no-data", "binary"])
def test_bad_frame_gets_an_error_and_the_stub_keeps_serving(frame, error):
    async def scenario():
        async with stub_room() as s:
            if isinstance(frame, bytes):
                await s.a.send_bytes(frame)
                size = len(frame)
            else:
                await s.a.send_str(frame)
                size = len(frame.encode())
            reply = await recv(s.a)
            assert reply["type"] == "error" and error in reply["error"]
            [rec] = s.records()
            assert (rec.kind, rec.sender, rec.to, rec.size) == ("error", "a", "stub", size)
            assert rec.note == reply["error"]
            assert rec.data is None and rec.delivered_t is None
            # still serving: b's first frame is the valid one, both ways
            await s.a.send_str(signal(OFFER))
            got = await recv(s.b)
            assert (got["type"], got["from"], got["data"]) == ("signal", "a", OFFER)
            await s.b.send_str(signal(ANSWER))
            assert (await recv(s.a))["data"] == ANSWER
    run(scenario)


def test_oversized_frame_gets_an_error_then_its_socket_is_closed():
    """aiohttp stops at the oversized frame's header, so the stream cannot go on: that socket
    is closed (1009) after its error frame; the other member and the stub go on."""
    async def scenario():
        async with stub_room() as s:
            await s.a.send_str(_oversized())
            reply = await recv(s.a)
            assert reply == {"type": "error",
                             "error": f"frame over {config.MAX_FRAME_BYTES} bytes: this socket is closed (1009)"}
            closing = await s.a.receive(timeout=RECV)  # the stub's close frame (a's own close_code may be 1006)
            assert (closing.type, closing.data) == (WSMsgType.CLOSE, 1009) and s.a.closed
            await eventually(lambda: "a" not in s.room.members, "a to leave the room")
            [rec] = s.records()
            assert (rec.kind, rec.sender, rec.to, rec.note) == ("error", "a", "stub", reply["error"])
            s.a = await connect(s.http, s.stub, "r", "a", "101")  # a joins again, the room works
            try:
                assert (await recv(s.a))["type"] == "ready" and (await recv(s.b))["type"] == "ready"
                await s.a.send_str(signal(OFFER))
                assert (await recv(s.b))["data"] == OFFER
            finally:
                await asyncio.wait_for(s.a.close(), RECV)
    run(scenario)


def test_frame_of_exactly_max_bytes_is_relayed():
    async def scenario():
        async with stub_room() as s:
            head, tail = '{"type": "signal", "data": {"pad": "', '"}}'
            text = head + "x" * (config.MAX_FRAME_BYTES - len(head) - len(tail)) + tail
            assert len(text.encode()) == config.MAX_FRAME_BYTES
            await s.a.send_str(text)
            got = await recv(s.b)
            assert got["type"] == "signal" and got["data"] == json.loads(text)["data"]
            assert s.records()[0].size == config.MAX_FRAME_BYTES
    run(scenario)


def test_unknown_room_is_refused_and_the_room_keeps_working():
    async def scenario():
        async with stub_room() as s:
            ws = await connect(s.http, s.stub, "nope", "c", "303")
            assert await recv(ws) == {"type": "error", "error": "unknown room 'nope'"}
            await recv_closed(ws)
            assert "nope" not in s.stub.rooms and s.records() == []
            await s.a.send_str(signal(OFFER))
            assert (await recv(s.b))["data"] == OFFER
            await s.b.send_str(signal(ANSWER))
            assert (await recv(s.a))["data"] == ANSWER
    run(scenario)


@pytest.mark.parametrize(("name", "user"), [("c", "303"), ("a", "999")], ids=["third", "same-name"])
def test_third_member_is_refused_and_the_room_keeps_working(name, user):
    async def scenario():
        async with stub_room() as s:
            ws = await connect(s.http, s.stub, "r", name, user)
            reply = await recv(ws)
            assert reply["type"] == "error" and "room 'r' is full" in reply["error"]
            await recv_closed(ws)
            [rec] = s.records()
            assert (rec.kind, rec.sender, rec.to) == ("error", name, "stub")
            assert rec.note.startswith("join refused:")
            assert set(s.room.members) == {"a", "b"}
            await absent(s.a, s.b)
            await s.a.send_str(signal(OFFER))
            got = await recv(s.b)
            assert (got["from"], got["data"]) == ("a", OFFER)
            await s.b.send_str(signal(ANSWER))
            assert (await recv(s.a))["from"] == "b"
    run(scenario)


@pytest.mark.parametrize("params", [{"room": "r", "name": "c"}, {"room": "r", "user": "303"}],
                         ids=["no-user", "no-name"])
def test_join_without_name_or_user_is_refused(params):
    async def scenario():
        async with stub_room(join=("a",)) as s:
            ws = await asyncio.wait_for(s.http.ws_connect(s.stub.ws_url, params=params), RECV)
            reply = await recv(ws)
            assert reply["type"] == "error" and "needs name and user" in reply["error"]
            await recv_closed(ws)
            assert list(s.room.members) == ["a"]
    run(scenario)


def test_sending_before_the_other_member_joined_is_an_error():
    async def scenario():
        async with stub_room(join=("a",)) as s:
            await s.a.send_str(signal(OFFER))
            reply = await recv(s.a)
            assert reply == {"type": "error", "error": "no other member in the room yet"}
            [rec] = s.records()
            assert (rec.kind, rec.sender, rec.to, rec.note) == ("error", "a", "stub", reply["error"])

            s.b = await connect(s.http, s.stub, "r", "b", "202")
            try:
                assert (await recv(s.a))["type"] == "ready"
                assert (await recv(s.b))["type"] == "ready"
                await s.a.send_str(signal(OFFER))
                assert (await recv(s.b))["data"] == OFFER
            finally:
                await asyncio.wait_for(s.b.close(), RECV)
    run(scenario)


# -- HTTP -----------------------------------------------------------------------------------

def test_http_files_favicon_and_fixtures(tmp_path: Path):
    script = tmp_path / "negotiator.js"
    script.write_text("export default function attach() {}\n")
    module = tmp_path / "negotiator.mjs"
    module.write_text("export default 1;\n")

    async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=RECV)) as resp:
            return resp.status, resp.content_type, await resp.read()

    async def scenario():
        async with SignalingStub() as stub, aiohttp.ClientSession() as http:
            url = stub.serve_file("neg.js", script)
            assert url == f"{stub.http_url}/files/neg.js"
            status, ctype, body = await get(http, url)
            assert (status, ctype, body) == (200, "text/javascript", script.read_bytes())

            status, ctype, _ = await get(http, stub.serve_file("neg.mjs", module))
            assert (status, ctype) == (200, "text/javascript")

            assert (await get(http, f"{stub.http_url}/files/unknown.js"))[0] == 404
            stub.serve_file("gone.js", tmp_path / "gone.js")
            assert (await get(http, f"{stub.http_url}/files/gone.js"))[0] == 404

            status, _, body = await get(http, f"{stub.http_url}/favicon.ico")
            assert (status, body) == (204, b"")

            status, ctype, body = await get(http, f"{stub.http_url}/fixtures/peer.html")
            assert (status, ctype) == (200, "text/html")
            assert body == (config.FIXTURES / "peer.html").read_bytes()
    run(scenario)
