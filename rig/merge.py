"""``rig merge DIR... --out OUT``: one report from several runs: the shards of one run
(``rig matrix --shard I/N`` on CI jobs or hosts), runs on other hosts, or repeated runs.

Every input is a report folder (or its results.json). The merged folder is a report like
any other: results.json, index.html, junit.xml, and every case's detail file, page and
evidence folder copied, so each link works from the merged folder alone.

Decisions:

- **Schema versions are not mixed.** Inputs of different ``schema_version`` are refused in one
  line: a merge of an old and a new run would hold cases whose fields mean different things.
- **A duplicate** is a case id found in more than one input. When both are the same case (one
  run read twice: the same run start, command and shard) it is kept once. When they are
  distinct runs of one cell (two hosts, or a run repeated), both are kept as repeats: every case
  of that cell is renumbered r0, r1, ... in the order of the inputs, its files renamed to match,
  so the cell's pass rate counts every run, as ``--repeat`` would have. Either way the merge
  says so on stderr and in the index, and lists them in results.json (``merged.duplicates``).
- **Missing shards.** A shard's results.json names its slice (``shard: "2/3"``) and the digest
  and cells of the catalogue it was cut from; the shards of one catalogue that no input holds
  are reported (``shard 2/3 missing``), and so are cells of a catalogue that have no case
  (a shard that died half way) and inputs a signal ended (their ``not-run`` cases).
- **Exact versions stay per case.** Cells are told apart by their peer specs, as in one run;
  each case keeps the versions its peers reported, and the run's ``versions`` lists every
  version seen per engine.

Exit status: 0 the merged report is complete; 1 it was written but a shard or cell is missing,
or an input was interrupted;
2 bad input (nothing readable, mixed schema versions, OUT is an input or a folder that is not
a report), nothing written.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import junit, model, report, results, shards
from .errors import RigError
from .model import CaseSummary, MergeInfo, MergeInput, RunRecord
from .peerspec import PeerSpec
from .versions import version_key
from .vocab import JUNIT_FILE, REPORT_FILES, RESULTS_FILE

#: Notes shown on stderr per kind (all of them are in results.json and the index).
NOTES_SHOWN = 10


class MergeError(Exception):
    """Bad input: the CLI says it in one line and exits 2."""


@dataclass
class Source:
    """One input: its results.json, the folder its cases/ are in, the raw schema version."""

    arg: str
    path: Path
    version: int
    run: RunRecord

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def identity(self) -> str:
        """Two inputs with the same identity are one run read twice."""
        r = self.run
        return hashlib.sha256(json.dumps([r.started, r.finished, r.command, r.shard]).encode()).hexdigest()[:12]

    def origin(self, case: CaseSummary) -> str:
        """The run a case came from: this one, or for a merged report the run it recorded."""
        return (self.run.merged.origin.get(case.id) if self.run.merged else None) or self.identity

    def leaves(self) -> list[MergeInput]:
        """The runs this input stands for: itself, or a merged report's own inputs."""
        if self.run.merged is not None and self.run.merged.inputs:
            return list(self.run.merged.inputs)
        r = self.run
        return [MergeInput(path=str(self.path), started=r.started, command=r.command, shard=r.shard,
                           catalogue_digest=r.catalogue_digest, cases=len(r.cases))]


@dataclass
class Planned:
    """A case of the merged run and where its files come from."""

    case: CaseSummary
    source: Source
    old_slug: str
    old_details: str

    @property
    def renamed(self) -> bool:
        return self.case.slug != self.old_slug


@dataclass
class Merged:
    run: RunRecord
    cases: list[Planned] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.run.merged and self.run.merged.missing)


def read(arg: str) -> Source:
    """A report folder or results.json; one-line MergeError when it is neither."""
    p = Path(arg)
    path = p / RESULTS_FILE if p.is_dir() else p
    if not path.is_file():
        raise MergeError(f"{arg}: " + (f"the folder holds no {RESULTS_FILE}; give a report folder that rig matrix "
                                       "wrote, or its results.json" if p.is_dir() else "no such file or folder"))
    try:
        raw = model.read_json(path)
    except model.SchemaError as exc:
        raise MergeError(str(exc)) from None
    version = raw.get("schema_version", 1) if isinstance(raw, dict) else None
    try:
        run = model.parse_run(raw, str(path))
    except model.SchemaError as exc:
        raise MergeError(str(exc)) from None
    return Source(arg, path.resolve(), version if isinstance(version, int) else 1, run)


