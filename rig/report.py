"""HTML report for a glare-rig run.

The report is what people open after a CI run, often straight out of a downloaded
artefact, so it has to work from disk: relative links, inline CSS, no fetches (a
Content-Security-Policy in every page enforces that). It is rendered only from
results.json and the per-case detail files, so it can be regenerated after the
fact without re-running any browser.

Input is normalised into plain view dicts before rendering: results.json is written
by other parts of the rig and may lack a field or carry an unexpected value, and a
report that crashes after a twenty-minute matrix run loses the only record of it.
The templates then run with StrictUndefined, so a template typo fails loudly in the
unit tests instead of silently rendering blanks.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import pathlib
import re
import shlex
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jinja2
import markupsafe

from rig import config, diagram, findings, model
from rig.versions import version_key
from rig.vocab import INDEX_FILE, MUTANTS_HTML, MUTANTS_JSON, RESULTS_FILE, ROLES, STUB_MESSAGE_KINDS

OUTCOMES = model.OUTCOMES
#: The versions people ask about first; any other keys in run["versions"] follow.
VERSION_KEYS = ("chromium", "firefox", "aiortc", "playwright", "python")
GLARE_KEYS = ("forced", "observed", "polite_rolled_back", "impolite_ignored_offer", "polite_reoffered")
#: Worst first: decides a repeat cell's colour and the order of the problem list.
_SEVERITY = {"error": 0, "failed": 1, "xpassed": 2, "not-run": 3, "unknown": 4, "xfailed": 5, "unsupported": 6,
             "passed": 7}
#: Outcomes of runs that were never attempted: outside pass rates.
_NOT_ATTEMPTED = ("unsupported", "not-run")
#: Event types that are the point of perfect negotiation, so they stand out.
_HIGHLIGHT_EVENTS = {"rollback", "offer-ignored"}

_TEMPLATES = pathlib.Path(__file__).resolve().with_name("templates")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def load_run(out_dir: pathlib.Path) -> model.RunRecord:
    """Read a finished run back (validated), so the report can be rebuilt without re-running it."""
    return model.load_run(pathlib.Path(out_dir) / RESULTS_FILE)


def write_report(out_dir: pathlib.Path, run: model.RunRecord | Mapping) -> pathlib.Path:
    """Render out_dir/index.html and out_dir/cases/<slug>.html from `run`; return index path.

    results.json itself is left alone: whoever produced `run` owns that file.
    """
    if isinstance(run, model.RunRecord):
        run = run.model_dump(mode="json")
    out_dir = pathlib.Path(out_dir)
    cases_dir = out_dir / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    env = environment()

    cases = _cases(run.get("cases"))
    peers = _peers(run, cases)
    case_tpl = env.get_template("case.html")
    for i, case in enumerate(cases):
        detail, detail_note = _load_detail(out_dir, case)
        html = case_tpl.render(
            case=case,
            detail=detail,
            detail_note=detail_note,
            prev=cases[i - 1] if i > 0 else None,
            next=cases[i + 1] if i + 1 < len(cases) else None,
        )
        (cases_dir / case["page"]).write_text(html, encoding="utf-8")

    return _write_index(out_dir, env, run, cases, peers)


# --- rendering environment -------------------------------------------------------


def environment() -> jinja2.Environment:
    """The one Jinja environment of the rig's pages (index, case pages, compare, mutants)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dur"] = _fmt_duration
    env.filters["secs"] = _fmt_seconds
    env.filters["flag"] = _fmt_flag
    env.filters["bytes"] = _fmt_bytes
    return env


def _fmt_duration(value: Any) -> str:
    s = _number(value)
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.2f} s"
    minutes, seconds = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _fmt_seconds(value: Any) -> str:
    s = _number(value)
    return "—" if s is None else f"{s:.3f}"


def _fmt_bytes(value: Any) -> str:
    n = _number(value)
    if n is None:
        return "—"
    if abs(n) < 1024:
        return f"{n:.0f} B"
    return f"{n / 1024:.1f} KiB" if abs(n) < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB"


def _fmt_flag(value: Any) -> str:
    if value is None:
        return "—"
    if type(value) is int:  # a count, not a flag
        return str(value)
    return "✔ yes" if value else "✘ no"


# --- normalisation of untrusted input ---------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


