"""results.json and the per-case detail files: the record every other output is made from."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import config, evidence, findings
from .events import PeerEvent
from .model import (
    OUTCOMES,
    CaseDetail,
    CaseSummary,
    Cause,
    FindingInfo,
    PeerInfo,
    RunRecord,
    SchemaError,
    StubMessage,
    parse_detail,
)
from .versions import version_key
from .vocab import RESULTS_FILE

__all__ = ["OUTCOMES", "case_id", "collect", "slug", "write_case", "write_results"]


def case_id(scenario: str, polite: str, impolite: str, repeat: int, repeats: int) -> str:
    """``glare-add-media[chromium-polite--firefox-impolite]`` (plus ``-r2`` with repeats)."""
    suffix = f"-r{repeat}" if repeats > 1 else ""
    return f"{scenario}[{polite}-polite--{impolite}-impolite{suffix}]"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _split_sdps(events: dict[str, list[PeerEvent]]) -> tuple[dict[str, list[PeerEvent]], list[dict]]:
    """Every description a peer set is an "sdp" event; they go to their own list."""
    rest: dict[str, list[PeerEvent]] = {}
    sdps: list[dict] = []
    for role, evs in events.items():
        rest[role] = []
        for e in evs:
            if e.type == "sdp":
                d = e.detail
                sdps.append({"role": role, "t": round(e.t, 4), "op": d.get("op"), "type": d.get("type"),
                             "sdp": d.get("sdp", "")})
            else:
                rest[role].append(e)
    sdps.sort(key=lambda x: x["t"] or 0)
    return rest, sdps


def _lean_messages(messages: list[StubMessage]) -> list[StubMessage]:
    """The signaling log without SDP bodies (kept: type and size)."""
    out = []
    for m in messages:
        data = m.data
        if isinstance(data, dict) and isinstance(data.get("description"), dict):
            desc = data["description"]
            m = m.model_copy(update={"data": {"description": {"type": desc.get("type"),
                                                              "sdp_omitted": len(desc.get("sdp") or "")}}})
        out.append(m)
    return out


def write_case(out: Path, *, cid: str, repeat: int, nodeid: str, result: CaseDetail | None = None,
               scenario: str = "", polite: PeerInfo | None = None, impolite: PeerInfo | None = None,
               error: str = "", duration_s: float = 0.0, keep: str = "failed",
               negotiators: dict | None = None, outcome: str = "error") -> CaseSummary:
    """Write cases/<slug>.json (the case's record, a CaseDetail, with its identity in the run)
    and return its summary.

    Without ``result`` (the case could not run at all), the case is ``outcome`` (``error``, or
    ``not-run`` for a case the run ended before) with ``error`` as its reason. The evidence of a
    case (every SDP set, the SDP bodies of the signaling log, the files in cases/<slug>/) is kept
    when it did not pass, or for all with keep="all"."""
    s = slug(cid)
    began = time.monotonic()
    identity = {"id": cid, "slug": s, "nodeid": nodeid, "repeat": repeat, "details": f"cases/{s}.json",
                "negotiators": negotiators or {}}
    if result is not None:
        summary = result.case.model_copy(update=identity)
        detail = result.model_copy(update={"case": summary})
    else:
        summary = CaseSummary(
            scenario=scenario, polite=polite, impolite=impolite, outcome=outcome,
            cause=Cause(kind="rig", message=error) if outcome == "error" else None, reason=error,
            duration_s=round(duration_s, 3), **identity)
        detail = CaseDetail(case=summary)
    kept = keep == "all" or summary.outcome != "passed"
    events, sdps = _split_sdps(detail.events)
    messages = detail.messages
    ev_dir = out / "cases" / s
    if kept:
        ev = evidence.list_files(ev_dir, out)
    else:
        evidence.discard(ev_dir)
        ev = {"kept": False, "dir": "", "files": []}
        sdps, messages = [], _lean_messages(messages)
    detail = detail.model_copy(update={"events": events, "sdps": sdps, "messages": messages, "evidence": ev})
    (out / "cases").mkdir(parents=True, exist_ok=True)
    data = detail.model_dump(mode="json")
    if result is not None:  # writing the evidence is the case's last phase (up to the dump)
        summary.phases["evidence"] = data["case"]["phases"]["evidence"] = round(time.monotonic() - began, 3)
    tmp = out / "cases" / f".{s}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, out / "cases" / f"{s}.json")
    return summary


def mark_crashed(out: Path, slug_: str, why: str) -> None:
    """Make a finished case an ``error``: its worker died (``why``) after writing the verdict,
    before reporting it. The verdict it had is kept in the reason."""
    path = out / "cases" / f"{slug_}.json"
    try:
        data = json.loads(path.read_text())
        case = data["case"]
    except (OSError, ValueError, KeyError):
        return
    if case.get("outcome") == "error" and case.get("reason", "").startswith(why):
        return
    was = f"{case.get('outcome')}" + (f": {case['reason']}" if case.get("reason") else "")
    case["reason"] = f"{why} (after its verdict, {was[:300]})"
    case["outcome"] = "error"
    case["cause"] = {"kind": "rig", "message": case["reason"]}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def unfinished(collected: dict[str, str], finished: set[str], crashed: dict[str, str],
               interrupted: str = "", stopped: str = "") -> dict[str, tuple[str, str]]:
    """What each collected case without a result becomes, so that no case is a silent gap.

    ``collected``: slug -> pytest node id of every case the run collected; ``finished``: the
    slugs that wrote a result; ``crashed``: node id -> why its worker died while running it (a
    worker that died before the run was interrupted). Returns slug -> (outcome, reason):

    - the worker running it died: ``error``, with how it died;
    - the run was interrupted (``interrupted``: "SIGTERM", "SIGTERM (to worker gw1)") or stopped early (``stopped``:
      pytest's -x, xdist giving up on crashed workers): ``not-run``, saying why;
    - otherwise its result never arrived: ``error``."""
    out: dict[str, tuple[str, str]] = {}
    for slug_, nodeid in collected.items():
        if slug_ in finished:
            continue
        if nodeid in crashed:
            out[slug_] = ("error", crashed[nodeid])
        elif interrupted:
            out[slug_] = ("not-run", f"not run: the run was interrupted by {interrupted} before this case finished")
        elif stopped:
            out[slug_] = ("not-run", f"not run: the run stopped early ({stopped})")
        else:
            out[slug_] = ("error", "collected, but no result was recorded for it (its worker ended without "
                                   "reporting it)")
    return out


def collect(out: Path, *, started: datetime, command: str, repeat: int, peers: list[str],
            scenarios: list[dict], versions: dict[str, str]) -> RunRecord:
    """Gather every case file of this run into the run record (results.json's content)."""
    cases: list[CaseSummary] = []
    for f in sorted((out / "cases").glob("*.json")):
        try:
            cases.append(parse_detail(json.loads(f.read_text()), str(f)).case)
        except (ValueError, SchemaError):
            continue
    order = {s["name"]: i for i, s in enumerate(scenarios)}
    cases.sort(key=lambda c: (order.get(c.scenario, 99), c.polite.spec, c.impolite.spec, c.repeat))
    finished = datetime.now(UTC)
    seen_versions: dict[str, set[str]] = {}
    for c in cases:  # versions seen by the peers themselves are the most exact
        for p in (c.polite, c.impolite):
            if p.version not in (None, "", "unavailable"):
                seen_versions.setdefault(p.kind, set()).add(p.version)
    for kind, vs in seen_versions.items():
        versions[kind] = ", ".join(sorted(vs, key=version_key))
    seen = {i for c in cases for i in (*c.findings, *c.not_seen)}
    return RunRecord(
        rig_version=package_version("glare-rig"),
        started=started.isoformat(timespec="seconds"), finished=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 1),
        command=command, build=config.build_id(), repeat=repeat, peers=peers,
        versions={"aiortc": package_version("aiortc"), **versions, "playwright": package_version("playwright"),
                  "python": platform.python_version()},
        scenarios=scenarios,
        findings=finding_infos(seen),
        summary=_summary(cases),
        cases=cases,
    )


def finding_infos(ids: set[str]) -> list[FindingInfo]:
    """The catalogue's findings among ``ids``, as the run records them (its findings list).

    Each scenario with a range of its own (``seen_in``) gets it in ``seen_in``, looked up as the
    verdict looks it up (``Finding.seen_for``), so the record says which versions judged that
    scenario's cells. Every such scenario, not only the run's: the shards of one run then record
    the same finding, and ``rig merge``, which keeps one record per finding id, loses none."""
    def _ranges(ranges: Mapping[str, tuple[findings.Seen, ...]]) -> dict[str, list[str]]:
        return {k: [str(r) for r in v] for k, v in sorted(ranges.items())}

    return [FindingInfo(id=f.id, title=f.title, detail=f.detail, upstream=f.upstream_text,
                        intermittent=all(c.intermittent for c in f.cells),
                        seen=_ranges(f.seen),
                        seen_in={s: _ranges(f.seen_for(s)) for s in sorted(f.seen_in)})
            for f in findings.FINDINGS if f.id in ids]


def _summary(cases: list[CaseSummary]) -> dict[str, int]:
    return {o: sum(c.outcome == o for c in cases) for o in OUTCOMES}


def subset(run: RunRecord, cases: list[CaseSummary], **update: Any) -> RunRecord:
    """The run record of some of ``run``'s cases (one variant of a variants run), its summary
    and findings recounted."""
    seen = {i for c in cases for i in (*c.findings, *c.not_seen)}
    return run.model_copy(update={"cases": cases, "summary": _summary(cases),
                                  "findings": [f for f in run.findings if f.id in seen], **update})


def write_results(out: Path, run: RunRecord) -> Path:
    path = out / RESULTS_FILE
    tmp = out / ".results.json.tmp"
    tmp.write_text(json.dumps(run.model_dump(mode="json"), indent=1))
    os.replace(tmp, path)
    return path
