"""Debugging a case: the one-screen summary of ``rig debug`` and the reproducer folder
of ``rig repro``. Both read only what a run recorded (cases/<slug>.json)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from . import config, matrix, options, report, scenarios
from .errors import RigError
from .events import PeerEvent
from .model import (
    CaseDetail,
    CaseSummary,
    PeerInfo,
    RunRecord,
    SchemaError,
    StubMessage,
    load_run,
    parse_detail,
    read_json,
)
from .request import MatrixRequest, command_line, user_paths
from .results import slug
from .snapshot import Snapshot
from .vocab import RESULTS_FILE, ROLES

#: Event types worth a line in the terminal summary (the case page has all of them).
_KEY = {"change", "offer-made", "answer-made", "rollback", "offer-ignored", "api-error", "error", "gate-reached",
        "gate-opened", "injected", "fault-injected", "negotiationneeded-delivered", "channel-open", "media-flowing"}
_MAX_LINES = 30


def _peer_title(p: PeerInfo) -> str:
    return f"{p.spec} {p.version}".strip()


def _event_line(e: PeerEvent) -> str | None:
    t, typ, d = e.t, e.type, e.detail
    if typ == "connectionstatechange" and d.get("state") in ("connected", "failed", "disconnected"):
        what = f"connection {d['state']}"
    elif typ == "signal-sent" and d.get("kind") in ("offer", "answer"):
        what = f"sends {d['kind']}"
    elif typ == "remote-description-set":
        what = f"applied remote {d.get('type')} (was {d.get('state_before')})"
    elif typ not in _KEY:
        return None
    elif typ == "change":
        what = f"change: {d.get('action')}"
    elif typ in ("offer-made", "answer-made"):
        what = f"{typ.split('-')[0]} made (was {d.get('state_before')})"
    elif typ == "rollback":
        what = f"ROLLBACK ({d.get('how', '')})"
    elif typ == "offer-ignored":
        what = f"IGNORED offer #{d.get('seq')} (in {d.get('state')})"
    elif typ in ("api-error", "error"):
        text = d.get("text") or f"{d.get('method', '')}: {d.get('name', '')}: {d.get('message', '')}"
        what = f"ERROR {text}"
    elif typ.startswith("gate-"):
        what = f"{typ} {d.get('when', '')} {d.get('step', '')} (in {d.get('state')})"
    elif typ == "injected":
        what = f"message #{d.get('seq')} handed over at '{d.get('trigger')}' (in {d.get('state')})"
    else:
        what = typ + (f" {d.get('label') or d.get('kind') or d.get('method') or ''}" if d else "")
    return f"{t:8.3f}s  {{role:8}}  {what[:110]}"


def timeline(detail: CaseDetail) -> list[tuple[float, str, str]]:
    rows = []
    for role, evs in detail.events.items():
        last_api_error = ""
        for e in evs:
            if e.type == "api-error":
                last_api_error = str(e.detail.get("message", ""))
            elif e.type == "error" and last_api_error and last_api_error in str(e.detail.get("text", "")):
                continue  # the negotiator logging the API error just shown
            line = _event_line(e)
            if line:
                rows.append((e.t, line.format(role=role), e.type))
    rows.sort(key=lambda r: r[0])
    return rows


def divergence(detail: CaseDetail) -> str:
    """Where the two stories part: the first error of either peer, else the first unmet check."""
    first: tuple[float, str] | None = None
    for role, evs in detail.events.items():
        for e in evs:
            if e.type in ("api-error", "error"):
                if first is None or e.t < first[0]:
                    d = e.detail
                    text = d.get("text") or f"{d.get('method', '')}: {d.get('message', '')}"
                    first = (e.t, f"t={e.t:.3f}s, {role} peer: {text[:200]}")
                break
    if first:
        return first[1]
    bad = unmet(detail)
    return bad or "nowhere: every check held"


def unmet(detail: CaseDetail) -> str:
    for c in detail.checks:
        if not c.ok:
            return f"{c.name}: {c.detail[:200]}"
    return ""


def summarize(detail: CaseDetail, detail_path: Path | None = None) -> str:
    """One screen: who did what, where it diverged, the unmet invariant, the evidence."""
    case = detail.case
    pol, imp = case.polite, case.impolite
    out = [f"== {case.id or '?'}: {case.outcome.upper()} in {case.duration_s} s",
           f"   polite   {_peer_title(pol)} (user id {pol.user_id})",
           f"   impolite {_peer_title(imp)} (user id {imp.user_id})"]
    glare = case.glare
    if glare.forced:
        out.append(f"   glare: forced {glare.collisions}x, proven={glare.observed} "
                   f"(rolled back: {glare.polite_rolled_back}, ignored: {glare.impolite_ignored_offer})")
    rows = timeline(detail)
    out.append("-- who did what (key events; every event is on the case page)")
    if len(rows) > _MAX_LINES:
        # keep the start, and the stretch that leads to the first error
        err_i = next((i for i, r in enumerate(rows) if r[2] in ("api-error", "error")), len(rows) - 1)
        tail_start = max(10, err_i - (_MAX_LINES - 14))
        shown = rows[:10] + [(0, f"          ... {tail_start - 10} events ...", "")] + rows[tail_start:tail_start + _MAX_LINES - 11]
    else:
        shown = rows
    out += ["   " + r[1] for r in shown]
    out.append(f"-- diverged at: {divergence(detail)}")
    bad = unmet(detail)
    out.append(f"-- unmet invariant: {bad or 'none'}")
    for role in ROLES:
        s = detail.snapshots.get(role) or Snapshot()
        out.append(f"   {role} ended {s.signalingState or '?'}/{s.connectionState or '?'}, "
                   f"{len(s.transceivers)} transceiver(s)")
    if case.finding:
        out.append(f"-- finding: {case.finding} (the first failure is its error; see docs/findings.md)")
    if case.cause is not None:
        out.append("-- first failure: " + case.cause.text()[:400])
    elif case.reason:
        out.append("-- reason: " + case.reason.splitlines()[0][:300])
    if detail_path is not None:
        page = detail_path.with_suffix(".html")
        out.append(f"-- evidence: {page if page.exists() else detail_path}")
        for f in detail.evidence.get("files") or []:
            p = detail_path.parent / detail_path.stem / str(f.get("name"))
            extra = f"   (open: .venv/bin/playwright show-trace {p})" if f.get("kind") == "playwright-trace" else ""
            out.append(f"   {p}{extra}")
    return "\n".join(out)


# -- reproducer ----------------------------------------------------------------------
def find_case(case_id: str, where: Path) -> Path:
    """A case's detail JSON by id (``scenario[pair]``), slug or file name, under ``where``."""
    want = {case_id, slug(case_id), Path(case_id).stem}
    direct = Path(case_id)
    if direct.suffix == ".json" and direct.is_file():
        return direct
    hits = [p for p in sorted(where.rglob("cases/*.json")) if p.stem in want]
    if not hits:
        for p in sorted(where.rglob("cases/*.json")):
            try:
                if json.loads(p.read_text()).get("case", {}).get("id") == case_id:
                    hits.append(p)
            except (OSError, ValueError):
                continue
    if not hits:
        raise RigError(f"no case {case_id!r} under {where} (case ids are in results.json and on the report)")
    return hits[0]


