"""The checks: what was recorded, turned into checks with stable ids, and the first failure.

rig.case executes the steps and writes down what it asked for in a :class:`Ledger`
(changes made, collisions forced, windows armed, gates, faults); the peers and the stub
record what happened (events, the message log, final snapshots). :func:`checks` turns
these into checks, :func:`run_errors` lists the errors a finding must explain,
:func:`run_rejections` the API calls the rig itself saw reject, and
:func:`first_failed_check` or :func:`cause_of_error` names the cause. Nothing here touches
a browser, so every check is unit-tested on recorded data, and a stored case can be
judged again (suites/unit/test_findings.py does, with every finding's kept evidence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import RECOVER_TIMEOUT as RECOVER_S
from ..events import PeerEvent
from ..model import Cause, Check, Glare, Ledger, StubMessage
from ..snapshot import Snapshot
from ..vocab import INJECTED, ROLES


def other(role: str) -> str:
    return "impolite" if role == "polite" else "polite"


@dataclass(frozen=True)
class ErrorReport:
    """An error a peer reported during the case (its negotiator logged it, or the page threw),
    or an API call the rig saw reject (:func:`rejections`)."""

    peer: str
    operation: str
    name: str
    message: str
    t: float | None = None
    #: for a rejection the rig recorded (:func:`rejections`), the call as it was made,
    #: e.g. "setRemoteDescription(offer)"
    call: str = ""


#: the verdict reads the peers' own event type
Event = PeerEvent


class Timeline:
    """One peer's events (PeerEvents, or their dicts as a test or an old file has them)."""

    def __init__(self, events: Iterable[PeerEvent | Mapping[str, Any]]) -> None:
        self.events = [e if isinstance(e, PeerEvent) else
                       PeerEvent(float(e["t"]), str(e["type"]), dict(e.get("detail") or {})) for e in events]

    def of_type(self, *types: str) -> list[PeerEvent]:
        return [e for e in self.events if e.type in types]


#: the stub's message log: StubMessages, or their dicts as a test writes them
Messages = Iterable[StubMessage | Mapping[str, Any]]


def stub_messages(messages: Messages) -> list[StubMessage]:
    """The stub's message log as the checks read it (dicts, as a test writes them, validated once)."""
    return [m if isinstance(m, StubMessage) else StubMessage.model_validate(m) for m in messages]


#: each peer's end state: Snapshots, or their dicts as a test writes them
Snapshots = Mapping[str, Snapshot | Mapping[str, Any] | None]


def snapshots_of(snaps: Snapshots) -> dict[str, Snapshot]:
    """The end states as the checks read them (dicts validated once; a missing one is empty)."""
    return {role: s if isinstance(s, Snapshot) else Snapshot.model_validate(s or {}) for role, s in snaps.items()}


# -- role invariants (also what ends a case early) ------------------------------------
def role_checks(timelines: Mapping[str, Timeline]) -> list[tuple[Check, str]]:
    """The role invariants, each with the message that ends a case once it is broken."""
    out: list[tuple[Check, str]] = []
    for role in ROLES:
        bad = [e for e in timelines[role].of_type("negotiationneeded") if e.detail.get("state") != "stable"]
        out.append((Check(id=f"{role}.negotiationneeded-in-stable", kind="role", peer=role,
                          name=f"{role}: negotiationneeded fires only in 'stable'", ok=not bad,
                          detail=f"fired in {[e.detail.get('state') for e in bad]}" if bad else
                          f"{len(timelines[role].of_type('negotiationneeded'))} event(s), all in 'stable'"),
                    f"{role} peer: negotiationneeded fired in '{bad[0].detail.get('state')}' (it fires only in "
                    "'stable')" if bad else ""))
    wrong = timelines["polite"].of_type("offer-ignored")
    out.append((Check(id="polite.never-ignores-offer", kind="role", peer="polite",
                      name="polite peer never ignores an offer", ok=not wrong,
                      detail=f"{len(wrong)} offer(s) ignored" if wrong else "no offer ignored"),
                f"polite peer ignored offer #{wrong[0].detail.get('seq')} in {wrong[0].detail.get('state')}: "
                "the polite peer never ignores an offer" if wrong else ""))
    wrong = timelines["impolite"].of_type("rollback")
    out.append((Check(id="impolite.never-rolls-back", kind="role", peer="impolite",
                      name="impolite peer never rolls back", ok=not wrong,
                      detail=f"{len(wrong)} rollback(s)" if wrong else "no rollback"),
                f"impolite peer rolled back ({wrong[0].detail.get('how', '')}): the impolite peer never rolls back"
                if wrong else ""))
    return out