def check_versions(sources: list[Source]) -> None:
    versions = Counter(s.version for s in sources)
    if len(versions) > 1:
        first = {v: next(s for s in sources if s.version == v) for v in versions}
        listed = ", ".join(f"{first[v].path} is {v}" for v in sorted(versions))
        raise MergeError(f"mixed results schema versions ({listed}): merge runs of one schema version "
                         f"(re-run the older ones with this glare-rig)")


def _label(spec: str) -> str:
    try:
        return PeerSpec.parse(spec).label
    except RigError:  # a kind this rig does not know (a newer rig's run): keep it readable
        return re.sub(r"[^\w.]+", "_", spec).strip("_")


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _union(lists: list[list]) -> list:
    return list(dict.fromkeys(x for xs in lists for x in xs))


def plan(sources: list[Source], command: str = "rig merge") -> Merged:
    """The merged run record and, per case, the files to copy (pure: reads and writes nothing)."""
    if not sources:
        raise MergeError("nothing to merge: give at least one report folder or results.json")
    check_versions(sources)
    notes_dup: list[str] = []
    # 1. the same case read twice (one run given twice) is kept once
    seen: dict[tuple[str, str], Source] = {}
    entries: list[tuple[Source, CaseSummary]] = []
    origin: dict[int, str] = {}  # id(case) -> its run
    for src in sources:
        for case in src.run.cases:
            key = (case.id, src.origin(case))
            if key in seen:
                notes_dup.append(f"{case.id}: the same case in {seen[key].path} and {src.path} "
                                 "(one run read twice): kept once")
                continue
            seen[key] = src
            entries.append((src, case))
            origin[id(case)] = key[1]
    # 2. a cell with cases from more than one run keeps them all, as repeats r0, r1, ...
    cells: dict[tuple[str, str, str], list[tuple[Source, CaseSummary]]] = {}
    for src, case in entries:
        cells.setdefault((case.scenario, case.polite.spec, case.impolite.spec), []).append((src, case))
    planned: list[Planned] = []
    origins: dict[str, str] = {}
    for (scenario, pol, imp), group in cells.items():
        runs = list(dict.fromkeys(origin[id(c)] for _, c in group))
        ids = Counter(c.id for _, c in group)
        if len(runs) > 1:
            clashing = sorted(i for i, n in ids.items() if n > 1)
            where = " and ".join(dict.fromkeys(str(s.path) for s, _ in group))
            what = f"{', '.join(clashing)}: in {where}" if clashing else \
                f"{scenario} [{pol} polite x {imp} impolite]: cases in {where}"
            notes_dup.append(f"{what} (distinct runs): kept as repeats r0..r{len(group) - 1}")
            group = sorted(group, key=lambda e: (runs.index(origin[id(e[1])]), e[1].repeat))
            for r, (src, case) in enumerate(group):
                cid = results.case_id(scenario, _label(pol), _label(imp), r, len(group))
                s = results.slug(cid)
                new = case.model_copy(update={"id": cid, "slug": s, "repeat": r, "details": f"cases/{s}.json"})
                planned.append(Planned(new, src, case.slug, case.details))
                origins[cid] = origin[id(case)]
        else:
            planned += [Planned(case, src, case.slug, case.details) for src, case in group]
            origins.update((case.id, origin[id(case)]) for _, case in group)
    _unique_slugs(planned)
    run = _run(sources, planned, command)
    leaves = list({(i.path, i.started, i.shard): i for s in sources for i in s.leaves()}.values())
    run.merged = MergeInfo(inputs=leaves, origin=origins,
                           duplicates=notes_dup, missing=missing(sources, leaves, [p.case for p in planned]))
    return Merged(run, planned)


def _unique_slugs(planned: list[Planned]) -> None:
    """Every case's files get a safe name of their own: a slug from another run's file is made
    safe again (it names files in OUT), and two cells whose ids differ only in characters a
    slug drops must not share files."""
    taken: set[str] = set()
    for p in planned:
        base = results.slug(p.case.slug).lstrip(".") or "case"
        s, n = base, 2
        while s in taken:
            s, n = f"{base}-m{n}", n + 1
        if s != p.case.slug:
            p.case = p.case.model_copy(update={"slug": s, "details": f"cases/{s}.json"})
        taken.add(s)


