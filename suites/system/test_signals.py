"""Signals end a run in order, and a killed run's leftovers are ended by the next (issue 12).

Real ``rig matrix`` runs with browsers and aiortc, a handful of cases each. Every test starts
the run, waits until a case with a browser peer has written its result (so browsers run and
cases are both finished and pending; a bounded wait, never a sleep), counts the run's
processes by its marker, sends the signal, and then checks: the exit status, that every
process of the run is gone within a few seconds, and the partial results (finished cases
keep their outcomes, the rest are ``not-run``, or ``error`` when their worker died)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rig import config, processes, runs

pytestmark = pytest.mark.long  # scheduled first (suites/conftest.py)

RIG = [sys.executable, "-m", "rig"]
#: a case result from a browser peer: launches and the first cases, on a loaded 2-core machine
FIRST_RESULT_WITHIN = 120.0
#: from the signal to rig's exit ("within a few seconds"; typically 3-5 s here, xdist itself
#: waits up to 10 s for a worker)
ENDS_WITHIN = 30.0
#: after rig's exit, until no process of the run is left (rig sweeps before it exits)
GONE_WITHIN = 5.0


class MatrixRun:
    """One ``rig matrix`` in its own session, its output in a file, its processes marked."""

    def __init__(self, tmp_path: Path, peers: str, *, repeat: int = 3, runs_dir: Path | None = None,
                 name: str = "run") -> None:
        self.id = f"test-signals-{uuid.uuid4().hex}"
        self.out = tmp_path / name
        self.log = tmp_path / f"{name}.log"
        self.runs_dir = runs_dir or tmp_path / "runs"  # this test's registry: no other command reaps it
        env = dict(os.environ, **{config.RUN_MARKER_ENV: self.id, config.RUNS_ENV: str(self.runs_dir)})
        env.pop(config.PARENT_ENV, None)
        self.argv = RIG + ["matrix", "--peers", peers, "--scenarios", "add-video", "--repeat", str(repeat),
                           "--workers", "2", "--out", str(self.out)]
        with open(self.log, "w") as log:
            # a test run started under nohup passes SIGHUP ignored on to its children, and rig then
            # rightly ignores it: the run under test gets the default disposition, as from a shell
            self.proc = subprocess.Popen(self.argv, env=env, cwd=config.ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
        self.signalled_at = 0.0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_a_browser_result(self) -> None:
        deadline = time.monotonic() + FIRST_RESULT_WITHIN
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"rig matrix ended (status {self.proc.returncode}) before a case with a browser finished:"
                            f"\n{self.output()[-3000:]}")
            done = [f for f in (self.out / "cases").glob("*.json") if not f.name.startswith(".")] \
                if (self.out / "cases").is_dir() else []
            if any("chromium" in f.name or "firefox" in f.name for f in done):
                return
            time.sleep(0.1)  # polling the case folder, bounded by the deadline
        pytest.fail(f"no case with a browser peer finished within {FIRST_RESULT_WITHIN:.0f} s:\n{self.output()[-3000:]}")

    def processes(self) -> dict[int, str]:
        out = {}
        for pid in processes.marked(self.id):
            try:
                out[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
        return out

    def pytest_pid(self) -> int:
        [pid] = processes.children(self.proc.pid)
        return pid

    def worker_pids(self) -> list[int]:
        return sorted(processes.children(self.pytest_pid()))

    def signal(self, pid: int, sig: int) -> None:
        self.signalled_at = time.monotonic()
        os.kill(pid, sig)

    def finish(self, within: float = ENDS_WITHIN) -> tuple[int, float]:
        """rig's exit status and the seconds since the signal."""
        try:
            rc = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"rig matrix did not end within {within:.0f} s of the signal; still running: "
                        f"{processes.describe(processes.marked(self.id))}\n{self.output()[-3000:]}")
        return rc, time.monotonic() - self.signalled_at

    def assert_all_gone(self, within: float = GONE_WITHIN) -> None:
        deadline = time.monotonic() + within
        while processes.marked(self.id) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling /proc, bounded by the deadline
        left = processes.marked(self.id)
        assert not left, f"processes of the run outlived it: {processes.describe(left)}\n{self.output()[-3000:]}"

    def results(self) -> dict:
        path = self.out / "results.json"
        assert path.is_file(), f"no partial results.json:\n{self.output()[-3000:]}"
        return json.loads(path.read_text())

    def kill(self) -> None:
        """Cleanup after a failed test: nothing of the run may outlive it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        processes.sweep(self.id, grace=2)


@pytest.fixture
def matrix(tmp_path):
    made: list[MatrixRun] = []

    def start(peers: str = "chromium,aiortc", **kwargs) -> MatrixRun:
        run = MatrixRun(tmp_path, peers, **kwargs)
        made.append(run)
        run.wait_for_a_browser_result()
        return run
    yield start
    for run in made:
        run.kill()


def _assert_partial(run: MatrixRun, interrupted: str) -> None:
    res = run.results()
    cases = res["cases"]
    outcomes = [c["outcome"] for c in cases]
    assert res["interrupted"] == interrupted, res["interrupted"]
    assert len(cases) == 12, f"every collected case is in the report: {len(cases)}"
    assert "not-run" in outcomes, "cases that had not run when the signal came are not-run"
    finished = [c for c in cases if c["outcome"] != "not-run"]
    assert any(c["polite"]["kind"] != "aiortc" or c["impolite"]["kind"] != "aiortc" for c in finished), \
        "a case with a browser finished before the signal and keeps its result"
    assert all(c["outcome"] in ("passed", "xfailed") for c in finished), [(c["id"], c["reason"]) for c in finished]
    assert all(c["reason"].startswith("not run: the run was interrupted by ") for c in cases if c["outcome"] == "not-run")
    assert res["summary"]["not-run"] == outcomes.count("not-run") and res["summary"]["passed"] < len(cases)
    junit = (run.out / "junit.xml").read_text()
    assert 'type="not-run"' in junit and f'interrupted="{interrupted}"' in junit
    assert "Interrupted</b> by" in (run.out / "index.html").read_text()


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_to_rig_ends_the_whole_run_in_order(matrix, sig, status):
    run = matrix()
    before = run.processes()
    assert any(name.startswith("chrom") for name in before.values()), f"browsers run: {before}"
    run.signal(run.proc.pid, sig)
    rc, took = run.finish()
    assert rc == status, run.output()[-3000:]
    run.assert_all_gone()
    _assert_partial(run, sig.name)
    assert f"rig: interrupted by {sig.name}; partial report" in run.output()
    print(f"{sig.name} to rig: {len(before)} processes, exit {rc} {took:.1f} s after the signal")


def test_a_signal_to_the_pytest_child_ends_the_run_and_rig_says_so(matrix):
    run = matrix()
    before = run.processes()
    run.signal(run.pytest_pid(), signal.SIGTERM)
    rc, took = run.finish()
    assert rc == 143, run.output()[-3000:]
    run.assert_all_gone()
    _assert_partial(run, "SIGTERM")
    assert "rig: pytest was interrupted by SIGTERM; partial report" in run.output()
    print(f"SIGTERM to pytest: {len(before)} processes, exit {rc} {took:.1f} s after the signal")


def test_a_signal_to_one_xdist_worker_ends_the_whole_run(matrix):
    run = matrix()
    before = run.processes()
    workers = run.worker_pids()
    assert len(workers) == 2, workers
    run.signal(workers[0], signal.SIGTERM)
    rc, took = run.finish()
    assert rc == 143, run.output()[-3000:]
    run.assert_all_gone()
    res = run.results()
    assert res["interrupted"].startswith("SIGTERM (to worker gw"), res["interrupted"]
    _assert_partial(run, res["interrupted"])
    print(f"SIGTERM to a worker: {len(before)} processes, exit {rc} {took:.1f} s after the signal")


def test_a_worker_that_died_makes_its_case_an_error_and_the_run_fail(matrix):
    """SIGKILL: nothing in the worker can react. xdist replaces it and the run goes on; the case
    it was running is an error naming the worker and how it died, never a pass or a gap."""
    run = matrix()
    run.signal(run.worker_pids()[0], signal.SIGKILL)
    rc, _ = run.finish(within=FIRST_RESULT_WITHIN)
    assert rc == 1, run.output()[-3000:]
    run.assert_all_gone()
    res = run.results()
    died = [c for c in res["cases"] if c["outcome"] == "error"]
    assert len(died) == 1 and len(res["cases"]) == 12 and not res["interrupted"], [(c["id"], c["outcome"]) for c in res["cases"]]
    assert died[0]["reason"].startswith("worker gw") and "was killed by SIGKILL while running this case" in died[0]["reason"]
    assert res["summary"]["not-run"] == 0, "the other cases ran on the worker that replaced it"


def test_sigkill_of_rig_alone_makes_its_pytest_end_the_run_itself(matrix):
    """pytest asked the kernel for SIGTERM at rig's death (PR_SET_PDEATHSIG)."""
    run = matrix()
    pytest_pid = run.pytest_pid()
    run.signal(run.proc.pid, signal.SIGKILL)
    run.finish()
    deadline = time.monotonic() + ENDS_WITHIN
    while processes.alive(pytest_pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # pytest ending its workers and writing the partial report, bounded
    assert not processes.alive(pytest_pid), f"pytest outlived rig by {ENDS_WITHIN:.0f} s"
    run.assert_all_gone()
    _assert_partial(run, f"SIGTERM (its parent, pid {run.proc.pid}, died)")


def test_after_sigkill_of_the_whole_run_the_next_run_ends_what_it_left(matrix, tmp_path):
    """SIGKILL of rig and of pytest's process group (pytest, its workers, Playwright's drivers):
    nothing can clean up, and Firefox outlives its driver. The next command finds the run in
    the registry, its owner gone, ends its processes and says so."""
    run = matrix("firefox,aiortc")
    assert any(name.startswith("firefox") for name in run.processes().values())
    group = run.pytest_pid()
    run.signal(run.proc.pid, signal.SIGKILL)
    os.killpg(group, signal.SIGKILL)
    run.finish()
    left = processes.marked(run.id)
    assert any(n.startswith("firefox") for n in (run.processes() or {}).values()), \
        f"the test needs a process the kill left behind: {processes.describe(left)}"
    entries = [p.name for p in run.runs_dir.glob("*.json")]
    assert entries == [f"{run.id}.{run.proc.pid}.json"], entries
    nxt = MatrixRun(tmp_path, "aiortc", repeat=1, runs_dir=run.runs_dir, name="next")
    try:
        rc = nxt.proc.wait(timeout=FIRST_RESULT_WITHIN)
    finally:
        nxt.kill()
    said = [line for line in nxt.output().splitlines() if "left by an earlier run" in line]
    # Firefox goes on starting content processes after the kill, so the count is the sweep's own
    assert len(said) == 1 and re.fullmatch(
        rf"rig: ended [1-9]\d* process\(es\) left by an earlier run \({run.id}, started at \S+, its rig process "
        rf"\(pid {run.proc.pid}\) was killed\)", said[0]), nxt.output()[-2000:]
    assert rc == 0, f"{shlex.join(nxt.argv)}: {nxt.output()[-2000:]}"
    assert not processes.marked(run.id), "the next run ended them"
    assert [p.name for p in run.runs_dir.glob("*.json")] == [], "both entries are gone"


SLOW_EXITS = {
    # after the session: unconfigure, before the rig's own
    "unconfigure": "@pytest.hookimpl(tryfirst=True)\ndef pytest_unconfigure(config):\n"
                   "    if hasattr(config, 'workerinput'):\n        time.sleep(7)\n",
    # after xdist told the controller the worker finished, still inside pytest_sessionfinish
    "sessionfinish": "@pytest.hookimpl(hookwrapper=True, tryfirst=True)\ndef pytest_sessionfinish(session):\n"
                     "    yield\n    if hasattr(session.config, 'workerinput'):\n        time.sleep(7)\n",
}


@pytest.mark.parametrize("where", list(SLOW_EXITS))
def test_a_worker_slow_to_exit_is_not_taken_for_a_users_signal(tmp_path, where):
    """execnet sends a worker a SIGINT when its exit takes over 5 s after the controller let it
    go (seen under heavy load): every result is already with the controller, so the run ends as
    it would have, green and with its results written, not as if someone had pressed Ctrl-C.
    The 7 s are past execnet's 5 s and short of its os._exit at 15 s."""
    plugin = tmp_path / "slow_exit.py"
    plugin.write_text("import time\n\nimport pytest\n\n\n" + SLOW_EXITS[where])
    out = tmp_path / "out"
    proc = runs.run_bounded(
        [*RIG, "matrix", "--peers", "aiortc", "--scenarios", "add-video", "--workers", "2", "--out", str(out),
         "--", "-p", "slow_exit"], timeout=120, cwd=config.ROOT,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Interrupted" not in proc.stderr, proc.stderr[-2000:]
    cases = json.loads((out / "results.json").read_text())["cases"]
    assert [c["outcome"] for c in cases] == ["passed"]
