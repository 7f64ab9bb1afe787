"""Runs one case: two peers, one scenario, every step bounded, evidence kept.

It makes the peers, runs the plan (rig.execute: each step executed and written down in a
:class:`rig.model.Ledger`), closes the peers, and hands the ledger and what the peers and the
stub recorded to :func:`rig.verdict.case_verdict`, which computes the outcome from the record
(never from what was intended) and matches it against the known findings (rig.findings).
What it returns is the case's record, :class:`rig.model.CaseDetail`: the same object
rig.results writes to cases/<slug>.json and every reader loads back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import capabilities, config, faults, roles, verdict
from .errors import RigError
from .evidence import AiortcLog
from .execute import CaseRun
from .model import CaseDetail, CaseSummary, Cause, PeerInfo, StubMessage
from .peers.base import Peer
from .peerspec import PeerSpec
from .scenarios import Scenario
from .signaling import SignalingStub
from .snapshot import Snapshot
from .waits import bounded

PeerFactory = Callable[[PeerSpec, str, int, float], Awaitable[Peer]]


def _peer_info(peer: Peer | None, spec: PeerSpec, user_id: int, described: dict | None = None) -> PeerInfo:
    """The peer as results record it: the version it reported itself, else the one its spec
    resolved to (a peer that never started still has its exact version), source and driver."""
    described = described or {}
    version = peer.version if peer and peer.version not in ("", "unknown") else ""
    return PeerInfo(spec=str(spec), kind=spec.kind, version=version or described.get("version") or "unavailable",
                    user_id=user_id, capabilities=dict(peer.capabilities) if peer else {},
                    source=described.get("source", ""), driver=described.get("driver", ""))


async def run_case(stub: SignalingStub, scenario: Scenario, polite_spec: PeerSpec, impolite_spec: PeerSpec,
                   make_peer: PeerFactory, negotiators: dict[str, Any], evidence_dir: Path | None = None,
                   full_capture: bool = False, describe: Callable[[PeerSpec], dict] | None = None,
                   fault: str | None = None) -> CaseDetail:
    """Run one case to a verdict. Never raises for a peer's failure: it becomes the cause.

    With ``evidence_dir``, the peers' own evidence (Playwright traces, aiortc's log) is
    written there; whether it is kept is decided once the outcome is known. ``describe(spec)``
    gives what the spec resolved to (version, source, driver) for the results."""
    if evidence_dir is not None and "aiortc" in (polite_spec.kind, impolite_spec.kind):
        log = AiortcLog(full=full_capture)
        with log:
            result = await _run_case(stub, scenario, polite_spec, impolite_spec, make_peer, negotiators, evidence_dir,
                                     describe, fault)
        log.write(evidence_dir / "aiortc.log")
        return result
    return await _run_case(stub, scenario, polite_spec, impolite_spec, make_peer, negotiators, evidence_dir, describe,
                           fault)


def _unsupported(scenario: Scenario, peers: dict[str, Peer]) -> str:
    lacks = capabilities.missing(scenario, {r: p.capabilities for r, p in peers.items()})
    return "; ".join(
        f"the {role} peer ({peers[role].spec} {peers[role].version}) lacks {', '.join(caps)} "
        f"({'; '.join(capabilities.CAPABILITIES[c] for c in caps)}: probed at start), which {scenario.name} needs"
        for role, caps in lacks.items())


class _Phases:
    """Seconds per phase of a case (CaseSummary.phases), lap by lap."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.mark = time.monotonic()

    def restart(self) -> None:
        self.mark = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.mark
        self.mark = now