def _shard(text: str) -> shards.Shard | None:
    try:
        return shards.Shard.parse(text) if text else None
    except RigError:  # not ours to judge here: the input was read as it is
        return None


def missing(sources: list[Source], leaves: list[MergeInput], cases: list[CaseSummary]) -> list[str]:
    """Shards of an N-way run that no input holds, and catalogue cells that have no case."""
    have = {(c.scenario, c.polite.spec, c.impolite.spec) for c in cases}
    out: list[str] = []
    digests = list(dict.fromkeys([s.run.catalogue_digest for s in sources if s.run.catalogue_digest]
                                 + [i.catalogue_digest for i in leaves if i.catalogue_digest]))
    for digest in digests:
        tag = f" (catalogue {digest})" if len(digests) > 1 else ""
        sliced = [sh for sh in (_shard(i.shard) for i in leaves if i.catalogue_digest == digest) if sh]
        lost_shards = [f"{i}/{n}" for n in sorted({sh.count for sh in sliced}) for i in range(1, n + 1)
                       if shards.Shard(i, n) not in sliced]
        catalogue = _union([[tuple(c) for c in s.run.catalogue] for s in sources if s.run.catalogue_digest == digest])
        lost = [c for c in catalogue if tuple(c) not in have]
        cells_text = (f"{len(lost)} of its {len(catalogue)} cells have no case, e.g. "
                      + "; ".join(str(shards.Cell(*c)) for c in lost[:3])) if lost else ""
        for sh in lost_shards:
            out.append(f"shard {sh} missing{tag}" + (f": {cells_text}" if cells_text and sh == lost_shards[-1] else ""))
        if lost and not lost_shards:
            out.append(f"catalogue{tag or ' ' + digest}: {cells_text}")
    for src in sources:  # a run a signal ended: its cells are there, but some of its cases never ran
        if src.run.interrupted:
            n = sum(c.outcome == "not-run" for c in src.run.cases)
            out.append(f"{src.path}: interrupted by {src.run.interrupted}; {n} case(s) not run")
    return out


def _run(sources: list[Source], planned: list[Planned], command: str) -> RunRecord:
    runs = [s.run for s in sources]
    scen_order = {name: i for i, name in enumerate(_union([[sc.name for sc in r.scenarios] for r in runs]))}
    # as rig matrix orders its cases: scenario (in the runs' order), polite, impolite, repeat
    planned.sort(key=lambda p: (scen_order.get(p.case.scenario, len(scen_order)), p.case.scenario,
                                p.case.polite.spec, p.case.impolite.spec, p.case.repeat))
    cases = [p.case for p in planned]
    starts = [t for t in (_when(r.started) for r in runs) if t]
    ends = [t for t in (_when(r.finished) for r in runs) if t]
    versions: dict[str, list[str]] = {}
    for r in runs:
        for k, v in r.versions.items():
            versions.setdefault(k, [])
            versions[k] += [x.strip() for x in str(v).split(",") if x.strip() and x.strip() not in versions[k]]
    seen: dict[str, set[str]] = {}
    for c in cases:  # the versions the peers reported are the exact ones
        for p in (c.polite, c.impolite):
            if p.version not in ("", "unavailable"):
                seen.setdefault(p.kind, set()).add(p.version)
    for kind, vs in seen.items():
        versions[kind] = sorted(vs, key=version_key)
    catalogue = [list(c) for c in _union([[tuple(c) for c in r.catalogue] for r in runs])]
    digests = {r.catalogue_digest for r in runs if r.catalogue_digest}
    per_cell = Counter((c.scenario, c.polite.spec, c.impolite.spec) for c in cases)
    return RunRecord(
        rig_version=", ".join(dict.fromkeys(r.rig_version for r in runs if r.rig_version)),
        started=min(starts).isoformat(timespec="seconds") if starts else "",
        finished=max(ends).isoformat(timespec="seconds") if ends else "",
        duration_s=round((max(ends) - min(starts)).total_seconds(), 1) if starts and ends
        else round(sum(r.duration_s for r in runs), 1),
        command=command, build=", ".join(dict.fromkeys(r.build for r in runs if r.build)),
        repeat=max(per_cell.values(), default=1),
        peers=_union([r.peers for r in runs]),
        versions={k: ", ".join(v) for k, v in versions.items()},
        scenarios=_union_scenarios(runs),
        findings=list({f.id: f for r in runs for f in r.findings}.values()),
        summary={o: sum(c.outcome == o for c in cases) for o in model.OUTCOMES},
        interrupted="; ".join(f"{r.shard or r.started}: {r.interrupted}" for r in runs if r.interrupted),
        catalogue=catalogue,
        catalogue_digest=digests.pop() if len(digests) == 1 else (
            shards.digest([shards.Cell(*c) for c in catalogue]) if catalogue else ""),
        cases=cases)


