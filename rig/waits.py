"""Bounded waits: give up on an awaitable after a timeout, whatever it does with cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def bounded(aw: Any, timeout: float) -> bool:
    """Await ``aw`` for at most ``timeout`` seconds, whatever it does with cancellation.

    asyncio.wait_for waits for a cancelled task to finish, so a library that swallows
    CancelledError (seen in teardown paths) would hang it; this gives up on the task
    instead. True when it completed (its exception, if any, is retrieved and dropped).
    """
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        return False
    if not task.cancelled():
        task.exception()
    return True
