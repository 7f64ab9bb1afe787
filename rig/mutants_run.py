"""``rig mutants``' run: the reference and every mutant form (rig.mutants) in one matrix run
(rig.variants), then each form's cases in its own report and the kill matrix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import junit, matrix, mutants, report, results, variants
from .errors import RigError
from .options import peer_list, scenario_list
from .request import MatrixRequest, command_line

#: the peers of a run without --peers (its pairs are narrowed by ``forms``)
PEERS = "firefox,chromium,aiortc"


def forms(found: list[mutants.Mutant], peers: str | None,
          kills_only: bool) -> tuple[list[variants.Variant], dict[str, tuple[mutants.Mutant, str]]]:
    """The run's variants (the reference first) and each mutant form's (mutant, language).

    Default: JS mutants on Firefox polite x Chromium impolite, Python twins on Firefox polite x
    aiortc impolite: pairs where the reference passes every scenario but the stated findings (a
    Chromium polite peer fails glare on its own; an aiortc peer cannot be polite). Firefox x
    Chromium rather than Firefox x Firefox: a Chromium (headless shell) page costs a quarter of a
    Firefox one, and every mutant is killed there too (docs/design.md). ``peers`` widens both to
    every ordered pair. The reference and every mutant form run in one pytest session: one
    start-up, one set of browsers per worker, instead of a run per mutant."""
    js_pairs = None if peers else ("firefox:chromium",)
    py_pairs = None if peers else ("firefox:aiortc",)
    by_name: dict[str, tuple[mutants.Mutant, str]] = {}
    vs: list[variants.Variant] = []
    for m in found:
        for lang, path, pairs, kills in (("js", m.js, js_pairs, m.kills), ("py", m.py, py_pairs, m.kills_py)):
            if path is None:
                continue
            # its verdicts are what counts, not its traces and logs (about 10 % less time a case)
            v = variants.Variant(f"{m.name}.{lang}", js=str(path) if lang == "js" else None,
                                 py=str(path) if lang == "py" else None, pairs=pairs,
                                 scenarios=tuple(kills) if kills_only else None, capture=False)
            vs.append(v)
            by_name[v.name] = (m, lang)
    if kills_only:
        missing = [f"{v.name}: no 'kills:' header" for v in vs if not v.scenarios]
        if missing:
            raise RigError("--kills-only: " + "; ".join(missing))
    # the reference runs on the pairs the mutants run on, nothing more; with --kills-only, only
    # on the cells some mutant form runs: a kill counts where the reference did not fail, and
    # its other cells would say nothing about any mutant (the interop matrix runs them all)
    ref_pairs = None if peers else ("firefox:chromium", "firefox:aiortc")
    ref_cells = None
    if kills_only:
        every = peer_list(peers or PEERS)
        ref_cells = tuple(dict.fromkeys(variants.cell(s, p, i) for v in vs for s in v.scenarios or ()
                                        for p in every for i in every if v.allows(p, i, s)))
    vs.insert(0, variants.Variant("", pairs=ref_pairs, cells=ref_cells))
    return vs, by_name


def run(found: list[mutants.Mutant], peers: str | None, scenarios_text: str, out: Path, workers: int,
        kills_only: bool) -> int:
    vs, by_name = forms(found, peers, kills_only)
    scen_text = ",".join(dict.fromkeys(s for v in vs for s in v.scenarios or ())) if kills_only else scenarios_text
    out.mkdir(parents=True, exist_ok=True)
    vfile = variants.dump(vs, out / "variants.json")
    peers = peers or PEERS
    print(f"rig mutants: the reference and {len(by_name)} mutant forms ({len(found)} mutants) in one run on {peers} "
          f"-> {out}", flush=True)
    matrix.run(MatrixRequest(peers=tuple(peer_list(peers)), scenarios=tuple(scenario_list(scen_text)),
                             variants=str(vfile), out=str(out), workers=workers, command=command_line()))
    try:
        run = report.load_run(out)
    except (OSError, ValueError) as exc:
        matrix.err(f"the mutants' run wrote no results ({exc})")
        return 1
    by: dict[str, list] = {}
    for c in run.cases:
        by.setdefault(variants.plain_id(c.id)[0], []).append(c)
    return _write(out, run, by, by_name, found)


def _write(out: Path, run, by: dict[str, list], by_name: dict[str, tuple[mutants.Mutant, str]],
           found: list[mutants.Mutant]) -> int:
    """Each form's report, the reference's, the kill matrix; the exit status (1: a survivor)."""
    runs: dict[str, dict] = {}
    for name, (m, lang) in by_name.items():
        cases = by.get(name, [])
        sub = out / "mutants" / name
        _move_cases(out, sub, cases)
        sub_run = results.subset(run, cases, command=f"{run.command} (variant {name})")
        results.write_results(sub, sub_run)
        report.write_report(sub, sub_run)
        runs.setdefault(m.name, {"cases": []})["cases"] += [
            dict(c.model_dump(mode="json"), id=variants.plain_id(c.id)[1], via=lang) for c in cases]
    reference = results.subset(run, by.get("", [])).model_dump(mode="json")
    kills = mutants.kill_matrix(reference, runs, found)
    mutants.write_kill_matrix(out, kills)
    reference["links"] = [{"href": "mutants.html", "text": "mutant kill matrix"}]
    report.write_report(out, reference)
    (out / "results.json").write_text(json.dumps(reference, indent=1))
    junit.write(out / "junit.xml", reference)
    width = max(len(m.name) for m in found)
    for row in kills["mutants"]:
        killers = [s for s, c in row["cells"].items() if c["killed"]]
        print(f"{row['mutant']:{width}}  {'killed by ' + ', '.join(killers) if killers else 'SURVIVED'}")
    print(f"rig mutants: kill matrix {out / 'mutants.html'}")
    return 1 if kills["survivors"] else 0


def _move_cases(out: Path, sub: Path, cases: list) -> None:
    """A variant's case files (detail JSON, page, evidence folder) from out/cases to sub/cases."""
    (sub / "cases").mkdir(parents=True, exist_ok=True)
    for c in cases:
        slug = Path(c.details).stem if c.details else results.slug(c.id)
        for src in (out / "cases" / f"{slug}.json", out / "cases" / f"{slug}.html", out / "cases" / slug):
            if src.exists():
                dst = sub / "cases" / src.name
                if dst.is_dir():
                    shutil.rmtree(dst)
                shutil.move(str(src), str(dst))
