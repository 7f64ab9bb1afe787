"""The result model: what one case established, as one typed record.

Every output reads these records: results.json (a :class:`RunRecord`), the case detail
files (a :class:`CaseDetail`), the index and case pages, ``compare``, ``debug``,
``repro`` and ``mutants``. Nothing parses reason text back: the outcome, the finding
that explained it and the first failure (:class:`Cause`) are fields.

pydantic rather than dataclasses: the same class validates files written by other runs
(shards, older versions) and exports the JSON Schema kept in docs/results.schema.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_serializer,
    model_validator,
)

from .events import PeerEvent
from .snapshot import Snapshot, Sparse
from .vocab import RESULTS_FILE, Role

#: Bumped when a field changes meaning or disappears; readers refuse other versions
#: with a one-line error (version 1, the files written before this model, are upgraded).
SCHEMA_VERSION = 2

Outcome = Literal["passed", "failed", "error", "xfailed", "xpassed", "unsupported", "not-run"]
#: ``not-run``: collected, but the run ended before the case did (a signal, a run stopped
#: early); never a pass, and it fails the run.
OUTCOMES: tuple[str, ...] = ("passed", "failed", "error", "xfailed", "xpassed", "unsupported", "not-run")
#: outcomes that count against a cell's pass rate (unsupported and not-run cases were never tried)
ATTEMPTED: tuple[str, ...] = ("passed", "failed", "error", "xfailed", "xpassed")
Expected = Literal["pass", "xfail", "xfail or pass"]
CheckKind = Literal["integrity", "role", "outcome"]
CauseKind = Literal["error", "timeout", "check", "setup", "rig"]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False)


class Check(Model):
    """One verdict check. ``id`` is stable across runs (``polite.connected``,
    ``collision-1.rolled-back``); ``kind`` says what a failure of it means:

    - integrity: the rig did what the plan said (a collision forced, a window reached,
      a gate passed, a fault injected); a failure is never a peer's finding;
    - role: an invariant of the pattern (roles, who rolls back, negotiationneeded in
      stable); broken means the negotiator is wrong;
    - outcome: where the case had to end (stable, connected, media, channels).
    ``step`` is the plan step (1-based) the check is about, when it is about one."""

    id: str
    name: str
    ok: bool
    detail: str = ""
    kind: CheckKind = "outcome"
    step: int | None = None
    peer: Role | None = None


class Cause(Model):
    """The first failure of a case: a peer's error, a bounded wait that ran out, a check
    that did not hold, a peer that could not be made, or the rig's own exception."""

    kind: CauseKind
    step: str = ""  # "3. collide: ..." as the plan reads
    step_index: int | None = None
    peer: Role | None = None
    peer_kind: str = ""
    operation: str = ""  # setRemoteDescription, addIceCandidate, settle, exchange, a check id ...
    error_name: str = ""
    message: str = ""
    signaling_state: str = ""
    connection_state: str = ""
    check: str | None = None
    #: when it happened (seconds since the case started), for an error
    t: float | None = None

    def state_text(self) -> str:
        return f"signalingState={self.signaling_state}, connectionState={self.connection_state}"

    def text(self) -> str:
        """One line a person reads: where, who, what."""
        who = f"{self.peer} peer ({self.peer_kind})" if self.peer else "the rig"
        where = f"at step '{self.step}'" if self.step else "before the first step"
        what = {
            "error": f"{self.operation or 'an operation'} failed: "
                     f"{self.error_name + ': ' if self.error_name else ''}{self.message}",
            "timeout": f"stuck in {self.operation or 'a step'}: {self.message}"
                       + (f" ({self.state_text()})" if self.signaling_state else ""),
            "check": f"check {self.check} failed: {self.message}",
            "setup": f"could not start: {self.message}",
            "rig": f"rig error: {self.message}",
        }[self.kind]
        return f"{where}: {who} {what}"


class PeerInfo(Model):
    spec: str
    kind: str
    version: str = "unavailable"
    user_id: int | None = None
    #: what the peer offered when probed at start (restartIce, removeTrack, trickle)
    capabilities: dict[str, bool] = Field(default_factory=dict)
    #: where that version came from (system, debian, npm, pypi, path, rig) and what drove it
    #: ("" for the rig's own Playwright or aiortc, else e.g. "playwright 1.55.0" in a peer host)
    source: str = ""
    driver: str = ""


class Glare(Model):
    forced: bool = False
    observed: bool = False
    collisions: int = 0
    planned: int = 0
    polite_rolled_back: bool = False
    impolite_ignored_offer: bool = False
    polite_reoffered: bool = False


