"""Sequence diagram of one case, drawn as inline SVG for its report page.

The tables on a case page hold every fact, but glare is a matter of order: which offer
left first, what each peer was doing when the other's offer landed, who rolled back.
A two-lifeline diagram shows that at a glance. It is a pure function of the case's
record (rig.model.CaseDetail) so the unit tests can check it without a browser, and it emits plain SVG
(no script, no external style) because the report opens from disk under a strict CSP.

Readability choices, so that a ten-round stress case stays legible:

- the time axis is not linear: the gap between two consecutive instants is drawn with
  height ~ sqrt(gap), capped, and idle stretches are cut out and labelled;
- labels claim rows; an instant is pushed down when its side's label lane is still
  occupied, so labels never overlap (time stays monotonic, only the scale bends);
- events of one peer within a few milliseconds of each other share a row;
- consecutive trickled candidates of one sender are folded into one arrow;
- signalingState is the colour of the lifeline itself, not a label per change.

What the diagram says (events on one clock, labels, spans, arrows) is read from the record
in rig.sequence; this module lays it out on the bent time axis and draws it.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from .model import CaseDetail, CaseSummary, Check, PeerInfo
from .sequence import (
    ERROR_RED,
    STATE_COLOURS,
    Arrow,
    Label,
    Side,
    analyse,
    as_text,
    finite_number,
    fold_arrows,
    lost_or_duplicate,
    read_events,
    read_messages,
    short,
)
from .vocab import ROLES

__all__ = ["ERROR_RED", "KIND_COLOURS", "STATE_COLOURS", "finite_number", "render"]

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


def _merge_repeats(labels: list[Label]) -> list[Label]:
    """A burst of the same label (ten identical addIceCandidate errors) becomes one, counted."""
    out: list[Label] = []
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


def _rows(side: Side) -> list[list[Label]]:
    """Pack a side's labels into rows: close in time and within the column's width."""
    rows: list[list[Label]] = []
    row_t = None
    width = 0.0
    chars = int(LABEL_COL / CHAR_W) - 1
    for lab in _merge_repeats(side.labels):
        more: list[str] = []
        if lab.cls == "error" and len(lab.text) > chars:  # errors get up to three lines
            lines = textwrap.wrap(" ".join(lab.text.split()), chars - 2, break_long_words=True)
            lab.text, more = lines[0], lines[1:]
            if len(more) > 2:
                more = [more[0], short(" ".join(more[1:]), chars - 2)]
        lab.text = short(lab.text, chars)
        w = _text_w(lab.text) + 10
        if rows and row_t is not None and lab.t - row_t <= CLUSTER_S and width + w <= LABEL_COL:
            rows[-1].append(lab)
            width += w
        else:
            rows.append([lab])
            row_t, width = lab.t, w
        for piece in more:
            rows.append([Label(lab.role, lab.t, "  " + piece, lab.cls, lab.title, mark=False)])
            width = LABEL_COL  # nothing joins a wrapped line
    return rows


def _layout(sides: dict[str, Side], rows: dict[str, list[list[Label]]], arrows: list[Arrow],
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
    text = _XML_BAD.sub("?", as_text(value))
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _title(text: str) -> str:
    return f"<title>{_esc(text)}</title>"


def _secs(t: float | None) -> str:
    return "—" if t is None else f"{t:.4f} s"


def _arrow_title(a: Arrow) -> str:
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


def _arrow_label(a: Arrow) -> str:
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


def _draw_arrow(a: Arrow, out: list[str]) -> None:
    m = a.first
    kind = m.kind if m.kind in KIND_COLOURS else "other"
    colour = KIND_COLOURS[kind]
    x0 = X.get(m.sender, (X["polite"] + X["impolite"]) / 2)
    if m.to in X:
        x1 = X[m.to]
    else:  # to the stub itself (a refused join, an error): ends mid-way
        x1 = (X["polite"] + X["impolite"]) / 2
    toward = 1 if x1 >= x0 else -1
    dropped = lost_or_duplicate(m.note) and "duplicate" not in m.note.lower() or a.delivered_t is None
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


def render(detail: CaseDetail) -> str:
    """The case's sequence diagram as one `<svg class="seq-diagram">` element."""
    case = detail.case
    messages = read_messages(detail.messages)
    events = {role: read_events(detail.events.get(role, []), role, messages) for role in ROLES}

    all_t = [e.t for evs in events.values() for e in evs]
    for m in messages:
        all_t += [t for t in (m.t, m.released_t, m.delivered_t) if t is not None]
    end_t = max(all_t) if all_t else 0.0
    start_t = min(all_t) if all_t else 0.0

    sides = {role: analyse(role, events[role], end_t) for role in ROLES}
    ignored = {(role, s) for role in ROLES for s in sides[role].ignored_seqs}
    arrows = fold_arrows(messages, ignored)
    rows = {role: _rows(sides[role]) for role in ROLES}

    unmet = next((c for c in detail.checks if not c.ok), None)
    top = 150 if unmet else 118
    bottom_y, idle, times, anchors = _layout(sides, rows, arrows, top + 16)
    axis = _Axis(sorted((a.t, a.y) for a in anchors), bottom_y)
    line_end = bottom_y + 30
    out: list[str] = []
    _open_svg(out, f"Sequence diagram of {case.id or 'the case'}", line_end + 46)
    _heads(out, case)
    _legend(out, 64)
    if unmet:
        _unmet_banner(out, unmet, top - 52)
    for role in ROLES:
        _lifeline(out, sides[role], axis, start_t, top, line_end)
    _idle_cuts(out, idle)
    _time_gutter(out, times, top)
    for a in arrows:
        _draw_arrow(a, out)
    for role in ROLES:
        _event_labels(out, role, rows[role])
    if unmet:
        _unmet_marker(out, unmet, line_end)
    out.append("</svg>")
    return "".join(out)


