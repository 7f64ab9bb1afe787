"""A case's page, from its detail file: checks, plan, signaling log, timelines, sequence
diagram, session descriptions, transport stats and kept evidence."""

from __future__ import annotations

import difflib
import json
import pathlib
import shlex
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import markupsafe
from pydantic import BaseModel

from rig import config, diagram, model
from rig.events import PeerEvent
from rig.report._view import (
    _HIGHLIGHT_EVENTS,
    _compact,
    _json,
    _list,
    _number,
    _text,
)
from rig.snapshot import Endpoint, Snapshot
from rig.vocab import ROLES, STUB_MESSAGE_KINDS

# --- per-case detail file --------------------------------------------------------


def load_detail(out_dir: pathlib.Path, case: Mapping) -> tuple[dict | None, str]:
    """The detail file is optional (a case can die before writing it), and read as the typed
    record (model.parse_detail): a file that is absent or is not one gives a one-line reason."""
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
    try:
        record = model.parse_detail(raw, f"Detail file {rel}")
    except model.SchemaError as exc:
        return None, str(exc)
    detail = _detail(record)
    detail["href"] = "../" + urllib.parse.quote(rel)
    detail["diagram"], detail["diagram_error"] = _diagram(record)
    detail["sdps"] = _sdps(record.sdps)
    detail["stats"] = _stats(record.snapshots)
    detail["evidence"] = _evidence(record.evidence, out_dir)
    return detail, ""


def _diagram(record: model.CaseDetail) -> tuple[markupsafe.Markup | None, str]:
    """The sequence diagram, or why it is missing: a drawing bug must not cost the page."""
    try:
        return markupsafe.Markup(diagram.render(record)), ""
    except Exception as exc:  # noqa: BLE001 - any failure of the drawing, reported on the page
        return None, f"The sequence diagram could not be drawn: {type(exc).__name__}: {exc}"


def _checks(checks: list[model.Check]) -> list[dict]:
    return [{"id": ch.id, "kind": ch.kind, "name": ch.name, "ok": ch.ok, "detail": ch.detail} for ch in checks]


def _messages(messages: list[model.StubMessage]) -> list[dict]:
    """The signaling log's rows, each coloured by its kind."""
    out = []
    for m in messages:
        kind = m.kind or "other"
        out.append({
            "seq": str(m.seq), "t": _number(m.t), "from": m.sender, "to": m.to, "kind": kind,
            "cls": kind if kind in STUB_MESSAGE_KINDS else "other", "size": str(m.size), "held": m.held,
            "released_t": _number(m.released_t), "delivered_t": _number(m.delivered_t), "note": m.note,
        })
    return out


def _event_class(etype: str) -> str:
    if "error" in etype:
        return "error"
    if etype in _HIGHLIGHT_EVENTS:
        return "highlight"
    return "console" if etype == "console" else ""


def _roles(by_role: Mapping) -> list[str]:
    """The roles of a per-role mapping: polite and impolite first, then any other."""
    return [r for r in ROLES if r in by_role] + [str(r) for r in by_role if r not in ROLES]


def _timeline(events: Mapping[str, list[PeerEvent]], roles: list[str]) -> list[dict]:
    """Both peers' events in one list, a column per role, merged by time."""
    timeline = []
    for col, role in enumerate(roles):
        for n, ev in enumerate(events.get(role, [])):
            etype = ev.type or "?"
            timeline.append({"t": _number(ev.t), "col": col, "n": n, "type": etype,
                             "detail": _compact(ev.detail), "cls": _event_class(etype)})
    # Stable merge by time; events without a (finite) time go last rather than being dropped.
    timeline.sort(key=lambda e: (e["t"] is None, e["t"] or 0.0, e["col"], e["n"]))
    return timeline