def _transcript(messages: list[StubMessage]) -> str:
    lines = ["# t(s)   seq  from -> to         kind        notes"]
    for m in messages:
        desc = m.data.get("description") if isinstance(m.data, dict) else None
        kind = m.kind + (f"({desc.get('type')})" if isinstance(desc, dict) and desc.get("type") != m.kind else "")
        notes = [f"held, released at {m.released_t}"] if m.held else []
        if m.note:
            notes.append(m.note)
        lines.append(f"{m.t:8.3f} #{m.seq:<4} {m.sender or '?':>8} -> {m.to or '?':<8} {kind:11} {'; '.join(notes)}")
    return "\n".join(lines) + "\n"


def _copy_negotiators(case: CaseSummary, out: Path) -> tuple[list[str], list[str]]:
    """The case's negotiators copied into ``out`` (a module is named, not copied): the replay's
    flags, and a line per negotiator for the README."""
    neg = case.negotiators or {"js": str(config.REFERENCE_NEGOTIATOR_JS), "py": str(config.REFERENCE_NEGOTIATOR_PY)}
    kinds = {case.polite.kind, case.impolite.kind}
    flags: list[str] = []
    copied = []
    if kinds & {"chromium", "firefox"} and neg.get("js") and Path(neg["js"]).is_file():
        shutil.copy(neg["js"], out / "negotiator.js")
        flags += ["--negotiator-js", "negotiator.js"]
        copied.append(f"negotiator.js (copy of {neg['js']})")
    if "aiortc" in kinds and neg.get("py"):
        head, dot_py, attr = neg["py"].partition(".py")  # "path.py[:attr]" or "module:attr"
        src = Path(head + dot_py) if dot_py else None
        if src is not None and src.is_file():
            shutil.copy(src, out / "negotiator.py")
            flags += ["--negotiator-py", "negotiator.py" + attr]
            copied.append(f"negotiator.py (copy of {src})")
        else:
            flags += ["--negotiator-py", neg["py"]]
            copied.append(f"Python negotiator {neg['py']} (a module: not copied)")
    return flags, copied


