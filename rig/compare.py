"""``rig compare OLD NEW``: what changed between two runs, cell by cell.

A cell is a scenario on an ordered pair of peers, each named by kind and release line
(``chromium 147``, ``aiortc 1.14``: a version matrix's cells match across runs by version); with ``--repeat`` it holds several
cases, and what matters is how many of them passed, so two runs are compared by the
outcomes of each cell's cases (how many of each), not by single ticks. The exit status
gates CI: 1 when NEW has a failure that OLD did not, so a run is judged against the last
good one instead of against an all-green ideal that expected failures never reach.

An intermittent finding is allowed to hit a cell now and then, but not more and more
often: each finding's hit rate (runs of the cell that it explained, over the runs that
were attempted) is compared too. A rate that rose is its own kind of change ("hit rate
rose"); it fails the comparison when it rose by more than ``--hit-rate-threshold``
(default 0.10, absolute: 1/20 -> 5/20 fails, 1/20 -> 2/20 does not) on a cell with at
least ``--hit-rate-min-runs`` runs (default 5; with fewer, one hit is a 100 % rate and
says nothing yet, so it is listed but does not gate).

A NEW that lacks cells OLD had is not a comparison of the same matrix: a scenario or a peer
left out (a typo, a shard, a job that was cut short) would otherwise read as "nothing got
worse". Such a comparison exits with its own status, 3 (EXIT_REMOVED), naming how many cells
and a few of them, unless ``--allow-removed`` says the smaller matrix is meant. A cell whose
peer moved to another release line (chromium 147 -> 156, a browser update) is not lost: it
is matched by a NEW cell of the same scenario and peer kinds. A new failure outranks it
(exit status 1).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import SchemaError, parse_run, read_json
from .report import environment
from .results import OUTCOMES, slug
from .versions import line, version_key
from .vocab import COMPARE_FILE, RESULTS_FILE

#: Outcomes that fail a run: a cell that reaches one of these is failing (not-run: a partial run
#: is never a green one).
BAD = ("failed", "error", "xpassed", "not-run")
#: Kinds of change, most urgent first: the order of the table and of the exit decision.
KINDS = ("new failure", "hit rate rose", "fixed", "outcome", "pass rate", "expectation", "added", "removed")
HIT_RATE_THRESHOLD, HIT_RATE_MIN_RUNS = 0.10, 5
#: Kinds listed only up to QUIET_LINES lines each in the terminal (the HTML has them all).
QUIET, QUIET_LINES = ("added", "removed"), 10
_TEMPLATES = pathlib.Path(__file__).resolve().with_name("templates")
#: Exit statuses: a regression (a new failure, a hit rate past the threshold); bad input;
#: NEW lacks cells OLD had (and no regression).
EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_REMOVED = 1, 2, 3
#: How many of the lost cells the message names.
LOST_NAMED = 3


class CompareError(Exception):
    """Input that is not a run: the CLI turns it into one line and exit status 2."""


@dataclass(frozen=True, order=True)
class CellKey:
    scenario: str
    polite: str
    impolite: str

    def __str__(self) -> str:
        return f"{self.scenario} [{self.polite} polite x {self.impolite} impolite]"


@dataclass
class Cell:
    """One side's cases of a cell: outcome counts over repeats, and the case pages."""

    counts: dict[str, int] = field(default_factory=dict)
    expected: set[str] = field(default_factory=set)
    pages: list[tuple[str, str]] = field(default_factory=list)  # (label, case page path) per case
    hits: dict[str, int] = field(default_factory=dict)  # finding id -> runs it explained (xfailed)
    intermittent: bool = False  # the cell's findings are all intermittent (expected "xfail or pass")

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @property
    def passed(self) -> int:
        return self.counts.get("passed", 0)

    @property
    def failing(self) -> bool:
        return any(self.counts.get(o) for o in BAD)

    def rate(self) -> float:
        return self.passed / self.n if self.n else 0.0

    @property
    def attempted(self) -> int:
        return self.n - self.counts.get("unsupported", 0) - self.counts.get("not-run", 0)

    def hit_rate(self, finding: str) -> float:
        return self.hits.get(finding, 0) / self.attempted if self.attempted else 0.0

    def text(self) -> str:
        """``passed`` for a single run; ``3/5 passed, 2 failed`` over repeats."""
        if self.n == 1:
            return self.outcomes()[0]
        rest = "".join(f", {self.counts[o]} {o}" for o in OUTCOMES if o != "passed" and self.counts.get(o))
        return f"{self.passed}/{self.n} passed{rest}"

    def outcomes(self) -> list[str]:
        return [o for o in OUTCOMES if self.counts.get(o)]