# -- the checks -----------------------------------------------------------------------
def glare_checks(ledger: Ledger, timelines: Mapping[str, Timeline], messages: Messages) -> tuple[list[Check], Glare]:
    messages = stub_messages(messages)
    checks: list[Check] = []
    polite, impolite = timelines["polite"], timelines["impolite"]
    by_seq = {m.seq: m for m in messages}
    bounds = [c.released_t for c in ledger.collisions] + [float("inf")]
    proven = []
    for c, end in zip(ledger.collisions, bounds[1:], strict=True):
        k, start, step = c.index, c.released_t, c.step
        held = [by_seq[s] for s in c.held if s in by_seq]
        senders = {m.sender for m in held if m.kind == "offer" and m.held and m.released_t is not None}
        want = {c.race_first} if c.race_first else set(ROLES)
        checks.append(Check(
            id=f"collision-{k}.held", kind="integrity", step=step,
            name=f"collision {k}: the {'offer' if c.race_first else 'offers'} held by the stub, then released",
            ok=want <= senders,
            detail=f"held offer(s) from {sorted(senders) or 'nobody'}: messages #{', #'.join(map(str, c.held))}, "
                   f"released at t={start:.3f}s" if senders else f"no held offer from {sorted(want)} was released"))
        w = c.window
        if w:
            tl = timelines[w.peer]
            hit = next((e for e in tl.of_type("injected") if e.detail.get("seq") == w.seq), None)
            checks.append(Check(
                id=f"collision-{k}.window", kind="integrity", step=step, peer=w.peer,
                name=f"collision {k}: window '{w.trigger}' reached in the {w.peer} peer", ok=hit is not None,
                detail=f"message #{w.seq} handed over in signalingState={hit.detail.get('state')}, operations "
                       f"pending: {hit.detail.get('chain')}" if hit else
                       f"message #{w.seq} was never handed over at '{w.trigger}'"))
        rb = [e for e in polite.of_type("rollback") if start <= e.t < end]
        ig = [e for e in impolite.of_type("offer-ignored") if start <= e.t < end]
        re_ = [e for e in polite.of_type("offer-made") if rb and rb[0].t <= e.t < end]
        checks.append(Check(id=f"collision-{k}.rolled-back", step=step, peer="polite",
                            name=f"collision {k}: polite peer rolled back its offer", ok=bool(rb),
                            detail=rb[0].detail.get("how", "") if rb else "no rollback after the release"))
        checks.append(Check(id=f"collision-{k}.ignored", step=step, peer="impolite",
                            name=f"collision {k}: impolite peer ignored the incoming offer", ok=bool(ig),
                            detail=f"offer #{ig[0].detail.get('seq')} ignored in {ig[0].detail.get('state')}"
                            if ig else "no offer ignored after the release"))
        if c.reoffer:
            checks.append(Check(id=f"collision-{k}.reoffered", step=step, peer="polite",
                                name=f"collision {k}: polite peer offered its change again", ok=bool(re_),
                                detail=f"re-offer at t={re_[0].t:.3f}s" if re_ else
                                "no offer from polite after its rollback"))
        else:
            re_ = [True]  # its change is negotiated by the other side's offer (see the scenario)
        proven.append(bool(rb and ig and re_))
    forced = {c.step for c in ledger.collisions}
    for k, step in enumerate(ledger.planned_collisions, 1):
        if step not in forced:
            checks.append(Check(id=f"collision-{k}.forced", kind="integrity", step=step,
                                name=f"collision {k} (step {step}) was forced", ok=False,
                                detail=f"not forced: the case ended at step {ledger.reached}" if ledger.reached <= step
                                else "the step ran but no collision was recorded"))
    glare = Glare(forced=bool(ledger.collisions), observed=bool(proven) and all(proven),
                  collisions=len(ledger.collisions), planned=len(ledger.planned_collisions),
                  polite_rolled_back=any(c.ok for c in checks if c.id.endswith(".rolled-back")),
                  impolite_ignored_offer=any(c.ok for c in checks if c.id.endswith(".ignored")),
                  polite_reoffered=any(c.ok for c in checks if c.id.endswith(".reoffered")))
    return checks, glare


