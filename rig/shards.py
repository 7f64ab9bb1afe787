"""Shards: a stable, balanced slice of a matrix's cells, so CI can split one run over jobs.

A cell is a scenario on an ordered pair of peer specs; every repeat of a cell goes to the
same shard, so a cell's pass rate is read from one job. Cells are not equally long: a
Chromium/Firefox case takes about ten times an aiortc/aiortc one, and a case that waits out a
bound (``failed-first-sld-recovers`` on aiortc x aiortc) thirty times. Counting cells would make
a shard of browser cells several times longer than one of aiortc cells, so each cell is
weighed by its measured cost (``rig/costs.json``, made by ``rig costs RESULTS.json`` from a real
run) and the cells are dealt by greedy longest-processing-time: heaviest first, each to the
shard with the least load so far. Ties break on the cell's name and the shard's number, and
costs are whole milliseconds, so the same catalogue and cost table give the same slices on
every machine; each shard is within a few per cent of the mean on the default matrix.

A shard's results.json records the slice (``shard: "I/N"``) and the whole catalogue it was cut
from (``catalogue`` and its digest), so ``rig merge`` can say which shard or cell is missing.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import RigError
from .peerspec import PeerSpec

COSTS_FILE = Path(__file__).resolve().with_name("costs.json")
#: A floor, so a cell measured at 0 ms (an aiortc x aiortc cell that is unsupported) still
#: spreads over shards instead of piling onto the first.
MIN_COST_MS = 20
#: Costs of a pair of kinds the table has never seen, by what the peers are (a measured median
#: per case): two browsers, a browser and aiortc, two aiortc peers.
BROWSER_PAIR_MS, MIXED_PAIR_MS, AIORTC_PAIR_MS = 3000, 1500, 300
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True, order=True)
class Cell:
    """A scenario on an ordered pair of peer specs (as ``str(PeerSpec)`` spells them)."""

    scenario: str
    polite: str
    impolite: str

    def kinds(self) -> tuple[str, str]:
        return PeerSpec.parse(self.polite).kind, PeerSpec.parse(self.impolite).kind

    def as_list(self) -> list[str]:
        return [self.scenario, self.polite, self.impolite]

    def __str__(self) -> str:
        return f"{self.scenario} [{self.polite} polite x {self.impolite} impolite]"


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = _SHARD.match(text or "")
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise RigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 2/3")
        return cls(int(m.group(1)), int(m.group(2)))


def catalogue(scenarios: Iterable[str], peers: Sequence[PeerSpec | str],
              pairs: set[tuple[str, str]] | None = None) -> list[Cell]:
    """Every cell of a matrix in run order: scenario, then polite, then impolite peer."""
    specs = [str(p) for p in peers]
    return [Cell(s, p, i) for s in scenarios for p in specs for i in specs
            if pairs is None or (p, i) in pairs]


def digest(cells: Iterable[Cell], repeat: int = 1) -> str:
    """Names one catalogue: shards cut from it carry the same digest, whatever their order."""
    text = json.dumps({"cells": sorted(c.as_list() for c in cells), "repeat": repeat}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Costs:
    """Milliseconds per case of (scenario, polite kind, impolite kind), with fallbacks: the
    pair of kinds over all scenarios, then what the two kinds are (browser or aiortc)."""

    def __init__(self, cells: dict[str, dict[str, int]] | None = None, pairs: dict[str, int] | None = None) -> None:
        self.cells = cells or {}
        self.pairs = pairs or {}

    @classmethod
    def load(cls, path: Path = COSTS_FILE) -> Costs:
        try:
            data = json.loads(Path(path).read_text())
            return cls({s: {k: int(v) for k, v in row.items()} for s, row in data["cells"].items()},
                       {k: int(v) for k, v in data["pairs"].items()})
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RigError(f"{path}: not a cost table ({exc}); make one with: rig costs RESULTS.json > {path}") from None

    def of(self, cell: Cell) -> int:
        pol, imp = cell.kinds()
        pair = f"{pol}:{imp}"
        ms = self.cells.get(cell.scenario, {}).get(pair)
        if ms is None:
            ms = self.pairs.get(pair)
        if ms is None:
            browsers = sum(k != "aiortc" for k in (pol, imp))
            ms = (AIORTC_PAIR_MS, MIXED_PAIR_MS, BROWSER_PAIR_MS)[browsers]
        return max(MIN_COST_MS, ms)


def assign(cells: Sequence[Cell], count: int, costs: Costs) -> list[list[Cell]]:
    """Deal ``cells`` over ``count`` shards by greedy longest-processing-time; each shard's
    cells come back in the catalogue's order."""
    if count < 1:
        raise RigError(f"shard count {count}: must be at least 1")
    unique = list(dict.fromkeys(cells))
    loads = [0] * count
    slices: list[set[Cell]] = [set() for _ in range(count)]
    for cell in sorted(unique, key=lambda c: (-costs.of(c), c)):
        k = min(range(count), key=lambda i: (loads[i], i))
        slices[k].add(cell)
        loads[k] += costs.of(cell)
    return [[c for c in unique if c in s] for s in slices]


def select(cells: Sequence[Cell], shard: Shard, costs: Costs | None = None) -> list[Cell]:
    """The cells of ``shard``; a catalogue with fewer cells than shards is refused in one line."""
    unique = list(dict.fromkeys(cells))
    if shard.count > len(unique):
        raise RigError(f"--shard {shard}: the catalogue has {len(unique)} cell(s), fewer than {shard.count} shards; "
                       f"use at most --shard I/{max(1, len(unique))}")
    return assign(unique, shard.count, costs or Costs.load())[shard.index - 1]


def loads(cells: Sequence[Cell], count: int, costs: Costs) -> list[int]:
    """Each shard's cost in ms (the benchmark of the balance)."""
    return [sum(costs.of(c) for c in s) for s in assign(cells, count, costs)]


def measure(runs: Iterable[dict]) -> dict:
    """A cost table from results.json objects: the median ``duration_s`` of each (scenario,
    polite kind, impolite kind), and of each pair of kinds over all scenarios."""
    per_cell: dict[str, dict[str, list[float]]] = {}
    per_pair: dict[str, list[float]] = {}
    sources = []
    for run in runs:
        versions = ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items())
        sources.append(f"{run.get('started', '?')}: {len(run.get('cases') or [])} cases ({versions})")
        for c in run.get("cases") or []:
            pair = f"{c['polite']['kind']}:{c['impolite']['kind']}"
            d = float(c.get("duration_s") or 0.0)
            per_cell.setdefault(c["scenario"], {}).setdefault(pair, []).append(d)
            per_pair.setdefault(pair, []).append(d)
    ms = lambda xs: round(statistics.median(xs) * 1000)  # noqa: E731
    return {
        "about": "milliseconds per case, the median duration_s of a real run; made by `rig costs RESULTS.json`; "
                 "rig/shards.py balances --shard slices with it",
        "measured": sources,
        "pairs": {k: ms(v) for k, v in sorted(per_pair.items())},
        "cells": {s: {k: ms(v) for k, v in sorted(row.items())} for s, row in sorted(per_cell.items())},
    }