_number = diagram.finite_number  # one rule for numbers read from recorded data


def _int(value: Any, default: int = 0) -> int:
    n = _number(value)
    return default if n is None else int(n)


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, default=str)


def _compact(value: Any) -> str:
    """One-line form of an event's detail: `state=stable, mid=0` reads faster than JSON."""
    if value is None or value == "" or value == {}:
        return ""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v if isinstance(v, str) else _json(v)}" for k, v in value.items())
    if isinstance(value, str):
        return value
    return _json(value)


def _run_header(run: Mapping) -> dict:
    return {
        "rig_version": _text(run.get("rig_version")),
        "started": _text(run.get("started")),
        "finished": _text(run.get("finished")),
        "duration_s": _number(run.get("duration_s")),
        "command": _text(run.get("command")),
        "repeat": _text(run.get("repeat")),
        "links": [{"href": _text(link.get("href")), "text": _text(link.get("text"))}
                  for link in (run.get("links") or []) if isinstance(link, Mapping)],
        "shard": _text(run.get("shard")),
        "catalogue_digest": _text(run.get("catalogue_digest")),
        "merged": _merged(run.get("merged")),
        "interrupted": _text(run.get("interrupted")),
    }


#: How many duplicate notes the index lists (all of them are in results.json).
MERGE_NOTES_SHOWN = 20


def _merged(raw: Any) -> dict | None:
    """What rig merge read and noticed: its inputs, missing shards or cells, duplicates."""
    if not isinstance(raw, Mapping):
        return None
    inputs = [{"path": _text(i.get("path")), "shard": _text(i.get("shard")), "cases": _int(i.get("cases")),
               "started": _text(i.get("started"))} for i in _list(raw.get("inputs")) if isinstance(i, Mapping)]
    dups = [_text(d) for d in _list(raw.get("duplicates"))]
    return {"inputs": inputs, "missing": [_text(m) for m in _list(raw.get("missing"))],
            "duplicates": dups[:MERGE_NOTES_SHOWN], "more_duplicates": max(0, len(dups) - MERGE_NOTES_SHOWN)}


def _versions(raw: Any) -> list[dict]:
    raw = _mapping(raw)
    names = list(VERSION_KEYS) + [k for k in raw if k not in VERSION_KEYS]
    out = []
    for name in names:
        value = raw.get(name)
        text = _text(value)
        out.append({
            "name": str(name),
            "text": text or "unknown",
            "missing": not text or text.startswith("unavailable"),
        })
    return out


def _summary(raw: Any, cases: list[dict]) -> dict:
    """Counts as the run reported them, falling back to counting the cases."""
    raw = _mapping(raw)
    counted = {o: sum(1 for c in cases if c["outcome"] == o) for o in OUTCOMES}
    return {o: _int(raw.get(o), counted[o]) for o in OUTCOMES}


def _peer(raw: Any) -> dict:
    raw = _mapping(raw)
    spec, kind = _text(raw.get("spec")), _text(raw.get("kind"))
    version = _text(raw.get("version"))
    return {
        "label": spec or kind or "?",
        "spec": spec,
        "kind": kind,
        "version": version,
        "user_id": _text(raw.get("user_id")),
        "source": _text(raw.get("source")),
        "driver": _text(raw.get("driver")),
        # "chromium 147.0.7727.0": what a version-matrix axis shows
        "name": f"{kind or spec} {version}" if version and version != "unavailable" else (spec or kind or "?"),
    }


def _glare(raw: Any) -> dict:
    raw = _mapping(raw)
    keys = list(GLARE_KEYS) + [k for k in raw if k not in GLARE_KEYS]
    # counts (collisions, planned) stay numbers: as flags, 0 would read as a failed proof
    return {str(k): raw.get(k) if type(raw.get(k)) is int else None if raw.get(k) is None else bool(raw.get(k))
            for k in keys}


def _glare_mark(glare: Mapping) -> str:
    if glare.get("forced"):
        return "⚡ forced+observed" if glare.get("observed") else "⚡ forced, NOT observed"
    if glare.get("observed"):
        return "⚡ observed (unforced)"
    return ""


def _page_name(slug: str, taken: set[str]) -> str:
    """A file name that cannot leave cases/ and cannot overwrite another case's page."""
    base = _UNSAFE_FILE_CHARS.sub("_", slug).lstrip(".") or "case"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name + ".html"


