"""The index: one matrix, scenarios by pairs (and by versions when a run has several), its
footnotes, and the kill matrix of rig mutants when the folder holds one."""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from collections.abc import Mapping
from datetime import UTC, datetime

import jinja2
from markupsafe import Markup

from rig import model
from rig.report._view import (
    _NOT_ATTEMPTED,
    _SEVERITY,
    _TEMPLATES,
    OUTCOMES,
    _fmt_duration,
    _list,
    _mapping,
    _run_header,
    _scenarios,
    _summary,
    _text,
    _versions,
    known_findings,
    upstream_links,
)
from rig.report.pass_share import svg as pass_share_svg
from rig.vocab import INDEX_FILE, MUTANTS_HTML, MUTANTS_JSON, ROLES

# --- the index: one matrix, scenarios by pairs ----------------------------------------

#: Footnote for an intermittent cell that never hit its finding in this run.
INTERMITTENT_UNHIT = "intermittent finding {id}: not hit in this run ({title})"
#: Outcomes no finding explains, listed first: each one is news (xfailed and unsupported are not).
UNEXPECTED = ("error", "failed", "xpassed", "unknown", "not-run")
_FILTERS_JS = "_filters.js"


def write_index(out_dir: pathlib.Path, env: jinja2.Environment, run: model.RunRecord, cases: list[dict],
                peers: list[dict], links: list[dict]) -> pathlib.Path:
    scenarios = _scenarios(run, cases)
    columns = _columns(peers, cases)
    notes = _Notes(known_findings(run))
    rows = _matrix(scenarios, columns, cases, notes)
    by_version = _version_view(scenarios, peers, cases, notes)
    groups = _by_cell(cases)
    script = (_TEMPLATES / _FILTERS_JS).read_text(encoding="utf-8")
    header = _run_header(run, links)
    mutants = _mutants(out_dir)
    if mutants and not any(link["href"] == MUTANTS_HTML for link in header["links"]):
        header["links"].append({"href": MUTANTS_HTML, "text": "mutant kill matrix"})
    index = out_dir / INDEX_FILE
    index.write_text(
        env.get_template("index.html").render(
            run=header,
            versions=_versions(run.versions),
            summary=_summary(run.summary, cases),
            total=len(cases),
            columns=columns,
            rows=rows,
            peers=peers,
            by_version=by_version,
            # versions are in the run's table, once per engine; a column names its own only when
            # the run has several of one engine
            column_versions=by_version is not None,
            notes=[_finding_group(fid, n, notes, cases, groups) for fid, n in notes.numbers.items()],
            kinds=sorted({c[r]["kind"] or c[r]["label"] for c in cases for r in ROLES}),
            outcomes=list(OUTCOMES),
            unexpected=sorted(
                (c for c in cases if c["outcome"] in UNEXPECTED),
                key=lambda c: (_SEVERITY[c["cls"]], c["scenario"], c["id"]),
            ),
            unsupported=[_cell(g, notes) for g in groups.values() if any(c["outcome"] == "unsupported" for c in g)],
            cases=cases,
            scenarios=scenarios,
            mutants=mutants,
            pass_share=Markup(pass_share_svg(run.cases)),
            script=script,
            script_hash=base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii"),
        ),
        encoding="utf-8",
    )
    return index


def _columns(peers: list[dict], cases: list[dict]) -> list[dict]:
    """Every ordered (polite, impolite) pair that has a case, in the order of the run's peers."""
    kinds = {c[r]["label"]: c[r]["kind"] or c[r]["label"] for c in cases for r in ROLES}
    present = {(c["polite"]["label"], c["impolite"]["label"]) for c in cases}
    out = []
    for p in peers:
        for i in peers:
            if (p["label"], i["label"]) in present:
                out.append({"polite": p, "impolite": i,
                            "polite_kind": kinds[p["label"]], "impolite_kind": kinds[i["label"]]})
    return out


def finding_note(fid: str, known: Mapping[str, model.FindingInfo]) -> str:
    """A finding's footnote: its id, title and explanation as the run recorded them (``known``:
    the run's findings by id), or the bare id of a finding the run does not describe."""
    f = known.get(fid)
    if f is None:
        return fid
    return f"{fid}: {f.title}. {f.detail}" if f.detail else f"{fid}: {f.title}"