@dataclass
class Run:
    path: pathlib.Path  # the results.json read
    cells: dict[CellKey, Cell]
    versions: dict[str, str]
    started: str
    cases: int
    build: str = ""  # the CI build that made it (RunRecord.build), "" for a local run


@dataclass
class Change:
    kind: str
    key: CellKey
    old: Cell | None
    new: Cell | None

    findings: tuple[tuple[str, float, float], ...] = ()  # (finding, old rate, new rate) that rose

    def detail(self) -> str:
        return f"{self.old.text() if self.old else '-'} -> {self.new.text() if self.new else '-'}"

    def gates(self, threshold: float = HIT_RATE_THRESHOLD, min_runs: int = HIT_RATE_MIN_RUNS) -> bool:
        """Does this change fail the comparison?"""
        if self.kind == "new failure":
            return True
        return (self.kind == "hit rate rose" and self.new is not None and self.new.attempted >= min_runs
                and any(b - a > threshold for _, a, b in self.findings))


def _results_path(arg: str | os.PathLike) -> pathlib.Path:
    p = pathlib.Path(arg)
    if p.is_dir():
        p = p / RESULTS_FILE
        if not p.is_file():
            raise CompareError(f"{arg}: folder holds no {RESULTS_FILE}")
    elif not p.is_file():
        raise CompareError(f"{arg}: no such file or folder")
    return p


def load(arg: str | os.PathLike) -> Run:
    """Read a results.json (or a report folder's): every case must name its cell and an outcome."""
    path = _results_path(arg)
    try:
        raw = read_json(path)
    except SchemaError as exc:
        raise CompareError(str(exc)) from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("cases"), list):
        raise CompareError(f"{path}: not a results.json (no 'cases' list)")
    try:  # refuses a newer schema in one line; version 1 (before the typed model) is upgraded
        parse_run(raw, str(path))
    except SchemaError as exc:
        raise CompareError(str(exc)) from None
    return from_results(raw, path)


def _spec(case: Mapping, role: str) -> str:
    """A peer as cells are matched across runs: its kind and release line ("chromium 147",
    "aiortc 1.14"), whatever spec named it, so chromium@147 in one run meets the same build
    in another; patch builds of a line (Debian's security updates) are the same cell, and the
    exact versions are listed as version changes. The spec, for a run without versions."""
    peer = case.get(role)
    if not isinstance(peer, Mapping):
        return ""
    kind, version = str(peer.get("kind") or ""), str(peer.get("version") or "")
    if kind and version_key(version):
        return f"{kind} {line(kind, version)}"
    return str(peer.get("spec") or peer.get("kind") or "")


def from_results(raw: Mapping, path: pathlib.Path = pathlib.Path(RESULTS_FILE)) -> Run:
    cells: dict[CellKey, Cell] = {}
    for i, case in enumerate(raw.get("cases") or []):
        if not isinstance(case, Mapping):
            raise CompareError(f"{path}: not a results.json (case {i} is not an object)")
        key = CellKey(str(case.get("scenario") or ""), _spec(case, "polite"), _spec(case, "impolite"))
        outcome = case.get("outcome")
        if not (key.scenario and key.polite and key.impolite) or outcome not in OUTCOMES:
            raise CompareError(f"{path}: not a results.json (case {i} lacks scenario, polite/impolite spec "
                               f"or a known outcome)")
        cell = cells.setdefault(key, Cell())
        cell.counts[outcome] = cell.counts.get(outcome, 0) + 1
        cell.expected.add(str(case.get("expected") or "pass"))
        cell.intermittent = cell.expected == {"xfail or pass"}
        if outcome == "xfailed" and case.get("finding"):
            cell.hits[str(case["finding"])] = cell.hits.get(str(case["finding"]), 0) + 1
        page = path.parent / "cases" / f"{slug(str(case.get('slug') or case.get('id') or ''))}.html"
        cell.pages.append((f"r{case.get('repeat', 0)}", str(page)))
    versions = raw.get("versions") if isinstance(raw.get("versions"), Mapping) else {}
    return Run(path, cells, {str(k): str(v) for k, v in versions.items()}, str(raw.get("started") or ""),
               len(raw.get("cases") or []), str(raw.get("build") or ""))