class _Attempt:
    """One case from making its peers to closing them: what the verdict is computed from."""

    def __init__(self, stub: SignalingStub, scenario: Scenario, specs: dict[str, PeerSpec], make_peer: PeerFactory,
                 negotiators: dict[str, Any], evidence_dir: Path | None, fault: str | None) -> None:
        self.stub, self.scenario, self.specs = stub, scenario, specs
        self.make_peer, self.negotiators, self.evidence_dir, self.fault = make_peer, negotiators, evidence_dir, fault
        self.room = stub.create_room(f"{scenario.name}-{uuid.uuid4().hex[:8]}")
        self.ids = dict(zip(("polite", "impolite"), roles.pick_user_ids(), strict=True))
        self.peers: dict[str, Peer] = {}
        self.run: CaseRun | None = None
        self.cause: Cause | None = None
        self.unsupported = ""
        self.snaps: dict[str, Snapshot] = {}
        self.injected: faults.Injection | None = None
        self.clock = _Phases()

    async def setup(self) -> None:
        """Both peers at once (each waits for its own browser page or aiortc connection); the
        first one-line error is the case's set-up cause, and every peer made is closed later."""
        async def make(role: str) -> None:
            self.peers[role] = await self.make_peer(self.specs[role], role, self.ids[role], self.room.t0)
            self.peers[role].evidence_dir = self.evidence_dir
            await self.peers[role].probe()

        made = await asyncio.gather(*(make(role) for role in ("polite", "impolite")), return_exceptions=True)
        for role in ("polite", "impolite"):  # role order, whichever was made first (waits read it in order)
            if role in self.peers:
                self.peers[role] = self.peers.pop(role)
        for got in made:
            if isinstance(got, BaseException):
                raise got
        self.clock.lap("setup")

    async def drive(self) -> None:
        """The steps, unless the pair lacks what the scenario needs; then both peers' end state."""
        self.unsupported = _unsupported(self.scenario, self.peers)
        if self.fault and not self.unsupported:
            try:
                self.injected = faults.Injection(faults.get(self.fault), self.peers, self.stub, self.room)
            except RigError as exc:
                self.unsupported = str(exc)
        if self.unsupported:
            return
        run = self.run = CaseRun(self.scenario, self.room, self.stub.ws_url, self.peers, self.negotiators,
                                 self.injected)
        self.cause = await run.run_bounded()
        run.ledger.ended_t = self.room.now()
        self.clock.seconds.update(run.phases)
        self.clock.restart()
        for role, peer in self.peers.items():
            run.ledger.computed_polite[role] = peer.polite
            try:
                self.snaps[role] = Snapshot.model_validate(await asyncio.wait_for(peer.snapshot(), config.STEP_TIMEOUT))
            except ValidationError as exc:
                first = exc.errors()[0]
                self.snaps[role] = Snapshot(error=f"snapshot not understood: {'.'.join(map(str, first['loc']))}: "
                                                  f"{first['msg']}")
            except Exception as exc:
                self.snaps[role] = Snapshot(error=f"snapshot failed: {exc}")
        self.clock.lap("snapshot")

    async def teardown(self) -> None:
        self.clock.restart()
        for p in self.peers.values():
            p.closing = True
        if self.injected is not None:
            await self.injected.end()
        await bounded(asyncio.gather(*(p.close() for p in self.peers.values()), return_exceptions=True),
                      4 * config.CLOSE_TIMEOUT)
        self.stub.close_room(self.room.name)
        self.clock.lap("teardown")

    def recorded(self, info: dict[str, PeerInfo], messages: list[StubMessage]) -> verdict.Recorded:
        return verdict.Recorded(
            self.scenario.name, info["polite"], info["impolite"], planned=self.scenario.collisions, cause=self.cause,
            unsupported=self.unsupported, ledger=self.run.ledger if self.run else None,
            events={role: p.events for role, p in self.peers.items()}, messages=messages, snapshots=self.snaps,
            fault=self.injected.reason if self.injected is not None else None,
            reference=runs_reference(self.negotiators, {s.kind for s in self.specs.values()}))


def runs_reference(negotiators: dict[str, Any], kinds: set[str]) -> bool:
    """Whether the peers of these kinds run the shipped reference negotiators (a browser the JS
    one, aiortc the Python one), against which the findings were recorded (rig.verdict)."""
    js = not kinds & {"chromium", "firefox"} or Path(negotiators["js"][1]).resolve() == config.REFERENCE_NEGOTIATOR_JS.resolve()
    py = "aiortc" not in kinds or str(negotiators["py"]) in (str(config.REFERENCE_NEGOTIATOR_PY),
                                                              str(config.REFERENCE_NEGOTIATOR_PY.resolve()))
    return js and py


async def _run_case(stub: SignalingStub, scenario: Scenario, polite_spec: PeerSpec, impolite_spec: PeerSpec,
                    make_peer: PeerFactory, negotiators: dict[str, Any], evidence_dir: Path | None,
                    describe: Callable[[PeerSpec], dict] | None = None, fault: str | None = None) -> CaseDetail:
    specs = {"polite": polite_spec, "impolite": impolite_spec}
    case = _Attempt(stub, scenario, specs, make_peer, negotiators, evidence_dir, fault)
    started = time.monotonic()
    try:
        await case.setup()
        await case.drive()
    except RigError as exc:
        case.cause = Cause(kind="setup", message=str(exc))
    finally:
        await case.teardown()

    info = {r: _peer_info(case.peers.get(r), specs[r], case.ids[r], describe(specs[r]) if describe else None)
            for r in ("polite", "impolite")}
    messages = [StubMessage.model_validate(m.as_dict()) for m in case.room.log]
    judged = verdict.case_verdict(case.recorded(info, messages))
    j = judged.judgement
    case.clock.lap("verdict")
    summary = CaseSummary(
        id="", slug="", scenario=scenario.name, polite=info["polite"], impolite=info["impolite"],
        outcome=j.outcome, expected=j.expected, finding=j.finding, findings=j.applying, not_seen=j.not_seen,
        cause=judged.cause, reason=j.reason,
        duration_s=round(time.monotonic() - started, 3), glare=judged.glare,
        phases={k: round(v, 3) for k, v in case.clock.seconds.items()})
    return CaseDetail(
        case=summary, plan=scenario.plan(), plan_data=scenario.to_json(),
        ledger=case.run.ledger if case.run else None, messages=messages,
        events={role: list(p.events) for role, p in case.peers.items()}, snapshots=case.snaps,
        checks=judged.checks)