class _Notes:
    """The footnotes under the matrix: one per finding, numbered in order of first use, with the
    run's own findings to write them from."""

    def __init__(self, known: Mapping[str, model.FindingInfo]) -> None:
        self.known = known
        #: finding id -> its footnote's number
        self.numbers: dict[str, int] = {}

    def mark(self, fid: str) -> int:
        return self.numbers.setdefault(fid, len(self.numbers) + 1)

    def finding(self, fid: str) -> str:
        return finding_note(fid, self.known)

    def unhit(self, fid: str) -> str:
        f = self.known.get(fid)
        return INTERMITTENT_UNHIT.format(id=fid, title=f.title if f else "")


def _others_order(item: tuple[str, int]) -> int:
    return _SEVERITY.get(item[0], _SEVERITY["unknown"])


def _reasons(group: list[dict], notes: _Notes) -> tuple[list[str], list[str]]:
    """A cell's footnotes and the rest of its tooltip: the findings its runs hit, the findings
    an xpassed run contradicts and an intermittent finding no run hit (footnoted: each is one
    finding's entry), then why it is unsupported or a finding not seen on these versions (said
    in the tooltip only: the unsupported list and the case pages carry them too)."""
    fids: list[str] = []
    lines: list[str] = []
    hit_ids = {c["finding"] for c in group if c["finding"]}
    for c in group:
        if c["finding"]:
            fids.append(c["finding"])
        elif c["outcome"] == "unsupported":
            lines.append(f"unsupported: {c['reason']}")
        elif c["outcome"] == "xpassed":  # the findings that expected a failure: narrow or remove them
            fids += c["findings"]
        elif c["outcome"] == "passed" and c["not_seen"]:  # a finding of the cell, not on this version
            lines += [c["reason"]] if c["reason"] else []
        elif c["expected"] == "xfail or pass":
            unhit = [f for f in c["findings"] if f not in hit_ids]
            fids += unhit
            lines += [notes.unhit(f) for f in unhit]
    return list(dict.fromkeys(fids)), list(dict.fromkeys(lines))


def _glare_summary(group: list[dict], attempted: int) -> tuple[str, int, int]:
    """A cell's glare mark, and how many of its runs forced a collision and proved it."""
    forced = sum(1 for c in group if c["glare"].get("forced"))
    observed = sum(1 for c in group if c["glare"].get("forced") and c["glare"].get("observed"))
    if attempted == 1:
        return group[0]["glare_mark"], forced, observed
    return (f"⚡ forced, observed {observed}/{forced}" if forced else ""), forced, observed


def _cell(group: list[dict], notes: _Notes) -> dict:
    """A cell keeps every repeat: its pass rate, one link per repeat, and the worst outcome's colour."""
    group = sorted(group, key=lambda c: (c["repeat"], c["id"]))
    n = sum(1 for c in group if c["outcome"] not in _NOT_ATTEMPTED)  # never attempted: not in pass rates
    unsupported = sum(1 for c in group if c["outcome"] == "unsupported")
    not_run = sum(1 for c in group if c["outcome"] == "not-run")
    passed = sum(1 for c in group if c["outcome"] == "passed")
    hits = sum(1 for c in group if c["outcome"] == "xfailed")
    others: dict[str, int] = {}
    for c in group:
        if c["outcome"] != "passed":
            others[c["outcome"]] = others.get(c["outcome"], 0) + 1
    durations = [c["duration_s"] for c in group if c["duration_s"] is not None]
    mark, forced, observed = _glare_summary(group, n)
    cls = min((c["cls"] for c in group), key=_SEVERITY.__getitem__)
    expected = sorted({c["expected"] for c in group})
    intermittent = "xfail or pass" in expected
    fids, lines = _reasons(group, notes)
    marks = [notes.mark(fid) for fid in fids]
    others_text = ", ".join(f"{v} {k}" for k, v in sorted(others.items(), key=_others_order))
    rate = f"{passed}/{n}" if n else "not run" if not_run and not unsupported else "unsupported"
    first = group[0]
    title = [f"{first['scenario']}: {first['polite']['label']} polite → {first['impolite']['label']} impolite",
             (f"{passed}/{n} passed" if n else "not run" if rate == "not run" else "unsupported: not attempted")
             + (f"; {others_text}" if others_text else ""),
             "expected: " + " / ".join(expected) + (" (intermittent finding)" if intermittent else "")]
    if durations:
        title.append(("mean " if n > 1 else "") + _fmt_duration(sum(durations) / len(durations)))
    if mark:
        title.append(mark)
    if intermittent and n:
        title.append(f"intermittent finding hit in {hits} of {n} run(s)")
    title += [f"[{m}] {notes.finding(fid)}" for m, fid in zip(marks, fids, strict=True)] + lines
    return {
        "cases": group, "n": n, "passed": passed, "rate": rate, "hits": hits, "unsupported": unsupported,
        "not_run": not_run, "others": others_text, "cls": cls, "worst": next(c for c in group if c["cls"] == cls),
        "outcomes": " ".join(sorted({c["cls"] for c in group}, key=_SEVERITY.__getitem__)),
        "expected": expected, "intermittent": intermittent, "notes": marks, "title": "\n".join(title),
        "mean_duration": sum(durations) / len(durations) if durations else None,
        "glare_mark": mark, "glare_missed": forced > observed,
        "label": f"{first['scenario']}: {first['polite']['label']} → {first['impolite']['label']}",
        "reasons": list(dict.fromkeys(c["reason"] for c in group if c["outcome"] == "unsupported" and c["reason"])),
    }


