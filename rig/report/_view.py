"""What the index and the case pages share: the one Jinja environment, its filters, and each
case of the run as the pages show it (its page name, peers, glare marks, cause)."""

from __future__ import annotations

import json
import pathlib
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import jinja2

from rig import diagram, model
from rig.versions import version_key
from rig.vocab import ROLES

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

_TEMPLATES = pathlib.Path(__file__).resolve().parent.with_name("templates")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

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


def known_findings(run: Mapping) -> dict[str, model.FindingInfo]:
    """The findings the run itself recorded (results.json ``findings``), by id: the report writes
    a finding's title and explanation from these, as they were when the run was judged, not from
    this rig's catalogue."""
    out = {}
    for raw in _list(run.get("findings")):
        try:
            f = model.FindingInfo.model_validate(raw)
        except ValueError:  # pydantic's ValidationError: an entry the pages cannot use
            continue
        out[f.id] = f
    return out


def _cases(raw_cases: Any, known: Mapping[str, model.FindingInfo]) -> list[dict]:
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
            "finding_title": known[_text(raw.get("finding"))].title if _text(raw.get("finding")) in known else "",
        })
    return out


def case_pages(raw_cases: Any) -> list[str]:
    """Each case's page as write_report names it, relative to the report folder (cases/...)."""
    return [c["href"] for c in _cases([c.model_dump(mode="json") if isinstance(c, model.Model) else c
                                       for c in _list(raw_cases)], {})]


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

