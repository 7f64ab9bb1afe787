"""Runs one case: two peers, one scenario, every step bounded, evidence kept, verdict
computed from what the peers and the stub recorded (never from what was intended)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config, roles
from .evidence import AiortcLog
from .peers.base import CHANGES, Peer, PeerSpec, PeerTimeout, RigError, bounded
from .scenarios import (
    AwaitGate,
    AwaitHeld,
    Burst,
    Change,
    Collide,
    Drop,
    Duplicate,
    Exchange,
    FailNext,
    Gate,
    Hold,
    Join,
    OpenGate,
    Race,
    Release,
    Scenario,
    Settle,
)
from .signaling import Room, SignalingStub, StubTimeout


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class CaseResult:
    """What one run of a case established, with its evidence."""

    scenario: str
    polite: dict
    impolite: dict
    passed: bool
    reason: str
    duration_s: float
    glare: dict
    checks: list[Check] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    events: dict[str, list[dict]] = field(default_factory=dict)
    snapshots: dict[str, Any] = field(default_factory=dict)
    setup_error: bool = False  # the case never started (a peer could not be made)
    plan_data: dict = field(default_factory=dict)  # the plan as data, replayable with --plan


class CaseFailure(RigError):
    """A peer reported an error, or a step could not complete."""


PeerFactory = Callable[[PeerSpec, str, int, float], Awaitable[Peer]]


class CaseRun:
    def __init__(self, scenario: Scenario, room: Room, ws_url: str, peers: dict[str, Peer],
                 negotiators: dict[str, Any]) -> None:
        self.scenario = scenario
        self.room = room
        self.ws_url = ws_url
        self.peers = peers
        self.negotiators = negotiators
        self.expect_media: dict[str, Counter] = {"polite": Counter(), "impolite": Counter()}
        self.own_media: dict[str, int] = {"polite": 0, "impolite": 0}
        self.expect_channels: set[str] = set()
        self.exchanged: dict[str, list[str]] = {"polite": [], "impolite": []}
        self.collisions: list[dict] = []
        self.removed: list[tuple[str, str | None]] = []
        self.restarts: list[tuple[str, set]] = []
        self.faults: list[FailNext] = []
        self.gates: dict[tuple, dict] = {}  # Gate.key -> {"id", "what"}
        self.message_faults: list[tuple[str, str, str]] = []  # (duplicate|drop, sender, kind)
        self.step = "start"
        self._wake = asyncio.Event()
        for p in peers.values():
            p.on_record = self._wake.set
        room.control.on_change = self._wake.set

    @staticmethod
    def other(role: str) -> str:
        return "impolite" if role == "polite" else "polite"

    # -- steps -------------------------------------------------------------------
    async def run(self) -> None:
        for i, step in enumerate(self.scenario.steps, 1):
            self.step = f"{i}. {step.describe()}"
            await getattr(self, "_" + type(step).__name__.lower())(step)

    async def _join(self, step: Join) -> None:
        await asyncio.gather(*(p.join(ws_url=self.ws_url, room=self.room.name,
                                      negotiator=self.negotiators[p.spec.kind == "aiortc" and "py" or "js"])
                               for p in self.peers.values()))

    async def _apply(self, role: str, action: str) -> None:
        info = await self.peers[role].change(action)
        kind = CHANGES[action]
        if kind == "datachannel":
            self.expect_channels.add(info["label"])
        elif kind == "removal":
            self.removed.append((role, info.get("mid")))
            self.own_media[role] -= 1
        elif kind == "ice-restart":
            self.restarts.append((role, set(info.get("ufrags") or [])))
        else:
            self.expect_media[self.other(role)][kind] += 1
            self.own_media[role] += 1

    async def _change(self, step: Change) -> None:
        await self._apply(step.who, step.action)

    async def _held(self, pred: Callable[[list], bool], what: str) -> None:
        """Wait until the stub holds what ``pred`` wants; fails at once on a peer error."""
        def unmet() -> str | None:
            if pred(self.room.control.held()):
                return None
            held = ", ".join(f"#{m.seq} {m.kind} {m.sender}->{m.to}" for m in self.room.control.held())
            return f"the stub does not hold {what} yet (held: {held or 'nothing'})"
        await self.wait_until(unmet, step=what)

    @staticmethod
    def _has(held: list, sender: str, kind: str, n: int = 1) -> bool:
        return sum(m.sender == sender and m.kind == kind for m in held) >= n

    async def _collide(self, step: Collide) -> None:
        k = len(self.collisions) + 1
        ctl = self.room.control
        for role in ("polite", "impolite"):
            ctl.hold(lambda m, r=role: m.kind == "offer" and m.sender == r,
                     name=f"collision {k}: {role}'s offer", count=1)
        if step.variant == "answer-after-candidate":
            # The polite peer's candidates (of the offer it will roll back) are held from the
            # start, and the offers are released only once one of them is held: so its answer,
            # made after it receives the impolite offer, always comes after that candidate.
            ctl.hold(lambda m: m.sender == "polite" and m.kind in ("candidate", "answer"),
                     name=f"collision {k}: polite's candidates and answer")
        await asyncio.gather(self._apply("polite", step.polite), self._apply("impolite", step.impolite))
        if step.variant == "answer-after-candidate" and self.peers["polite"].trickles:
            await self._held(lambda h: self._has(h, "polite", "offer") and self._has(h, "impolite", "offer")
                             and self._has(h, "polite", "candidate"),
                             f"collision {k}: an offer from each side and a candidate of the polite offer")
        else:
            await self._held(lambda h: self._has(h, "polite", "offer") and self._has(h, "impolite", "offer"),
                             f"collision {k}: an offer from each side")
        held = [m.seq for m in ctl.held()]
        released_t = self.room.now()
        record = {"index": k, "held": held, "released_t": released_t, "reoffer": step.reoffer, "window": None}
        self.collisions.append(record)
        if step.variant == "offer-during-answer":
            ctl.hold(lambda m: m.sender == "polite" and m.kind in ("answer", "offer"),
                     name=f"collision {k}: polite's answer and re-offer", count=2)
            ctl.release(drop_rules=False)  # the offers' rules are used up; the new one stays
            await self._held(lambda h: self._has(h, "polite", "answer") and self._has(h, "polite", "offer"),
                             f"collision {k}: the polite peer's answer and re-offer")
            answer = next(m for m in ctl.held() if m.sender == "polite" and m.kind == "answer")
            reoffer = next(m for m in ctl.held() if m.sender == "polite" and m.kind == "offer")
            await self._inject(k, "impolite", reoffer.seq, "srd-answer", lambda: ctl.release(), after=answer.seq)
        elif step.variant == "answer-after-candidate":
            ctl.release(select=lambda m: not (m.sender == "polite" and m.kind == "candidate"), drop_rules=False)
            await self._held(lambda h: self._has(h, "polite", "answer") and self._has(h, "polite", "candidate"),
                             f"collision {k}: the polite peer's answer and a candidate of its ignored offer")
            held = ctl.held()
            first = next(m for m in held if m.sender == "polite" and m.kind == "candidate")
            answer = next(m for m in held if m.sender == "polite" and m.kind == "answer")
            if first.seq > answer.seq:
                raise CaseFailure(f"collision {k}: the polite peer answered before sending any candidate")
            await self._inject(k, "impolite", answer.seq, "aic", lambda: ctl.release(), after=first.seq)
        elif step.variant == "late-candidates":
            ctl.hold(lambda m: m.sender == "polite" and m.kind in ("candidate", "answer"),
                     name=f"collision {k}: polite's candidates and answer")
            ctl.release(select=lambda m: not (m.sender == "polite" and m.kind == "candidate"), drop_rules=False)
            await self._held(lambda h: self._has(h, "polite", "answer"), f"collision {k}: the polite peer's answer")
            ctl.release(select=lambda m: m.kind == "answer", drop_rules=False)  # it overtakes the candidates
            impolite = self.peers["impolite"]
            await self.wait_until(
                lambda: None if any(e.detail.get("type") == "answer" for e in impolite.of_type("remote-description-set"))
                else f"{impolite} has not applied the answer", step=f"collision {k}: answer applied")
            await self._held(lambda h: self._has(h, "polite", "candidate"), f"collision {k}: a candidate of the polite peer")
            late = [m.seq for m in ctl.release() if m.kind == "candidate"]  # drops the rule too
            record["late_candidates"] = late
            if not late:
                raise CaseFailure(f"collision {k}: the polite peer sent no candidate to deliver late")
        else:
            ctl.release()

    async def _inject(self, k: int, role: str, seq: int, trigger: str, release: Callable[[], Any],
                      after: int | None = None) -> None:
        """Arm message ``seq`` in ``role``'s plumbing for ``trigger``, release it, and wait
        (bounded) until the plumbing reports the injection: the window was reached."""
        peer = self.peers[role]
        await peer.arm(seq, trigger, after)
        release()
        await self.wait_until(
            lambda: None if any(e.detail.get("seq") == seq for e in peer.of_type("injected"))
            else f"{peer} never reached window '{trigger}' for message #{seq}",
            step=f"collision {k}: window '{trigger}'")
        evt = next(e for e in peer.of_type("injected") if e.detail.get("seq") == seq)
        self.collisions[-1]["window"] = {"peer": role, "trigger": trigger, "seq": seq,
                                         "state": evt.detail.get("state"), "chain": evt.detail.get("chain")}

    async def _race(self, step: Race) -> None:
        k = len(self.collisions) + 1
        ctl = self.room.control
        ctl.hold(lambda m: m.kind == "offer" and m.sender == step.first, name=f"collision {k}: {step.first}'s offer",
                 count=1)
        await self._apply(step.first, step.first_action)
        await self._held(lambda h: self._has(h, step.first, "offer"), f"collision {k}: {step.first}'s offer")
        held = [m.seq for m in ctl.held()]
        offer = next(m for m in ctl.held() if m.kind == "offer")
        second = self.peers[step.second]
        await second.arm(offer.seq, step.window)
        ctl.release()
        # the offer now waits in the second peer's plumbing; its change opens the window
        await self.wait_until(
            lambda: None if any(e.detail.get("seq") == offer.seq for e in second.of_type("stashed"))
            else f"{second} has not received message #{offer.seq}", step=f"collision {k}: offer delivered")
        self.collisions.append({"index": k, "held": held, "released_t": self.room.now(), "reoffer": True,
                                "window": None})
        await self._apply(step.second, step.second_action)
        await self.wait_until(
            lambda: None if any(e.detail.get("seq") == offer.seq for e in second.of_type("injected"))
            else f"{second} never reached window '{step.window}' for message #{offer.seq}",
            step=f"collision {k}: window '{step.window}'")
        evt = next(e for e in second.of_type("injected") if e.detail.get("seq") == offer.seq)
        self.collisions[-1]["window"] = {"peer": step.second, "trigger": step.window, "seq": offer.seq,
                                         "state": evt.detail.get("state"), "chain": evt.detail.get("chain")}

    async def _burst(self, step: Burst) -> None:
        for _ in range(step.rounds):
            await asyncio.gather(self._apply("polite", step.polite), self._apply("impolite", step.impolite))

    async def _failnext(self, step: FailNext) -> None:
        await self.peers[step.who].fail_next(step.method)
        self.faults.append(step)

    async def _hold(self, step: Hold) -> None:
        self.room.control.hold(lambda m: m.sender == step.sender and m.kind == step.kind,
                               name=f"hold {step.kind} from {step.sender}", count=step.count)

    async def _awaitheld(self, step: AwaitHeld) -> None:
        if step.kind == "end-of-candidates":
            def ended(held: list) -> bool:
                return any(m.sender == step.sender and m.kind == "candidate" and isinstance(m.data, dict)
                           and not (m.data.get("candidate") or {}).get("candidate") for m in held)
            await self._held(ended, step.describe())
            return
        await self._held(lambda h: self._has(h, step.sender, step.kind, step.count), step.describe())

    async def _release(self, step: Release) -> None:
        self.room.control.release(select=(lambda m: m.kind == step.kind) if step.kind else None)

    async def _duplicate(self, step: Duplicate) -> None:
        self.room.control.duplicate(lambda m: m.sender == step.sender and m.kind == step.kind,
                                    name=f"duplicate {step.kind} from {step.sender}")
        self.message_faults.append(("duplicate", step.sender, step.kind))

    async def _drop(self, step: Drop) -> None:
        self.room.control.drop(lambda m: m.sender == step.sender and m.kind == step.kind,
                               name=f"plan: drop {step.kind} from {step.sender}")
        self.message_faults.append(("drop", step.sender, step.kind))

    def message_fault_checks(self) -> list[Check]:
        """A planned duplicate or drop that never happened tested nothing: say so."""
        checks = []
        for what, sender, kind in self.message_faults:
            mark = "duplicate of" if what == "duplicate" else "dropped by plan"
            hit = [m for m in self.room.log if m.sender == sender and mark in (m.note or "")]
            checks.append(Check(f"planned {what} of {sender}'s {kind} happened", bool(hit),
                                f"message #{hit[0].seq}: {hit[0].note}" if hit else
                                f"no {kind} from the {sender} peer passed the stub"))
        return checks

    async def _gate(self, step: Gate) -> None:
        gid = len(self.gates) + 1
        self.gates[step.key] = {"id": gid, "what": step.what(), "open_on": step.open_on}
        await self.peers[step.who].gate(gid, step.at, step.when, step.type, step.open_on)

    def _gate_event(self, step: Gate, type_: str) -> Any:
        gid = self.gates[step.key]["id"]
        return next((e for e in self.peers[step.who].of_type(type_) if e.detail.get("id") == gid), None)

    async def _awaitgate(self, step: AwaitGate) -> None:
        peer = self.peers[step.who]
        await self.wait_until(
            lambda: None if self._gate_event(step, "gate-reached") else f"{peer} has not reached the gate {step.what()}",
            step=step.describe())

    async def _opengate(self, step: OpenGate) -> None:
        await self.peers[step.who].open_gate(self.gates[step.key]["id"])

    def gate_checks(self) -> list[Check]:
        checks = []
        for (who, *_), g in self.gates.items():
            hit = next((e for e in self.peers[who].of_type("gate-reached") if e.detail.get("id") == g["id"]), None)
            checks.append(Check(f"gate reached: {g['what']}", hit is not None,
                                f"paused in signalingState={hit.detail.get('state')}" if hit else
                                "the peer never got there: the window this plan targets was not exercised"))
            if g["open_on"]:
                opened = next((e for e in self.peers[who].of_type("gate-opened") if e.detail.get("id") == g["id"]), None)
                checks.append(Check(f"gate opened by its trigger '{g['open_on']}': {g['what']}", opened is not None,
                                    f"opened in signalingState={opened.detail.get('state')}, operations pending: "
                                    f"{opened.detail.get('chain')}" if opened else "the trigger never fired"))
        return checks

    async def _settle(self, step: Settle) -> None:
        await self.wait_until(self._unmet_settle, step="settle")

    async def _exchange(self, step: Exchange) -> None:
        if not self.expect_channels:
            raise CaseFailure("exchange step with no data channel")
        for label in sorted(self.expect_channels):
            for role, peer in self.peers.items():
                text = f"{role} on {label}: hello #{len(self.exchanged[role]) + 1}"
                await peer.send(label, text)
                self.exchanged[role].append(text)

        def unmet() -> str | None:
            for role, peer in self.peers.items():
                got = {e.detail.get("data") for e in peer.of_type("channel-message")}
                missing = [t for t in self.exchanged[self.other(role)] if t not in got]
                if missing:
                    return f"{peer} has not received {missing[0]!r}"
            return None
        # After an ICE restart, packets sent while the new pair is being checked can be lost and SCTP
        # backs off before retransmitting (seen once: Chromium -> Firefox took over 10 s), so the message
        # still has to cross, within a longer bound.
        await self.wait_until(unmet, step="exchange",
                              timeout=config.RESTART_EXCHANGE_TIMEOUT if self.restarts else config.STEP_TIMEOUT)

    # -- waiting -----------------------------------------------------------------
    def _states(self) -> str:
        return "; ".join(f"{p}: {p.state_text()}" for p in self.peers.values())

    def _first_error(self) -> str | None:
        for peer in self.peers.values():
            errs = peer.errors()
            if errs:
                d = errs[0].detail
                return f"{peer} reported an error ({d.get('source', '?')}): {d.get('text', d)}"
        return None

    def _role_checks(self) -> list[tuple[Check, str]]:
        """The role invariants, each with the message that ends a case once it is broken
        (one rule for the early end in wait_until and for the verdict in glare_checks)."""
        polite, impolite = self.peers["polite"], self.peers["impolite"]
        out: list[tuple[Check, str]] = []
        for role, peer in self.peers.items():
            bad = [e for e in peer.of_type("negotiationneeded") if e.detail.get("state") != "stable"]
            out.append((Check(f"{role}: negotiationneeded fires only in 'stable'", not bad,
                              f"fired in {[e.detail.get('state') for e in bad]}" if bad else ""),
                        f"{peer}: negotiationneeded fired in '{bad[0].detail.get('state')}' (it fires only in 'stable')"
                        if bad else ""))
        wrong = polite.of_type("offer-ignored")
        out.append((Check("polite peer never ignores an offer", not wrong,
                          f"{len(wrong)} offer(s) ignored" if wrong else ""),
                    f"{polite} ignored offer #{wrong[0].detail.get('seq')} in {wrong[0].detail.get('state')}: "
                    "the polite peer never ignores an offer" if wrong else ""))
        wrong = impolite.of_type("rollback")
        out.append((Check("impolite peer never rolls back", not wrong, f"{len(wrong)} rollback(s)" if wrong else ""),
                    f"{impolite} rolled back ({wrong[0].detail.get('how', '')}): the impolite peer never rolls back"
                    if wrong else ""))
        return out

    def _first_violation(self) -> str | None:
        """A role invariant broken for good: the verdict is known, so the case ends now
        instead of waiting out the step's bound (the final checks still report it)."""
        return next((msg for check, msg in self._role_checks() if not check.ok), None)

    def _unmet_settle(self) -> str | None:
        for role, peer in self.peers.items():
            if peer.signaling_state != "stable":
                return f"{peer} not stable ({peer.state_text()})"
            if peer.connection_state != "connected":
                return f"{peer} not connected ({peer.state_text()})"
            flowing = Counter(e.detail.get("kind") for e in peer.of_type("media-flowing"))
            for kind, n in self.expect_media[role].items():
                if flowing[kind] < n:
                    return f"{peer} receives {flowing[kind]} of {n} expected {kind} track(s) with media"
            for who, before in self.restarts:
                if who == role:
                    made = peer.of_type("offer-made", "answer-made")
                    now = set(made[-1].detail.get("ufrags") or []) if made else set()
                    if not now or now & before:
                        return f"{peer} has not completed its ICE restart (local ufrag {sorted(now)})"
            opened = {e.detail.get("label") for e in peer.of_type("channel-open")}
            for label in sorted(self.expect_channels - opened):
                return f"{peer} has no open data channel {label}"
        return None

    async def wait_until(self, unmet: Callable[[], str | None], *, step: str,
                         timeout: float = config.STEP_TIMEOUT) -> None:
        """Wait for ``unmet()`` to return None; fail at once on a peer error; bounded."""
        deadline = time.monotonic() + timeout
        while True:
            err = self._first_error() or self._first_violation()
            if err:
                raise CaseFailure(err)
            why = unmet()
            if why is None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise PeerTimeout(f"stuck at step '{step}' after {timeout:.0f} s: {why}; {self._states()}")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                pass

    # -- verdict -----------------------------------------------------------------
    def glare_checks(self) -> tuple[list[Check], dict]:
        checks: list[Check] = []
        polite, impolite = self.peers["polite"], self.peers["impolite"]
        bounds = [c["released_t"] for c in self.collisions] + [float("inf")]
        proven = []
        for c, end in zip(self.collisions, bounds[1:], strict=True):
            k, start = c["index"], c["released_t"]
            rb = [e for e in polite.of_type("rollback") if start <= e.t < end]
            ig = [e for e in impolite.of_type("offer-ignored") if start <= e.t < end]
            re_ = [e for e in polite.of_type("offer-made") if rb and rb[0].t <= e.t < end]
            if c.get("window"):
                w = c["window"]
                checks.append(Check(f"collision {k}: window '{w['trigger']}' reached in the {w['peer']} peer", True,
                                    f"message #{w['seq']} handed over in signalingState={w['state']}, "
                                    f"operations pending: {w.get('chain')}"))
            checks.append(Check(f"collision {k}: both offers held by the stub, then released together", True,
                                f"held messages #{', #'.join(map(str, c['held']))} released at t={start:.3f}s"))
            checks.append(Check(f"collision {k}: polite peer rolled back its offer", bool(rb),
                                rb[0].detail.get("how", "") if rb else "no rollback after the release"))
            checks.append(Check(f"collision {k}: impolite peer ignored the incoming offer", bool(ig),
                                f"offer #{ig[0].detail.get('seq')} ignored in {ig[0].detail.get('state')}"
                                if ig else "no offer ignored after the release"))
            if c.get("reoffer", True):
                checks.append(Check(f"collision {k}: polite peer offered its change again", bool(re_),
                                    f"re-offer at t={re_[0].t:.3f}s" if re_ else "no offer from polite after its rollback"))
            else:
                re_ = [True]  # its change is negotiated by the other side's offer (see the scenario)
            proven.append(bool(rb and ig and re_))
        checks += [check for check, _ in self._role_checks()]
        glare = {"forced": bool(self.collisions), "observed": bool(proven) and all(proven),
                 "collisions": len(self.collisions), "planned": self.scenario.collisions,
                 "polite_rolled_back": any(c.ok for c in checks if "rolled back" in c.name),
                 "impolite_ignored_offer": any(c.ok for c in checks if "ignored the incoming" in c.name),
                 "polite_reoffered": any(c.ok for c in checks if "offered its change again" in c.name)}
        return checks, glare

    def final_checks(self, snaps: dict[str, dict]) -> list[Check]:
        checks: list[Check] = []
        for role, peer in self.peers.items():
            want = role == "polite"
            checks.append(Check(f"{role} peer computed polite={want} from the user ids", peer.polite is want,
                                f"user id {peer.user_id}, computed polite={peer.polite}"))
        counts = {r: len((snaps.get(r) or {}).get("transceivers", [])) for r in self.peers}
        checks.append(Check("both sides have the same transceivers", counts["polite"] == counts["impolite"],
                            f"polite {counts['polite']}, impolite {counts['impolite']}"))
        for role, peer in self.peers.items():
            snap = snaps.get(role) or {}
            checks.append(Check(f"{role} ends stable", snap.get("signalingState") == "stable",
                                f"signalingState={snap.get('signalingState')}"))
            checks.append(Check(f"{role} ends connected", snap.get("connectionState") == "connected",
                                f"connectionState={snap.get('connectionState')}"))
            for kind, n in sorted(self.expect_media[role].items()):
                rx = [r for r in snap.get("received", []) if r.get("kind") == kind
                      and ((r.get("bytesReceived") or 0) > 0 or (r.get("framesDecoded") or 0) > 0)]
                checks.append(Check(f"{role} receives {n} {kind} track(s) with media flowing", len(rx) >= n,
                                    f"{len(rx)} receiving: {rx}"))
            sending = [t for t in snap.get("transceivers", []) if t.get("sending")]
            ok_dir = [t for t in sending if t.get("currentDirection") in ("sendonly", "sendrecv")]
            if self.own_media[role]:
                checks.append(Check(f"{role} sends its {self.own_media[role]} own track(s) (currentDirection)",
                                    len(ok_dir) >= self.own_media[role],
                                    f"currentDirection of sending transceivers: {[t.get('currentDirection') for t in sending]}"))
            chans = {c["label"]: c for c in snap.get("channels", [])}
            for label in sorted(self.expect_channels):
                c = chans.get(label)
                checks.append(Check(f"{role} has data channel {label} open", bool(c and c["readyState"] == "open"),
                                    f"readyState={c['readyState'] if c else 'absent'}"))
            other_sent = self.exchanged[self.other(role)]
            if other_sent:
                got = [m for c in chans.values() for m in c.get("received", [])]
                missing = [m for m in other_sent if m not in got]
                checks.append(Check(f"{role} received every data-channel message", not missing,
                                    f"missing {missing}" if missing else f"{len(other_sent)} received"))
            for who, mid in self.removed:
                if who == role:
                    t = next((t for t in snap.get("transceivers", []) if t.get("mid") == mid), None)
                    cur = t.get("currentDirection") if t else None
                    checks.append(Check(f"{role} stopped sending the removed track (mid {mid})",
                                        cur in ("recvonly", "inactive", "stopped"), f"currentDirection={cur}"))
            for who, before in self.restarts:
                if who == role:
                    now = set(snap.get("localUfrags") or [])
                    checks.append(Check(f"{role} restarted ICE (new local ufrag)", bool(now) and not (now & before),
                                        f"ufrag before {sorted(before)}, after {sorted(now)}"))
            if self.faults:
                injected = [f for f in self.faults if f.who == role]
                seen = peer.of_type("fault-injected")
                if injected:
                    checks.append(Check(f"{role}: the planned fault was injected", len(seen) >= len(injected),
                                        f"{len(seen)} of {len(injected)}"))
            errs = peer.errors()
            checks.append(Check(f"{role} reported no error", not errs,
                                "; ".join(e.detail.get("text", str(e.detail))[:300] for e in errs[:3])))
        return checks


