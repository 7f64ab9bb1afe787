"""``rig history RUN...``: each cell's outcome over a series of runs, and since when it is red.

A user's question after a red CI run is "since when?": which run, which build and which
browser versions first turned this cell red, and whether it was ever green. ``rig compare``
answers it for two runs; this answers it over many, like wpt.fyi's history: one row per cell,
one column per run (oldest first), each square the cell's outcome there, and for a cell that is
red in the latest run that has it, the run where the red streak began and the last run before
it where the cell was not red.

Cells are matched across runs by the scenario and each peer's kind, and by its release line
too where a run has several lines of that kind (a version matrix), so a browser update keeps the
row and shows as a version change. "Red" is compare's ``failing``: a failed, error, xpassed or not-run case.
Runs are ordered by their start time; a run names its build when it came from CI
(RunRecord.build). The page is one file that opens from disk, like every report page.
"""

from __future__ import annotations

import os
import pathlib
from collections import Counter
from dataclasses import dataclass

from . import compare
from .report import environment
from .vocab import RESULTS_FILE

#: The page's file name, written into the folder of runs unless --html says otherwise.
HISTORY_FILE = "history.html"


class HistoryError(Exception):
    """Input that is not a series of runs: the CLI turns it into one line and exit status 2."""


@dataclass(frozen=True)
class RunInfo:
    """One column: where the run came from and what it ran."""

    label: str  # its folder name (or file), as the page names it
    started: str
    build: str
    versions: dict[str, str]
    cases: int


@dataclass
class Row:
    """One cell over the runs: its state per run ("" where the run lacks the cell)."""

    key: compare.CellKey
    cells: list[compare.Cell | None]
    red_since: int | None = None  # index of the first run of the latest red streak
    last_good: int | None = None  # index of the last run before it where the cell was not red

    @property
    def red(self) -> bool:
        return self.red_since is not None

    @property
    def changed(self) -> bool:
        states = {state(c) for c in self.cells if c is not None}
        return len(states) > 1


def state(cell: compare.Cell | None) -> str:
    """A square's class: red, pass, xfail (expected failures only), unsupported, mixed."""
    if cell is None:
        return "absent"
    if cell.failing:
        return "red"
    outcomes = set(cell.outcomes())
    if outcomes == {"passed"}:
        return "pass"
    if outcomes == {"unsupported"}:
        return "unsupported"
    if outcomes <= {"xfailed", "unsupported"}:
        return "xfail"
    return "mixed"  # passes and expected failures over repeats: an intermittent finding


def runs_in(args: list[str | os.PathLike]) -> list[pathlib.Path]:
    """The results files: each argument is a results.json, a report folder holding one, or a
    folder of report folders (a history kept by CI)."""
    found: list[pathlib.Path] = []
    for arg in args:
        p = pathlib.Path(arg)
        if p.is_file():
            found.append(p)
        elif (p / RESULTS_FILE).is_file():
            found.append(p / RESULTS_FILE)
        elif p.is_dir():
            inner = sorted(d / RESULTS_FILE for d in p.iterdir() if (d / RESULTS_FILE).is_file())
            if not inner:
                raise HistoryError(f"{arg}: holds no {RESULTS_FILE}, neither itself nor in a folder in it")
            found.extend(inner)
        else:
            raise HistoryError(f"{arg}: no such file or folder")
    return found


def build(paths: list[pathlib.Path]) -> tuple[list[RunInfo], list[Row]]:
    """The runs (oldest first) and a row per cell any of them has."""
    loaded = []
    for path in paths:
        try:
            loaded.append((compare.load(path), path))
        except compare.CompareError as exc:
            raise HistoryError(str(exc)) from None
    loaded.sort(key=lambda t: (t[0].started, str(t[1])))
    infos = [RunInfo(label=_label(path), started=run.started, build=run.build, versions=run.versions, cases=run.cases)
             for run, path in loaded]
    cells = [_by_kind(run) for run, _ in loaded]
    keys = sorted({k for c in cells for k in c})
    rows = [Row(k, [c.get(k) for c in cells]) for k in keys]
    for row in rows:
        _streak(row)
    return infos, rows


def _by_kind(run: compare.Run) -> dict[compare.CellKey, compare.Cell]:
    """The run's cells, each peer named by its kind alone where the run has one release line of
    that kind (a browser update keeps the row; the version change is shown with the run), by
    kind and line where it has several (a version matrix: a row per version)."""
    lines: dict[str, set[str]] = {}
    for k in run.cells:
        for side in (k.polite, k.impolite):
            lines.setdefault(side.split(" ", 1)[0], set()).add(side)

    def side(name: str) -> str:
        kind = name.split(" ", 1)[0]
        return kind if len(lines[kind]) == 1 else name
    return {compare.CellKey(k.scenario, side(k.polite), side(k.impolite)): c for k, c in run.cells.items()}


def _label(path: pathlib.Path) -> str:
    return path.parent.name if path.name == RESULTS_FILE else path.name


def _streak(row: Row) -> None:
    """Where the latest red streak began, if the cell is red in the latest run that has it."""
    present = [i for i, c in enumerate(row.cells) if c is not None]
    if not present or not row.cells[present[-1]].failing:
        return
    start = present[-1]
    for i in reversed(present[:-1]):
        if not row.cells[i].failing:
            row.last_good = i
            break
        start = i
    row.red_since = start


def text(infos: list[RunInfo], rows: list[Row]) -> str:
    """The terminal's answer: the red cells, each with the run that turned it red."""
    red = [r for r in rows if r.red]
    lines = [f"rig history: {len(infos)} run(s), {len(rows)} cell(s), {len(red)} red in the latest run that has them"]
    for r in red:
        since = infos[r.red_since]
        good = (f"; last not red: {infos[r.last_good].label} ({infos[r.last_good].started})"
                if r.last_good is not None else "; never seen otherwise")
        lines.append(f"  {r.key}: red since {since.label} ({since.started}{', ' + since.build if since.build else ''})"
                     f"{good}")
    return "\n".join(lines)


def write_html(path: pathlib.Path, infos: list[RunInfo], rows: list[Row]) -> None:
    order = sorted(rows, key=lambda r: (not r.red, not r.changed, r.key))
    counts = [Counter(state(r.cells[i]) for r in rows) for i in range(len(infos))]
    version_moves = _version_moves(infos)
    html = environment().get_template("history.html").render(
        infos=infos, red=[r for r in order if r.red], changed=[r for r in order if not r.red and r.changed],
        steady=[r for r in order if not r.red and not r.changed], counts=counts, state=state,
        version_moves=version_moves)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def _version_moves(infos: list[RunInfo]) -> list[list[str]]:
    """Per run, the versions that differ from the run before it ("chromium 150 -> 156")."""
    out: list[list[str]] = []
    for i, info in enumerate(infos):
        before = infos[i - 1].versions if i else {}
        out.append([f"{k} {before.get(k, '-')} → {v}" for k, v in sorted(info.versions.items())
                    if i and before.get(k) != v])
    return out


def default_html(args: list[str]) -> pathlib.Path:
    """history.html in the folder of runs when one folder was given, else here."""
    if len(args) == 1 and pathlib.Path(args[0]).is_dir() and not (pathlib.Path(args[0]) / RESULTS_FILE).is_file():
        return pathlib.Path(args[0]) / HISTORY_FILE
    return pathlib.Path(HISTORY_FILE)


def run(args: list[str], html: str | None) -> int:
    infos, rows = build(runs_in(args))
    out = pathlib.Path(html) if html else default_html(args)
    write_html(out, infos, rows)
    print(text(infos, rows))
    print(f"rig history: {out}")
    return 0
