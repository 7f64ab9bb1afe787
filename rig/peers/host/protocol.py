"""What the rig and a peer host agree on: the protocol's version, the bound of each operation,
the line limit, and the one-line texts both sides make of an error or an exit.

The messages themselves (JSON lines, requests, replies and events) are described in
rig.peers.host's docstring. Standard library and the rig's stdlib-only floor only: the host's
environment imports this too.
"""

from __future__ import annotations

import signal

from ... import config

PROTOCOL = 1


#: Replies and events can carry SDPs and snapshots: lines far longer than asyncio's 64 KiB default.
LINE_LIMIT = 64 * 1024 * 1024


#: The parent waits this much longer than the host's own bound, so the host's message (which
#: knows more) arrives first when the host is alive.
MARGIN = 2.0


PARENT_ENV = "GLARE_RIG_HOST_PARENT"


def bounds() -> dict[str, float]:
    """How long each operation may take in the host (seconds). The peers bound their own
    steps (config.STEP_TIMEOUT); these are outer bounds a little above theirs."""
    step, close = config.STEP_TIMEOUT + 1, 4 * config.CLOSE_TIMEOUT
    # launch: the wait for a launch slot (rig.slots), the launch, then its first page
    return {"hello": step, "launch": config.LAUNCH_SLOT_TIMEOUT + 2 * config.LAUNCH_TIMEOUT, "open": config.LAUNCH_TIMEOUT, "probe": step,
            "join": 2 * config.STEP_TIMEOUT + 1, "change": step, "send": step, "arm": step, "fail_next": step,
            "gate": step, "open_gate": step, "snapshot": step, "receive_detail": step, "close": close,
            "shutdown": close}


def first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0].strip() if lines else type(exc).__name__


def exit_text(rc: int | None) -> str:
    if rc is None:
        return "is still running"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"