@dataclass
class _Axis:
    """Time to y on the bent axis: the y of the first anchor at or after t (every drawn
    instant is an anchor), the bottom after the last."""
    y_of_t: list[tuple[float, float]]
    bottom_y: float

    def __call__(self, t: float) -> float:
        lo, hi = 0, len(self.y_of_t)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.y_of_t[mid][0] < t:
                lo = mid + 1
            else:
                hi = mid
        return self.y_of_t[lo][1] if lo < len(self.y_of_t) else self.bottom_y


def _open_svg(out: list[str], label: str, height: float) -> None:
    """The svg element, its title and style, the arrow heads of each kind, a white ground."""
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


def _heads(out: list[str], case: CaseSummary) -> None:
    """The heads of the lifelines: role, peer kind and version, user id."""
    for role in ROLES:
        peer: PeerInfo = getattr(case, role)
        x = X[role]
        kind = peer.kind or peer.spec or "?"
        sub = " ".join(p for p in (kind, peer.version) if p)
        uid = as_text(peer.user_id)
        out.append(f'<g class="lifeline-head" data-role="{role}">'
                   f'{_title(f"{role} peer: {sub}" + (f", user id {uid}" if uid else ""))}'
                   f'<rect x="{x - 110}" y="8" width="220" height="44" rx="5" fill="#f4f6f8" stroke="#90a4ae"/>'
                   f'<text class="head" x="{x}" y="26" text-anchor="middle">{_esc(role)}</text>'
                   f'<text class="sub" x="{x}" y="43" text-anchor="middle">{_esc(sub)}'
                   f'{_esc(f" · user {uid}") if uid else ""}</text></g>')


