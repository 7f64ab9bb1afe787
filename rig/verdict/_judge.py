"""The outcome: a case's first failure matched against the findings of its cell.

A failed case is a finding (``xfailed``) only if

- its first failure (:class:`rig.model.Cause`) is that finding's error on that peer, on a
  version the finding was seen on, and
- nothing else failed that is not explained: every error a peer reported is the cause or
  another finding of the cell; no role invariant is broken; every integrity check of a
  step the case reached holds (the collision was forced, the window reached ...).

When the first failure is no finding's (a negotiator that catches and drops errors turns a
rejected call into a timeout), the rig's own record of the API calls that rejected before
it decides: the first such rejection stands for the first failure, held to the same
standard (:func:`rejected`), and the reason says the negotiator did not report it.

Anything else is ``failed``, and the reason names both the cause and the finding that did
not explain it. A cell with a finding that passes is ``xpassed`` (a failure of the run:
the finding must be narrowed or removed), unless the finding is intermittent there or the
peers ran other negotiators than the reference ones the findings were recorded with.
:func:`case_verdict` is what rig.case calls once a case is over: it adds the outcomes that
are not a finding's (unsupported, an injected fault) to :func:`judge`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..events import PeerEvent
from ..findings import FINDINGS, Cells, Finding
from ..model import Cause, Check, Glare, Ledger, PeerInfo
from ._checks import ErrorReport, Messages, Snapshots, Timeline, checks, first_failed_check, run_errors, run_rejections

#: The WebRTC operations whose rejections are reported as errors with their operation.
API_METHODS = ("createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate")


@dataclass
class Judgement:
    outcome: str
    expected: str
    finding: str | None
    reason: str
    applying: list[str]
    #: findings that cover the cell but were not seen on these versions
    not_seen: list[str] = field(default_factory=list)


def applying(scenario: str, polite: PeerInfo, impolite: PeerInfo,
             catalogue: tuple[Finding, ...] = FINDINGS) -> list[tuple[Finding, Cells]]:
    """Every finding that applies to this cell on these versions, with its cell group."""
    out = []
    for f in catalogue:
        cells = f.cell(scenario, polite, impolite)
        if cells is not None:
            out.append((f, cells))
    return out


def expectation(found: list[tuple[Finding, Cells]], reference: bool = True) -> str:
    """pass, xfail (a deterministic finding), or 'xfail or pass' (only intermittent ones, or any
    finding when the peers ran other negotiators than the reference: the findings were recorded
    with the reference's, and another negotiator may avoid a failure, or a browser bug's
    consequence, that the reference meets; if it fails, the finding must still explain it)."""
    if not found:
        return "pass"
    return "xfail" if reference and any(not c.intermittent for _, c in found) else "xfail or pass"


def not_seen(scenario: str, polite: PeerInfo, impolite: PeerInfo,
             catalogue: tuple[Finding, ...] = FINDINGS) -> list[str]:
    """Findings whose cells cover this cell, on versions outside every range they were seen on."""
    return [f.id for f in catalogue
            if f.covers(scenario, polite, impolite) is not None and f.cell(scenario, polite, impolite) is None]


def unexplained(cause: Cause, checks: list[Check], errors: list[ErrorReport],
                found: list[tuple[Finding, Cells]]) -> list[str]:
    """What failed besides ``cause`` that neither it nor another finding of the cell explains."""
    out = []
    for e in errors:
        if cause.kind == "error" and e.peer == cause.peer and e.name == cause.error_name and e.message == cause.message:
            continue
        if any((f.peer is None or f.peer == e.peer) and f.matches_error(e.name, e.message) for f, _ in found):
            continue
        if (cause.t is not None and e.t is not None and e.t > cause.t and e.operation in API_METHODS):
            # after the first failure a peer is no longer in a state the pattern assumes, so a
            # WebRTC operation rejecting then is its consequence; an error of the code (a
            # TypeError, the plumbing, the stub) is never excused this way
            continue
        out.append(f"{e.peer} peer error in {e.operation or 'an operation'}: {e.name}: {e.message}"[:300])
    for c in checks:
        if c.ok or c.id == cause.check:
            continue
        if c.kind == "role":
            out.append(f"check {c.id}: {c.detail}")
        elif c.kind == "integrity":
            reached = cause.step_index is None or c.step is None or c.step <= cause.step_index
            if reached:
                out.append(f"check {c.id}: {c.detail}")
    return out


def judge(scenario: str, polite: PeerInfo, impolite: PeerInfo, cause: Cause | None, checks: list[Check],
          errors: list[ErrorReport], catalogue: tuple[Finding, ...] = FINDINGS,
          rejections: Sequence[ErrorReport] = (), reference: bool = True) -> Judgement:
    """The outcome of a case that ran (unsupported cases are decided before they run).
    ``rejections``: the API calls the rig saw reject before the first failure, earliest first
    (:func:`rig.verdict.run_rejections`); ``reference``: the peers ran the reference negotiators."""
    found = applying(scenario, polite, impolite, catalogue)
    expected = expectation(found, reference)
    ids = [f.id for f, _ in found]
    elsewhere = not_seen(scenario, polite, impolite, catalogue)
    if cause is None:
        if expected == "xfail":
            strict = [f.id for f, c in found if not c.intermittent]
            return Judgement("xpassed", expected, None,
                             f"passed although finding {', '.join(strict)} expects this cell to fail: "
                             "narrow or remove the finding", ids, elsewhere)
        notes = [f"finding {f.id} not seen on {_versions(f, scenario, polite, impolite)}"
                 for f in catalogue if f.id in elsewhere]
        if found and not reference:
            notes.insert(0, f"finding {', '.join(ids)} fails this cell with the reference negotiators; "
                            "these negotiators passed it")
        return Judgement("passed", expected, None, "; ".join(notes), ids, elsewhere)
    tail = "".join(f"\n{c.name}: {c.detail}" for c in checks if not c.ok)
    if cause.kind == "setup":
        return Judgement("error", expected, None, cause.text() + tail, ids, elsewhere)
    matching = [f for f, _ in found if f.matches(cause)]
    for f in matching:
        rest = unexplained(cause, checks, errors, found)
        if not rest:
            return Judgement("xfailed", expected, f.id, f"finding {f.id}: {f.title}\nfirst failure: {cause.text()}"
                             + tail, ids)
        return Judgement("failed", expected, None,
                         f"{cause.text()}\nfinding {f.id} explains the first failure, but not: " + "; ".join(rest)
                         + tail, ids, elsewhere)
    why = ""
    if found:
        why = "\nnot a known finding of this cell: " + "; ".join(
            f"{f.id} expects {f.expects()}" for f, _ in found)
    why += _elsewhere(cause, scenario, catalogue, elsewhere, polite, impolite)
    if rejections and cause.kind in ("error", "timeout", "check"):
        first = rejected(cause, rejections[0], polite, impolite)
        said = recorded(first, rejections[0].call, errors)
        for f in (f for f, _ in found if f.matches(first)):
            rest = unexplained(first, checks, errors, found)
            if not rest:
                return Judgement("xfailed", expected, f.id, f"finding {f.id}: {f.title}\nfirst failure: {said}"
                                 f"\nthen: {cause.text()}" + tail, ids)
            return Judgement("failed", expected, None,
                             f"{cause.text()}\nfinding {f.id} explains the first rejection ({said}), but not: "
                             + "; ".join(rest) + tail, ids, elsewhere)
        if not (cause.kind == "error" and (cause.peer, cause.error_name, cause.message) ==
                (first.peer, first.error_name, first.message)):
            why += f"\nthe first rejected call is no finding of this cell either: {said}"
            why += _elsewhere(first, scenario, catalogue, elsewhere, polite, impolite)
    return Judgement("failed", expected, None, cause.text() + why + tail, ids, elsewhere)


def rejected(cause: Cause, r: ErrorReport, polite: PeerInfo, impolite: PeerInfo) -> Cause:
    """A rejection the rig recorded, as a first failure: the finding must match it as it would
    match the error reported (its peer, operation, error, the versions of the cell), and every
    other failure up to the step the case reached must be explained as for that error."""
    return Cause(kind="error", step=cause.step, step_index=cause.step_index, peer=r.peer,
                 peer_kind=(polite if r.peer == "polite" else impolite).kind, operation=r.operation,
                 error_name=r.name, message=r.message, t=r.t)


def recorded(first: Cause, call: str, errors: list[ErrorReport]) -> str:
    """How the reason names a rejection the rig recorded, and whether the negotiator reported it."""
    when = f" at t={first.t:.3f} s" if first.t is not None else ""
    told = any((e.peer, e.name, e.message) == (first.peer, first.error_name, first.message) for e in errors)
    return (f"{first.peer} peer ({first.peer_kind}) rejected {call or first.operation}: "
            f"{first.error_name + ': ' if first.error_name else ''}{first.message}, recorded by the rig{when}; "
            + ("the negotiator reported it later" if told else "the negotiator did not report it"))


def _elsewhere(cause: Cause, scenario: str, catalogue: tuple[Finding, ...], elsewhere: list[str], polite: PeerInfo,
               impolite: PeerInfo) -> str:
    out = ""
    for f in catalogue:
        if f.id in elsewhere and f.matches(cause):
            out += (f"\nfinding {f.id} has this first failure but was seen only on {f.ranges(scenario=scenario)}"
                    f"{' in ' + scenario if scenario in f.seen_in else ''}, not on "
                    f"{_versions(f, scenario, polite, impolite)}: a new failure on this version (if it is the same bug, "
                    "widen the finding's range in rig/findings.py with this case as evidence)")
    return out


def _versions(f: Finding, scenario: str, polite: PeerInfo, impolite: PeerInfo) -> str:
    """The versions of the cell's peers that lie outside ``f``'s ranges for ``scenario``, e.g.
    "chromium 147.0.7727.0"."""
    out = [f"{p.kind} {p.version}" for p in f.dated(polite, impolite) if not f.seen_on(p, scenario)]
    return ", ".join(dict.fromkeys(out))


# -- a case, once it is over ----------------------------------------------------------
@dataclass
class Recorded:
    """What a case recorded, as the verdict reads it (rig.case fills it once the peers are
    closed; a kept case file holds the same)."""

    scenario: str
    polite: PeerInfo
    impolite: PeerInfo
    #: collisions the plan forces (the glare record of a case whose steps never ran)
    planned: int = 0
    #: the failure that ended the steps early (None: they all ran, or never started)
    cause: Cause | None = None
    #: why the pair cannot run the scenario (capabilities probed at start, or the fault)
    unsupported: str = ""
    #: what the case asked for; None: the steps never started (set-up failed or unsupported)
    ledger: Ledger | None = None
    #: each peer's events, the stub's message log, the end states
    events: Mapping[str, Iterable[PeerEvent | Mapping[str, Any]]] = field(default_factory=dict)
    messages: Messages = field(default_factory=list)
    snapshots: Snapshots = field(default_factory=dict)
    #: an injected fault's reason (rig.faults.Injection.reason): its case is never a pass
    fault: Callable[[str], str] | None = None
    #: the peers ran the reference negotiators (rig.case.runs_reference); else a finding's cell
    #: may pass (expectation)
    reference: bool = True


@dataclass
class CaseVerdict:
    judgement: Judgement
    #: the first failure: the one that ended the steps, else the first failed check
    cause: Cause | None
    checks: list[Check]
    glare: Glare


def case_verdict(rec: Recorded) -> CaseVerdict:
    """Recorded events -> checks -> first failure -> finding match -> outcome."""
    cause = rec.cause
    found_checks: list[Check] = []
    glare = Glare(planned=rec.planned)
    if rec.unsupported:
        found = applying(rec.scenario, rec.polite, rec.impolite)
        judgement = Judgement("unsupported", expectation(found, rec.reference), None, rec.unsupported, [f.id for f, _ in found],
                              not_seen(rec.scenario, rec.polite, rec.impolite))
    elif rec.ledger is None:
        judgement = judge(rec.scenario, rec.polite, rec.impolite, cause, [], [], reference=rec.reference)
    else:
        timelines = {role: Timeline(evs) for role, evs in rec.events.items()}
        found_checks, glare = checks(rec.ledger, timelines, rec.messages, rec.snapshots)
        if cause is None:
            cause = first_failed_check(found_checks, {"polite": rec.polite.kind, "impolite": rec.impolite.kind},
                                       rec.snapshots)
        errors = run_errors(rec.ledger, timelines)
        # rejections up to the first failure: an error's time, else when the rig stopped (a
        # timeout, a broken invariant or a failed final check is known only then)
        until = cause.t if cause is not None and cause.t is not None else rec.ledger.ended_t
        judgement = judge(rec.scenario, rec.polite, rec.impolite, cause, found_checks, errors,
                          rejections=run_rejections(rec.ledger, timelines, until), reference=rec.reference)
    if rec.fault is not None and not rec.unsupported:  # never a pass: the fault and what the rig saw after it
        then = judgement.reason if judgement.outcome != "passed" else "the pair still met every check"
        judgement = dataclasses.replace(judgement, outcome="error", finding=None, reason=rec.fault(then))
    return CaseVerdict(judgement, cause, found_checks, glare)
