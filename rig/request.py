"""A matrix run's request: what to run, parsed once and resolved once.

``rig matrix`` (and ``rig mutants``, ``rig debug``, ``rig soak``, ``rig bisect``, which build one
themselves) makes a :class:`MatrixRequest`, resolves its peer specs to exact installs in the
controller (:func:`resolve`), and writes it to one file that pytest and every xdist worker read
(``--rig-request FILE``). The run's case list is :func:`cases` of it, wherever it is needed: the
plugin's parametrization, the controller's check of results.json, a shard's slice. A pytest run
started by hand, without the file, builds the same request from its ``--rig-*`` options.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import install, options, scenarios, shards, variants
from .errors import RigError
from .peerspec import PeerSpec
from .results import case_id
from .versions import Installation


@dataclass(frozen=True)
class Case:
    """One case of the run: a cell, its repeat, the negotiator variant, and its id."""

    scenario: scenarios.Scenario
    polite: PeerSpec
    impolite: PeerSpec
    repeat: int
    variant: variants.Variant
    id: str

    @property
    def cell(self) -> tuple:
        """What the plugin parametrizes ``rig_cell`` with."""
        return (self.scenario, self.polite, self.impolite, self.repeat, self.variant)


@dataclass(frozen=True)
class MatrixRequest:
    """Everything a matrix run is asked to do. Peer specs are canonical strings
    (``str(PeerSpec)``), paths absolute; ``installs`` and ``unresolved`` are filled by
    :func:`resolve` (spec -> its Installation, or the one line saying why it cannot be used)."""

    peers: tuple[str, ...]
    scenarios: tuple[str, ...]  # names; with ``plan``, the plan's own name
    plan: str | None = None
    pairs: tuple[tuple[str, str], ...] | None = None
    shard: str | None = None
    repeat: int = 1
    variants: str | None = None  # a variants JSON (rig.variants)
    out: str = ""
    negotiator_js: str | None = None
    negotiator_py: str | None = None
    keep: str = "failed"
    capture: str = "normal"
    fault: str | None = None
    headed: bool = False
    stub_host: str | None = None
    workers: int | None = None
    pytest_args: tuple[str, ...] = ()
    command: str = ""  # the command line the results record
    installs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    unresolved: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(cls, values: Mapping[str, Any], **extra: Any) -> MatrixRequest:
        """From the matrix options (rig.options.MATRIX, by attribute name: ``negotiator_js``)."""
        plan = values.get("plan")
        names = (scenarios.load_plan(Path(plan)).name,) if plan else tuple(_scenario_names(values.get("scenarios")))
        pairs = options.parse_pairs(values.get("pairs"))
        return cls(peers=tuple(str(PeerSpec.parse(p)) for p in (values.get("peers") or "").split(",") if p.strip()),
                   scenarios=names, plan=plan, pairs=tuple(sorted(pairs)) if pairs is not None else None,
                   shard=values.get("shard"), repeat=values.get("repeat") or 1, variants=values.get("variants"),
                   out=values.get("out") or "", negotiator_js=values.get("negotiator_js"),
                   negotiator_py=values.get("negotiator_py"), keep=values.get("keep") or "failed",
                   capture=values.get("capture") or "normal", fault=values.get("fault"),
                   headed=bool(values.get("headed")), stub_host=values.get("stub_host"), **extra)

    @property
    def pair_set(self) -> set[tuple[str, str]] | None:
        return set(self.pairs) if self.pairs is not None else None

    def specs(self) -> list[PeerSpec]:
        return [PeerSpec.parse(p) for p in self.peers]

    def scenario_objects(self) -> list[scenarios.Scenario]:
        if self.plan:
            return [scenarios.load_plan(Path(self.plan))]
        return [scenarios.get(n) for n in self.scenarios]

    def variant_list(self) -> list[variants.Variant]:
        if not self.variants:
            return [variants.Variant("")]
        if self.shard or self.plan:
            raise RigError("--variants cannot be combined with --shard or --plan")
        return variants.load(self.variants)

    def catalogue(self) -> list[shards.Cell]:
        """Every cell of the catalogue: the scenarios x ordered pairs of the peers (or the pairs)."""
        return shards.catalogue(self.scenarios, self.peers, self.pair_set)

    def cells(self) -> list[shards.Cell]:
        """The cells this run runs: the catalogue's, or its shard's slice (rig.shards)."""
        every = self.catalogue()
        return shards.select(every, shards.Shard.parse(self.shard)) if self.shard else every

    def installation(self, spec: PeerSpec) -> Installation | None:
        """What the controller resolved ``spec`` to; a RigError when it could not; None when it
        was not resolved here (a pytest run started without ``rig``)."""
        key = str(spec)
        if key in self.unresolved:
            raise RigError(self.unresolved[key])
        got = self.installs.get(key)
        return Installation(**got) if got is not None else None

    def dump(self, path: Path) -> Path:
        data = asdict(self)
        path.write_text(json.dumps(data, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> MatrixRequest:
        data = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for key in ("peers", "scenarios", "pytest_args"):
            data[key] = tuple(data.get(key) or ())
        if data.get("pairs") is not None:
            data["pairs"] = tuple(tuple(p) for p in data["pairs"])
        return cls(**data)


def _scenario_names(text: str | None) -> list[str]:
    if not text or text == "all":
        return list(scenarios.CATALOGUE)
    return [scenarios.get(n.strip()).name for n in text.split(",") if n.strip()]


def cases(request: MatrixRequest) -> list[Case]:
    """Every case of the run, in run order.

    Repeat-major: each round runs every cell once, so any stretch of a long run (rig soak's first
    and last tenth, compared for memory growth) has the same mix of cases, and the repeats of a
    cell are spread over the run rather than back to back."""
    specs, scens = request.specs(), request.scenario_objects()
    plain = not request.variants
    mine = set(request.cells()) if plain else set()
    pairs = request.pair_set
    cells = []
    for var in request.variant_list():
        for scen in scens if var.scenarios is None else [scenarios.get(n) for n in var.scenarios]:
            for polite in specs:
                for impolite in specs:
                    p, i = str(polite), str(impolite)
                    if plain and shards.Cell(scen.name, p, i) not in mine:
                        continue  # pairs, shard
                    if not plain and pairs is not None and (p, i) not in pairs:
                        continue
                    if var.allows(p, i, scen.name):
                        cells.append((scen, polite, impolite, var))
    return [Case(scen, polite, impolite, r, var,
                 var.case_id(case_id(scen.name, polite.label, impolite.label, r, request.repeat)))
            for r in range(request.repeat) for scen, polite, impolite, var in cells]


def resolve(request: MatrixRequest, say: Callable[[str], None], err: Callable[[str], None]) -> MatrixRequest:
    """Each peer spec resolved to one exact version before the workers start, installing a
    missing version on demand (rig.install). A spec that cannot be resolved (unknown version,
    no network, a version nothing can drive) is said in one line and stays in the matrix: its
    cells become errors that give the same reason, and the rest of the matrix runs."""
    installs: dict[str, dict] = {}
    bad: dict[str, str] = {}
    for text in request.peers:
        spec = PeerSpec.parse(text)
        try:
            inst = install.resolve(spec)
        except RigError as exc:
            if spec.endpoint:  # a remote browser: nothing to install on this host
                err(f"{exc}; its cells will say so")
                bad[str(spec)] = str(exc)
                continue
            try:
                say(f"rig: {spec} is not installed here: installing it")
                inst = install.resolve(spec, install=True)
            except RigError as exc:
                err(f"{exc}; its cells will say so")
                bad[str(spec)] = str(exc)
                continue
        installs[str(spec)] = inst.as_dict()
        driver = f", driven by {inst.driver_label}" if inst.driver_label else ""
        say(f"rig: {spec} is {inst.kind} {inst.version} ({inst.source}{driver})")
    return replace(request, installs=installs, unresolved=bad)


def user_paths(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the files they name made absolute: a path is the user's, relative to where
    they are, and pytest runs from the checkout."""
    out = dict(values)
    for key in ("plan", "negotiator_js", "variants"):
        if out.get(key):
            out[key] = str(Path(out[key]).resolve())
    py = out.get("negotiator_py")
    if py:
        file_part, sep, attr = py.partition(":") if ".py:" in py else (py, "", "")
        if file_part.endswith(".py"):
            out["negotiator_py"] = str(Path(file_part).resolve()) + (sep + attr if sep else "")
    return out


def command_line(argv: list[str] | None = None) -> str:
    """The ``rig`` command line the results record."""
    return "rig " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
