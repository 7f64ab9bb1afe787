"""Negotiator variants: several negotiators in one run (``rig matrix --variants FILE``).

``rig mutants`` runs the reference negotiator and every shipped mutant in one pytest session
through a variants file, rather than one ``rig matrix`` per mutant, each paying for its own
start-up, browser launches and report before its first case: each variant runs the catalogue
(or its own scenarios) on its own pairs with its own negotiators, on the same workers and
browsers.

A variant's cases carry its name before their case id (``both-polite.js/glare-initial[...]``);
the variant named "" is the run's own negotiators (``--negotiator-js``/``--negotiator-py``, or
the reference), and its ids are plain, so its cases are the run's matrix.

The file is JSON: a list of objects with ``name``, ``js`` and ``py`` (paths, or null for the
run's own), ``pairs`` (a list of "POLITE:IMPOLITE" specs, or null for every ordered pair of
--peers), ``scenarios`` (a list of names, or null for --scenarios), ``cells`` (a list of
"SCENARIO POLITE:IMPOLITE", or null: when given, only those of its scenarios x pairs run; rig
mutants runs the reference only where some mutant form runs) and ``capture`` (false: no
evidence files for its cases, as ``--capture off``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import RigError


@dataclass(frozen=True)
class Variant:
    name: str
    js: str | None = None
    py: str | None = None
    pairs: tuple[str, ...] | None = None
    scenarios: tuple[str, ...] | None = None
    capture: bool = True
    cells: tuple[str, ...] | None = None

    def allows(self, polite: str, impolite: str, scenario: str) -> bool:
        return (self.pairs is None or f"{polite}:{impolite}" in self.pairs) and \
            (self.cells is None or cell(scenario, polite, impolite) in self.cells)

    def case_id(self, plain: str) -> str:
        return f"{self.name}/{plain}" if self.name else plain


def cell(scenario: str, polite: str, impolite: str) -> str:
    """A cell as a variant's ``cells`` names it."""
    return f"{scenario} {polite}:{impolite}"


def plain_id(case_id: str) -> tuple[str, str]:
    """(variant name, the case id without it): "" for a case of the run's own negotiators."""
    head, sep, rest = case_id.partition("/")
    return (head, rest) if sep and "[" not in head else ("", case_id)


def dump(variants: list[Variant], path: Path) -> Path:
    path.write_text(json.dumps([{**asdict(v), "pairs": list(v.pairs) if v.pairs is not None else None,
                                 "scenarios": list(v.scenarios) if v.scenarios is not None else None,
                                 "cells": list(v.cells) if v.cells is not None else None}
                                for v in variants], indent=1))
    return path


def _seq(path: str | Path, v: dict, key: str) -> tuple[str, ...] | None:
    value = v.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise RigError(f"--variants {path}: variant {v['name']!r}: '{key}' must be a list of strings or null")
    return tuple(value)


def load(path: str | Path) -> list[Variant]:
    """The variants of ``path``; a malformed file is one RigError line."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RigError(f"--variants {path}: cannot read it ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise RigError(f"--variants {path}: expected a non-empty JSON list of variants")
    out: list[Variant] = []
    for i, v in enumerate(raw):
        if not isinstance(v, dict) or not isinstance(v.get("name", None), str):
            raise RigError(f"--variants {path}: variant #{i + 1} is not an object with a string 'name'")
        if "/" in v["name"] or "[" in v["name"]:
            raise RigError(f"--variants {path}: variant name {v['name']!r} may not contain '/' or '['")
        for key in ("js", "py"):
            if v.get(key) is not None and not Path(v[key].split(":")[0]).is_file():
                raise RigError(f"--variants {path}: variant {v['name']!r}: {key} file {v[key]} not found")

        cells = _seq(path, v, "cells")
        for c in cells or ():
            scen, _, pair = c.partition(" ")
            if not scen or ":" not in pair:
                raise RigError(f"--variants {path}: variant {v['name']!r}: cell {c!r} is not 'SCENARIO POLITE:IMPOLITE'")
        out.append(Variant(v["name"], v.get("js"), v.get("py"), _seq(path, v, "pairs"), _seq(path, v, "scenarios"),
                           bool(v.get("capture", True)), cells))
    names = [v.name for v in out]
    if len(set(names)) != len(names):
        raise RigError(f"--variants {path}: variant names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return out