def plan_checks(ledger: Ledger, timelines: Mapping[str, Timeline], messages: Messages) -> list[Check]:
    """Gates, faults and message faults the plan set up: did each happen?"""
    messages = stub_messages(messages)
    checks: list[Check] = []
    for g in ledger.gates:
        tl = timelines[g.who]
        hit = next((e for e in tl.of_type("gate-reached") if e.detail.get("id") == g.id), None)
        checks.append(Check(id=f"gate-{g.id}.reached", kind="integrity", step=g.step, peer=g.who,
                            name=f"gate reached: {g.what}", ok=hit is not None,
                            detail=f"paused in signalingState={hit.detail.get('state')}" if hit else
                            "the peer never got there: the window this plan targets was not exercised"))
        if g.open_on:
            opened = next((e for e in tl.of_type("gate-opened") if e.detail.get("id") == g.id), None)
            checks.append(Check(id=f"gate-{g.id}.opened", kind="integrity", step=g.step, peer=g.who,
                                name=f"gate opened by its trigger '{g.open_on}': {g.what}", ok=opened is not None,
                                detail=f"opened in signalingState={opened.detail.get('state')}, operations pending: "
                                       f"{opened.detail.get('chain')}" if opened else "the trigger never fired"))
    for n, f in enumerate(ledger.faults, 1):
        seen = [e for e in timelines[f.who].of_type("fault-injected") if e.detail.get("method") == f.method]
        mine = [x for x in ledger.faults[:n] if x.who == f.who and x.method == f.method]
        checks.append(Check(id=f"fault-{n}.injected", kind="integrity", step=f.step, peer=f.who,
                            name=f"{f.who}: the planned fault in {f.method} was injected", ok=len(seen) >= len(mine),
                            detail=f"{len(seen)} of {len(mine)} injected"))
    for n, mf in enumerate(ledger.message_faults, 1):
        mark = "duplicate of" if mf.what == "duplicate" else "dropped by plan"
        hit = [m for m in messages if m.sender == mf.sender and mark in m.note]
        checks.append(Check(id=f"message-fault-{n}.happened", kind="integrity", step=mf.step,
                            name=f"planned {mf.what} of {mf.sender}'s {mf.kind} happened", ok=bool(hit),
                            detail=f"message #{hit[0].seq}: {hit[0].note}" if hit else
                            f"no {mf.kind} from the {mf.sender} peer passed the stub"))
    return checks


def negotiation_checks(ledger: Ledger, timelines: Mapping[str, Timeline], messages: Messages) -> list[Check]:
    """Every scenario changes something, so a case in which no offer and answer crossed the stub,
    or a peer never applied a remote description, did not test negotiation at all: an integrity
    failure, never a pass. Dated after the plan's last step: they decide only a case in which
    nothing else failed, and a finding that stopped the negotiation is not blamed twice
    (rig.verdict.unexplained counts an integrity check only at or before the cause's step)."""
    last = len(ledger.steps) + 1
    delivered = [m for m in stub_messages(messages) if m.delivered_t is not None]
    offers = sum(m.kind == "offer" for m in delivered)
    answers = sum(m.kind == "answer" for m in delivered)
    out = [Check(id="negotiation.exchanged", kind="integrity", step=last,
                 name="an offer and an answer crossed the stub", ok=offers > 0 and answers > 0,
                 detail=f"{offers} offer(s) and {answers} answer(s) delivered"
                        + ("" if offers and answers else ": no negotiation happened"))]
    for role in ROLES:
        applied = timelines[role].of_type("remote-description-set") if role in timelines else []
        out.append(Check(id=f"{role}.negotiated", kind="integrity", step=last, peer=role,
                         name=f"{role} applied a remote description", ok=bool(applied),
                         detail=f"{len(applied)} applied" if applied else "it never applied one"))
    return out


def final_checks(ledger: Ledger, timelines: Mapping[str, Timeline], snaps: Snapshots) -> list[Check]:
    """The end state: the roles the peers computed, then each peer's state, media, channels,
    changes and errors (in that order: the first failed one is the cause)."""
    ends = snapshots_of(snaps)
    checks: list[Check] = []
    for role in ROLES:
        want = role == "polite"
        got = ledger.computed_polite.get(role)
        checks.append(Check(id=f"{role}.role-computed", kind="role", peer=role,
                            name=f"{role} peer computed polite={want} from the user ids", ok=got is want,
                            detail=f"computed polite={got}"))
    counts = {r: len(ends[r].transceivers) if r in ends else 0 for r in ROLES}
    checks.append(Check(id="transceivers-match", name="both sides have the same transceivers",
                        ok=counts["polite"] == counts["impolite"],
                        detail=f"polite {counts['polite']}, impolite {counts['impolite']}"))
    for role in ROLES:
        checks += _peer_end_checks(ledger, role, ends.get(role) or Snapshot(), timelines[role])
    return checks