def _detail(record: model.CaseDetail) -> dict:
    checks = _checks(record.checks)
    roles = _roles(record.events) or list(ROLES)
    snapshots = record.snapshots
    return {
        "plan": list(record.plan),
        "checks": checks,
        "checks_ok": sum(1 for c in checks if c["ok"]),
        "messages": _messages(record.messages),
        "roles": roles,
        "timeline": _timeline(record.events, roles),
        "snapshots": [{"role": r, "json": _json(model.dump(snapshots[r]), indent=2)} for r in _roles(snapshots)],
    }


# --- case page: session descriptions, transport stats, kept evidence ----------------------
# The record lacks these in part or whole for older runs and for passing cases whose evidence
# was not kept; the SDP entries and the evidence list are free-form in it, so their builders
# take any value inside them and say on the page why a section is empty.

#: Above this much SDP text on one page, descriptions are listed without their text (the diffs
#: stay): a long stress case sets hundreds, and the detail JSON holds them all anyway.
SDP_TEXT_BUDGET = 2_000_000
#: The aiortc log is read at render time; only its tail is shown, from at most this many bytes.
LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 64 * 1024


def _mline_kinds(lines: list[str]) -> list[str]:
    return [line[2:].split(" ", 1)[0] for line in lines if line.startswith("m=")]


def _sdps(entries: list[dict[str, Any]]) -> dict:
    """Every description each peer set, grouped by peer, with each offer chain as diffs."""
    items = []
    for n, entry in enumerate(entries):
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
    note = ""
    if any(i["omitted"] for i in items):
        note = ("Later descriptions' text is left out of this page (over "
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


def _endpoint(end: Endpoint | None) -> dict:
    end = end or Endpoint()
    address, port = end.address or "", _stat(end.port)
    if ":" in address:  # IPv6
        address = f"[{address}]"
    if not address and end.port is None:
        where = "—"
    else:
        where = f"{address or '?'}:{port if end.port is not None else '?'}"
    return {"type": _stat(end.type), "protocol": _stat(end.protocol), "where": where}


def _rows(entries: Sequence[BaseModel], keys: tuple[str, ...]) -> list[dict]:
    return [{k: _stat(getattr(r, k)) for k in keys} for r in entries]


INBOUND_KEYS = ("mid", "kind", "bytesReceived", "packetsReceived", "framesDecoded")
OUTBOUND_KEYS = ("mid", "kind", "bytesSent", "packetsSent")
CHANNEL_KEYS = ("label", "state", "messagesSent", "messagesReceived", "bytesSent", "bytesReceived")


def _stats(snapshots: Mapping[str, Snapshot]) -> list[dict]:
    """Each peer's final transport stats (its snapshot's ``stats``), for the roles that have them."""
    out = []
    for role in _roles(snapshots):
        stats = snapshots[role].stats
        if stats is None:
            continue
        pair = stats.pair
        rtt = _number(pair.currentRoundTripTime) if pair else None
        out.append({
            "role": role,
            "pair": None if pair is None else {
                "local": _endpoint(pair.local),
                "remote": _endpoint(pair.remote),
                "state": _stat(pair.state),
                "bytesSent": _stat(pair.bytesSent),
                "bytesReceived": _stat(pair.bytesReceived),
                "rtt": "—" if rtt is None else f"{rtt * 1000:.1f} ms",
            },
            "tables": [{"title": title, "columns": keys, "rows": rows}
                       for title, keys, rows in (
                           ("inbound", INBOUND_KEYS, _rows(stats.inbound, INBOUND_KEYS)),
                           ("outbound", OUTBOUND_KEYS, _rows(stats.outbound, OUTBOUND_KEYS)),
                           ("data channels", CHANNEL_KEYS, _rows(stats.channels, CHANNEL_KEYS)))
                       if rows],
            "note": stats.note,
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


def _evidence(raw: dict[str, Any], out_dir: pathlib.Path) -> dict:
    """The files kept for this case, linked from the page (which lives in cases/), with sizes."""
    if raw.get("kept") is not True:
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