def rising(old: Cell, new: Cell) -> tuple[tuple[str, float, float], ...]:
    """Intermittent findings whose hit rate is higher in NEW."""
    if not new.intermittent:
        return ()
    return tuple((f, old.hit_rate(f), new.hit_rate(f)) for f in sorted(set(old.hits) | set(new.hits))
                 if new.hit_rate(f) > old.hit_rate(f))


def _kind(old: Cell | None, new: Cell | None) -> str | None:
    if old is None:
        return "new failure" if new.failing else "added"
    if new is None:
        return "removed"
    if new.failing and not old.failing:
        return "new failure"
    if rising(old, new):
        return "hit rate rose"
    if old.failing and not new.failing:
        return "fixed"
    if old.outcomes() != new.outcomes():
        return "outcome"
    # same outcomes, other shares of them: a flake rate that moved (compared as rates,
    # so 1 run against 5 runs with the same outcome is no change)
    if any(old.counts[o] * new.n != new.counts[o] * old.n for o in old.counts):
        return "pass rate"
    if old.expected != new.expected:
        return "expectation"
    return None


def compare(old: Run, new: Run) -> list[Change]:
    """Every cell that differs, most urgent kind first, then by scenario and pair."""
    changes = []
    for key in sorted(set(old.cells) | set(new.cells)):
        a, b = old.cells.get(key), new.cells.get(key)
        kind = _kind(a, b)
        if kind:
            changes.append(Change(kind, key, a, b, rising(a, b) if kind == "hit rate rose" else ()))
    changes.sort(key=lambda c: (KINDS.index(c.kind), c.key))
    return changes


def _kinds_of(key: CellKey) -> tuple[str, str, str]:
    """A cell with its peers' versions left out: ``chromium 147`` and ``chromium@/opt/c`` are chromium."""
    return key.scenario, re.split(r"[ @]", key.polite)[0], re.split(r"[ @]", key.impolite)[0]


def lost(changes: list[Change]) -> list[CellKey]:
    """OLD's cells that NEW lacks, less those NEW has on another release line of the same
    peers (each added cell stands for one removed one)."""
    spare: dict[tuple[str, str, str], int] = {}
    for c in changes:
        if c.kind == "added":
            spare[_kinds_of(c.key)] = spare.get(_kinds_of(c.key), 0) + 1
    out = []
    for c in changes:
        if c.kind == "removed":
            if spare.get(_kinds_of(c.key)):
                spare[_kinds_of(c.key)] -= 1
            else:
                out.append(c.key)
    return out


def lost_text(keys: list[CellKey], old: Run) -> str:
    """The one line that says how much of OLD's matrix NEW lacks."""
    named = "; ".join(str(k) for k in keys[:LOST_NAMED]) + (f"; and {len(keys) - LOST_NAMED} more"
                                                             if len(keys) > LOST_NAMED else "")
    return f"NEW lacks {len(keys)} of the {len(old.cells)} cell(s) OLD had: {named}"


def version_changes(old: Run, new: Run) -> list[tuple[str, str, str]]:
    return [(k, old.versions.get(k, "-"), new.versions.get(k, "-"))
            for k in dict.fromkeys([*old.versions, *new.versions]) if old.versions.get(k) != new.versions.get(k)]


def table(old: Run, new: Run, changes: list[Change]) -> str:
    """The compact terminal form: one line per changed cell."""
    lines = [f"old: {old.path} ({old.cases} cases{', ' + old.started if old.started else ''})",
             f"new: {new.path} ({new.cases} cases{', ' + new.started if new.started else ''})"]
    lines += [f"version {k}: {a} -> {b}" for k, a, b in version_changes(old, new)]
    counts = {k: sum(c.kind == k for c in changes) for k in KINDS}
    # a run of a few scenarios against a full one removes most cells: those are listed
    # in the HTML; the terminal keeps to the cells whose verdict changed
    seen = dict.fromkeys(QUIET, 0)
    shown = []
    for c in changes:
        if c.kind in seen:
            seen[c.kind] += 1
            if seen[c.kind] > QUIET_LINES:
                continue
        shown.append(c)
    if shown:
        rows = [("change", "scenario", "polite", "impolite", "old", "new")]
        rows += [(c.kind.upper() if c.kind == "new failure" else c.kind, c.key.scenario, c.key.polite,
                  c.key.impolite, c.old.text() if c.old else "-", c.new.text() if c.new else "-") for c in shown]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines += ["  ".join([*(v.ljust(w) for v, w in zip(r, widths, strict=False)), r[5]]) for r in rows]
        for kind in QUIET:
            if counts[kind] > QUIET_LINES:
                lines.append(f"... and {counts[kind] - QUIET_LINES} more {kind} (all in the HTML diff)")
    same = len(set(old.cells) | set(new.cells)) - len(changes)
    lines.append(f"{len(changes)} changed cell(s)" + "".join(f", {n} {k}" for k, n in counts.items() if n)
                 + f"; {same} unchanged")
    return "\n".join(lines)