class CaseSummary(Model):
    """One case as results.json lists it."""

    #: the case's identity in its run (rig.case leaves it empty; rig.results sets it)
    id: str
    slug: str
    nodeid: str = ""
    scenario: str
    polite: PeerInfo
    impolite: PeerInfo
    repeat: int = 0
    outcome: Outcome
    expected: Expected = "pass"
    #: the id of the finding that explained this case's failure (xfailed only)
    finding: str | None = None
    #: the ids of every finding that applies to the cell
    findings: list[str] = Field(default_factory=list)
    #: findings that cover the cell but were never seen on these versions (the cell ran strict)
    not_seen: list[str] = Field(default_factory=list)
    cause: Cause | None = None
    #: one line for people: the cause, the finding, or why it is unsupported
    reason: str = ""
    failed_checks: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    #: seconds per phase: setup (peers made and probed), join (negotiators attached), steps,
    #: settle, snapshot, teardown, verdict; evidence (writing the case files) is added by the
    #: runner. The benchmark's phase table reads these.
    phases: dict[str, float] = Field(default_factory=dict)
    glare: Glare = Field(default_factory=Glare)
    details: str = ""
    negotiators: dict[str, str] = Field(default_factory=dict)


class ScenarioInfo(Model):
    name: str
    description: str = ""


class FindingInfo(Model):
    """A finding as a run saw it (the full record is rig.findings.Finding)."""

    id: str
    title: str
    #: what it is and its evidence, as the index footnotes it (the catalogue's text when the run was judged)
    detail: str = ""
    intermittent: bool = False
    upstream: str = ""
    #: engine -> the ranges of exact builds it was seen on ("156.0.8078.108 .. 156.0.8078.114")
    seen: dict[str, list[str]] = Field(default_factory=dict)
    #: scenario -> engine -> ranges, for each scenario whose boundary differs from ``seen``'s (the
    #: finding's ``seen_in``, an engine it does not name filled from ``seen``): the ranges that
    #: judge that scenario's cells
    seen_in: dict[str, dict[str, list[str]]] = Field(default_factory=dict)


class MergeInput(Model):
    """One results.json that ``rig merge`` read."""

    path: str
    started: str = ""
    command: str = ""
    shard: str = ""
    catalogue_digest: str = ""
    cases: int = 0


class MergeInfo(Model):
    """What ``rig merge`` put together, and what it noticed on the way (one line each)."""

    #: the runs read, a merged input's own inputs in its place (so its shards still count)
    inputs: list[MergeInput] = Field(default_factory=list)
    #: case id -> the run it came from (a digest of that run's start, end, command and shard),
    #: so merging a merged report again still tells one run read twice from distinct runs
    origin: dict[str, str] = Field(default_factory=dict)
    #: case ids met more than once: the same case read twice (kept once) or distinct runs
    #: of one cell (kept as repeats, renumbered)
    duplicates: list[str] = Field(default_factory=list)
    #: shards of an N-way run that no input holds ("shard 2/3 missing"), cells with no case
    missing: list[str] = Field(default_factory=list)


class RunRecord(Model):
    """results.json."""

    schema_version: int = SCHEMA_VERSION
    rig_version: str = ""
    started: str = ""
    finished: str = ""
    duration_s: float = 0.0
    command: str = ""
    #: the CI build that made the run (config.build_id: RIG_BUILD, or the GitHub Actions run's
    #: address and commit); "" for a run on a developer's machine. rig history names it.
    build: str = ""
    repeat: int = 1
    peers: list[str] = Field(default_factory=list)
    versions: dict[str, str] = Field(default_factory=dict)
    scenarios: list[ScenarioInfo] = Field(default_factory=list)
    findings: list[FindingInfo] = Field(default_factory=list)
    summary: dict[str, int] = Field(default_factory=dict)
    #: "I/N" when this run was one shard of N (rig matrix --shard); "" for a whole run
    shard: str = ""
    #: every cell of the catalogue the run (or its shard) was cut from, [scenario, polite
    #: spec, impolite spec], and the digest that names that catalogue (rig.shards)
    catalogue: list[list[str]] = Field(default_factory=list)
    catalogue_digest: str = ""
    #: set by rig merge: its inputs, duplicates and missing shards
    merged: MergeInfo | None = None
    #: why the run ended before every case ran ("SIGTERM", "SIGTERM to worker gw1"); "" when
    #: it ran to its end. Its unfinished cases are ``not-run``.
    interrupted: str = ""
    cases: list[CaseSummary] = Field(default_factory=list)


