"""Mutants: one-bug variants of the reference negotiator, and the kill matrix.

A mutant is ``fixtures/negotiators/mutants/NAME.js`` (and ``NAME.py`` where aiortc can
express the bug) whose first line says what it breaks. ``rig mutants`` runs the matrix
with each one through the same options a user's negotiator takes (--negotiator-js,
--negotiator-py) and records, per scenario, whether some cell failed: a mutant that no
scenario kills is a gap in the catalogue, not a mutant to delete.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import config
from .vocab import MUTANTS_HTML, MUTANTS_JSON

MUTANTS_DIR = config.FIXTURES / "negotiators" / "mutants"
KILLING = ("failed", "error")


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str
    js: Path | None
    py: Path | None
    #: scenarios expected to kill it (header "kills:"), used by the fast self-test
    kills: tuple[str, ...] = ()
    #: regex the failure reason must match (header "symptom:")
    symptom: str = ""
    #: scenarios expected to kill the Python twin, and its symptom (its own headers)
    kills_py: tuple[str, ...] = ()
    symptom_py: str = ""


def _header(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines()[:6]:
        m = re.match(r"\s*(?://|#)\s*(mutant|kills|symptom):\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def discover(directory: Path = MUTANTS_DIR) -> list[Mutant]:
    """Every mutant shipped, by name; a file without a 'mutant:' first line is not one."""
    names = sorted({p.stem for p in directory.glob("*.js")} | {p.stem for p in directory.glob("*.py")})
    out = []
    for name in names:
        js, py = directory / f"{name}.js", directory / f"{name}.py"
        js_ok, py_ok = js.is_file(), py.is_file()
        head_py = _header(py) if py_ok else {}
        head = {**head_py, **(_header(js) if js_ok else {})}
        if "mutant" not in head:
            continue

        def split(text: str) -> tuple[str, ...]:
            return tuple(k.strip() for k in text.split(",") if k.strip())
        out.append(Mutant(name, head["mutant"], js if js_ok else None, py if py_ok else None,
                          split(head.get("kills", "")), head.get("symptom", ""), split(head_py.get("kills", "")),
                          head_py.get("symptom", "")))
    return out


def kill_matrix(reference: dict, runs: dict[str, dict], mutants: list[Mutant]) -> dict:
    """mutant x scenario -> killed?, from the results of the reference run and each mutant's run."""
    ref = {c["id"]: c["outcome"] for c in reference.get("cases", [])}
    scenarios = [s["name"] for s in reference.get("scenarios", [])]
    rows = []
    for m in mutants:
        run = runs.get(m.name) or {"cases": []}
        cells = {}
        for scen in scenarios:
            kills = [c for c in run["cases"] if c["scenario"] == scen and c["outcome"] in KILLING
                     and ref.get(c["id"]) not in KILLING]
            cells[scen] = {"killed": bool(kills), "cases": [c["id"] for c in kills][:5],
                           "by": sorted({c.get("via", "") for c in kills} - {""}),
                           "symptom": (kills[0]["reason"].splitlines() or [""])[0][:300] if kills else ""}
        rows.append({"mutant": m.name, "breaks": m.breaks, "js": bool(m.js), "py": bool(m.py),
                     "killed": any(c["killed"] for c in cells.values()), "cells": cells})
    pairs: dict[str, set[str]] = {}
    for run in runs.values():
        for c in run["cases"]:
            if c.get("via") and isinstance(c.get("polite"), dict) and isinstance(c.get("impolite"), dict):
                pairs.setdefault(c["via"], set()).add(f"{c['polite']['kind']}:{c['impolite']['kind']}")
    return {"scenarios": scenarios, "mutants": rows,
            "survivors": [r["mutant"] for r in rows if not r["killed"]],
            "pairs": {lang: sorted(p) for lang, p in sorted(pairs.items())}}


def pair_text(pairs: list[str]) -> str:
    """'firefox:chromium' -> 'Firefox polite x Chromium impolite' (several joined by '; ')."""
    def name(kind: str) -> str:
        return kind if kind == "aiortc" else kind.capitalize()

    def one(pair: str) -> str:
        polite, _, impolite = pair.partition(":")
        if polite == impolite:
            return f"{name(polite)} x {name(impolite)}"
        return f"{name(polite)} polite x {name(impolite)} impolite"
    return "; ".join(one(p) for p in pairs)


def write_kill_matrix(out: Path, matrix: dict) -> tuple[Path, Path]:
    """mutants.json and mutants.html (a page of the report; opens from disk)."""
    from .report import environment  # jinja2: rig.options imports this module (discover) in every worker
    (out / MUTANTS_JSON).write_text(json.dumps(matrix, indent=1))
    html = environment().get_template("mutants.html").render(m=matrix)
    (out / MUTANTS_HTML).write_text(html)
    return out / MUTANTS_JSON, out / MUTANTS_HTML


def _by(cell: dict) -> list[str]:
    """Which forms a cell killed; runs recorded before "by" existed are told apart by the pair."""
    return cell.get("by") or sorted({"py" if "--aiortc-impolite" in cid else "js" for cid in cell["cases"]})


def _killers(row: dict, lang: str) -> str:
    if not row[lang]:
        return "no twin" if lang == "py" else "no JS form"
    return ", ".join(s for s, c in row["cells"].items() if lang in _by(c)) or "**survived**"


def markdown(matrix: dict) -> str:
    """The kill table of docs/measurements.md: per mutant, the scenarios that killed its JS form and its Python twin."""
    # runs recorded before the matrix named its pairs ran on rig mutants' defaults of then
    pairs = matrix["pairs"] if "pairs" in matrix else {"js": ["firefox:firefox"], "py": ["firefox:aiortc"]}
    js, py = (f", {pair_text(pairs[lang])}" if pairs.get(lang) else "" for lang in ("js", "py"))
    lines = [f"| mutant | what it breaks | killed by (JS{js}) | killed by (Python twin{py}) |", "|---|---|---|---|"]
    for row in matrix["mutants"]:
        breaks = row["breaks"].split(":")[0].replace("|", "/")
        lines.append(f"| `{row['mutant']}` | {breaks} | {_killers(row, 'js')} | {_killers(row, 'py')} |")
    return "\n".join(lines) + "\n"
