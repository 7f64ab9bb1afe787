"""What a case's sequence diagram says, read from its detail record: each peer's events and
the stub's messages on one clock, each peer's labels, signalingState spans, makingOffer
spans and collisions, and the arrows of the messages (a sender's run of trickled
candidates folded into one). rig.diagram lays these out and draws them.

The record is the typed one (rig.model.CaseDetail: PeerEvents and StubMessages); what is
still the peers' own free-form data (an event's detail, a message's payload) is read without
trusting it: a missing or odd value gives an empty or "?" value, never an exception.

Browser peers' events are placed by the page's own clock (`detail.pt`, ms), shifted
onto the rig's clock by the smallest observed delivery lag: the rig timestamps an event
when Playwright hands it over, tens of ms late under load, which would otherwise draw
a peer's offer as sent after the stub had already received it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import PeerEvent
from .model import StubMessage

FOLD_GAP_S = 0.05  # candidates further apart than this are not folded together

# The analysis gives a state label and a tick their colour; rig.diagram draws with the same palette.
STATE_COLOURS = {
    "stable": "#cfd8dc",
    "have-local-offer": "#64b5f6",
    "have-remote-offer": "#81c784",
    "have-local-pranswer": "#4db6ac",
    "have-remote-pranswer": "#aed581",
    "closed": "#424242",
}
ERROR_RED = "#c62828"
CONSOLE_GREY = "#9e9e9e"


# --- the record ----------------------------------------------------------------------


def as_map(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def finite_number(value: Any) -> float | None:
    """A finite float from recorded data, or None (booleans, text, NaN and infinities are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    return n if math.isfinite(n) else None


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class Event:
    role: str
    t: float  # on the rig's clock, page clock aligned where known
    raw_t: float | None
    type: str
    detail: Mapping


@dataclass
class Message:
    seq: str
    t: float
    sender: str
    to: str
    kind: str
    size: str
    held: bool
    released_t: float | None
    delivered_t: float | None
    note: str
    sdp_type: str


def read_events(recorded: list[PeerEvent], role: str, messages: list[Message]) -> list[Event]:
    lags = []
    for e in recorded:
        t, pt = finite_number(e.t), finite_number(e.detail.get("pt"))
        if t is not None and pt is not None:
            lags.append(t - pt / 1000)
    # A message reaches the stub after the page sent it: the n-th signal-sent of this
    # peer is the n-th message the stub got from it, which bounds the offset too.
    sent = [e for e in recorded if e.type == "signal-sent"]
    mine = [m for m in messages if m.sender == role and m.to != "stub" and not m.note.startswith("duplicate")]
    if len(sent) == len(mine) and all(as_text(e.detail.get("kind")) == m.kind for e, m in zip(sent, mine, strict=True)):
        for e, m in zip(sent, mine, strict=True):
            pt = finite_number(e.detail.get("pt"))
            if pt is not None:
                lags.append(m.t - pt / 1000)
    offset = min(lags) if lags else None
    out = []
    for e in recorded:
        raw_t, pt = finite_number(e.t), finite_number(e.detail.get("pt"))
        t = pt / 1000 + offset if (pt is not None and offset is not None) else raw_t
        if t is not None:  # a NaN read back from a file has no place on the axis
            out.append(Event(role, t, raw_t, e.type or "?", e.detail))
    out.sort(key=lambda e: e.t)  # stable: equal times keep their recorded order
    return out


def read_messages(recorded: list[StubMessage]) -> list[Message]:
    out = []
    for m in recorded:
        if finite_number(m.t) is None:
            continue
        desc = as_map(as_map(m.data).get("description"))
        out.append(Message(
            seq=str(m.seq), t=m.t, sender=m.sender, to=m.to, kind=m.kind or "other", size=str(m.size), held=m.held,
            released_t=m.released_t, delivered_t=m.delivered_t, note=m.note, sdp_type=as_text(desc.get("type")),
        ))
    return out


# --- what the diagram says -----------------------------------------------------------


@dataclass
class Label:
    role: str
    t: float
    text: str
    cls: str  # state, nego, conn, media, rollback, ignored, collision, error, other
    title: str
    colour: str = ""
    mark: bool = True  # False for the continuation lines of a wrapped label
    y: float = 0.0
    x: float = 0.0


@dataclass
class Arrow:
    msgs: list[Message]
    t: float
    delivered_t: float | None
    released_t: float | None
    ignored: bool = False
    y0: float = 0.0
    y1: float = 0.0
    yr: float = 0.0

    @property
    def first(self) -> Message:
        return self.msgs[0]


@dataclass
class Side:
    role: str
    labels: list[Label] = field(default_factory=list)
    states: list[tuple[float, str, str]] = field(default_factory=list)  # (t, state, from)
    making: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, how it ended)
    ticks: list[tuple[float, str, str]] = field(default_factory=list)  # (t, text, colour): a tick, no row
    ignored_seqs: set[str] = field(default_factory=set)


