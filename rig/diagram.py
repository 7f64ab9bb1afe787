"""Sequence diagram of one case, drawn as inline SVG for its report page.

The tables on a case page hold every fact, but glare is a matter of order: which offer
left first, what each peer was doing when the other's offer landed, who rolled back.
A two-lifeline diagram shows that at a glance. It is a pure function of the case's
detail dict so the unit tests can check it without a browser, and it emits plain SVG
(no script, no external style) because the report opens from disk under a strict CSP.

Readability choices, so that a ten-round stress case stays legible:

- the time axis is not linear: the gap between two consecutive instants is drawn with
  height ~ sqrt(gap), capped, and idle stretches are cut out and labelled;
- labels claim rows; an instant is pushed down when its side's label lane is still
  occupied, so labels never overlap (time stays monotonic, only the scale bends);
- events of one peer within a few milliseconds of each other share a row;
- consecutive trickled candidates of one sender are folded into one arrow;
- signalingState is the colour of the lifeline itself, not a label per change.

Browser peers' events are placed by the page's own clock (`detail.pt`, ms), shifted
onto the rig's clock by the smallest observed delivery lag: the rig timestamps an event
when Playwright hands it over, tens of ms late under load, which would otherwise draw
a peer's offer as sent after the stub had already received it.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .vocab import ROLES

# Geometry (px). The polite lifeline is on the left, its labels to its left.
WIDTH = 1060
GUTTER = 56  # time labels
X = {"polite": 340, "impolite": 720}
LABEL_COL = 272  # width of each side's label column
LINE = 14  # height of one label row
ARROW_LINE = 12  # spacing of arrow labels that start on the same side
CHAR_W = 6.6  # 11 px monospace
MAX_GAP = 34  # tallest drawn gap between two consecutive instants
GAP_SCALE = 130  # px per sqrt(second)
IDLE_S = 0.4  # a longer gap is cut out of the axis
IDLE_GAP = 30
HOLD_DX = 34  # where a held message waits, off its sender's lifeline
MIN_SLOPE = 6  # every arrow falls at least this much: sending takes time
MIN_SLOPE_SDP = 14  # and offers/answers more, so two crossing offers read as a cross
CLUSTER_S = 0.003  # one peer's events this close share a row
FOLD_GAP_S = 0.05  # candidates further apart than this are not folded together

STATE_COLOURS = {
    "stable": "#cfd8dc",
    "have-local-offer": "#64b5f6",
    "have-remote-offer": "#81c784",
    "have-local-pranswer": "#4db6ac",
    "have-remote-pranswer": "#aed581",
    "closed": "#424242",
}
ERROR_RED = "#c62828"
KIND_COLOURS = {"offer": "#1565c0", "answer": "#2e7d32", "candidate": "#8d8d8d", "other": "#6d4c41", "error": ERROR_RED}
_STYLE = """
.seq-diagram text { font: 11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; fill: #1d1d1d; }
.seq-diagram .head { font-weight: 700; font-size: 13px; }
.seq-diagram .sub, .seq-diagram .tick, .seq-diagram .ev-media, .seq-diagram .ev-other { fill: #6b6b6b; }
.seq-diagram .ev-state { font-weight: 600; }
.seq-diagram .ev-nego { fill: #0d47a1; }
.seq-diagram .ev-conn { fill: #00695c; }
.seq-diagram .ev-rollback { fill: #6a1b9a; font-weight: 700; }
.seq-diagram .ev-ignored { fill: #8a5a00; font-weight: 700; }
.seq-diagram .ev-collision { fill: #d84315; font-weight: 700; }
.seq-diagram .ev-error, .seq-diagram .err { fill: #c62828; font-weight: 700; }
.seq-diagram .unmet text { fill: #b71c1c; font-weight: 700; }
.seq-diagram .mlabel { font-size: 10.5px; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.seq-diagram .idle { fill: #6b6b6b; font-style: italic; }
"""


# --- input -------------------------------------------------------------------------


def _map(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
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


def _str(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class _Event:
    role: str
    t: float  # on the rig's clock, page clock aligned where known
    raw_t: float | None
    type: str
    detail: Mapping


@dataclass
class _Msg:
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


def _events(raw: Any, role: str, messages: list[_Msg]) -> list[_Event]:
    evs = [e for e in _list(raw) if isinstance(e, Mapping)]
    lags = []
    for e in evs:
        t, pt = finite_number(e.get("t")), finite_number(_map(e.get("detail")).get("pt"))
        if t is not None and pt is not None:
            lags.append(t - pt / 1000)
    # A message reaches the stub after the page sent it: the n-th signal-sent of this
    # peer is the n-th message the stub got from it, which bounds the offset too.
    sent = [e for e in evs if e.get("type") == "signal-sent"]
    mine = [m for m in messages if m.sender == role and m.to != "stub" and not m.note.startswith("duplicate")]
    if len(sent) == len(mine) and all(_str(_map(e.get("detail")).get("kind")) == m.kind for e, m in zip(sent, mine, strict=True)):
        for e, m in zip(sent, mine, strict=True):
            pt = finite_number(_map(e.get("detail")).get("pt"))
            if pt is not None:
                lags.append(m.t - pt / 1000)
    offset = min(lags) if lags else None
    out = []
    for e in evs:
        detail = _map(e.get("detail"))
        raw_t, pt = finite_number(e.get("t")), finite_number(detail.get("pt"))
        t = pt / 1000 + offset if (pt is not None and offset is not None) else raw_t
        if t is None:
            continue
        out.append(_Event(role, t, raw_t, _str(e.get("type")) or "?", detail))
    out.sort(key=lambda e: e.t)  # stable: equal times keep their recorded order
    return out


def _messages(raw: Any) -> list[_Msg]:
    out = []
    for m in _list(raw):
        if not isinstance(m, Mapping) or finite_number(m.get("t")) is None:
            continue
        data = _map(m.get("data"))
        desc = _map(data.get("description"))
        out.append(_Msg(
            seq=_str(m.get("seq")), t=finite_number(m.get("t")), sender=_str(m.get("from")), to=_str(m.get("to")),
            kind=_str(m.get("kind")) or "other", size=_str(m.get("size")), held=bool(m.get("held")),
            released_t=finite_number(m.get("released_t")), delivered_t=finite_number(m.get("delivered_t")),
            note=_str(m.get("note")), sdp_type=_str(desc.get("type")),
        ))
    return out


# --- what the diagram says -----------------------------------------------------------


@dataclass
class _Label:
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
class _Arrow:
    msgs: list[_Msg]
    t: float
    delivered_t: float | None
    released_t: float | None
    ignored: bool = False
    y0: float = 0.0
    y1: float = 0.0
    yr: float = 0.0

    @property
    def first(self) -> _Msg:
        return self.msgs[0]


@dataclass
class _Side:
    role: str
    labels: list[_Label] = field(default_factory=list)
    states: list[tuple[float, str, str]] = field(default_factory=list)  # (t, state, from)
    making: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, how it ended)
    ticks: list[tuple[float, str, str]] = field(default_factory=list)  # (t, text, colour): a tick, no row
    ignored_seqs: set[str] = field(default_factory=set)


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _error_text(ev: _Event) -> str:
    d = ev.detail
    if ev.type == "api-error":
        what = _str(d.get("method")) or "call"
        if d.get("type"):
            what += f"({d.get('type')})"
        return f"{what}: {_str(d.get('name'))} {_str(d.get('message'))}".strip()
    errs = [_map(e) for e in _list(d.get("errors"))]
    if errs:
        return "; ".join(f"{_str(e.get('name'))}: {_str(e.get('message'))}" for e in errs)
    return _str(d.get("text")) or _str(d.get("message")) or _compact(d)


def _compact(d: Mapping) -> str:
    return ", ".join(f"{k}={_str(v)}" for k, v in d.items() if k not in ("pt", "stack"))


def _label_for(ev: _Event) -> tuple[str, str] | None:
    """(text, class) of an event's label; None for events the arrows already show."""
    d, typ = ev.detail, ev.type
    if typ in ("signal-sent", "signal-received", "console"):
        return None
    if typ == "signalingstatechange":
        return _str(d.get("state")) or "?", "state"
    if typ == "negotiationneeded":
        return "negotiationneeded", "nego"
    if typ == "offer-made":
        return "offer made (SLD)", "nego"
    if typ == "answer-made":
        return "answer made (SLD)", "nego"
    if typ == "remote-description-set":
        return f"remote {_str(d.get('type')) or 'description'} set", "nego"
    if typ == "rollback":
        return "↺ rollback", "rollback"
    if typ == "offer-ignored":
        return f"⊘ ignoreOffer: offer #{_str(d.get('seq'))} ignored", "ignored"
    if typ == "connectionstatechange":
        return f"connection {_str(d.get('state'))}", "conn"
    if typ == "iceconnectionstatechange":
        return f"ice {_str(d.get('state'))}", "conn"
    if typ in ("error", "api-error"):
        return f"✘ {_error_text(ev)}", "error"
    if "error" in typ:
        return f"✘ {typ}: {_error_text(ev)}", "error"
    if typ == "change":
        return f"change: {_str(d.get('action')) or _compact(d)}", "media"
    if typ == "track":
        return f"track {_str(d.get('kind'))} mid {_str(d.get('mid'))}", "media"
    if typ == "media-flowing":
        again = " (again, after a negotiation)" if d.get("again") else ""
        return f"media flowing {_str(d.get('kind'))} {_str(d.get('mid'))}".strip() + again, "media"
    if typ in ("datachannel", "channel-open", "channel-message"):
        return f"{typ} {_str(d.get('label'))}".strip(), "media"
    if typ == "attached":
        return f"attached (polite={_str(d.get('polite')).lower()})", "other"
    return f"{typ} {_compact(d)}".strip(), "other"


def _analyse(role: str, events: list[_Event], end_t: float) -> _Side:
    """Labels, signalingState intervals, makingOffer intervals and collisions of one peer."""
    side = _Side(role)
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
        if ev.type == "signal-received" and _str(d.get("kind")) == "offer":
            why = []
            if making_since is not None:
                why.append("makingOffer")
            if state != "stable":
                why.append(state)
            if why:
                side.labels.append(_Label(
                    role, ev.t, f"⚡ collision #{_str(d.get('seq'))} in {why[-1]}", "collision",
                    f"collision at {role}: offer #{_str(d.get('seq'))} arrived while {' and '.join(why)}"))
        elif ev.type == "negotiationneeded":
            close_making(offer_made_t or ev.t, "superseded")
            making_since = ev.t
        elif ev.type == "offer-made":
            offer_made_t = ev.t
        elif ev.type == "signal-sent" and _str(d.get("kind")) == "offer":
            close_making(ev.t, "offer sent")
        elif ev.type in ("error", "api-error", "fault-injected") and making_since is not None and _str(
                d.get("method")) in ("setLocalDescription", "createOffer"):
            close_making(ev.t, "failed" + (" (fault injected by the plan)" if ev.type == "fault-injected" else ""))
        elif ev.type == "offer-ignored":
            side.ignored_seqs.add(_str(d.get("seq")))
        elif ev.type == "signalingstatechange":
            state = _str(d.get("state")) or state
            side.states.append((ev.t, state, _str(d.get("from"))))
        elif ev.type == "console":
            side.ticks.append((ev.t, f"console {_str(d.get('level'))}: {_str(d.get('text'))}", "#9e9e9e"))
        elif ev.type == "api-error":
            last_api_error = (ev.t, f"{_str(d.get('name'))}: {_str(d.get('message'))}")
        elif "error" in ev.type and ev.t - last_api_error[0] < 0.1 and _error_text(ev) == last_api_error[1]:
            # the negotiator logging the api-error just shown: a tick, not a second row
            side.ticks.append((ev.t, f"{ev.type} ({_str(d.get('source'))}): {_error_text(ev)}", ERROR_RED))
            continue
        described = _label_for(ev)
        if described:
            text, cls = described
            title = f"{ev.type} at t={ev.t:.4f} s"
            if ev.raw_t is not None and abs(ev.raw_t - ev.t) > 0.0005:
                title += f" (page clock; reached the rig at {ev.raw_t:.4f} s)"
            extra = _compact(d)
            if extra:
                title += "\n" + _short(extra, 600)
            colour = STATE_COLOURS.get(text, "") if cls == "state" else ""
            side.labels.append(_Label(role, ev.t, text, cls, title, colour))
    if making_since is not None:
        close_making(offer_made_t or end_t, "offer made, never sent" if offer_made_t else "no offer made")
    return side


def _foldable(a: _Msg, b: _Msg) -> bool:
    return (a.kind == b.kind == "candidate" and a.sender == b.sender and a.to == b.to
            and a.held == b.held and a.released_t == b.released_t and a.note == b.note
            and not _special_note(a.note) and a.delivered_t is not None and b.delivered_t is not None
            and b.t - a.t <= FOLD_GAP_S)


def _special_note(note: str) -> bool:
    low = note.lower()
    return "drop" in low or "duplicate" in low or "lost" in low


def _arrows(messages: list[_Msg], ignored: set[tuple[str, str]]) -> list[_Arrow]:
    """One arrow per message, except runs of a sender's candidates, which share one."""
    arrows: list[_Arrow] = []
    open_run: dict[str, _Arrow] = {}  # sender -> its latest arrow, while foldable
    for m in sorted(messages, key=lambda m: m.t):
        last = open_run.get(m.sender)
        if last is not None and _foldable(last.msgs[-1], m):
            last.msgs.append(m)
            last.delivered_t = max(last.delivered_t or m.t, m.delivered_t or m.t)
            continue
        a = _Arrow([m], m.t, m.delivered_t, m.released_t if m.held else None,
                   ignored=(m.to, m.seq) in ignored)
        arrows.append(a)
        open_run[m.sender] = a
    return arrows


# --- layout --------------------------------------------------------------------------


@dataclass
class _Anchor:
    t: float
    order: int
    lane: str | None  # "row:<role>" or "arrow:<role>" or None
    need: float
    target: Any
    attr: str
    after: Any = None  # an arrow whose start this anchor must stay MIN_SLOPE below
    y: float = 0.0


def _text_w(text: str) -> float:
    return len(text) * CHAR_W


def _merge_repeats(labels: list[_Label]) -> list[_Label]:
    """A burst of the same label (ten identical addIceCandidate errors) becomes one, counted."""
    out: list[_Label] = []
    count = 1
    for lab in labels:
        prev = out[-1] if out else None
        if prev is not None and prev.text == lab.text and prev.cls == lab.cls and lab.t - prev.t <= 0.25:
            count += 1
            prev.title = prev.title.split("\n[repeated")[0] + f"\n[repeated {count} times, last at t={lab.t:.4f} s]"
            continue
        if prev is not None and count > 1:
            prev.text = f"{count}× {prev.text}" if prev.cls != "error" else f"✘ {count}× {prev.text[2:]}"
        count = 1
        out.append(lab)
    if out and count > 1:
        last = out[-1]
        last.text = f"{count}× {last.text}" if last.cls != "error" else f"✘ {count}× {last.text[2:]}"
    return out


def _rows(side: _Side) -> list[list[_Label]]:
    """Pack a side's labels into rows: close in time and within the column's width."""
    rows: list[list[_Label]] = []
    row_t = None
    width = 0.0
    chars = int(LABEL_COL / CHAR_W) - 1
    for lab in _merge_repeats(side.labels):
        more: list[str] = []
        if lab.cls == "error" and len(lab.text) > chars:  # errors get up to three lines
            lines = textwrap.wrap(" ".join(lab.text.split()), chars - 2, break_long_words=True)
            lab.text, more = lines[0], lines[1:]
            if len(more) > 2:
                more = [more[0], _short(" ".join(more[1:]), chars - 2)]
        lab.text = _short(lab.text, chars)
        w = _text_w(lab.text) + 10
        if rows and row_t is not None and lab.t - row_t <= CLUSTER_S and width + w <= LABEL_COL:
            rows[-1].append(lab)
            width += w
        else:
            rows.append([lab])
            row_t, width = lab.t, w
        for piece in more:
            rows.append([_Label(lab.role, lab.t, "  " + piece, lab.cls, lab.title, mark=False)])
            width = LABEL_COL  # nothing joins a wrapped line
    return rows


def _layout(sides: dict[str, _Side], rows: dict[str, list[list[_Label]]], arrows: list[_Arrow],
            top: float) -> tuple[float, list[tuple[float, float]], list[tuple[float, float]], list[_Anchor]]:
    anchors: list[_Anchor] = []
    n = 0

    def add(t: float | None, lane: str | None, need: float, target: Any, attr: str, after: Any = None) -> None:
        nonlocal n
        if t is not None:
            anchors.append(_Anchor(t, n, lane, need, target, attr, after))
            n += 1

    for role, side_rows in rows.items():
        for row in side_rows:
            add(row[0].t, f"row:{role}", LINE, row, "row")
    for a in arrows:
        add(a.t, "arrow", ARROW_LINE, a, "y0")  # one lane: labels from both sides meet mid-way
        add(a.released_t, None, 0, a, "yr", after=a)
        add(a.delivered_t, None, 0, a, "y1", after=a)
    for side in sides.values():
        for i, (t, _s, _f) in enumerate(side.states):
            add(t, None, 0, side.states, f"state{i}")
        for i, (t0, t1, _h) in enumerate(side.making):
            add(t0, None, 0, side.making, f"m0-{i}")
            add(t1, None, 0, side.making, f"m1-{i}")
        for i, (t, _x, _c) in enumerate(side.ticks):
            add(t, None, 0, side.ticks, f"tick{i}")
    anchors.sort(key=lambda a: (a.t, a.order))

    y = top
    prev_t = anchors[0].t if anchors else 0.0
    lanes: dict[str, float] = {}
    idle: list[tuple[float, float]] = []  # (y where the cut is drawn, seconds cut)
    times: list[tuple[float, float]] = []  # (y, t) for the time gutter
    for a in anchors:
        dt = a.t - prev_t
        if dt > IDLE_S:
            idle.append((y + IDLE_GAP / 2, dt))
            y += IDLE_GAP
        elif dt > 0:
            y += min(MAX_GAP, GAP_SCALE * math.sqrt(dt))
        if a.lane is not None:
            y = max(y, lanes.get(a.lane, -1e9) + a.need)
            lanes[a.lane] = y
        if a.after is not None:
            arrow = a.after
            slope = MIN_SLOPE_SDP if arrow.first.kind in ("offer", "answer") else MIN_SLOPE
            start = arrow.yr if (a.attr == "y1" and arrow.released_t is not None) else arrow.y0
            y = max(y, start + (slope if a.attr == "y1" else 4))
        a.y = y
        prev_t = a.t
        if a.attr == "row":
            for lab in a.target:
                lab.y = y
        elif a.attr in ("y0", "y1", "yr"):
            setattr(a.target, a.attr, y)
        if a.lane is not None:
            times.append((y, a.t))
    return y, idle, times, anchors


# --- SVG -------------------------------------------------------------------------------

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(value: Any) -> str:
    text = _XML_BAD.sub("?", _str(value))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _title(text: str) -> str:
    return f"<title>{_esc(text)}</title>"


def _secs(t: float | None) -> str:
    return "—" if t is None else f"{t:.4f} s"


def _arrow_title(a: _Arrow) -> str:
    lines = []
    for m in a.msgs:
        head = f"#{m.seq} {m.kind} {m.sender} → {m.to}"
        if m.sdp_type:
            head += f" (SDP type {m.sdp_type})"
        lines.append(head)
        lines.append(f"  sent {_secs(m.t)}"
                     + (f", held until {_secs(m.released_t)}" if m.held else "")
                     + f", delivered {_secs(m.delivered_t)}, {m.size} bytes")
        if m.note:
            lines.append(f"  note: {m.note}")
    if a.ignored:
        lines.append("ignored by the receiver (ignoreOffer)")
    return "\n".join(lines)


def _arrow_label(a: _Arrow) -> str:
    m = a.first
    if len(a.msgs) > 1:
        text = f"{len(a.msgs)} candidates #{m.seq}–#{a.msgs[-1].seq}"
    else:
        text = f"{m.sdp_type or m.kind} #{m.seq}"
    if m.held:
        text += " (queued)" if m.note.startswith("queued") else " (held)"
    low = m.note.lower()
    if "duplicate" in low:
        text += " (duplicate)"
    if "drop" in low or "lost" in low:
        text += " ✕ dropped"
    if a.ignored:
        text += " ⊘ ignored"
    return text


def _draw_arrow(a: _Arrow, out: list[str]) -> None:
    m = a.first
    kind = m.kind if m.kind in KIND_COLOURS else "other"
    colour = KIND_COLOURS[kind]
    x0 = X.get(m.sender, (X["polite"] + X["impolite"]) / 2)
    if m.to in X:
        x1 = X[m.to]
    else:  # to the stub itself (a refused join, an error): ends mid-way
        x1 = (X["polite"] + X["impolite"]) / 2
    toward = 1 if x1 >= x0 else -1
    dropped = _special_note(m.note) and "duplicate" not in m.note.lower() or a.delivered_t is None
    classes = ["msg", f"msg-{kind}"]
    if len(a.msgs) > 1:
        classes.append("fold")
    if m.held:
        classes.append("held")
    if dropped:
        classes.append("dropped")
    if a.ignored:
        classes.append("ignored")
    seqs = " ".join(x.seq for x in a.msgs)
    width = 2 if kind in ("offer", "answer") else 1.2
    out.append(f'<g class="{" ".join(classes)}" data-seq="{_esc(seqs)}">{_title(_arrow_title(a))}')
    y0 = a.y0
    xs, ys = x0, y0
    if m.held and a.released_t is not None:
        xh = x0 + toward * HOLD_DX
        out.append(f'<path d="M{_f(x0)} {_f(y0)}H{_f(xh)}" stroke="{colour}" stroke-width="{width}" fill="none"/>')
        out.append(f'<path class="hold" d="M{_f(xh)} {_f(y0)}V{_f(a.yr)}" stroke="#d98b00" stroke-width="3" '
                   f'stroke-dasharray="3 2" fill="none"/>')
        out.append(f'<rect x="{_f(xh - 4)}" y="{_f(y0 - 2)}" width="8" height="4" fill="#d98b00"/>')
        xs, ys = xh, a.yr
    dash = ' stroke-dasharray="5 3"' if kind == "candidate" else ""
    if dropped:
        y_end = a.y1 if a.delivered_t is not None else ys + 2 * MIN_SLOPE
        xe = xs + (x1 - xs) * 0.6
        ye = ys + (y_end - ys) * 0.6
        out.append(f'<path d="M{_f(xs)} {_f(ys)}L{_f(xe)} {_f(ye)}" stroke="{colour}" stroke-width="{width}"'
                   f'{dash} fill="none"/>')
        out.append(f'<text x="{_f(xe)}" y="{_f(ye + 4)}" text-anchor="middle" class="err">✕</text>')
    else:
        out.append(f'<path d="M{_f(xs)} {_f(ys)}L{_f(x1)} {_f(a.y1)}" stroke="{colour}" stroke-width="{width}"'
                   f'{dash} fill="none" marker-end="url(#arrow-{kind})"/>')
        if a.ignored:
            out.append(f'<text x="{_f(x1 - toward * 16)}" y="{_f(a.y1 + 4)}" text-anchor="middle" '
                       f'class="ev-ignored">⊘</text>')
    lx = x0 + toward * 16
    anchor = "start" if toward > 0 else "end"
    out.append(f'<text class="mlabel" x="{_f(lx)}" y="{_f(y0 - 3)}" text-anchor="{anchor}" '
               f'fill="{colour}" style="fill:{colour}">{_esc(_arrow_label(a))}</text>')
    out.append("</g>")


_MARKS = {  # lifeline marks of the events that are the point of perfect negotiation
    "rollback": ('<circle cx="{x}" cy="{y}" r="6" fill="#fff" stroke="#6a1b9a" stroke-width="2.5"/>'
                 '<path d="M{x} {ym}l3 -2v4z" fill="#6a1b9a"/>'),
    "ignored": ('<circle cx="{x}" cy="{y}" r="6" fill="#fff" stroke="#8a5a00" stroke-width="2"/>'
                '<path d="M{xl} {yb}L{xr} {yt}" stroke="#8a5a00" stroke-width="2"/>'),
    "collision": '<path d="M{x} {yt6}L{xr6} {y}L{x} {yb6}L{xl6} {y}Z" fill="#d84315" stroke="#fff" stroke-width="1"/>',
    "error": '<circle cx="{x}" cy="{y}" r="5" fill="#c62828"/>',  # = ERROR_RED
}


def _mark(cls: str, x: float, y: float) -> str:
    tpl = _MARKS.get(cls)
    if not tpl:
        return ""
    return tpl.format(x=_f(x), y=_f(y), ym=_f(y - 6), xl=_f(x - 4), xr=_f(x + 4), yt=_f(y - 4), yb=_f(y + 4),
                      xl6=_f(x - 7), xr6=_f(x + 7), yt6=_f(y - 7), yb6=_f(y + 7))


def _first_unmet(checks: Any) -> Mapping | None:
    for ch in _list(checks):
        if isinstance(ch, Mapping) and not ch.get("ok"):
            return ch
    return None


def render(detail: Mapping) -> str:
    """The case's sequence diagram as one `<svg class="seq-diagram">` element."""
    detail = _map(detail)
    case = _map(detail.get("case"))
    events_raw = _map(detail.get("events"))
    messages = _messages(detail.get("messages"))
    events = {role: _events(events_raw.get(role), role, messages) for role in ROLES}

    all_t = [e.t for evs in events.values() for e in evs]
    for m in messages:
        all_t += [t for t in (m.t, m.released_t, m.delivered_t) if t is not None]
    end_t = max(all_t) if all_t else 0.0
    start_t = min(all_t) if all_t else 0.0

    sides = {role: _analyse(role, events[role], end_t) for role in ROLES}
    ignored = {(role, s) for role in ROLES for s in sides[role].ignored_seqs}
    arrows = _arrows(messages, ignored)
    rows = {role: _rows(sides[role]) for role in ROLES}

    unmet = _first_unmet(detail.get("checks"))
    top = 150 if unmet else 118
    bottom_y, idle, times, anchors = _layout(sides, rows, arrows, top + 16)
    y_of_t = sorted((a.t, a.y) for a in anchors)

    def y_at(t: float) -> float:
        # the y of the first anchor at or after t (every drawn instant is an anchor)
        lo, hi = 0, len(y_of_t)
        while lo < hi:
            mid = (lo + hi) // 2
            if y_of_t[mid][0] < t:
                lo = mid + 1
            else:
                hi = mid
        return y_of_t[lo][1] if lo < len(y_of_t) else bottom_y

    line_end = bottom_y + 30
    height = line_end + 46
    out: list[str] = []
    label = f"Sequence diagram of {_str(case.get('id')) or 'the case'}"
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" class="seq-diagram" width="{WIDTH}" height="{_f(height)}" '
               f'viewBox="0 0 {WIDTH} {_f(height)}" role="img" aria-label="{_esc(label)}">')
    out.append(_title(label))
    out.append(f"<style>{_STYLE}</style>")
    out.append("<defs>")
    for kind, colour in KIND_COLOURS.items():
        out.append(f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                   f'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="{colour}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect x="0" y="0" width="{WIDTH}" height="{_f(height)}" fill="#fff"/>')

    # Heads of the lifelines.
    for role in ROLES:
        peer = _map(case.get(role))
        x = X[role]
        kind = _str(peer.get("kind")) or _str(peer.get("spec")) or "?"
        sub = " ".join(p for p in (kind, _str(peer.get("version"))) if p)
        uid = _str(peer.get("user_id"))
        out.append(f'<g class="lifeline-head" data-role="{role}">'
                   f'{_title(f"{role} peer: {sub}" + (f", user id {uid}" if uid else ""))}'
                   f'<rect x="{x - 110}" y="8" width="220" height="44" rx="5" fill="#f4f6f8" stroke="#90a4ae"/>'
                   f'<text class="head" x="{x}" y="26" text-anchor="middle">{_esc(role)}</text>'
                   f'<text class="sub" x="{x}" y="43" text-anchor="middle">{_esc(sub)}'
                   f'{_esc(f" · user {uid}") if uid else ""}</text></g>')
    _legend(out, 64)
    if unmet:
        _unmet_banner(out, unmet, top - 52)

    # Lifelines: a thin line, the signalingState band over it, makingOffer beside it.
    for role in ROLES:
        side, x = sides[role], X[role]
        out.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{_f(line_end)}" stroke="#90a4ae" stroke-width="1"/>')
        spans = [(start_t, "stable", "")] + side.states
        for i, (t, state, prev) in enumerate(spans):
            y0 = top if i == 0 else y_at(t)
            y1 = y_at(spans[i + 1][0]) if i + 1 < len(spans) else line_end
            if y1 - y0 <= 0:
                continue
            colour = STATE_COLOURS.get(state, "#e0e0e0")
            tip = f"{role} signalingState {state} from {t:.4f} s" + (f" (was {prev})" if prev else "")
            out.append(f'<rect class="state" data-state="{_esc(state)}" x="{x - 5}" y="{_f(y0)}" width="10" '
                       f'height="{_f(y1 - y0)}" fill="{colour}">{_title(tip)}</rect>')
        inward = 1 if role == "polite" else -1
        for t0, t1, how in side.making:
            y0, y1 = y_at(t0), y_at(t1)
            xb = x + inward * 9 - (4 if inward < 0 else 0)
            out.append(f'<rect class="making-offer" x="{_f(xb)}" y="{_f(y0)}" width="4" '
                       f'height="{_f(max(y1 - y0, 3))}" fill="#ef6c00">'
                       f'{_title(f"{role} makingOffer = true from {t0:.4f} s to {t1:.4f} s ({how})")}</rect>')
        for t, text, colour in side.ticks:
            y = y_at(t)
            xt = x - 8 if role == "polite" else x + 13
            out.append(f'<path class="tick-mark" d="M{xt} {_f(y)}h-5" stroke="{colour}" stroke-width="2">'
                       f'{_title(f"{t:.4f} s {_short(text, 300)}")}</path>')

    for y, dt in idle:
        out.append(f'<g class="idle-cut">{_title(f"{dt:.3f} s with nothing recorded, cut out of the time axis")}'
                   f'<rect x="{GUTTER}" y="{_f(y - 5)}" width="{WIDTH - GUTTER - 6}" height="10" fill="#fafafa"/>'
                   f'<text class="idle" x="{(X["polite"] + X["impolite"]) / 2}" y="{_f(y + 4)}" '
                   f'text-anchor="middle">≈ {dt:.2f} s idle ≈</text></g>')

    last, last_text = -1e9, ""
    for y, t in times:
        text = f"{t:.3f}"
        if y - last >= 11 and text != last_text:
            out.append(f'<text class="tick" x="4" y="{_f(y + 4)}">{text}</text>')
            last, last_text = y, text
    out.append(f'<text class="tick" x="4" y="{top - 2}">t (s)</text>')

    for a in arrows:
        _draw_arrow(a, out)

    # Event labels and their marks on the lifeline.
    for role in ROLES:
        x = X[role]
        for row in rows[role]:
            pos = x + 12
            if role == "polite":  # right-aligned as a block, read left to right in time order
                pos = x - 12 - sum(_text_w(lab.text) + 10 for lab in row) + 10
            for lab in row:
                w = _text_w(lab.text)
                lab.x, pos = pos, pos + w + 10
                if lab.colour:
                    fill = f' style="fill:{_darken(lab.colour)}"'
                elif lab.cls == "error":
                    fill = f' fill="{ERROR_RED}"'
                else:
                    fill = ""
                mark = _mark(lab.cls, x, lab.y) if lab.mark else ""
                out.append(f'<g class="ev ev-{lab.cls}">{_title(lab.title)}{mark}'
                           f'<text class="ev-{lab.cls}" x="{_f(lab.x)}" y="{_f(lab.y + 4)}"{fill}>'
                           f'{_esc(lab.text)}</text></g>')

    if unmet:
        _unmet_marker(out, unmet, line_end)
    out.append("</svg>")
    return "".join(out)


def _darken(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"#{int(r * 0.55):02x}{int(g * 0.55):02x}{int(b * 0.55):02x}"


def _legend(out: list[str], y: int) -> None:
    x = 8
    parts: list[str] = []
    for state, colour in STATE_COLOURS.items():
        if state in ("have-local-pranswer", "have-remote-pranswer", "closed"):
            continue
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="12" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{y + 1}">{state}</text>')
        x += 14 + len(state) * CHAR_W + 14
    parts.append(f'<rect x="{x}" y="{y - 9}" width="4" height="12" fill="#ef6c00"/>'
                 f'<text x="{x + 8}" y="{y + 1}">makingOffer</text>')
    x += 8 + 11 * CHAR_W + 14
    for cls, text in (("collision", "collision"), ("rollback", "rollback"), ("ignored", "ignored offer"),
                      ("error", "error")):
        parts.append(_mark(cls, x + 6, y - 3) + f'<text x="{x + 16}" y="{y + 1}" class="ev-{cls}">{text}</text>')
        x += 16 + len(text) * CHAR_W + 14
    y2 = y + 18
    x = 8
    for kind in ("offer", "answer", "candidate"):
        colour = KIND_COLOURS[kind]
        dash = ' stroke-dasharray="5 3"' if kind == "candidate" else ""
        parts.append(f'<path d="M{x} {y2 - 3}h26" stroke="{colour}" stroke-width="2"{dash} '
                     f'marker-end="url(#arrow-{kind})"/><text x="{x + 32}" y="{y2 + 1}">{kind}</text>')
        x += 32 + len(kind) * CHAR_W + 14
    parts.append(f'<path d="M{x} {y2 - 7}v9" stroke="#d98b00" stroke-width="3" stroke-dasharray="3 2"/>'
                 f'<text x="{x + 8}" y="{y2 + 1}">held by the stub</text>')
    x += 8 + 16 * CHAR_W + 14
    parts.append(f'<text x="{x}" y="{y2 + 1}" class="sub">time runs down, idle gaps compressed; '
                 f'hover any mark for details</text>')
    out.append('<g class="legend">' + "".join(parts) + "</g>")


def _unmet_banner(out: list[str], check: Mapping, y: float) -> None:
    name = _str(check.get("name"))
    det = _str(check.get("detail"))
    text = _short(f"✘ first unmet invariant: {name}" + (f" — {det}" if det else ""), 150)
    out.append(f'<g class="unmet" data-check="{_esc(name)}">{_title(f"first unmet invariant: {name}: {det}")}'
               f'<rect x="4" y="{_f(y)}" width="{WIDTH - 8}" height="24" rx="4" fill="#fdecea" stroke="#c62828"/>'
               f'<text x="12" y="{_f(y + 16)}">{_esc(text)}</text></g>')


def _unmet_marker(out: list[str], check: Mapping, y: float) -> None:
    """The end of the lifeline the check is about: most checks judge a peer's final state."""
    name = _str(check.get("name"))
    found = re.search(r"\b(impolite|polite)\b", name)
    roles = [found.group(1)] if found else list(ROLES)
    for role in roles:
        x = X[role]
        out.append(f'<g class="unmet-end" data-check="{_esc(name)}">{_title(f"first unmet invariant: {name}")}'
                   f'<path d="M{x - 9} {_f(y - 9)}l18 18M{x + 9} {_f(y - 9)}l-18 18" stroke="#c62828" '
                   f'stroke-width="3"/><text x="{x}" y="{_f(y + 24)}" text-anchor="middle" class="err">'
                   f'{_esc(_short("unmet: " + name, 40))}</text></g>')