def write_repro(detail_path: Path, out: Path) -> Path:
    """A standalone folder for a bug report: plan, negotiators, versions, transcript, replay."""
    try:
        detail = parse_detail(read_json(detail_path), str(detail_path))
    except SchemaError as exc:
        raise RigError(str(exc)) from None
    case = detail.case
    if not detail.plan_data:
        raise RigError(f"{detail_path}: this case has no plan recorded (it never started)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "plan.json").write_text(json.dumps(detail.plan_data, indent=2) + "\n")
    (out / "transcript.json").write_text(
        json.dumps([m.model_dump(mode="json") for m in detail.messages], indent=1) + "\n")
    (out / "transcript.txt").write_text(_transcript(detail.messages))
    shutil.copy(detail_path, out / "case.json")
    versions: dict[str, Any] = {"polite": case.polite.model_dump(mode="json"),
                                "impolite": case.impolite.model_dump(mode="json")}
    run = _run_record(detail_path)
    if run is not None:
        versions["run"], versions["rig_version"] = run.versions, run.rig_version
    (out / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    flags, copied = _copy_negotiators(case, out)
    ev_dir = detail_path.parent / detail_path.stem
    if ev_dir.is_dir():
        shutil.copytree(ev_dir, out / "evidence")
    pair = f"{case.polite.spec}:{case.impolite.spec}"
    peers = ",".join(dict.fromkeys([case.polite.spec, case.impolite.spec]))
    cmd = ["rig", "matrix", "--plan", "plan.json", "--peers", peers, *flags, "--out", "replay", "--pairs", pair]
    (out / "replay.sh").write_text(
        "#!/bin/sh\n# Replays this case exactly (same plan, same negotiators) with glare-rig; run it from this\n"
        "# folder with glare-rig's `rig` on PATH (a glare-rig checkout: ./run setup, then .venv/bin/rig).\n"
        'cd "$(dirname "$0")" && exec ' + " ".join(shlex.quote(c) for c in cmd) + "\n")
    (out / "replay.sh").chmod(0o755)
    reason = (case.reason or "passed").strip()
    (out / "README.md").write_text(
        f"# glare-rig reproducer: {case.id}\n\n"
        f"- outcome: **{case.outcome}** (expected: {case.expected})\n"
        f"- polite: {_peer_title(case.polite)}; impolite: {_peer_title(case.impolite)}\n"
        f"- scenario: `{detail.plan_data.get('name')}`: {detail.plan_data.get('description', '')}\n\n"
        "## What happened\n\n```\n" + reason[:4000] + "\n```\n\n"
        "## Plan (plan.json)\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(detail.plan, 1)) + "\n\n"
        "## Files\n\n- `plan.json`: the timing plan, replayable\n"
        "- `transcript.txt` / `transcript.json`: every signaling message (time, direction, kind, held/released)\n"
        "- `versions.json`: browser, aiortc, Playwright and Python versions\n"
        "- `case.json`: everything the rig recorded (events of both peers, SDPs, checks, final states)\n"
        + "".join(f"- {c}\n" for c in copied)
        + ("- `evidence/`: Playwright traces (`playwright show-trace evidence/trace-<role>.zip`) and aiortc's log\n"
           if ev_dir.is_dir() else "")
        + "\n## Replay\n\n```sh\n./replay.sh\n# which runs:\n" + " ".join(shlex.quote(c) for c in cmd) + "\n```\n")
    return out


def _run_record(detail_path: Path) -> RunRecord | None:
    """The run's record beside the case, for its versions; a case copied out of its run has none."""
    try:
        return load_run(detail_path.parent.parent / RESULTS_FILE)
    except SchemaError:
        return None


# --- rig debug: one case again, with full capture -----------------------------------------

def _error(msg: str) -> None:
    print(f"rig: error: {msg}", file=sys.stderr)


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_debug(args: argparse.Namespace) -> int:
    """``rig debug``: re-run one case with full capture and print a one-screen summary per run."""
    try:
        polite, impolite = options.parse_pair(args.pair)
        if args.plan:
            scen = scenarios.load_plan(Path(args.plan))
        elif args.scenario:
            scen = scenarios.get(args.scenario)
        else:
            raise RigError("name a SCENARIO or give --plan FILE")
    except RigError as exc:
        _error(str(exc))
        return 2
    headed = args.headed
    if headed and not _has_display():
        print("rig debug: --headed needs a display and none is set (DISPLAY and WAYLAND_DISPLAY are empty), so "
              "the browsers run headless. To watch them: run on a desktop session, or under a virtual display "
              "you can view (e.g. `xvfb-run -a rig debug ...` with x11vnc). The evidence below is the same.",
              flush=True)
        headed = False
    label = f"{polite.label}-polite--{impolite.label}-impolite"
    out = Path(args.out or config.ROOT / "reports" / "debug" / f"{scen.name}_{label}").resolve()
    req = MatrixRequest.from_options(user_paths({
        "peers": ",".join(dict.fromkeys([str(polite), str(impolite)])), "pairs": f"{polite}:{impolite}",
        "repeat": args.repeat, "out": str(out), "keep": "all", "plan": args.plan,
        "scenarios": None if args.plan else scen.name, "negotiator_js": args.negotiator_js,
        "negotiator_py": args.negotiator_py, "capture": "full", "headed": headed}), command=command_line())
    print(f"rig debug: {scen.name} with {polite} polite x {impolite} impolite, {args.repeat} run(s), full capture "
          f"-> {out}", flush=True)
    rc = matrix.run(req)
    try:
        run = report.load_run(out).model_dump(mode="json")
    except (OSError, ValueError):
        _error(f"the run wrote no results (rig matrix exit status {rc})")
        return 2
    cases = [c for c in run["cases"] if label in c["id"]]
    if not cases:
        _error(f"no case of {label} ran (rig matrix exit status {rc})")
        return 2
    for c in cases:
        path = out / c.get("details", f"cases/{c['slug']}.json")
        try:
            detail = parse_detail(read_json(path), str(path))
        except SchemaError as exc:
            _error(f"{c['id']}: its detail file is unreadable ({exc})")
            continue
        print()
        print(summarize(detail, path))
    met = [c for c in cases if c["outcome"] in ("passed", "xfailed")]
    print(f"\nrig debug: {len(met)} of {len(cases)} run(s) met their expectation; report {out / 'index.html'}")
    return 0 if len(met) == len(cases) else 1