def _cases(raw_cases: Any) -> list[dict]:
    taken: set[str] = set()
    out = []
    for i, raw in enumerate(_list(raw_cases)):
        raw = _mapping(raw)
        outcome = _text(raw.get("outcome")).lower() or "unknown"
        glare = _glare(raw.get("glare"))
        case_id = _text(raw.get("id")) or _text(raw.get("slug")) or f"case-{i}"
        page = _page_name(_text(raw.get("slug")) or case_id, taken)
        out.append({
            "id": case_id,
            "page": page,
            "href": "cases/" + urllib.parse.quote(page),
            "scenario": _text(raw.get("scenario")) or "?",
            "polite": _peer(raw.get("polite")),
            "impolite": _peer(raw.get("impolite")),
            "repeat": _int(raw.get("repeat")),
            "outcome": outcome,
            "cls": outcome if outcome in OUTCOMES else "unknown",
            "expected": _text(raw.get("expected")) or "pass",
            "duration_s": _number(raw.get("duration_s")),
            "glare": glare,
            "glare_mark": _glare_mark(glare),
            "reason": _text(raw.get("reason")).strip("\n"),
            "details": _text(raw.get("details")),
            "finding": _text(raw.get("finding")),
            "findings": [_text(f) for f in _list(raw.get("findings")) if _text(f)],
            "not_seen": [_text(f) for f in _list(raw.get("not_seen")) if _text(f)],
            "cause": _mapping(raw.get("cause")),
            "cause_text": _cause_text(raw.get("cause")),
            "finding_title": findings.BY_ID[_text(raw.get("finding"))].title
            if _text(raw.get("finding")) in findings.BY_ID else "",
        })
    return out


def case_pages(raw_cases: Any) -> list[str]:
    """Each case's page as write_report names it, relative to the report folder (cases/...)."""
    return [c["href"] for c in _cases([c.model_dump(mode="json") if isinstance(c, model.Model) else c
                                       for c in _list(raw_cases)])]


def _cause_text(raw: Any) -> str:
    if not isinstance(raw, Mapping):
        return ""
    try:
        return model.Cause.model_validate(raw).text()
    except Exception:  # noqa: BLE001 - an odd cause in an old file: show it as data
        return _compact(raw)


def _peers(run: Mapping, cases: list[dict]) -> list[dict]:
    """Matrix axes: the run's declared peers first, then any that only the cases mention."""
    labels = [str(p) for p in _list(run.get("peers"))]
    for c in cases:
        for role in ROLES:
            if c[role]["label"] not in labels:
                labels.append(c[role]["label"])
    versions = _mapping(run.get("versions"))
    out = []
    for label in labels:
        peer = next((c[r] for c in cases for r in ROLES if c[r]["label"] == label and c[r]["version"]), {})
        kind = peer.get("kind") or label.partition("@")[0]
        out.append({"label": label, "kind": kind, "version": peer.get("version") or _text(versions.get(label)),
                    "source": peer.get("source", ""), "driver": peer.get("driver", "")})
    # grouped by kind (in the order the run named them), then by version: a version matrix
    # reads left to right from the oldest to the newest build of each engine
    kinds = list(dict.fromkeys(p["kind"] for p in out))
    out.sort(key=lambda p: (kinds.index(p["kind"]), version_key(p["version"]), p["label"]))
    return out


def _scenarios(run: Mapping, cases: list[dict]) -> list[dict]:
    out: dict[str, dict] = {}
    for raw in _list(run.get("scenarios")):
        if isinstance(raw, Mapping):
            name, desc = _text(raw.get("name")), _text(raw.get("description"))
        else:
            name, desc = _text(raw), ""
        if name and name not in out:
            out[name] = {"name": name, "description": desc}
    for c in cases:
        out.setdefault(c["scenario"], {"name": c["scenario"], "description": ""})
    for s in out.values():
        mine = [c for c in cases if c["scenario"] == s["name"]]
        s["total"] = len(mine)
        s["passed"] = sum(1 for c in mine if c["outcome"] == "passed")
    return list(out.values())


# --- the index: one matrix, scenarios by pairs ----------------------------------------