def _href(page: str, html_dir: pathlib.Path) -> str | None:
    """A relative link from the HTML diff to a case page, when that page exists."""
    p = pathlib.Path(page)
    if not p.is_file():
        return None
    return urllib.parse.quote(os.path.relpath(p.resolve(), html_dir.resolve()).replace(os.sep, "/"))


def write_html(path: pathlib.Path, old: Run, new: Run, changes: list[Change],
               allow_removed: bool = False) -> pathlib.Path:
    env = environment()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def side(cell: Cell | None) -> dict | None:
        if cell is None:
            return None
        return {"text": cell.text(), "cls": "bad" if cell.failing else ("ok" if cell.passed == cell.n else "xfail"),
                "expected": " / ".join(sorted(cell.expected)),
                "links": [{"label": label, "href": _href(page, path.parent)} for label, page in cell.pages]}

    rows = [{"kind": c.kind, "key": c.key, "old": side(c.old), "new": side(c.new)} for c in changes]
    counts = {k: sum(c.kind == k for c in changes) for k in KINDS}
    missing = lost(changes)
    html = env.get_template("compare.html").render(
        old=old, new=new, rows=rows, counts=counts, versions=version_changes(old, new),
        lost=lost_text(missing, old) if missing else "", allow_removed=allow_removed,
        unchanged=len(set(old.cells) | set(new.cells)) - len(changes))
    path.write_text(html, encoding="utf-8")
    return path


def default_html(new_arg: str | os.PathLike) -> pathlib.Path:
    """compare.html next to NEW when NEW is a report folder, else in the working directory."""
    p = pathlib.Path(new_arg)
    return (p if p.is_dir() else pathlib.Path.cwd()) / COMPARE_FILE


def run(old_arg: str, new_arg: str, html: str | None, threshold: float = HIT_RATE_THRESHOLD,
        min_runs: int = HIT_RATE_MIN_RUNS, allow_removed: bool = False) -> int:
    """Exit status: 1 (EXIT_REGRESSION) if NEW has a new failure or an intermittent finding's
    hit rate rose past the threshold; else 3 (EXIT_REMOVED) if NEW lacks cells OLD had and
    ``allow_removed`` is false; else 0. CompareError (-> 2) on bad input."""
    old, new = load(old_arg), load(new_arg)
    changes = compare(old, new)
    print(table(old, new, changes))
    target = pathlib.Path(html) if html else default_html(new_arg)
    try:
        out = write_html(target, old, new, changes, allow_removed)
    except OSError as exc:
        raise CompareError(f"{target}: cannot write the HTML diff: {exc}") from None
    print(f"rig compare: {out}")
    for c in changes:
        if c.kind == "hit rate rose":
            rates = ", ".join(f"{f} {a:.0%} -> {b:.0%}" for f, a, b in c.findings)
            verdict = "fails the comparison" if c.gates(threshold, min_runs) else \
                f"within --hit-rate-threshold {threshold:g} or under {min_runs} runs"
            print(f"hit rate rose: {c.key}: {rates} ({verdict})")
    missing = lost(changes)
    if missing:
        said = lost_text(missing, old)
        if allow_removed:
            print(f"rig compare: {said} (allowed: --allow-removed)")
        else:
            print(f"rig compare: {said}; a smaller matrix is not a comparison of this one: run the whole matrix, "
                  f"or pass --allow-removed when it is meant (exit status {EXIT_REMOVED})", file=sys.stderr)
    if any(c.gates(threshold, min_runs) for c in changes):
        return EXIT_REGRESSION
    return EXIT_REMOVED if missing and not allow_removed else 0