def short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _error_text(ev: Event) -> str:
    d = ev.detail
    if ev.type == "api-error":
        what = as_text(d.get("method")) or "call"
        if d.get("type"):
            what += f"({d.get('type')})"
        return f"{what}: {as_text(d.get('name'))} {as_text(d.get('message'))}".strip()
    errs = [as_map(e) for e in as_list(d.get("errors"))]
    if errs:
        return "; ".join(f"{as_text(e.get('name'))}: {as_text(e.get('message'))}" for e in errs)
    return as_text(d.get("text")) or as_text(d.get("message")) or _compact(d)


def _compact(d: Mapping) -> str:
    return ", ".join(f"{k}={as_text(v)}" for k, v in d.items() if k not in ("pt", "stack"))


def _label_for(ev: Event) -> tuple[str, str] | None:
    """(text, class) of an event's label; None for events the arrows already show."""
    d, typ = ev.detail, ev.type
    if typ in ("signal-sent", "signal-received", "console"):
        return None
    if typ == "signalingstatechange":
        return as_text(d.get("state")) or "?", "state"
    if typ == "negotiationneeded":
        return "negotiationneeded", "nego"
    if typ == "offer-made":
        return "offer made (SLD)", "nego"
    if typ == "answer-made":
        return "answer made (SLD)", "nego"
    if typ == "remote-description-set":
        return f"remote {as_text(d.get('type')) or 'description'} set", "nego"
    if typ == "rollback":
        return "↺ rollback", "rollback"
    if typ == "offer-ignored":
        return f"⊘ ignoreOffer: offer #{as_text(d.get('seq'))} ignored", "ignored"
    if typ == "connectionstatechange":
        return f"connection {as_text(d.get('state'))}", "conn"
    if typ == "iceconnectionstatechange":
        return f"ice {as_text(d.get('state'))}", "conn"
    if typ in ("error", "api-error"):
        return f"✘ {_error_text(ev)}", "error"
    if "error" in typ:
        return f"✘ {typ}: {_error_text(ev)}", "error"
    if typ == "change":
        return f"change: {as_text(d.get('action')) or _compact(d)}", "media"
    if typ == "track":
        return f"track {as_text(d.get('kind'))} mid {as_text(d.get('mid'))}", "media"
    if typ == "media-flowing":
        again = " (again, after a negotiation)" if d.get("again") else ""
        return f"media flowing {as_text(d.get('kind'))} {as_text(d.get('mid'))}".strip() + again, "media"
    if typ in ("datachannel", "channel-open", "channel-message"):
        return f"{typ} {as_text(d.get('label'))}".strip(), "media"
    if typ == "attached":
        return f"attached (polite={as_text(d.get('polite')).lower()})", "other"
    return f"{typ} {_compact(d)}".strip(), "other"


def _event_label(role: str, ev: Event) -> Label | None:
    """An event's label on its lifeline, its title giving the time (and the page clock's) and the detail."""
    described = _label_for(ev)
    if not described:
        return None
    text, cls = described
    title = f"{ev.type} at t={ev.t:.4f} s"
    if ev.raw_t is not None and abs(ev.raw_t - ev.t) > 0.0005:
        title += f" (page clock; reached the rig at {ev.raw_t:.4f} s)"
    extra = _compact(ev.detail)
    if extra:
        title += "\n" + short(extra, 600)
    colour = STATE_COLOURS.get(text, "") if cls == "state" else ""
    return Label(role, ev.t, text, cls, title, colour)