class StubMessage(Model):
    """One frame the signaling stub saw (rig.signaling's MessageRecord as written); times are
    seconds since the room was created. ``from`` is the sender (``sender`` in Python)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)

    seq: int
    t: float = 0.0
    room: str = ""
    to: str = ""
    kind: str = "other"
    size: int = 0
    held: bool = False
    released_t: float | None = None
    delivered_t: float | None = None
    note: str = ""
    #: the frame's payload; a passing case's descriptions keep only type and size (sdp_omitted)
    data: Any = None
    dropped: bool = False
    sender: str = Field("", alias="from")


# -- the ledger's records: written by rig.execute, read by rig.verdict ------------------------


class Window(Model):
    """The window a collision armed: ``peer``'s plumbing hands message ``seq`` over at ``trigger``."""

    peer: Role
    trigger: str
    seq: int


class Collision(Sparse):
    """A collision the rig forced: the stub held ``held`` and released them at ``released_t``."""

    index: int
    step: int | None = None
    held: list[int] = Field(default_factory=list)
    released_t: float
    #: False: the polite peer's change is negotiated by the other side's offer, not offered again
    reoffer: bool = True
    window: Window | None = None
    #: a Race step: the peer whose offer went first (only one offer is held)
    race_first: Role | None = None
    #: the late-candidates variant: the polite peer's candidates delivered after its answer
    late_candidates: list[int] | None = None


class Removed(Model):
    role: Role
    mid: str | None = None


class Restart(Model):
    """An ICE restart asked of ``role``, with its local ufrags before it."""

    role: Role
    before: list[str] = Field(default_factory=list)


class InjectedFault(Model):
    """A FailNext step: the peer's next ``method`` call rejects."""

    who: Role
    method: str
    step: int | None = None


class Gate(Model):
    id: int
    who: Role
    what: str
    open_on: str = ""
    step: int | None = None


class MessageFault(Model):
    """A Drop or Duplicate step: what the stub does to ``sender``'s next ``kind``."""

    what: Literal["drop", "duplicate"]
    sender: Role
    kind: str
    step: int | None = None


class Fault(Model):
    """The fault rig matrix --fault injected (rig.faults), when and whether it fired."""

    name: str
    #: what was done, in words, once it fired ("": it did not fire)
    done: str = ""
    t: float | None = None


class Dip(Model):
    """A peer that said "disconnected" after the last step, and when it left that state (None: never)."""

    role: Role
    t: float
    recovered_t: float | None = None


def _none_if_empty(v: Any) -> Any:
    return None if v == {} else v


def _empty_if_none(v: BaseModel | None) -> dict[str, Any]:
    return {} if v is None else v.model_dump(mode="json")


_R = TypeVar("_R", bound=BaseModel)
#: an optional record written as {} when absent (and {} read back as None)
EmptyIsNone = Annotated[_R | None, BeforeValidator(_none_if_empty), PlainSerializer(_empty_if_none)]


class Ledger(Model):
    """What the case asked for, step by step (the intent the checks hold the outcome to).
    rig.case fills it while it runs the steps; rig.verdict reads it."""

    scenario: str = ""
    glare: bool = False
    steps: list[str] = Field(default_factory=list)
    #: 1-based index of the last step started (len(steps) once all ran)
    reached: int = 0
    completed: bool = False
    #: when the rig stopped driving the case (seconds since it started; None: still running).
    #: Errors after it are the failed case's aftermath, kept as evidence but not judged.
    ended_t: float | None = None
    #: step index of every planned collision (Collide/Race)
    planned_collisions: list[int] = Field(default_factory=list)
    expect_media: dict[str, dict[str, int]] = Field(default_factory=lambda: {"polite": {}, "impolite": {}})
    own_media: dict[str, int] = Field(default_factory=lambda: {"polite": 0, "impolite": 0})
    channels: list[str] = Field(default_factory=list)
    exchanged: dict[str, list[str]] = Field(default_factory=lambda: {"polite": [], "impolite": []})
    collisions: list[Collision] = Field(default_factory=list)
    removed: list[Removed] = Field(default_factory=list)
    restarts: list[Restart] = Field(default_factory=list)
    faults: list[InjectedFault] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    message_faults: list[MessageFault] = Field(default_factory=list)
    #: a fault injected by rig matrix --fault (rig.faults); None: none (written as {})
    fault: EmptyIsNone[Fault] = None
    #: peers that said "disconnected" after the last step, and how that ended (rig.case, the
    #: end state's recovery wait)
    dips: list[Dip] = Field(default_factory=list)
    #: politeness each peer computed from the user ids (None: it never joined)
    computed_polite: dict[str, bool | None] = Field(default_factory=lambda: {"polite": None, "impolite": None})


