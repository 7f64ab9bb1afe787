"""What a Python negotiator is given and how its messages travel: ``load_negotiator`` finds
its ``attach(pc, signaler, *, polite)``, ``PythonSignaler`` is the signaler it is handed
(``send(data)`` and ``on_message``), and aiortc's description and candidate objects are
converted to and from the JSON the signaling stub carries (the browsers' wire form, so
either side of a pair can be a browser).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiortc import RTCSessionDescription
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from ..errors import RigError


def load_negotiator(target: str | Path) -> Callable:
    """Load ``attach`` from ``path.py[:attr]`` or ``package.module[:attr]``."""
    text = str(target)
    where, _, attr = text.rpartition(":") if ":" in text and not text.endswith(".py") else (text, "", "attach")
    attr = attr or "attach"
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise RigError(f"negotiator {path}: no such file")
            name = f"rig_negotiator_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except RigError:
        raise
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        at = f" ({tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        raise RigError(f"negotiator {where} failed to load{at}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RigError(f"negotiator {where} has no callable {attr}(pc, signaler, *, polite)")
    return fn


def description_to_wire(desc: RTCSessionDescription) -> dict:
    return {"type": desc.type, "sdp": desc.sdp}


def candidate_from_wire(c: dict | None):
    if not c or not c.get("candidate"):
        return None  # end of candidates
    text = c["candidate"]
    cand = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
    cand.sdpMid = c.get("sdpMid")
    cand.sdpMLineIndex = c.get("sdpMLineIndex")
    return cand


def candidate_to_wire(c) -> dict | None:
    """An RTCIceCandidate as the browsers send it (None: end of candidates)."""
    return None if c is None else {
        "candidate": "candidate:" + candidate_to_sdp(c), "sdpMid": c.sdpMid, "sdpMLineIndex": c.sdpMLineIndex}


class PythonSignaler:
    """What a Python negotiator sees: ``send(data)`` and ``on_message``. A message sent is
    recorded (through ``record``) and queued, in the stub's frame, on ``outbox``."""

    def __init__(self, record: Callable[[str, dict], Any], outbox: asyncio.Queue) -> None:
        self._record = record
        self._outbox = outbox
        self.on_message: Callable[[dict], Any] | None = None

    def send(self, data: dict) -> None:
        wire: dict[str, Any] = {}
        kind = "other"
        if data.get("description") is not None:
            wire["description"] = description_to_wire(data["description"])
            kind = data["description"].type
        elif "candidate" in data:
            wire["candidate"] = candidate_to_wire(data["candidate"])
            kind = "candidate"
        else:
            wire = data
        self._record("signal-sent", {"kind": kind})
        self._outbox.put_nowait(json.dumps({"type": "signal", "data": wire}))