def _peer_info(peer: Peer | None, spec: PeerSpec, user_id: int) -> dict:
    return {"spec": str(spec), "kind": spec.kind, "version": peer.version if peer else "unavailable",
            "user_id": user_id}


async def run_case(stub: SignalingStub, scenario: Scenario, polite_spec: PeerSpec, impolite_spec: PeerSpec,
                   make_peer: PeerFactory, negotiators: dict[str, Any], evidence_dir: Path | None = None,
                   full_capture: bool = False) -> CaseResult:
    """Run one case to a verdict. Never raises for a peer's failure: it becomes the reason.

    With ``evidence_dir``, the peers' own evidence (Playwright traces, aiortc's log) is
    written there; whether it is kept is decided once the outcome is known."""
    if evidence_dir is not None and "aiortc" in (polite_spec.kind, impolite_spec.kind):
        log = AiortcLog(full=full_capture)
        with log:
            result = await _run_case(stub, scenario, polite_spec, impolite_spec, make_peer, negotiators, evidence_dir)
        log.write(evidence_dir / "aiortc.log")
        return result
    return await _run_case(stub, scenario, polite_spec, impolite_spec, make_peer, negotiators, evidence_dir)


async def _run_case(stub: SignalingStub, scenario: Scenario, polite_spec: PeerSpec, impolite_spec: PeerSpec,
                    make_peer: PeerFactory, negotiators: dict[str, Any], evidence_dir: Path | None) -> CaseResult:
    room = stub.create_room(f"{scenario.name}-{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    ids = dict(zip(("polite", "impolite"), roles.pick_user_ids(), strict=True))
    specs = {"polite": polite_spec, "impolite": impolite_spec}
    peers: dict[str, Peer] = {}
    run: CaseRun | None = None
    failure = ""
    setup_error = False
    snaps: dict[str, dict] = {}
    try:
        for role in ("polite", "impolite"):
            peers[role] = await make_peer(specs[role], role, ids[role], room.t0)
            peers[role].evidence_dir = evidence_dir
        run = CaseRun(scenario, room, stub.ws_url, peers, negotiators)
        try:
            await asyncio.wait_for(run.run(), config.CASE_TIMEOUT)
        except TimeoutError:
            failure = f"case timed out after {config.CASE_TIMEOUT:.0f} s at step '{run.step}': {run._states()}"
        except (RigError, StubTimeout) as exc:
            failure = f"at step '{run.step}': {exc}"
        for role, peer in peers.items():
            try:
                snaps[role] = await asyncio.wait_for(peer.snapshot(), config.STEP_TIMEOUT)
            except Exception as exc:
                snaps[role] = {"error": f"snapshot failed: {exc}"}
    except RigError as exc:
        failure = str(exc)
        setup_error = run is None
    finally:
        for p in peers.values():
            p.closing = True
        await bounded(asyncio.gather(*(p.close() for p in peers.values()), return_exceptions=True),
                      4 * config.CLOSE_TIMEOUT)
        stub.close_room(room.name)

    checks: list[Check] = []
    glare = {"forced": False, "observed": False, "collisions": 0, "planned": scenario.collisions}
    if run is not None:
        gchecks, glare = run.glare_checks()
        checks = (run.final_checks(snaps) + run.gate_checks() + run.message_fault_checks()
                  + (gchecks if scenario.glare else [c for c in gchecks if "never" in c.name]))
        if scenario.glare and glare["collisions"] != scenario.collisions:
            checks.append(Check("every planned collision was forced", False,
                                f"{glare['collisions']} of {scenario.collisions} forced"))
    failed = [c for c in checks if not c.ok]
    reasons = ([failure] if failure else []) + [f"{c.name}: {c.detail}" for c in failed]
    passed = not reasons and run is not None
    return CaseResult(
        scenario=scenario.name,
        polite=_peer_info(peers.get("polite"), polite_spec, ids["polite"]),
        impolite=_peer_info(peers.get("impolite"), impolite_spec, ids["impolite"]),
        passed=passed, reason="\n".join(reasons), duration_s=round(time.monotonic() - started, 3),
        glare=glare, checks=checks, plan=scenario.plan(),
        messages=[m.as_dict() for m in room.log],
        events={role: [e.as_dict() for e in p.events] for role, p in peers.items()},
        snapshots=snaps, setup_error=setup_error, plan_data=scenario.to_json(),
    )