class CaseDetail(Model):
    """cases/<slug>.json, and what rig.case returns: the summary plus everything the verdict
    was computed from (``ledger``, ``events``, ``messages``, ``snapshots``), so it can be
    computed again. The case fills ``case`` except its identity in the run (id, slug, nodeid,
    repeat, details, negotiators), which rig.results adds when it writes the file."""

    schema_version: int = SCHEMA_VERSION
    case: CaseSummary
    plan: list[str] = Field(default_factory=list)
    #: the plan as data, replayable with rig matrix --plan
    plan_data: dict[str, Any] | None = None
    #: None: the steps never started (set-up failed, or the pair was unsupported); written as {}
    ledger: EmptyIsNone[Ledger] = None
    messages: list[StubMessage] = Field(default_factory=list)
    events: dict[str, list[PeerEvent]] = Field(default_factory=dict)
    sdps: list[dict[str, Any]] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    #: each peer's end state as the peer reported it (peer.snapshot(): states, transceivers,
    #: received media, channels, local ufrags, stats), or {"error": ...} when it could not
    snapshots: dict[str, Snapshot] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)

    @model_validator(mode="after")
    def _failed_checks(self) -> CaseDetail:
        """The summary's failed_checks are read off the checks, so the two cannot disagree."""
        if self.checks:
            self.case.failed_checks = [c.id for c in self.checks if not c.ok]
        return self

    @field_serializer("events")
    def _events_out(self, v: dict[str, list[PeerEvent]]) -> dict[str, list[dict[str, Any]]]:
        """Times to 0.1 ms (the live events keep the clock's full precision)."""
        return {role: [{"t": round(e.t, 4), "type": e.type, "detail": e.detail} for e in evs]
                for role, evs in v.items()}

    @property
    def passed(self) -> bool:
        return self.case.outcome == "passed"


class SchemaError(ValueError):
    """A file this version cannot read; the message is one line naming the file and version."""


def _upgrade_case_v1(c: dict) -> dict:
    """Files written before the model had no finding, cause or check ids: keep what they had."""
    c = dict(c)
    c.pop("findings", None)  # v1 listed the findings' reason texts, not ids
    c.setdefault("slug", c.get("id", ""))
    if c.get("expected") not in ("pass", "xfail", "xfail or pass"):
        c["expected"] = "pass"
    return c


def _validate(cls: type[Model], data: Any, what: str) -> Any:
    """``cls`` from ``data``, or a one-line SchemaError naming the first field that is wrong."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise SchemaError(f"{what} ({loc}: {first.get('msg')})") from None


def _version_of(data: Any, where: str) -> int:
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: not a glare-rig results file (a JSON object was expected)")
    v = data.get("schema_version", 1)
    if not isinstance(v, int):
        raise SchemaError(f"{where}: schema_version {v!r} is not a number")
    return v


def parse_run(data: Any, where: str = RESULTS_FILE) -> RunRecord:
    """A results.json object as a RunRecord; version 1 is upgraded, newer ones refused."""
    v = _version_of(data, where)
    if v > SCHEMA_VERSION:
        raise SchemaError(f"{where}: results schema version {v}, this glare-rig reads up to {SCHEMA_VERSION}: "
                          "upgrade glare-rig")
    if v < 1:
        raise SchemaError(f"{where}: unknown results schema version {v}")
    if v == 1:
        data = {**data, "schema_version": SCHEMA_VERSION,
                "cases": [_upgrade_case_v1(c) for c in data.get("cases") or [] if isinstance(c, dict)]}
    return _validate(RunRecord, data, f"{where}: not a valid schema-{v} results file")


def read_json(path: Path) -> Any:
    """The JSON object in a results file, unchecked; a SchemaError says in one line why there is none.
    The one reader of results files: rig report, compare and merge each check what they need of it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read: {exc}") from None
    except ValueError as exc:
        raise SchemaError(f"{path}: not a results.json (not JSON: {exc})") from None


def load_run(path: Path) -> RunRecord:
    """results.json from a file or a report folder."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    return parse_run(read_json(path), str(path))


def parse_detail(data: Any, where: str = "case detail") -> CaseDetail:
    v = _version_of(data, where)
    if v != SCHEMA_VERSION:
        raise SchemaError(f"{where}: case detail schema version {v}; this glare-rig reads {SCHEMA_VERSION}")
    return _validate(CaseDetail, data, f"{where}: not a valid case detail")


def json_schema() -> dict:
    """The JSON Schema of results.json, as checked in at docs/results.schema.json."""
    schema = RunRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://glare-rig.invalid/results.schema.v{SCHEMA_VERSION}.json"
    return schema


def dump(model: BaseModel) -> dict:
    return model.model_dump(mode="json")