def _peer_end_checks(ledger: Ledger, role: str, snap: Snapshot, tl: Timeline) -> list[Check]:
    """One peer's end state, held to what the ledger says the case asked for."""
    checks: list[Check] = []
    checks.append(Check(id=f"{role}.stable", peer=role, name=f"{role} ends stable",
                        ok=snap.signalingState == "stable", detail=f"signalingState={snap.signalingState}"))
    checks.append(Check(id=f"{role}.connected", peer=role, name=f"{role} ends connected",
                        ok=snap.connectionState == "connected",
                        detail=f"connectionState={snap.connectionState}" + _dip(ledger, role)))
    for kind, n in sorted(ledger.expect_media[role].items()):
        rx = [r.model_dump(mode="json") for r in snap.received if r.kind == kind
              and ((r.bytesReceived or 0) > 0 or (r.framesDecoded or 0) > 0)]
        checks.append(Check(id=f"{role}.media-{kind}", peer=role,
                            name=f"{role} receives {n} {kind} track(s) with media flowing", ok=len(rx) >= n,
                            detail=f"{len(rx)} receiving: {rx}"))
    sending = [t for t in snap.transceivers if t.sending]
    ok_dir = [t for t in sending if t.currentDirection in ("sendonly", "sendrecv")]
    if ledger.own_media[role]:
        checks.append(Check(id=f"{role}.sends-own", peer=role,
                            name=f"{role} sends its {ledger.own_media[role]} own track(s) (currentDirection)",
                            ok=len(ok_dir) >= ledger.own_media[role],
                            detail="currentDirection of sending transceivers: "
                                   f"{[t.currentDirection for t in sending]}"))
    chans = {c.label: c for c in snap.channels}
    for label in sorted(ledger.channels):
        c = chans.get(label)
        checks.append(Check(id=f"{role}.channel-{label}", peer=role, name=f"{role} has data channel {label} open",
                            ok=bool(c and c.readyState == "open"), detail=f"readyState={c.readyState if c else 'absent'}"))
    other_sent = ledger.exchanged[other(role)]
    if other_sent:
        got_msgs = [m for c in chans.values() for m in c.received]
        missing = [m for m in other_sent if m not in got_msgs]
        checks.append(Check(id=f"{role}.messages", peer=role, name=f"{role} received every data-channel message",
                            ok=not missing, detail=f"missing {missing}" if missing else f"{len(other_sent)} received"))
    for r in ledger.removed:
        if r.role == role:
            t = next((t for t in snap.transceivers if t.mid == r.mid), None)
            cur = t.currentDirection if t else None
            checks.append(Check(id=f"{role}.removed-{r.mid}", peer=role,
                                name=f"{role} stopped sending the removed track (mid {r.mid})",
                                ok=cur in ("recvonly", "inactive", "stopped"), detail=f"currentDirection={cur}"))
    for r in ledger.restarts:
        if r.role == role:
            now, before = set(snap.localUfrags), set(r.before)
            checks.append(Check(id=f"{role}.ice-restarted", peer=role, name=f"{role} restarted ICE (new local ufrag)",
                                ok=bool(now) and not (now & before),
                                detail=f"ufrag before {sorted(before)}, after {sorted(now)}"))
    errs = tl.of_type("error")
    checks.append(Check(id=f"{role}.no-error", peer=role, name=f"{role} reported no error", ok=not errs,
                        detail="; ".join(e.detail.get("text", str(e.detail))[:300] for e in errs[:3])
                        or "no error"))
    return checks


def checks(ledger: Ledger, timelines: Mapping[str, Timeline], messages: Messages,
           snaps: Snapshots) -> tuple[list[Check], Glare]:
    """Every check of the case: integrity first, then roles, then outcomes. The
    negotiationneeded and role invariants are in every scenario's verdict, glare or not."""
    messages = stub_messages(messages)
    gchecks, glare = glare_checks(ledger, timelines, messages)
    if not ledger.glare:
        gchecks = [c for c in gchecks if c.kind == "integrity"]
    out = (plan_checks(ledger, timelines, messages) + negotiation_checks(ledger, timelines, messages) + gchecks
           + [c for c, _ in role_checks(timelines)] + final_checks(ledger, timelines, snaps))
    order = {"integrity": 0, "role": 1, "outcome": 2}
    return sorted(out, key=lambda c: order[c.kind]), glare


def _dip(ledger: Ledger, role: str) -> str:
    """What the end state's recovery wait saw of this peer (rig.execute CaseRun._recover)."""
    for d in ledger.dips:
        if d.role == role:
            if d.recovered_t is None:
                return f" (disconnected after the last step at t={d.t:.1f} s, and still after {RECOVER_S:.0f} s)"
            return (f" (disconnected after the last step at t={d.t:.1f} s, left that state "
                    f"{d.recovered_t - d.t:.1f} s later)")
    return ""


