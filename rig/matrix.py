"""One matrix run from its request: ``run(request)`` resolves the peers, writes the request to
one file, runs the interop suite under pytest (with xdist workers) on it, and checks what the run
wrote. ``rig matrix``, ``rig mutants``, ``rig debug`` and ``rig soak`` call it in process; ``rig
bisect`` runs each step as ``python -m rig.matrix REQUEST_FILE`` (rig.bisect says why)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from . import config, hostnet, model, processes, runs, shards
from .errors import RigError
from .options import SMALL_RUN_CASES
from .request import MatrixRequest, cases, command_line, resolve
from .vocab import RESULTS_FILE


def err(msg: str) -> None:
    print(f"rig: error: {msg}", file=sys.stderr)


def say(msg: str) -> None:
    print(msg, flush=True)


def run(request: MatrixRequest) -> int:
    """The run's exit status: 0 when every case met its expectation and nothing is missing, 1
    otherwise, 2 for a request that cannot run, 128+N when pytest was interrupted by signal N."""
    try:
        if request.shard:
            shard, costs = shards.Shard.parse(request.shard), shards.Costs.load()
            every = request.catalogue()
            mine = shards.select(every, shard, costs)
            say(f"rig: shard {shard}: {len(mine)} of {len(every)} cells, about "
                f"{sum(costs.of(c) for c in mine) * request.repeat / 1000:.0f} s of cases")
        expected = None if request.pytest_args else {c.id for c in cases(request)}
    except RigError as exc:
        err(str(exc))
        return 2
    suite = config.ROOT / "suites" / "interop"
    if not suite.is_dir():
        err(f"interop suites not found at {suite}: run rig from a glare-rig checkout")
        return 2
    request = resolve(request, say, err)
    out = Path(request.out or config.ROOT / "reports").resolve()
    out.mkdir(parents=True, exist_ok=True)
    workers = request.workers if request.workers is not None else min(2, os.cpu_count() or 1)
    if request.workers is None and expected is not None and len(expected) < SMALL_RUN_CASES:
        workers = 1
    request = replace(request, out=str(out), workers=workers, command=request.command or command_line())
    if hostnet.loopback_only():
        say(f"rig: {hostnet.describe()}")
    fd, name = tempfile.mkstemp(prefix="glare-rig-request-", suffix=".json")
    os.close(fd)
    try:
        rc, pid, began = _pytest(suite, request.dump(Path(name)), request)
    finally:
        Path(name).unlink(missing_ok=True)
    return _verdict(request, out, rc, pid, began, expected)


def child_env(request: MatrixRequest, environ: Mapping[str, str]) -> dict[str, str]:
    """The pytest child's environment. A run asked for more workers than the machine has case
    slots (rig mutants' third worker, whose cases run while deadlocked mutants' cases wait out
    their bound idle) may hold that many slots (rig.slots), unless RIG_CASE_SLOTS says otherwise."""
    env = dict(environ)
    if "RIG_CASE_SLOTS" not in env and (request.workers or 1) > config.CASE_SLOTS:
        env["RIG_CASE_SLOTS"] = str(request.workers)
    return env


def _pytest(suite: Path, request_file: Path, request: MatrixRequest) -> tuple[int, int, float]:
    """Run pytest on the request; its exit status, pid and start time."""
    # junit.xml is written by the plugin from results.json (rig.junit), as rig merge writes it
    cmd = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider", f"--rootdir={config.ROOT}"]
    # Hypothesis (a dev dependency, for the rig's own tests) plugs into every pytest, and its
    # terminal summary imports all of it, assertion-rewritten (uncached where bytecode is not
    # written): 1.5 CPU s at the end of each pytest process of a run, controller and workers.
    # The interop suite has no property test.
    cmd += ["-p", "no:hypothesispytest"]
    if (request.workers or 1) > 1:
        cmd += ["-n", str(request.workers)]
    cmd += ["--rig-request", str(request_file)]
    if request.variants:
        # a variants run (rig mutants) expects most of its variants' cases to fail: the report and
        # the kill matrix say how; the terminal keeps its progress line and pytest's summary
        cmd += ["--tb=no", "-rN"]
    cmd += list(request.pytest_args)
    out = Path(request.out)
    with runs.Run() as run:
        began = time.time()
        proc = run.popen(cmd, cwd=config.ROOT, env=child_env(request, os.environ))
        try:
            rc = run.wait(proc)
        except runs.Interrupted as exc:
            print(f"rig: {exc.text()}; {_partial(out, began)}", file=sys.stderr)
            exc.reported = True
            raise
        finally:
            left = processes.sweep(run.id)
            if left:
                print(f"rig: ended {len(left)} process(es) the run left behind: {processes.describe(left)}",
                      file=sys.stderr)
    return rc, proc.pid, began


def _verdict(request: MatrixRequest, out: Path, rc: int, pid: int, began: float, expected: set[str] | None) -> int:
    if rc < 0:
        err(f"pytest (pid {pid}) was killed by {runs.signal_name(-rc)}; {_partial(out, began)}")
        return 1
    if rc - 128 in runs.SIGNALS:  # a signal to pytest or one of its workers, not to rig
        print(f"rig: pytest was interrupted by {runs.signal_name(rc - 128)}; {_partial(out, began)}", file=sys.stderr)
        return rc
    try:
        results = _fresh_results(out, began)
    except RigError as exc:
        err(f"{exc} (pytest exit status {rc})")
        return 1
    print(f"rig: report {out / 'index.html'}")
    problems = _integrity(results, expected)
    for line in problems:
        err(line)
    if request.unresolved:
        err(f"{len(request.unresolved)} peer spec(s) could not be resolved; their cells are errors (see above)")
        return 1
    return 0 if rc == 0 and not problems else 1


def _fresh_results(out: Path, began: float) -> model.RunRecord:
    """This run's results.json (not one an earlier run left in ``out``), validated."""
    path = out / RESULTS_FILE
    try:
        if path.stat().st_mtime < began:
            raise RigError(f"the run wrote no results ({path} is an earlier run's)")
        return model.load_run(path)
    except FileNotFoundError:
        raise RigError("the run wrote no results") from None
    except model.SchemaError as exc:
        raise RigError(f"the run's results are unreadable: {exc}") from None


def _integrity(run: model.RunRecord, expected: set[str] | None) -> list[str]:
    """One line per way the results fall short of the run: cases that did not run or whose
    worker died (in the report already, as not-run and error), and cases the run should have
    had that results.json lacks altogether (never a silent gap)."""
    lines = []
    not_run = [c.id for c in run.cases if c.outcome == "not-run"]
    if not_run:
        lines.append(f"{len(not_run)} case(s) did not run: {_some(not_run)}")
    if expected is not None:
        missing = sorted(expected - {c.id for c in run.cases})
        if missing:
            lines.append(f"results.json lacks {len(missing)} case(s) of this run: {_some(missing)}")
    return lines


def _some(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _partial(out: Path, began: float) -> str:
    """Where the partial results are, and how many cases finished."""
    try:
        run = _fresh_results(out, began)
    except RigError:
        return "it wrote no results"
    done = sum(c.outcome != "not-run" for c in run.cases)
    return f"partial report {out / 'index.html'}: {done} of {len(run.cases)} case(s) finished, the rest not run"


def main(argv: list[str] | None = None) -> int:
    """``python -m rig.matrix REQUEST_FILE``: one run of a request written by another rig process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        err("usage: python -m rig.matrix REQUEST_FILE")
        return 2
    request = MatrixRequest.load(args[0])
    return runs.run_command(request.command, lambda: run(request))


if __name__ == "__main__":
    raise SystemExit(main())
