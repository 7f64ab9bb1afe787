"""The end of a matrix run, in the controller: every collected case without a result becomes
``not-run`` (or ``error`` when its worker died), an earlier run's case files are dropped, and
results.json, junit.xml and the report are written (rig.results, rig.junit, rig.report)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .. import results, shards
from ..errors import RigError
from ..model import PeerInfo
from ..request import cases
from ..vocab import JUNIT_FILE
from . import signals
from .run import negotiators_of, out_of, request_of


def stale_cases(cases: Path, written: set[str]) -> tuple[list[Path], list[Path]]:
    """The case files this run wrote, and the ones another run left."""
    mine, old = [], []
    for f in sorted(cases.glob("*.json")):
        (mine if f.stem in written else old).append(f)
    return mine, old


def collected_cases(config_: pytest.Config) -> dict[str, tuple[str, str, tuple]]:
    """slug -> (node id, case id, cell) of every interop case the session collected (after -k,
    --deselect and the like), read back from the node ids: under xdist the controller has only
    those."""
    by_id = {c.id: c.cell for c in cases(request_of(config_))}
    out = {}
    for nodeid in signals.COLLECTED:
        name = nodeid.rsplit("::", 1)[-1]
        if "[" in name and name.endswith("]"):
            cid = name[name.index("[") + 1:-1]
            if cid in by_id:
                out[results.slug(cid)] = (nodeid, cid, by_id[cid])
    return out


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "rig_case":
            WRITTEN.add(str(value))


#: slugs of the case files this pytest session wrote (filled in the controller)
WRITTEN: set[str] = set()


@pytest.hookimpl(trylast=True)  # after xdist has waited for its workers, and the fixtures are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if hasattr(cfg, "workerinput"):
        return
    out = out_of(cfg)
    interrupted = signals.SIG.interrupted.what() if signals.SIG.signum is not None else ""
    finished, unfinished = _close_cases(session, exitstatus, out, interrupted)
    if signals.SIG.signum is not None:
        session.exitstatus = 128 + signals.SIG.signum  # rig exits with it too: 130, 143, 129
    elif unfinished and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    cases_dir = out / "cases"
    if not cases_dir.is_dir():
        return
    mine, old = stale_cases(cases_dir, finished)
    if not mine:
        return
    for f in old:  # an earlier run's cases: its page, evidence folder and detail file
        f.with_suffix(".html").unlink(missing_ok=True)
        shutil.rmtree(f.with_suffix(""), ignore_errors=True)
        f.unlink(missing_ok=True)
    _write_run(cfg, out, interrupted)


def _close_cases(session: pytest.Session, exitstatus: int, out: Path,
                 interrupted: str) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """The slugs of this run's finished cases, and the cases without a result (each written as
    not-run or error, with why)."""
    cfg = session.config
    cases_dir = out / "cases"
    try:
        collected = {} if cfg.option.collectonly else collected_cases(cfg)
    except RigError:
        collected = {}
    # this run's results: reported to the controller, or written by a worker after the controller
    # stopped listening (an interrupted run)
    since = cfg._rig_started.timestamp()  # type: ignore[attr-defined]
    finished = set(WRITTEN) | {f.stem for f in cases_dir.glob("*.json")
                                if f.stem in collected and f.stat().st_mtime >= since}
    dsession = cfg.pluginmanager.getplugin("dsession")
    stopped = str(session.shouldstop or session.shouldfail or getattr(dsession, "shouldstop", "") or "")
    if not stopped and exitstatus == pytest.ExitCode.INTERRUPTED and not interrupted:
        stopped = "pytest interrupted the session"
    unfinished = results.unfinished({slug_: c[0] for slug_, c in collected.items()}, finished, signals.CRASHED,
                                    interrupted, stopped)
    # a worker killed after its case's verdict was written but before pytest heard of it: the
    # case keeps its evidence and becomes an error saying so (the run must not end green on it)
    for slug_, c in collected.items():
        if slug_ in finished and c[0] in signals.CRASHED:
            results.mark_crashed(out, slug_, signals.CRASHED[c[0]])
    for slug_, (outcome, reason) in unfinished.items():
        nodeid, cid, (scen, polite, impolite, r, var) = collected[slug_]
        results.write_case(
            out, cid=cid, repeat=r, nodeid=nodeid, scenario=scen.name, outcome=outcome, error=reason,
            polite=PeerInfo(spec=str(polite), kind=polite.kind), impolite=PeerInfo(spec=str(impolite), kind=impolite.kind),
            keep=request_of(cfg).keep, negotiators=negotiators_of(cfg, var))
        finished.add(slug_)
    return finished, unfinished


def _write_run(cfg: pytest.Config, out: Path, interrupted: str) -> None:
    """results.json, junit.xml and the report of the run's cases; a line saying where."""
    from .. import junit, report  # jinja2: only the controller writes the report, not the workers
    try:
        req = request_of(cfg)
        peers = list(req.peers)
        scens = [{"name": s.name, "description": s.description} for s in req.scenario_objects()]
        every = req.catalogue()
    except RigError:
        return
    run = results.collect(out, started=cfg._rig_started,  # type: ignore[attr-defined]
                          command=req.command, repeat=req.repeat, peers=peers, scenarios=scens, versions={})
    for p in req.specs():
        run.versions.setdefault(p.kind, "unavailable")
    shard = req.shard
    run.shard = str(shards.Shard.parse(shard)) if shard else ""
    run.catalogue = [c.as_list() for c in every]
    run.catalogue_digest = shards.digest(every, run.repeat)
    run.interrupted = interrupted
    results.write_results(out, run)
    junit.write(out / JUNIT_FILE, run)
    index = report.write_report(out, run)
    tr = cfg.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        head = f"glare-rig: {interrupted and 'interrupted by ' + interrupted + ': '}{len(run.cases)} cases: "
        tr.write_line(head + ", ".join(f"{v} {k}" for k, v in run.summary.items() if v) + f"; report: {index}")