# -- errors and the cause -------------------------------------------------------------
def run_errors(ledger: Ledger, timelines: Mapping[str, Timeline]) -> list[ErrorReport]:
    """The errors reported while the rig drove the case: what a finding must explain."""
    return [e for role in ROLES if role in timelines for e in error_reports(role, timelines[role], ledger.ended_t)]


def error_reports(role: str, tl: Timeline, until: float | None = None) -> list[ErrorReport]:
    """Every error the peer reported (up to ``until``), with the operation it came from where
    the peer's instrumentation saw that API call reject with the same error."""
    out = []
    api = tl.of_type("api-error")
    for e in tl.of_type("error"):
        if until is not None and e.t > until:
            continue
        err, op = _the_error(e, [a for a in api if a.t <= e.t])
        name = str(err.get("name") or "")
        message = str(err.get("message") or e.detail.get("text") or "")
        out.append(ErrorReport(role, op or str(e.detail.get("source", "")), name, message, e.t))
    return out


def run_rejections(ledger: Ledger, timelines: Mapping[str, Timeline], until: float | None) -> list[ErrorReport]:
    """The API calls either peer saw reject up to ``until`` (the first failure), earliest first."""
    out = [r for role in ROLES if role in timelines for r in rejections(role, timelines[role], until)]
    return sorted(out, key=lambda r: r.t if r.t is not None else float("inf"))


def rejections(role: str, tl: Timeline, until: float | None = None) -> list[ErrorReport]:
    """The peer's API calls that rejected (up to ``until``), from the rig's own record of each
    call (``api-error``, by rig-peer.js's and aiortc_instrumentation's wrappers), whether or
    not the negotiator reported the error: a negotiator that catches and drops errors leaves
    them here only. Left out are the rig's planned faults and the rejections the pattern itself
    drops: addIceCandidate while the peer ignores an offer (from its ``offer-ignored`` to the
    next remote description it applies), as the reference negotiator does."""
    out = []
    ignoring = False
    for e in tl.events:
        if e.type == "offer-ignored":
            ignoring = True
        elif e.type == "remote-description-set":
            ignoring = False
        if e.type != "api-error":
            continue
        method, message = str(e.detail.get("method", "")), str(e.detail.get("message", ""))
        dropped = ignoring and method == "addIceCandidate"
        if method == "setRemoteDescription":
            ignoring = False
        if dropped or message.startswith(INJECTED) or (until is not None and e.t > until):
            continue
        what = e.detail.get("type")
        out.append(ErrorReport(role, method, str(e.detail.get("name") or ""), message, e.t,
                               call=f"{method}({what if isinstance(what, str) and what != 'implicit' else ''})"))
    return out


def _the_error(e: Event, api_before: list[Event]) -> tuple[Mapping[str, Any], str]:
    """Which of the values an error event logged is the error, and the operation it came from.

    ``console.error("prefix:", err)`` logs a string before the error: the error is the value
    an API call rejected with (the latest such call), else the first error object, else the
    first value."""
    errs = [x for x in e.detail.get("errors") or [] if isinstance(x, Mapping)]
    for a in reversed(api_before):
        for x in errs:
            if str(a.detail.get("message", "")) == str(x.get("message") or ""):
                return x, str(a.detail.get("method", ""))
    thrown = [x for x in errs if x.get("thrown")]
    return (thrown or errs or [{}])[0], ""


def cause_of_error(role: str, kind: str, tl: Timeline, step: str, step_index: int | None,
                   state: tuple[str, str]) -> Cause | None:
    reports = error_reports(role, tl)
    if not reports:
        return None
    r = reports[0]
    return Cause(kind="error", step=step, step_index=step_index, peer=role, peer_kind=kind, operation=r.operation,
                 error_name=r.name, message=r.message, signaling_state=state[0], connection_state=state[1], t=r.t)


def first_failed_check(checks_: list[Check], kinds: Mapping[str, str], snaps: Snapshots) -> Cause | None:
    """The cause of a case whose steps all ran: its first failed check."""
    c = next((c for c in checks_ if not c.ok), None)
    if c is None:
        return None
    snap = snapshots_of(snaps).get(c.peer) if c.peer else None
    snap = snap or Snapshot()
    return Cause(kind="check", step="final checks", peer=c.peer, peer_kind=kinds.get(c.peer, "") if c.peer else "",
                 operation=c.id, message=f"{c.name}: {c.detail}", check=c.id,
                 signaling_state=snap.signalingState or "", connection_state=snap.connectionState or "")