#: Footnote for an intermittent cell that never hit its finding in this run.
INTERMITTENT_UNHIT = "intermittent finding {id}: not hit in this run ({title})"
_FILTERS_JS = "_filters.js"


def _write_index(out_dir: pathlib.Path, env: jinja2.Environment, run: Mapping, cases: list[dict],
                 peers: list[dict]) -> pathlib.Path:
    scenarios = _scenarios(run, cases)
    columns = _columns(peers, cases)
    notes: dict[str, int] = {}
    rows = _matrix(scenarios, columns, cases, notes)
    by_version = _version_view(scenarios, peers, cases, notes)
    script = (_TEMPLATES / _FILTERS_JS).read_text(encoding="utf-8")
    header = _run_header(run)
    mutants = _mutants(out_dir)
    if mutants and not any(link["href"] == MUTANTS_HTML for link in header["links"]):
        header["links"].append({"href": MUTANTS_HTML, "text": "mutant kill matrix"})
    outcomes = list(OUTCOMES) + (["unknown"] if any(c["cls"] == "unknown" for c in cases) else [])
    index = out_dir / INDEX_FILE
    index.write_text(
        env.get_template("index.html").render(
            run=header,
            versions=_versions(run.get("versions")),
            summary=_summary(run.get("summary"), cases),
            total=len(cases),
            columns=columns,
            rows=rows,
            peers=peers,
            by_version=by_version,
            notes=[{"n": n, "text": text} for text, n in notes.items()],
            kinds=sorted({c[r]["kind"] or c[r]["label"] for c in cases for r in ROLES}),
            outcomes=outcomes,
            problems=sorted(
                (c for c in cases if c["outcome"] != "passed"),
                key=lambda c: (_SEVERITY[c["cls"]], c["scenario"], c["id"]),
            ),
            cases=cases,
            scenarios=scenarios,
            mutants=mutants,
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


def finding_note(fid: str) -> str:
    """A finding's footnote: its id, title and explanation (rig.findings), or the bare id of
    a finding this rig does not know (a report of another version's run)."""
    f = findings.BY_ID.get(fid)
    return f"{fid}: {f.title}. {f.detail}" if f else fid


def _others_order(item: tuple[str, int]) -> int:
    return _SEVERITY.get(item[0], _SEVERITY["unknown"])


def _cell(group: list[dict], notes: dict[str, int]) -> dict:
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
    forced = sum(1 for c in group if c["glare"].get("forced"))
    observed = sum(1 for c in group if c["glare"].get("forced") and c["glare"].get("observed"))
    if n == 1:
        mark = group[0]["glare_mark"]
    elif forced:
        mark = f"⚡ forced, observed {observed}/{forced}"
    else:
        mark = ""
    cls = min((c["cls"] for c in group), key=_SEVERITY.__getitem__)
    worst = next(c for c in group if c["cls"] == cls)
    expected = sorted({c["expected"] for c in group})
    intermittent = "xfail or pass" in expected
    reasons: list[str] = []
    hit_ids = {c["finding"] for c in group if c["finding"]}
    for c in group:
        if c["finding"]:
            texts = [finding_note(c["finding"])]
        elif c["outcome"] == "unsupported":
            texts = [f"unsupported: {c['reason']}"]
        elif c["outcome"] == "xpassed":  # the findings that expected a failure: narrow or remove them
            texts = [finding_note(f) for f in c["findings"]]
        elif c["outcome"] == "passed" and c["not_seen"]:  # a finding of the cell, not on this version
            texts = [c["reason"]] if c["reason"] else []
        elif c["expected"] == "xfail or pass":
            texts = [INTERMITTENT_UNHIT.format(id=f, title=findings.BY_ID[f].title if f in findings.BY_ID else "")
                     for f in c["findings"] if f not in hit_ids]
        else:
            texts = []
        for text in texts:
            if text not in reasons:
                reasons.append(text)
    marks = [notes.setdefault(text, len(notes) + 1) for text in reasons]
    others_text = ", ".join(f"{v} {k}" for k, v in sorted(others.items(), key=_others_order))
    first = group[0]
    title = [f"{first['scenario']}: {first['polite']['label']} polite → {first['impolite']['label']} impolite",
             (f"{passed}/{n} passed" if n else "not run" if not_run and not unsupported
              else "unsupported: not attempted")
             + (f"; {others_text}" if others_text else ""),
             "expected: " + " / ".join(expected) + (" (intermittent finding)" if intermittent else "")]
    if durations:
        title.append(("mean " if n > 1 else "") + _fmt_duration(sum(durations) / len(durations)))
    if mark:
        title.append(mark)
    if intermittent and n:
        title.append(f"intermittent finding hit in {hits} of {n} run(s)")
    title += [f"[{m}] {text}" for m, text in zip(marks, reasons, strict=True)]
    return {
        "cases": group,
        "n": n,
        "passed": passed,
        "rate": f"{passed}/{n}" if n else "not run" if not_run and not unsupported else "unsupported",
        "hits": hits,
        "unsupported": unsupported,
        "not_run": not_run,
        "others": others_text,
        "cls": cls,
        "worst": worst,
        "outcomes": " ".join(sorted({c["cls"] for c in group}, key=_SEVERITY.__getitem__)),
        "expected": expected,
        "intermittent": intermittent,
        "notes": marks,
        "title": "\n".join(title),
        "mean_duration": sum(durations) / len(durations) if durations else None,
        "glare_mark": mark,
        "glare_missed": forced > observed,
    }


def _matrix(scenarios: list[dict], columns: list[dict], cases: list[dict], notes: dict[str, int]) -> list[dict]:
    """Rows are scenarios, columns pairs; `notes` collects each distinct expected-failure reason once."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for c in cases:
        groups.setdefault((c["scenario"], c["polite"]["label"], c["impolite"]["label"]), []).append(c)
    rows = []
    for s in scenarios:
        cells = []
        for col in columns:
            group = groups.get((s["name"], col["polite"]["label"], col["impolite"]["label"]))
            cells.append(_cell(group, notes) if group else None)
        rows.append({**s, "cells": cells})
    return rows


def _version_view(scenarios: list[dict], peers: list[dict], cases: list[dict],
                  notes: dict[str, int]) -> list[dict] | None:
    """Per scenario, polite version x impolite version (rows x columns, each axis grouped by
    kind and sorted by version), so "this cell turned red between 147 and 150" reads off a
    column. None unless the run has more than one version of some kind."""
    versions: dict[str, set[str]] = {}
    for c in cases:
        for r in ROLES:
            versions.setdefault(c[r]["kind"], set()).add(c[r]["version"])
    if not any(len(v) > 1 for v in versions.values()):
        return None
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for c in cases:
        groups.setdefault((c["scenario"], c["polite"]["label"], c["impolite"]["label"]), []).append(c)
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


# --- per-case detail file --------------------------------------------------------


def _load_detail(out_dir: pathlib.Path, case: Mapping) -> tuple[dict | None, str]:
    """The detail file is optional (a case can die before writing it): say why it is absent."""
    rel = case["details"]
    if not rel:
        return None, "No detail file was recorded for this case."
    try:
        raw = json.loads((out_dir / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"Detail file {rel} not found."
    except (OSError, ValueError) as exc:
        return None, f"Detail file {rel} could not be read: {exc}"
    if not isinstance(raw, Mapping):
        return None, f"Detail file {rel} does not hold a JSON object."
    detail = _detail(raw)
    detail["href"] = "../" + urllib.parse.quote(rel)
    detail["diagram"], detail["diagram_error"] = _diagram(raw)
    detail["sdps"] = _sdps(raw.get("sdps"))
    detail["stats"] = _stats(raw.get("snapshots"))
    detail["evidence"] = _evidence(raw.get("evidence"), out_dir)
    return detail, ""


def _diagram(raw: Mapping) -> tuple[markupsafe.Markup | None, str]:
    """The sequence diagram, or why it is missing: a drawing bug must not cost the page."""
    try:
        return markupsafe.Markup(diagram.render(raw)), ""
    except Exception as exc:  # noqa: BLE001 - any failure of the drawing, reported on the page
        return None, f"The sequence diagram could not be drawn: {type(exc).__name__}: {exc}"


def _detail(raw: Mapping) -> dict:
    checks = []
    for ch in _list(raw.get("checks")):
        ch = _mapping(ch)
        checks.append({
            "id": _text(ch.get("id")),
            "kind": _text(ch.get("kind")),
            "name": _text(ch.get("name")),
            "ok": bool(ch.get("ok")),
            "detail": _text(ch.get("detail")),
        })

    messages = []
    for m in _list(raw.get("messages")):
        m = _mapping(m)
        kind = _text(m.get("kind")) or "other"
        messages.append({
            "seq": _text(m.get("seq")),
            "t": _number(m.get("t")),
            "from": _text(m.get("from")),
            "to": _text(m.get("to")),
            "kind": kind,
            "cls": kind if kind in STUB_MESSAGE_KINDS else "other",
            "size": _text(m.get("size")),
            "held": bool(m.get("held")),
            "released_t": _number(m.get("released_t")),
            "delivered_t": _number(m.get("delivered_t")),
            "note": _text(m.get("note")),
        })

    events = _mapping(raw.get("events"))
    roles = [r for r in ROLES if r in events] + [str(r) for r in events if r not in ROLES]
    if not roles:
        roles = list(ROLES)
    timeline = []
    for col, role in enumerate(roles):
        for n, ev in enumerate(_list(events.get(role))):
            ev = _mapping(ev)
            etype = _text(ev.get("type")) or "?"
            if etype == "error" or "error" in etype:
                cls = "error"
            elif etype in _HIGHLIGHT_EVENTS:
                cls = "highlight"
            elif etype == "console":
                cls = "console"
            else:
                cls = ""
            timeline.append({
                "t": _number(ev.get("t")),
                "col": col,
                "n": n,
                "type": etype,
                "detail": _compact(ev.get("detail")),
                "cls": cls,
            })
    # Stable merge by time; events without a time go last rather than being dropped.
    timeline.sort(key=lambda e: (e["t"] is None, e["t"] or 0.0, e["col"], e["n"]))

    snapshots = _mapping(raw.get("snapshots"))
    snap_roles = [r for r in ROLES if r in snapshots] + [str(r) for r in snapshots if r not in ROLES]
    return {
        "plan": [_text(p) for p in _list(raw.get("plan"))],
        "checks": checks,
        "checks_ok": sum(1 for c in checks if c["ok"]),
        "messages": messages,
        "roles": roles,
        "timeline": timeline,
        "snapshots": [{"role": r, "json": _json(snapshots.get(r), indent=2)} for r in snap_roles],
    }


# --- case page: session descriptions, transport stats, kept evidence ----------------------
# All three come from the detail file, which older runs (and passing cases whose evidence was
# not kept) lack in part or whole: each builder accepts any JSON and returns what it could use
# plus a note on what it could not, so the page says why a section is empty.

#: Above this much SDP text on one page, descriptions are listed without their text (the diffs
#: stay): a long stress case sets hundreds, and the detail JSON holds them all anyway.
SDP_TEXT_BUDGET = 2_000_000
#: The aiortc log is read at render time; only its tail is shown, from at most this many bytes.
LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 64 * 1024


def _mline_kinds(lines: list[str]) -> list[str]:
    return [line[2:].split(" ", 1)[0] for line in lines if line.startswith("m=")]


def _sdps(raw: Any) -> dict:
    """Every description each peer set, grouped by peer, with each offer chain as diffs."""
    if raw is None:
        return {"roles": [], "note": ""}
    if not isinstance(raw, (list, tuple)):
        return {"roles": [], "note": f"sdps is a {type(raw).__name__}, not a list: not shown."}
    items, skipped = [], 0
    for n, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            skipped += 1
            continue
        sdp = _text(entry.get("sdp"))
        lines = sdp.splitlines()
        items.append({
            "n": n,
            "role": _text(entry.get("role")) or "?",
            "t": _number(entry.get("t")),
            "op": _text(entry.get("op")) or "?",
            "type": _text(entry.get("type")) or "?",
            "sdp": "\n".join(lines),
            "lines": lines,
            "bytes": len(sdp.encode("utf-8", "replace")),
            "mlines": _mline_kinds(lines),
        })
    items.sort(key=lambda i: (i["t"] is None, i["t"] or 0.0, i["n"]))
    budget = SDP_TEXT_BUDGET
    for item in items:
        budget -= len(item["sdp"])
        item["omitted"] = budget < 0
    names = [r for r in ROLES if any(i["role"] == r for i in items)]
    names += sorted({i["role"] for i in items} - set(names))
    roles = []
    for role in names:
        mine = [i for i in items if i["role"] == role]
        for k, item in enumerate(mine, 1):
            item["k"] = k
        ops = ["local", "remote"] + sorted({i["op"] for i in mine} - {"local", "remote"})
        chains = [_offer_chain(op, [i for i in mine if i["op"] == op and i["type"] == "offer"]) for op in ops]
        roles.append({"role": role, "descriptions": mine, "chains": [c for c in chains if c["steps"]]})
    note = f"{skipped} entr{'y' if skipped == 1 else 'ies'} of sdps not an object: skipped." if skipped else ""
    if any(i["omitted"] for i in items):
        note = (note + " " if note else "") + ("Later descriptions' text is left out of this page (over "
                                               f"{SDP_TEXT_BUDGET:,} characters); see the detail JSON.")
    return {"roles": roles, "note": note}


def _offer_chain(op: str, offers: list[dict]) -> dict:
    """One peer's offers of one op: the first in full, each later one as a diff to the one before."""
    steps = []
    for prev, cur in zip([None, *offers], offers, strict=False):
        step = {"item": cur, "diff": [], "added": 0, "removed": 0, "mlines_before": None}
        if prev is not None:
            step["mlines_before"] = prev["mlines"]
            for line in difflib.unified_diff(prev["lines"], cur["lines"], lineterm="",
                                             fromfile=f"offer #{prev['k']}", tofile=f"offer #{cur['k']}"):
                if line.startswith(("--- ", "+++ ")) and len(step["diff"]) < 2:
                    cls = "file"
                elif line.startswith("@@"):
                    cls = "hunk"
                elif line.startswith("+"):
                    cls, step["added"] = "add", step["added"] + 1
                elif line.startswith("-"):
                    cls, step["removed"] = "del", step["removed"] + 1
                else:
                    cls = "ctx"
                step["diff"].append({"cls": cls, "text": line})
        steps.append(step)
    title = {"local": "offers it set locally (its own)",
             "remote": "offers it set remotely (its peer's)"}.get(op, f"offers with op {op}")
    return {"op": op, "title": title, "steps": steps}


def _stat(value: Any) -> str:
    """A stats value as text: missing is a dash, whole numbers have no '.0', anything odd is shown as JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        n = _number(value)
        if n is None:
            return "—"
        return str(int(n)) if n == int(n) else f"{n:.3f}"
    return value if isinstance(value, str) else _json(value)


def _endpoint(raw: Any) -> dict:
    raw = _mapping(raw)
    address, port = _text(raw.get("address")), _stat(raw.get("port"))
    if ":" in address:  # IPv6
        address = f"[{address}]"
    if not address and raw.get("port") is None:
        where = "—"
    else:
        where = f"{address or '?'}:{port if raw.get('port') is not None else '?'}"
    return {"type": _stat(raw.get("type")), "protocol": _stat(raw.get("protocol")), "where": where}


def _rows(raw: Any, keys: tuple[str, ...]) -> list[dict]:
    return [{k: _stat(_mapping(r).get(k)) for k in keys} for r in _list(raw) if isinstance(r, Mapping)]


INBOUND_KEYS = ("mid", "kind", "bytesReceived", "packetsReceived", "framesDecoded")
OUTBOUND_KEYS = ("mid", "kind", "bytesSent", "packetsSent")
CHANNEL_KEYS = ("label", "state", "messagesSent", "messagesReceived", "bytesSent", "bytesReceived")


def _stats(snapshots: Any) -> list[dict]:
    """Each peer's final transport stats (snapshots[role]["stats"]), for the roles that have them."""
    snapshots = _mapping(snapshots)
    roles = [r for r in ROLES if r in snapshots] + [str(r) for r in snapshots if r not in ROLES]
    out = []
    for role in roles:
        raw = _mapping(snapshots.get(role)).get("stats")
        if raw is None:
            continue
        note = _text(raw.get("note")) if isinstance(raw, Mapping) else f"stats is a {type(raw).__name__}, not an object."
        raw = _mapping(raw)
        pair = raw.get("pair")
        rtt = _number(_mapping(pair).get("currentRoundTripTime"))
        out.append({
            "role": role,
            "pair": None if not isinstance(pair, Mapping) else {
                "local": _endpoint(pair.get("local")),
                "remote": _endpoint(pair.get("remote")),
                "state": _stat(pair.get("state")),
                "bytesSent": _stat(pair.get("bytesSent")),
                "bytesReceived": _stat(pair.get("bytesReceived")),
                "rtt": "—" if rtt is None else f"{rtt * 1000:.1f} ms",
            },
            "tables": [{"title": title, "columns": keys, "rows": rows}
                       for title, keys, rows in (
                           ("inbound", INBOUND_KEYS, _rows(raw.get("inbound"), INBOUND_KEYS)),
                           ("outbound", OUTBOUND_KEYS, _rows(raw.get("outbound"), OUTBOUND_KEYS)),
                           ("data channels", CHANNEL_KEYS, _rows(raw.get("channels"), CHANNEL_KEYS)))
                       if rows],
            "note": note,
        })
    return out


def _safe_parts(rel: str) -> list[str] | None:
    """The parts of a path relative to the report folder, or None if it could leave that folder."""
    if not rel or "\\" in rel or "\0" in rel or rel.startswith("/"):
        return None
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    return None if ".." in parts else parts


def _tail(path: pathlib.Path, lines: int = LOG_TAIL_LINES, limit: int = LOG_TAIL_BYTES) -> tuple[str, bool]:
    """The last `lines` lines of a file, reading at most `limit` bytes; and whether more precede them."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - limit))
        data = fh.read(limit)
    text = data.decode("utf-8", "replace").splitlines()
    if size > limit and text:
        text = text[1:]  # the first line was cut by the seek
    return "\n".join(text[-lines:]), size > limit or len(text) > lines


def _trace_commands(rel: str, out_dir: pathlib.Path) -> list[dict]:
    """How to open a Playwright trace: from the report folder, and from the checkout when the report is in it."""
    commands = [{"where": "in the report folder", "cmd": f"playwright show-trace {shlex.quote(rel)}"}]
    try:
        from_root = (out_dir.resolve() / rel).relative_to(config.ROOT).as_posix()
    except ValueError:
        return commands
    commands.append({"where": "from the glare-rig checkout",
                     "cmd": f".venv/bin/playwright show-trace {shlex.quote(from_root)}"})
    return commands


def _evidence(raw: Any, out_dir: pathlib.Path) -> dict:
    """The files kept for this case, linked from the page (which lives in cases/), with sizes."""
    if not isinstance(raw, Mapping) or raw.get("kept") is not True:
        return {"kept": False, "files": [], "note": ""}
    root = out_dir.resolve()
    dir_text = _text(raw.get("dir"))
    base = _safe_parts(dir_text)
    notes = []
    if base is None:
        notes.append(f"Evidence folder {dir_text!r} is not a path inside the report folder: files not linked.")
    files = []
    for entry in _list(raw.get("files")):
        if not isinstance(entry, Mapping):
            continue
        name, kind = _text(entry.get("name")), _text(entry.get("kind"))
        item = {"name": name or "?", "kind": kind, "role": _text(entry.get("role")),
                "bytes": _number(entry.get("bytes")), "href": "", "exists": False, "commands": [],
                "tail": None, "tail_cut": False, "problem": ""}
        files.append(item)
        if not name or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
            item["problem"] = "not a plain file name: not linked"
            continue
        if base is None:
            continue
        rel = "/".join([*base, name])
        item["href"] = urllib.parse.quote(rel[len("cases/"):] if rel.startswith("cases/") else "../" + rel)
        path = out_dir / rel
        try:
            item["exists"] = path.resolve().is_relative_to(root) and path.is_file()
            if item["exists"]:  # what the link serves, even if the file grew after it was listed
                item["bytes"] = path.stat().st_size
        except OSError:
            item["exists"] = False
        if not item["exists"]:
            item["problem"] = "not found next to this page"
        if kind == "playwright-trace":
            item["commands"] = _trace_commands(rel, out_dir)
        elif kind == "aiortc-log" and item["exists"]:
            try:
                item["tail"], item["tail_cut"] = _tail(path)
            except OSError as exc:
                item["problem"] = f"could not be read: {exc}"
    if not files:
        notes.append("Evidence was kept but no files were listed.")
    return {"kept": True, "files": files, "note": " ".join(notes)}
