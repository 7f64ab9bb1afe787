"""A member's frames: what the stub relays (``{"type": "signal", "data": ...}``), how a frame is
checked and weighed before it is, and the record the stub keeps of each one.

Every check raises :class:`FrameError` with a one-line message that the stub sends back as an
error frame; the weight :func:`weigh` gives is what a frame counts for in the stub's byte
budgets (rig.config, "signaling stub's limits").
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import config
from ..vocab import STUB_MESSAGE_KINDS

#: The one frame a member sends, as error frames quote it.
FORM = '{"type": "signal", "data": ...}'


class FrameError(ValueError):
    """A frame the stub does not relay; the message names the problem in one line."""


def short(text: str, limit: int = 64) -> str:
    """A client's string quoted for a one-line message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: Bytes the allocator adds to an object beyond ``sys.getsizeof`` (rounding, a list's slack).
ALLOC_SLACK = 16


def weigh(data: Any) -> int:
    """The memory parsed JSON ``data`` holds: ``sys.getsizeof`` of each value and key plus
    ``ALLOC_SLACK`` (shared objects counted each time), checked against the depth and count
    limits on the way; iterative, so no input can exhaust the stack here. On the heaviest
    frames, tracemalloc counts no more than this (suites/unit/test_stub_hostile.py checks it)."""
    values = weight = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > config.MAX_JSON_DEPTH:
            raise FrameError(f"data nested deeper than {config.MAX_JSON_DEPTH} levels")
        values += 1
        weight += sys.getsizeof(value) + ALLOC_SLACK
        if isinstance(value, dict):
            values += len(value)
            weight += sum(sys.getsizeof(k) + ALLOC_SLACK for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        if values > config.MAX_JSON_VALUES:
            raise FrameError(f"data has more than {config.MAX_JSON_VALUES} JSON values")
    return weight


def parse_frame(text: str) -> tuple[Any, int]:
    """The ``data`` of a member's text frame and its weight (what it counts for in the
    stub's byte budgets: :func:`weigh`). Raises :class:`FrameError` naming the problem in
    one line."""
    try:
        frame = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise FrameError(f"JSON nested deeper than {config.MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise FrameError(f"malformed JSON: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(frame, dict):
        raise FrameError(f"expected a JSON object {FORM}, got {_json_type(frame)}")
    if "type" not in frame:
        raise FrameError(f'frame has no "type": expected {FORM}')
    kind = frame["type"]
    if not isinstance(kind, str):
        raise FrameError(f'"type" must be a string, got {_json_type(kind)}: expected {FORM}')
    if kind != "signal":
        raise FrameError(f"unknown message type {short(kind)}: expected {FORM}")
    if "data" not in frame:
        raise FrameError(f'signal frame without "data": expected {FORM}')
    return frame["data"], weigh(frame["data"])


def classify(data: Any) -> str:
    """Kind of a signaling payload as the perfect-negotiation wire form spells it."""
    if isinstance(data, dict):
        desc = data.get("description")
        if isinstance(desc, dict) and desc.get("type") in ("offer", "answer"):
            return desc["type"]
        if "candidate" in data:
            return "candidate"
    return "other"


@dataclass
class MessageRecord:
    """One frame seen by the stub; times are seconds since the room was created."""

    seq: int
    t: float
    room: str
    sender: str
    to: str
    kind: str
    size: int
    held: bool = False
    released_t: float | None = None
    delivered_t: float | None = None
    note: str = ""
    data: Any = None
    dropped: bool = False  # never delivered, by plan
    weight: int = field(default=0, repr=False)  # what ``data`` counts for in the stub's budgets (parse_frame)

    def __post_init__(self) -> None:
        if self.kind not in STUB_MESSAGE_KINDS:
            raise ValueError(f"unknown message kind {self.kind!r}")

    def add_note(self, note: str) -> None:
        """Append ``note`` to what the record says about the frame's fate."""
        self.note = (self.note + "; " if self.note else "") + note

    def as_dict(self, with_data: bool = True) -> dict:
        d = asdict(self)
        d.pop("weight")
        d["from"] = d.pop("sender")
        if not with_data:
            d.pop("data")
        return d