def _lifeline(out: list[str], side: Side, axis: _Axis, start_t: float, top: float, line_end: float) -> None:
    """A thin line, the signalingState band over it, makingOffer beside it, ticks for what takes no row."""
    role, x = side.role, X[side.role]
    out.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{_f(line_end)}" stroke="#90a4ae" stroke-width="1"/>')
    spans = [(start_t, "stable", "")] + side.states
    for i, (t, state, prev) in enumerate(spans):
        y0 = top if i == 0 else axis(t)
        y1 = axis(spans[i + 1][0]) if i + 1 < len(spans) else line_end
        if y1 - y0 <= 0:
            continue
        colour = STATE_COLOURS.get(state, "#e0e0e0")
        tip = f"{role} signalingState {state} from {t:.4f} s" + (f" (was {prev})" if prev else "")
        out.append(f'<rect class="state" data-state="{_esc(state)}" x="{x - 5}" y="{_f(y0)}" width="10" '
                   f'height="{_f(y1 - y0)}" fill="{colour}">{_title(tip)}</rect>')
    inward = 1 if role == "polite" else -1
    for t0, t1, how in side.making:
        y0, y1 = axis(t0), axis(t1)
        xb = x + inward * 9 - (4 if inward < 0 else 0)
        out.append(f'<rect class="making-offer" x="{_f(xb)}" y="{_f(y0)}" width="4" '
                   f'height="{_f(max(y1 - y0, 3))}" fill="#ef6c00">'
                   f'{_title(f"{role} makingOffer = true from {t0:.4f} s to {t1:.4f} s ({how})")}</rect>')
    for t, text, colour in side.ticks:
        y = axis(t)
        xt = x - 8 if role == "polite" else x + 13
        out.append(f'<path class="tick-mark" d="M{xt} {_f(y)}h-5" stroke="{colour}" stroke-width="2">'
                   f'{_title(f"{t:.4f} s {short(text, 300)}")}</path>')


def _idle_cuts(out: list[str], idle: list[tuple[float, float]]) -> None:
    for y, dt in idle:
        out.append(f'<g class="idle-cut">{_title(f"{dt:.3f} s with nothing recorded, cut out of the time axis")}'
                   f'<rect x="{GUTTER}" y="{_f(y - 5)}" width="{WIDTH - GUTTER - 6}" height="10" fill="#fafafa"/>'
                   f'<text class="idle" x="{(X["polite"] + X["impolite"]) / 2}" y="{_f(y + 4)}" '
                   f'text-anchor="middle">≈ {dt:.2f} s idle ≈</text></g>')


def _time_gutter(out: list[str], times: list[tuple[float, float]], top: float) -> None:
    """Times down the left edge, one where there is room and the text changes."""
    last, last_text = -1e9, ""
    for y, t in times:
        text = f"{t:.3f}"
        if y - last >= 11 and text != last_text:
            out.append(f'<text class="tick" x="4" y="{_f(y + 4)}">{text}</text>')
            last, last_text = y, text
    out.append(f'<text class="tick" x="4" y="{top - 2}">t (s)</text>')


def _event_labels(out: list[str], role: str, rows: list[list[Label]]) -> None:
    """A side's labels, row by row, and their marks on the lifeline."""
    x = X[role]
    for row in rows:
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


def _unmet_banner(out: list[str], check: Check, y: float) -> None:
    name, det = check.name, check.detail
    text = short(f"✘ first unmet invariant: {name}" + (f" — {det}" if det else ""), 150)
    out.append(f'<g class="unmet" data-check="{_esc(name)}">{_title(f"first unmet invariant: {name}: {det}")}'
               f'<rect x="4" y="{_f(y)}" width="{WIDTH - 8}" height="24" rx="4" fill="#fdecea" stroke="#c62828"/>'
               f'<text x="12" y="{_f(y + 16)}">{_esc(text)}</text></g>')


def _unmet_marker(out: list[str], check: Check, y: float) -> None:
    """The end of the lifeline the check is about: most checks judge a peer's final state."""
    name = check.name
    found = re.search(r"\b(impolite|polite)\b", name)
    roles = [found.group(1)] if found else list(ROLES)
    for role in roles:
        x = X[role]
        out.append(f'<g class="unmet-end" data-check="{_esc(name)}">{_title(f"first unmet invariant: {name}")}'
                   f'<path d="M{x - 9} {_f(y - 9)}l18 18M{x + 9} {_f(y - 9)}l-18 18" stroke="#c62828" '
                   f'stroke-width="3"/><text x="{x}" y="{_f(y + 24)}" text-anchor="middle" class="err">'
                   f'{_esc(short("unmet: " + name, 40))}</text></g>')
