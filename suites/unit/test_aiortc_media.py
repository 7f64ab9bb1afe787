"""The aiortc peer's media bookkeeping (rig.peers.aiortc_media) at the edges of its life."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

from rig.peers.aiortc_peer import AiortcPeer
from rig.peerspec import PeerSpec

BOUND = 30.0


def never_awaited(scenario) -> list[str]:
    """The "never awaited" RuntimeWarnings raised while ``scenario`` runs and its leftovers are collected."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(asyncio.wait_for(scenario(), BOUND))
        gc.collect()
    return [str(w.message) for w in caught
            if issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message)]


def test_a_return_to_stable_just_before_close_leaves_no_coroutine_unawaited() -> None:
    """close() cancels the packet count a return to "stable" spawned before that task's first step."""
    async def scenario() -> None:
        peer = AiortcPeer(PeerSpec("aiortc"), "polite", 1, t0=time.monotonic())
        peer._new_flow_epoch()
        await peer.close()
        assert all(t.cancelled() for t in peer._tasks)

    assert never_awaited(scenario) == []


def test_a_packet_count_that_runs_is_kept_per_epoch() -> None:
    async def scenario() -> dict:
        peer = AiortcPeer(PeerSpec("aiortc"), "polite", 1, t0=time.monotonic())
        entry = {"kind": "video", "mid": "1", "frames": 0, "track": object(), "epoch": None}
        peer._received.append(entry)
        peer._new_flow_epoch()
        await asyncio.gather(*peer._tasks)
        await peer.close()
        return entry

    async def counted() -> None:
        entry = await scenario()
        assert entry["packets_at"] == {1: None}  # no connection: the count cannot be read

    assert never_awaited(counted) == []
