"""The index's picture of "since which version": each engine version's pass share, as an inline
SVG (no script, no fetch: it opens from disk under the pages' Content-Security-Policy).

A version's share is over the cases it took part in, either role: how many of them behaved
correctly (passed, or xpassed: the behaviour passed although a finding was expected) out of
those judged (passed, xpassed, failed, xfailed, error). Unsupported and not-run cases were not
attempted and count for neither. The bar is split by what the rest were: expected failures
(a known finding explained them) and unexpected ones, so a version whose share drops because of
a known finding reads differently from one that broke.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from rig.model import CaseSummary
from rig.versions import version_key

GOOD, KNOWN, BAD = ("passed", "xpassed"), ("xfailed",), ("failed", "error")
ROW_H, LABEL_W, BAR_W, TEXT_W = 22, 250, 520, 190
COLOURS = {"good": "#5fb36d", "known": "#e8b64c", "bad": "#d05454"}


@dataclass
class Share:
    kind: str
    version: str
    good: int = 0
    known: int = 0
    bad: int = 0

    @property
    def judged(self) -> int:
        return self.good + self.known + self.bad


def shares(cases: Iterable[CaseSummary]) -> list[Share]:
    """One Share per engine version the cases ran, ordered by engine, then version."""
    found: dict[tuple[str, str], Share] = {}
    for case in cases:
        for peer in {(case.polite.kind, case.polite.version), (case.impolite.kind, case.impolite.version)}:
            kind, version = peer
            share = found.setdefault((kind, version or "?"), Share(kind, version or "?"))
            if case.outcome in GOOD:
                share.good += 1
            elif case.outcome in KNOWN:
                share.known += 1
            elif case.outcome in BAD:
                share.bad += 1
    return sorted((s for s in found.values() if s.judged),
                  key=lambda s: (s.kind, version_key(s.version), s.version))


def svg(cases: Iterable[CaseSummary]) -> str:
    """The picture: a bar per engine version, green share first, then known, then unexpected."""
    rows = shares(cases)
    if not rows:
        return ""
    width, height = LABEL_W + BAR_W + TEXT_W, ROW_H * len(rows) + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12">',
           "<title>pass share by engine version</title>"]
    for i, s in enumerate(rows):
        y = 2 + i * ROW_H
        x = LABEL_W
        out.append(f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">{escape(s.kind)} {escape(s.version)}</text>')
        for part in ("good", "known", "bad"):
            n = getattr(s, part)
            w = round(BAR_W * n / s.judged, 1)
            if w:
                out.append(f'<rect x="{x}" y="{y + 3}" width="{w}" height="{ROW_H - 6}" fill="{COLOURS[part]}">'
                           f"<title>{escape(s.kind)} {escape(s.version)}: {n} of {s.judged} {part}</title></rect>")
            x += w
        pct = round(100 * s.good / s.judged)
        out.append(f'<text x="{LABEL_W + BAR_W + 8}" y="{y + 15}">{pct} % passed ({s.good} of {s.judged}'
                   f'{f", {s.bad} unexpected" if s.bad else ""})</text>')
    out.append("</svg>")
    return "\n".join(out)
