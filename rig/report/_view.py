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
from rig.report.reproduce import commands as reproduce_commands
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


# --- what the records hold free-form (an event's detail, a detail file's SDP entries and evidence
# list) and rig mutants' kill matrix, read as they come (the records themselves are typed) -----


def _text(value: Any) -> str:
    return "" if value is None else str(value)


_number = diagram.finite_number  # one rule for numbers read from recorded data


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


def _run_header(run: model.RunRecord, links: list[dict]) -> dict:
    return {
        "rig_version": run.rig_version, "started": run.started, "finished": run.finished,
        "duration_s": _number(run.duration_s), "command": run.command, "repeat": str(run.repeat),
        "links": links, "shard": run.shard, "catalogue_digest": run.catalogue_digest,
        "merged": _merged(run.merged), "interrupted": run.interrupted,
    }


#: How many duplicate notes the index lists (all of them are in results.json).
MERGE_NOTES_SHOWN = 20


def _merged(merged: model.MergeInfo | None) -> dict | None:
    """What rig merge read and noticed: its inputs, missing shards or cells, duplicates."""
    if merged is None:
        return None
    inputs = [{"path": i.path, "shard": i.shard, "cases": i.cases, "started": i.started} for i in merged.inputs]
    dups = merged.duplicates
    return {"inputs": inputs, "missing": list(merged.missing),
            "duplicates": dups[:MERGE_NOTES_SHOWN], "more_duplicates": max(0, len(dups) - MERGE_NOTES_SHOWN)}


def _versions(versions: Mapping[str, str]) -> list[dict]:
    names = list(VERSION_KEYS) + [k for k in versions if k not in VERSION_KEYS]
    out = []
    for name in names:
        text = versions.get(name) or ""
        out.append({"name": name, "text": text or "unknown", "missing": not text or text.startswith("unavailable")})
    return out


def _summary(summary: Mapping[str, int], cases: list[dict]) -> dict:
    """Counts as the run reported them, falling back to counting the cases."""
    counted = {o: sum(1 for c in cases if c["outcome"] == o) for o in OUTCOMES}
    return {o: summary.get(o, counted[o]) for o in OUTCOMES}


def _peer(p: model.PeerInfo) -> dict:
    return {
        "label": p.spec or p.kind or "?", "spec": p.spec, "kind": p.kind, "version": p.version,
        "user_id": "" if p.user_id is None else str(p.user_id), "source": p.source, "driver": p.driver,
        # "chromium 147.0.7727.0": what a version-matrix axis shows
        "name": f"{p.kind or p.spec} {p.version}" if p.version and p.version != "unavailable"
        else (p.spec or p.kind or "?"),
    }


def _glare(glare: model.Glare) -> dict:
    """The proof first, then the counts (collisions, planned), which stay numbers: as flags, 0
    would read as a failed proof."""
    raw = glare.model_dump()
    return {k: raw[k] for k in (*GLARE_KEYS, *(k for k in raw if k not in GLARE_KEYS))}


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


def known_findings(run: model.RunRecord) -> dict[str, model.FindingInfo]:
    """The findings the run itself recorded (results.json ``findings``), by id: the report writes
    a finding's title and explanation from these, as they were when the run was judged, not from
    this rig's catalogue."""
    return {f.id: f for f in run.findings}


def upstream_links(info: model.FindingInfo | None) -> list[dict]:
    """A recorded finding's public reports, each {"url", "title"}: its ``upstream`` holds one
    "URL title" a line (rig.findings.Finding.upstream_text); an older run's bare URL is its own title."""
    out = []
    for line in (info.upstream if info else "").splitlines():
        url, _, title = line.strip().partition(" ")
        if url.startswith(("https://", "http://")):
            out.append({"url": url, "title": title.strip() or url})
    return out


def _cases(cases: list[model.CaseSummary], known: Mapping[str, model.FindingInfo]) -> list[dict]:
    taken: set[str] = set()
    out = []
    for i, c in enumerate(cases):
        glare = _glare(c.glare)
        case_id = c.id or c.slug or f"case-{i}"
        page = _page_name(c.slug or case_id, taken)
        out.append({
            "id": case_id, "page": page, "href": "cases/" + urllib.parse.quote(page),
            "scenario": c.scenario or "?", "polite": _peer(c.polite), "impolite": _peer(c.impolite),
            "repeat": c.repeat, "outcome": c.outcome, "cls": c.outcome, "expected": c.expected,
            "duration_s": _number(c.duration_s), "glare": glare, "glare_mark": _glare_mark(glare),
            "reason": c.reason.strip("\n"), "details": c.details, "finding": c.finding or "",
            "findings": [f for f in c.findings if f], "not_seen": [f for f in c.not_seen if f],
            "cause": c.cause.model_dump() if c.cause else {}, "cause_text": c.cause.text() if c.cause else "",
            "finding_title": known[c.finding].title if c.finding in known else "",
            "upstream": {f: upstream_links(known.get(f)) for f in dict.fromkeys([c.finding or "", *c.findings]) if f},
            "reproduce": [{"what": cmd.what, "line": cmd.line} for cmd in reproduce_commands(c)],
        })
    return out


def case_pages(cases: list[model.CaseSummary]) -> list[str]:
    """Each case's page as write_report names it, relative to the report folder (cases/...)."""
    return [c["href"] for c in _cases(cases, {})]


def _peers(run: model.RunRecord, cases: list[dict]) -> list[dict]:
    """Matrix axes: the run's declared peers first, then any that only the cases mention."""
    labels = list(run.peers)
    for c in cases:
        for role in ROLES:
            if c[role]["label"] not in labels:
                labels.append(c[role]["label"])
    out = []
    for label in labels:
        peer = next((c[r] for c in cases for r in ROLES if c[r]["label"] == label and c[r]["version"]), {})
        kind = peer.get("kind") or label.partition("@")[0]
        out.append({"label": label, "kind": kind, "version": peer.get("version") or run.versions.get(label, ""),
                    "source": peer.get("source", ""), "driver": peer.get("driver", "")})
    # grouped by kind (in the order the run named them), then by version: a version matrix
    # reads left to right from the oldest to the newest build of each engine
    kinds = list(dict.fromkeys(p["kind"] for p in out))
    out.sort(key=lambda p: (kinds.index(p["kind"]), version_key(p["version"]), p["label"]))
    return out


def _scenarios(run: model.RunRecord, cases: list[dict]) -> list[dict]:
    out: dict[str, dict] = {}
    for s in run.scenarios:
        if s.name and s.name not in out:
            out[s.name] = {"name": s.name, "description": s.description}
    for c in cases:
        out.setdefault(c["scenario"], {"name": c["scenario"], "description": ""})
    for s in out.values():
        mine = [c for c in cases if c["scenario"] == s["name"]]
        s["total"] = len(mine)
        s["passed"] = sum(1 for c in mine if c["outcome"] == "passed")
    return list(out.values())