def _finding_group(fid: str, n: int, notes: _Notes, cases: list[dict],
                   groups: dict[tuple[str, str, str], list[dict]]) -> dict:
    """A finding's entry under the matrix, its footnote: what it is, its upstream reports, how
    many of the runs that could hit it did, and each cell it explains (one link per cell)."""
    runs = [c for c in cases if c["outcome"] not in _NOT_ATTEMPTED and (c["finding"] == fid or fid in c["findings"])]
    hits = sum(1 for c in runs if c["finding"] == fid)
    keys = dict.fromkeys((c["scenario"], c["polite"]["label"], c["impolite"]["label"]) for c in runs)
    cells = []
    for key in keys:
        group = [c for c in groups[key] if c["outcome"] not in _NOT_ATTEMPTED]
        mine = sum(1 for c in group if c["finding"] == fid)
        worst = min(group, key=lambda c: _SEVERITY[c["cls"]])
        cells.append({"label": f"{key[0]}: {key[1]} → {key[2]}", "href": worst["href"], "cls": worst["cls"],
                      "rate": f"{mine}/{len(group)}", "scenario": key[0]})
    info = notes.known.get(fid)
    return {"n": n, "id": fid, "text": notes.finding(fid), "title": info.title if info else "",
            "upstream": upstream_links(info), "hits": hits, "runs": len(runs), "cells": cells}


def _by_cell(cases: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """The runs of each cell: (scenario, polite label, impolite label) -> its cases."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for c in cases:
        groups.setdefault((c["scenario"], c["polite"]["label"], c["impolite"]["label"]), []).append(c)
    return groups


def _matrix(scenarios: list[dict], columns: list[dict], cases: list[dict], notes: _Notes) -> list[dict]:
    """Rows are scenarios, columns pairs; `notes` collects each distinct expected-failure reason once."""
    groups = _by_cell(cases)
    rows = []
    for s in scenarios:
        cells = []
        for col in columns:
            group = groups.get((s["name"], col["polite"]["label"], col["impolite"]["label"]))
            cells.append(_cell(group, notes) if group else None)
        rows.append({**s, "cells": cells})
    return rows


def _version_view(scenarios: list[dict], peers: list[dict], cases: list[dict],
                  notes: _Notes) -> list[dict] | None:
    """Per scenario, polite version x impolite version (rows x columns, each axis grouped by
    kind and sorted by version), so "this cell turned red between 147 and 150" reads off a
    column. None unless the run has more than one version of some kind."""
    versions: dict[str, set[str]] = {}
    for c in cases:
        for r in ROLES:
            versions.setdefault(c[r]["kind"], set()).add(c[r]["version"])
    if not any(len(v) > 1 for v in versions.values()):
        return None
    groups = _by_cell(cases)
    out = []
    for s in scenarios:
        rows = []
        for pol in peers:
            cells = []
            for imp in peers:
                group = groups.get((s["name"], pol["label"], imp["label"]))
                cells.append(_cell(group, notes) if group else None)
            if any(cells):
                rows.append({"peer": pol, "cells": cells})
        if rows:
            out.append({**s, "rows": rows})
    return out


def _mutants(out_dir: pathlib.Path) -> dict | None:
    """The kill matrix of `rig mutants`, when it left one in this folder: summarised on the index."""
    path = out_dir / MUTANTS_JSON
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    except (OSError, ValueError):
        return None
    rows = []
    for r in _list(_mapping(raw).get("mutants")):
        r = _mapping(r)
        killers = [str(s) for s, c in _mapping(r.get("cells")).items() if _mapping(c).get("killed")]
        rows.append({"mutant": _text(r.get("mutant")) or "?", "breaks": _text(r.get("breaks")), "killers": killers})
    return {
        "rows": rows,
        "survivors": [r["mutant"] for r in rows if not r["killers"]],
        "written": written,
        "html": (out_dir / MUTANTS_HTML).is_file(),
    }