def _union_scenarios(runs: list[RunRecord]) -> list[model.ScenarioInfo]:
    out: dict[str, model.ScenarioInfo] = {}
    for r in runs:
        for sc in r.scenarios:
            out.setdefault(sc.name, sc)
    return list(out.values())


def _prepare(out: Path, sources: list[Source]) -> None:
    """OUT is new, empty, or an earlier report (replaced); never an input."""
    out = out.resolve()
    for s in sources:
        if s.folder == out:
            raise MergeError(f"--out {out}: that is an input's folder; write the merged report to a new folder")
    if out.exists() and not out.is_dir():
        raise MergeError(f"--out {out}: not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / RESULTS_FILE).is_file():
        raise MergeError(f"--out {out}: the folder is not empty and holds no report; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "cases", ignore_errors=True)
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)


def _inside(folder: Path, rel: str) -> Path | None:
    """``folder/rel`` when it stays inside ``folder`` (an input's paths are another run's data)."""
    if not rel:
        return None
    path = (folder / rel).resolve()
    return path if path.is_relative_to(folder.resolve()) and path != folder.resolve() else None


def _no_links(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if (Path(folder) / n).is_symlink()]


def _copy_case(p: Planned, out: Path) -> None:
    src_detail = _inside(p.source.folder, p.old_details)
    src_dir = _inside(p.source.folder, f"cases/{p.old_slug}")
    cases = out / "cases"
    if src_dir is not None and src_dir.is_dir():
        shutil.copytree(src_dir, cases / p.case.slug, ignore=_no_links)
    if src_detail is None or not src_detail.is_file():
        return  # the case page will say its detail file was not recorded
    target = cases / f"{p.case.slug}.json"
    if not p.renamed:
        shutil.copyfile(src_detail, target)
        return
    try:
        detail = json.loads(src_detail.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        shutil.copyfile(src_detail, target)  # unreadable: the page says so, as it would have
        return
    if isinstance(detail, dict):
        detail["case"] = p.case.model_dump(mode="json")
        ev = detail.get("evidence")
        if isinstance(ev, dict) and ev.get("dir") == f"cases/{p.old_slug}/":
            ev["dir"] = f"cases/{p.case.slug}/"
    target.write_text(json.dumps(detail, indent=1), encoding="utf-8")


def write(merged: Merged, out: Path) -> Path:
    """The merged report in ``out``; returns index.html's path."""
    (out / "cases").mkdir(parents=True, exist_ok=True)
    for p in merged.cases:
        _copy_case(p, out)
    results.write_results(out, merged.run)
    junit.write(out / JUNIT_FILE, merged.run)
    return report.write_report(out, merged.run)


def _say(kind: str, lines: list[str]) -> None:
    for line in lines[:NOTES_SHOWN]:
        print(f"rig merge: {kind}: {line}", file=sys.stderr)
    if len(lines) > NOTES_SHOWN:
        print(f"rig merge: {kind}: ... and {len(lines) - NOTES_SHOWN} more (results.json: merged)", file=sys.stderr)


def run(args: list[str], out: str, command: str) -> int:
    """``rig merge``: exit 0 complete, 1 written but incomplete; MergeError (-> 2) on bad input."""
    sources = [read(a) for a in args]
    merged = plan(sources, command)
    target = Path(out)
    _prepare(target, sources)
    index = write(merged, target.resolve())
    info = merged.run.merged
    assert info is not None
    _say("duplicate", info.duplicates)
    _say("warning", info.missing)
    n = len(merged.run.cases)
    print(f"rig merge: {n} case(s) from {len(sources)} input(s): "
          + ", ".join(f"{v} {k}" for k, v in merged.run.summary.items() if v) + f"; report {index}")
    return 0 if merged.complete else 1