def analyse(role: str, events: list[Event], end_t: float) -> Side:
    """Labels, signalingState intervals, makingOffer intervals and collisions of one peer."""
    side = Side(role)
    state = "stable"
    making_since: float | None = None
    offer_made_t: float | None = None
    last_api_error: tuple[float, str] = (-1.0, "")

    def close_making(t: float, how: str) -> None:
        nonlocal making_since, offer_made_t
        if making_since is not None:
            side.making.append((making_since, max(t, making_since), how))
        making_since, offer_made_t = None, None

    for ev in events:
        d = ev.detail
        if ev.type == "signal-received" and as_text(d.get("kind")) == "offer":
            why = []
            if making_since is not None:
                why.append("makingOffer")
            if state != "stable":
                why.append(state)
            if why:
                side.labels.append(Label(
                    role, ev.t, f"⚡ collision #{as_text(d.get('seq'))} in {why[-1]}", "collision",
                    f"collision at {role}: offer #{as_text(d.get('seq'))} arrived while {' and '.join(why)}"))
        elif ev.type == "negotiationneeded":
            close_making(offer_made_t or ev.t, "superseded")
            making_since = ev.t
        elif ev.type == "offer-made":
            offer_made_t = ev.t
        elif ev.type == "signal-sent" and as_text(d.get("kind")) == "offer":
            close_making(ev.t, "offer sent")
        elif ev.type in ("error", "api-error", "fault-injected") and making_since is not None and as_text(
                d.get("method")) in ("setLocalDescription", "createOffer"):
            close_making(ev.t, "failed" + (" (fault injected by the plan)" if ev.type == "fault-injected" else ""))
        elif ev.type == "offer-ignored":
            side.ignored_seqs.add(as_text(d.get("seq")))
        elif ev.type == "signalingstatechange":
            state = as_text(d.get("state")) or state
            side.states.append((ev.t, state, as_text(d.get("from"))))
        elif ev.type == "console":
            side.ticks.append((ev.t, f"console {as_text(d.get('level'))}: {as_text(d.get('text'))}", CONSOLE_GREY))
        elif ev.type == "api-error":
            last_api_error = (ev.t, f"{as_text(d.get('name'))}: {as_text(d.get('message'))}")
        elif "error" in ev.type and ev.t - last_api_error[0] < 0.1 and _error_text(ev) == last_api_error[1]:
            # the negotiator logging the api-error just shown: a tick, not a second row
            side.ticks.append((ev.t, f"{ev.type} ({as_text(d.get('source'))}): {_error_text(ev)}", ERROR_RED))
            continue
        label = _event_label(role, ev)
        if label is not None:
            side.labels.append(label)
    if making_since is not None:
        close_making(offer_made_t or end_t, "offer made, never sent" if offer_made_t else "no offer made")
    return side


def _foldable(a: Message, b: Message) -> bool:
    return (a.kind == b.kind == "candidate" and a.sender == b.sender and a.to == b.to
            and a.held == b.held and a.released_t == b.released_t and a.note == b.note
            and not lost_or_duplicate(a.note) and a.delivered_t is not None and b.delivered_t is not None
            and b.t - a.t <= FOLD_GAP_S)


def lost_or_duplicate(note: str) -> bool:
    low = note.lower()
    return "drop" in low or "duplicate" in low or "lost" in low


def fold_arrows(messages: list[Message], ignored: set[tuple[str, str]]) -> list[Arrow]:
    """One arrow per message, except runs of a sender's candidates, which share one."""
    arrows: list[Arrow] = []
    open_run: dict[str, Arrow] = {}  # sender -> its latest arrow, while foldable
    for m in sorted(messages, key=lambda m: m.t):
        last = open_run.get(m.sender)
        if last is not None and _foldable(last.msgs[-1], m):
            last.msgs.append(m)
            last.delivered_t = max(last.delivered_t or m.t, m.delivered_t or m.t)
            continue
        a = Arrow([m], m.t, m.delivered_t, m.released_t if m.held else None,
                   ignored=(m.to, m.seq) in ignored)
        arrows.append(a)
        open_run[m.sender] = a
    return arrows
