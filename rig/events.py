"""The one event type: one thing a peer did, as peers record it, the verdict reads it and the
case detail file holds it (rig.model.CaseDetail.events).

Standard library only: a peer host in another environment (rig.peers.host) records these too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PeerEvent:
    """One thing a peer did; ``t`` is seconds since the case started. A plain dataclass, so
    recording one costs no validation; pydantic validates it when a detail file is read back."""

    t: float
    type: str
    detail: dict[str, Any] = field(default_factory=dict)
