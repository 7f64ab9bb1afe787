"""Executes a case's plan step by step: every step bounded, what it asked for written down.

:class:`CaseRun` runs the steps of a scenario (rig.scenarios) on two peers and the stub's room,
and fills a :class:`rig.model.Ledger` with what it asked for (changes, collisions forced,
windows armed, gates, faults); the verdict later holds what the peers recorded to it. A wait
fails at once on a peer's error or a broken role invariant, and a bound that runs out names
the step, the peer and its states (:class:`CaseFailure` carries that first failure).
rig.case makes the peers, runs this, and hands the record to the verdict."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from . import config, faults, verdict
from .errors import RigError
from .events import PeerEvent
from .model import Cause, Collision, Dip, Fault, InjectedFault, Ledger, MessageFault, Removed, Restart, Window
from .model import Gate as GateRecord
from .peers.base import Peer
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
from .signaling import Room, StubTimeout
from .vocab import CHANGES
from .waits import bounded


class CaseFailure(RigError):
    """A step could not complete; ``cause`` says where, on which peer, and why."""

    def __init__(self, cause: Cause) -> None:
        super().__init__(cause.text())
        self.cause = cause


class Unmet(NamedTuple):
    """Why a wait is not over yet, and which peer it waits on (None: the stub or the rig)."""

    text: str
    role: str | None = None
    #: the kind of media the peer does not receive yet (its receive_detail is added on timeout)
    media: str = ""


class CaseRun:
    def __init__(self, scenario: Scenario, room: Room, ws_url: str, peers: dict[str, Peer],
                 negotiators: dict[str, Any], injected: faults.Injection | None = None) -> None:
        self.scenario = scenario
        self.injected = injected
        self.room = room
        self.ws_url = ws_url
        self.peers = peers
        self.negotiators = negotiators
        self.ledger = Ledger(
            scenario=scenario.name, glare=scenario.glare, steps=scenario.plan(),
            planned_collisions=[i for i, s in enumerate(scenario.steps, 1) if isinstance(s, Collide | Race)])
        self.gates: dict[tuple, dict] = {}  # Gate.key -> {"id", "what"}
        self.step = "start"
        #: seconds spent in the join step, in settle steps and in every other step
        self.phases: dict[str, float] = {}
        self.step_index: int | None = None
        self._wake = asyncio.Event()
        for p in peers.values():
            p.on_record = self._wake.set
        room.control.on_change = self._wake.set

    @staticmethod
    def other(role: str) -> str:
        return verdict.other(role)

    def rig_failure(self, text: str) -> CaseFailure:
        """The plan could not be carried out as written: never a peer's finding."""
        return CaseFailure(Cause(kind="rig", step=self.step, step_index=self.step_index, message=text))

    # -- steps -------------------------------------------------------------------
    async def run(self) -> None:
        for i, step in enumerate(self.scenario.steps, 1):
            self.step = f"{i}. {step.describe()}"
            self.step_index = self.ledger.reached = i
            started = time.monotonic()
            try:
                await getattr(self, "_" + type(step).__name__.lower())(step)
                if isinstance(step, Join) and self.injected is not None:
                    await self.injected.fire()
                    self.ledger.fault = Fault(name=self.injected.fault.name, done=self.injected.done,
                                              t=self.room.now())
            finally:
                phase = "join" if isinstance(step, Join) else "settle" if isinstance(step, Settle) else "steps"
                self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - started
        await self._recover()
        self.ledger.completed = True

    async def run_bounded(self) -> Cause | None:
        """:meth:`run` within the case's bound: the failure that ended the steps, or None."""
        try:
            await asyncio.wait_for(self.run(), config.CASE_TIMEOUT)
        except TimeoutError:
            return Cause(kind="timeout", step=self.step, step_index=self.step_index, operation="case",
                         message=f"case timed out after {config.CASE_TIMEOUT:.0f} s: {self._states()}")
        except CaseFailure as exc:
            return exc.cause
        except (RigError, StubTimeout) as exc:
            return Cause(kind="rig", step=self.step, step_index=self.step_index, message=str(exc))
        return None

    async def _recover(self) -> None:
        """A peer that says "disconnected" once the steps are done gets a bounded time to leave
        that state (config.RECOVER_TIMEOUT) before the end state is judged: the spec calls it
        transient, and one lost consent check causes it. The dip is kept in the ledger; a peer
        still disconnected after the bound fails the final checks as before."""
        dips = {role: Dip(role=role, t=self.room.now())
                for role, peer in self.peers.items() if peer.connection_state == "disconnected"}
        if not dips:
            return
        self.ledger.dips = list(dips.values())

        def unmet() -> Unmet | None:
            for role, dip in dips.items():
                if dip.recovered_t is None and self.peers[role].connection_state != "disconnected":
                    dip.recovered_t = self.room.now()
            still = [role for role, dip in dips.items() if dip.recovered_t is None]
            return Unmet(f"{self.peers[still[0]]} disconnected", still[0]) if still else None
        try:
            await self.wait_until(unmet, step="end state", timeout=config.RECOVER_TIMEOUT)
        except CaseFailure as exc:
            if exc.cause.kind != "timeout":
                raise

    async def _join(self, step: Join) -> None:
        await asyncio.gather(*(p.join(ws_url=self.ws_url, room=self.room.name,
                                      negotiator=self.negotiators[p.spec.kind == "aiortc" and "py" or "js"])
                               for p in self.peers.values()))

    async def _apply(self, role: str, action: str) -> None:
        info = await self.peers[role].change(action)
        kind, led = CHANGES[action], self.ledger
        if kind == "datachannel":
            if info["label"] not in led.channels:
                led.channels.append(info["label"])
        elif kind == "removal":
            led.removed.append(Removed(role=role, mid=info.get("mid")))
            led.own_media[role] -= 1
            # the other side no longer receives media on that track (settle waits for media
            # flowing since the last negotiation)
            media = led.expect_media[self.other(role)]
            if media.get(info.get("kind"), 0) > 0:
                media[info["kind"]] -= 1
        elif kind == "ice-restart":
            led.restarts.append(Restart(role=role, before=sorted(info.get("ufrags") or [])))
        else:
            media = led.expect_media[self.other(role)]
            media[kind] = media.get(kind, 0) + 1
            led.own_media[role] += 1

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
        k = len(self.ledger.collisions) + 1
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
        if step.variant == "answer-after-candidate":
            await self._held(lambda h: self._has(h, "polite", "offer") and self._has(h, "impolite", "offer")
                             and self._has(h, "polite", "candidate"),
                             f"collision {k}: an offer from each side and a candidate of the polite offer")
        elif step.variant == "ignored-candidate" and self.peers["polite"].capabilities.get("trickle"):
            # the link is FIFO: a candidate the polite peer sent after its held offer waits behind
            # it, and is delivered right after it, before any answer the impolite peer could apply
            await self._held(lambda h: self._has(h, "polite", "offer") and self._has(h, "impolite", "offer")
                             and self._has(h, "polite", "candidate"),
                             f"collision {k}: an offer from each side and a candidate behind the polite offer")
        else:
            await self._held(lambda h: self._has(h, "polite", "offer") and self._has(h, "impolite", "offer"),
                             f"collision {k}: an offer from each side")
        held = [m.seq for m in ctl.held()]
        released_t = self.room.now()
        record = Collision(index=k, step=self.step_index, held=held, released_t=released_t, reoffer=step.reoffer,
                           window=None)
        self.ledger.collisions.append(record)
        if step.variant == "offer-during-answer":
            await self._offer_during_answer(k)
        elif step.variant == "answer-after-candidate":
            await self._answer_after_candidate(k)
        elif step.variant == "late-candidates":
            await self._late_candidates(k, record)
        else:
            ctl.release()

    async def _offer_during_answer(self, k: int) -> None:
        """Collision ``k``'s offers released; the polite peer's answer and re-offer held, then
        the re-offer handed to the impolite peer while it applies that answer."""
        ctl = self.room.control
        ctl.hold(lambda m: m.sender == "polite" and m.kind in ("answer", "offer"),
                 name=f"collision {k}: polite's answer and re-offer", count=2)
        ctl.release(drop_rules=False)  # the offers' rules are used up; the new one stays
        await self._held(lambda h: self._has(h, "polite", "answer") and self._has(h, "polite", "offer"),
                         f"collision {k}: the polite peer's answer and re-offer")
        answer = next(m for m in ctl.held() if m.sender == "polite" and m.kind == "answer")
        reoffer = next(m for m in ctl.held() if m.sender == "polite" and m.kind == "offer")
        await self._inject(k, "impolite", reoffer.seq, "srd-answer", lambda: ctl.release(), after=answer.seq)

    async def _answer_after_candidate(self, k: int) -> None:
        """Collision ``k``'s offers released, the polite peer's candidates kept held; its answer
        handed to the impolite peer while it adds a candidate of the ignored offer."""
        ctl = self.room.control
        ctl.release(select=lambda m: not (m.sender == "polite" and m.kind == "candidate"), drop_rules=False)
        await self._held(lambda h: self._has(h, "polite", "answer") and self._has(h, "polite", "candidate"),
                         f"collision {k}: the polite peer's answer and a candidate of its ignored offer")
        held = ctl.held()
        first = next(m for m in held if m.sender == "polite" and m.kind == "candidate")
        answer = next(m for m in held if m.sender == "polite" and m.kind == "answer")
        if first.seq > answer.seq:
            raise self.rig_failure(f"collision {k}: the polite peer answered before sending any candidate")
        await self._inject(k, "impolite", answer.seq, "aic", lambda: ctl.release(), after=first.seq)

    async def _late_candidates(self, k: int, record: Collision) -> None:
        """Collision ``k``'s offers released; the polite peer's answer delivered and applied
        before the candidates it sent with it (kept in ``record`` as late_candidates)."""
        ctl = self.room.control
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
        record.late_candidates = late
        if not late:
            raise self.rig_failure(f"collision {k}: the polite peer sent no candidate to deliver late")

    async def _inject(self, k: int, role: str, seq: int, trigger: str, release: Callable[[], Any],
                      after: int | None = None) -> None:
        """Arm message ``seq`` in ``role``'s plumbing for ``trigger``, release it, and wait
        (bounded) until the plumbing reports the injection: the window was reached."""
        peer = self.peers[role]
        await peer.arm(seq, trigger, after)
        self.ledger.collisions[-1].window = Window(peer=role, trigger=trigger, seq=seq)
        release()
        await self.wait_until(
            lambda: None if any(e.detail.get("seq") == seq for e in peer.of_type("injected"))
            else f"{peer} never reached window '{trigger}' for message #{seq}",
            step=f"collision {k}: window '{trigger}'")

    async def _race(self, step: Race) -> None:
        k = len(self.ledger.collisions) + 1
        ctl = self.room.control
        ctl.hold(lambda m: m.kind == "offer" and m.sender == step.first, name=f"collision {k}: {step.first}'s offer",
                 count=1)
        await self._apply(step.first, step.first_action)
        await self._held(lambda h: self._has(h, step.first, "offer"), f"collision {k}: {step.first}'s offer")
        held = [m.seq for m in ctl.held()]
        offer = next(m for m in ctl.held() if m.kind == "offer")
        second = self.peers[step.second]
        await second.arm(offer.seq, step.window)
        self.ledger.collisions.append(Collision(
            index=k, step=self.step_index, held=held, released_t=self.room.now(), reoffer=True, race_first=step.first,
            window=Window(peer=step.second, trigger=step.window, seq=offer.seq)))
        ctl.release()
        # the offer now waits in the second peer's plumbing; its change opens the window
        await self.wait_until(
            lambda: None if any(e.detail.get("seq") == offer.seq for e in second.of_type("stashed"))
            else f"{second} has not received message #{offer.seq}", step=f"collision {k}: offer delivered")
        await self._apply(step.second, step.second_action)
        await self.wait_until(
            lambda: None if any(e.detail.get("seq") == offer.seq for e in second.of_type("injected"))
            else f"{second} never reached window '{step.window}' for message #{offer.seq}",
            step=f"collision {k}: window '{step.window}'")

    async def _burst(self, step: Burst) -> None:
        for _ in range(step.rounds):
            await asyncio.gather(self._apply("polite", step.polite), self._apply("impolite", step.impolite))

    async def _failnext(self, step: FailNext) -> None:
        await self.peers[step.who].fail_next(step.method)
        self.ledger.faults.append(InjectedFault(who=step.who, method=step.method, step=self.step_index))

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
        self.ledger.message_faults.append(MessageFault(what="duplicate", sender=step.sender, kind=step.kind,
                                                       step=self.step_index))

    async def _drop(self, step: Drop) -> None:
        self.room.control.drop(lambda m: m.sender == step.sender and m.kind == step.kind,
                               name=f"plan: drop {step.kind} from {step.sender}")
        self.ledger.message_faults.append(MessageFault(what="drop", sender=step.sender, kind=step.kind,
                                                       step=self.step_index))

    async def _gate(self, step: Gate) -> None:
        gid = len(self.gates) + 1
        self.gates[step.key] = {"id": gid, "what": step.what(), "open_on": step.open_on}
        self.ledger.gates.append(GateRecord(id=gid, who=step.who, what=step.what(), open_on=step.open_on,
                                            step=self.step_index))
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

    async def _settle(self, step: Settle) -> None:
        await self.wait_until(self._unmet_settle, step="settle")

    async def _exchange(self, step: Exchange) -> None:
        if not self.ledger.channels:
            raise self.rig_failure("exchange step with no data channel")
        for label in sorted(self.ledger.channels):
            for role, peer in self.peers.items():
                text = f"{role} on {label}: hello #{len(self.ledger.exchanged[role]) + 1}"
                await peer.send(label, text)
                self.ledger.exchanged[role].append(text)

        def unmet() -> Unmet | None:
            for role, peer in self.peers.items():
                got = {e.detail.get("data") for e in peer.of_type("channel-message")}
                missing = [t for t in self.ledger.exchanged[self.other(role)] if t not in got]
                if missing:
                    return Unmet(f"{peer} has not received {missing[0]!r}", role)
            return None
        # After an ICE restart, packets sent while the new pair is being checked can be lost and SCTP
        # backs off before retransmitting (seen once: Chromium -> Firefox took over 10 s), so the message
        # still has to cross, within a longer bound.
        await self.wait_until(unmet, step="exchange",
                              timeout=config.RESTART_EXCHANGE_TIMEOUT if self.ledger.restarts else config.STEP_TIMEOUT)

    # -- waiting -----------------------------------------------------------------
    def _states(self) -> str:
        return "; ".join(f"{p}: {p.state_text()}" for p in self.peers.values())

    def timelines(self) -> dict[str, verdict.Timeline]:
        return {role: verdict.Timeline(p.events) for role, p in self.peers.items()}

    def _first_error(self) -> Cause | None:
        """The earliest error of either peer (both may have reported one by the time the case
        wakes up: the first in time is the cause, whichever peer it is on)."""
        causes = [verdict.cause_of_error(role, peer.spec.kind, verdict.Timeline(peer.events), self.step,
                                         self.step_index, (peer.signaling_state, peer.connection_state))
                  for role, peer in self.peers.items() if peer.errors()]
        return min(causes, key=lambda c: c.t if c.t is not None else float("inf"), default=None)

    def _first_violation(self) -> Cause | None:
        """A role invariant broken for good: the verdict is known, so the case ends now
        instead of waiting out the step's bound (the final checks still report it)."""
        for check, msg in verdict.role_checks(self.timelines()):
            if not check.ok:
                peer = self.peers[check.peer] if check.peer else None
                return Cause(kind="check", step=self.step, step_index=self.step_index, peer=check.peer,
                             peer_kind=peer.spec.kind if peer else "", operation=check.id, check=check.id,
                             message=msg, signaling_state=peer.signaling_state if peer else "",
                             connection_state=peer.connection_state if peer else "")
        return None

    def _unmet_settle(self) -> Unmet | None:
        led = self.ledger
        for role, peer in self.peers.items():
            if peer.signaling_state != "stable":
                return Unmet(f"{peer} not stable ({peer.state_text()})", role)
            if peer.connection_state != "connected":
                return Unmet(f"{peer} not connected ({peer.state_text()})", role)
            flowing = Counter(e.detail.get("kind") for e in self._since_stable(peer) if e.type == "media-flowing")
            for kind, n in led.expect_media[role].items():
                if flowing[kind] < n:
                    return Unmet(f"{peer} receives {flowing[kind]} of {n} expected {kind} track(s) with media "
                                 "since its last negotiation", role, kind)
            for r in led.restarts:
                if r.role == role:
                    made = peer.of_type("offer-made", "answer-made")
                    now = set(made[-1].detail.get("ufrags") or []) if made else set()
                    if not now or now & set(r.before):
                        return Unmet(f"{peer} has not completed its ICE restart (local ufrag {sorted(now)})", role)
            opened = {e.detail.get("label") for e in peer.of_type("channel-open")}
            for label in sorted(set(led.channels) - opened):
                return Unmet(f"{peer} has no open data channel {label}", role)
        return None

    @staticmethod
    async def _receive_detail(peer: Peer, kind: str) -> str:
        task = asyncio.ensure_future(peer.receive_detail(kind))
        if not await bounded(task, config.CLOSE_TIMEOUT) or task.cancelled() or task.exception() is not None:
            return ""
        return task.result()

    @staticmethod
    def _since_stable(peer: Peer) -> list[PeerEvent]:
        """The peer's events since it last returned to "stable": a receiver counts as flowing
        only if media reached it after the last negotiation (a renegotiation can restart or stop
        a receive pipeline; both peers report "media-flowing" once per return to stable)."""
        last = max((i for i, e in enumerate(peer.events)
                    if e.type == "signalingstatechange" and e.detail.get("state") == "stable"), default=-1)
        return peer.events[last + 1:]

    async def wait_until(self, unmet: Callable[[], Unmet | str | None], *, step: str,
                         timeout: float = config.STEP_TIMEOUT) -> None:
        """Wait for ``unmet()`` to return None; fail at once on a peer error or a broken
        role invariant; bounded: a timeout names the step, the peer and its states."""
        deadline = time.monotonic() + timeout
        while True:
            cause = self._first_error() or self._first_violation()
            if cause:
                raise CaseFailure(cause)
            why = unmet()
            if why is None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                why = why if isinstance(why, Unmet) else Unmet(why)
                peer = self.peers.get(why.role) if why.role else None
                if peer is not None and why.media:  # packets arriving or not: what tells the causes apart
                    detail = await self._receive_detail(peer, why.media)
                    why = why._replace(text=f"{why.text} ({detail})") if detail else why
                raise CaseFailure(Cause(
                    kind="timeout", step=self.step, step_index=self.step_index, peer=why.role,
                    peer_kind=peer.spec.kind if peer else "", operation=step.split(":")[0],
                    message=f"stuck at step '{step}' after {timeout:.0f} s: {why.text}; {self._states()}",
                    signaling_state=peer.signaling_state if peer else "",
                    connection_state=peer.connection_state if peer else ""))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                pass
