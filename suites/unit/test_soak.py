"""rig soak's arithmetic: the plan, the sampling window, the memory trend, the summary."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import playwright
import pytest

from rig import config, soak, usage
from rig.errors import RigError
from rig.usage import GROUPS, Sample, Sampler, group_of, group_trends, is_browser_main, is_driver, trend


def test_plan_covers_every_glare_cell_in_whole_repeats() -> None:
    names, repeat, cells = soak.plan(1000, ["chromium", "firefox", "aiortc"])
    assert names == soak.glare_scenarios() and len(names) >= 10
    assert cells == len(names) * 9
    assert cells * repeat >= 1000 > cells * (repeat - 1)
    assert soak.plan(1, ["aiortc"])[1] == 1
    with pytest.raises(RigError, match="at least 1"):
        soak.plan(0, ["aiortc"])


def _series(values: list[float], done: list[int] | None = None) -> list[Sample]:
    done = done or list(range(len(values)))
    return [Sample(t=float(i), mb={"runner": v, "driver": 0.0, "browsers": 0.0, "other": 0.0}, done=d)
            for i, (v, d) in enumerate(zip(values, done, strict=True))]


def test_a_flat_series_shows_no_growth_and_a_rising_one_does() -> None:
    flat = _series([500 + (7 if i % 2 else -7) for i in range(200)])
    start, end, slope = trend(flat)
    assert abs(slope) < 5 and 490 <= start <= 510 and 490 <= end <= 510
    rising = _series([500 + 0.5 * i for i in range(200)])  # 50 MB per 100 cases
    start, end, slope = trend(rising)
    assert slope == pytest.approx(50, rel=0.01) and end > start
    assert slope >= soak.GROWTH_MB


def test_the_trend_by_group_says_which_group_grew() -> None:
    samples = [Sample(t=float(i), mb={"runner": 300 + 0.4 * i, "driver": 200.0, "browsers": 1000 - 0.4 * i + (i % 3),
                                      "other": 0.0}, done=i) for i in range(200)]
    by = group_trends(samples)
    assert by["runner"][2] == pytest.approx(40, rel=0.01) and by["runner"][1] > by["runner"][0]
    assert abs(by["driver"][2]) < 1 and by["browsers"][2] < -30
    assert abs(trend(samples)[2]) < 5  # the total hides it: the groups do not


def test_the_window_leaves_out_start_up_and_teardown() -> None:
    s = _series([100, 200, 800, 810, 805, 815, 300, 50], done=[0, 0, 1, 2, 3, 4, 4, 4])
    w = soak.while_running(s)
    assert [x.done for x in w] == [1, 2, 3, 4] and min(x.total for x in w) == 800
    assert soak.while_running(_series([1, 2], done=[0, 0])) == []


def test_processes_are_grouped_by_what_they_are() -> None:
    assert group_of("python3.11", b"python -m pytest") == "runner"
    assert group_of("node", b"node cli.js run-driver") == "driver"
    assert group_of("chromium", b"chromium --type=renderer") == "browsers"
    assert group_of("Isolated Web Co", b"/usr/lib/firefox-esr/firefox-esr -contentproc 12") == "browsers"
    assert group_of("chromium-headless-shell", b"/proc/self/exe --type=utility") == "browsers"
    # a main is a browser a driver started; a driver is node that node did not start
    assert is_browser_main("chromium-headless-shell", "node") and is_browser_main("firefox-esr", "node")
    assert not is_browser_main("chromium", "chromium") and not is_browser_main("chromium", "python3.11")
    assert not is_browser_main("chrome_crashpad_handler", "node") and not is_browser_main("node", "node")
    assert is_driver("node", "python3.11") and not is_driver("node", "node") and not is_driver("chromium", "python3.11")


def _node() -> str:
    return str(Path(playwright.__file__).parent / "driver" / "node")


def test_the_sampler_counts_what_a_driver_launched_not_forks_or_helpers(tmp_path: Path) -> None:
    """A tree of real processes shaped like a run's: node (the driver) starts "chromium" (a copy
    of the shell, so the kernel names its executable so), which forks a subshell that never
    execs (a helper between fork and exec: the main's executable and command line, the marker)
    and starts a helper without the marker (Chromium's helpers overwrite their environment);
    node also forks a shell that runs node again. One driver, one main; every process sampled."""
    fake = tmp_path / "chromium"
    shutil.copy2("/bin/sh", fake)
    run_id = f"usage-{uuid.uuid4().hex}"
    script = (f"const {{spawn}} = require('child_process');"
              f"const m = spawn({json.dumps(str(fake))}, ['-c', '(while :; do sleep 5; done) & "
              f"env -u {config.RUN_MARKER_ENV} sleep 30 & echo ready; wait'], {{stdio: ['ignore', 'pipe', 'inherit']}});"
              f"spawn('/bin/sh', ['-c', 'exec \"$0\" -e \"setTimeout(() => 0, 30000)\"', process.execPath],"
              f" {{stdio: 'ignore'}});"
              f"m.stdout.once('data', () => console.log(m.pid)); setTimeout(() => 0, 30000);")
    env = dict(os.environ, **{config.RUN_MARKER_ENV: run_id})
    proc = subprocess.Popen([_node(), "-e", script], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and select.select([proc.stdout], [], [], 10)[0], "no word from node in 10 s"
        main = int(proc.stdout.readline())
        sampler = Sampler(run_id)
        deadline = time.monotonic() + 10
        while True:  # sampled again once every process of the tree runs (the second node, the unmarked sleep)
            below = usage.run_processes(run_id)
            kinds = sorted(usage._exe(p) for p in below)
            sampler.sample()
            if kinds.count("node") == 2 and kinds.count("sleep") >= 2 and kinds.count("chromium") == 2:
                break
            assert time.monotonic() < deadline, kinds
        assert sampler.browser_mains == {main} and sampler.parents[main] == proc.pid, sampler.commands
        assert sampler.drivers == {proc.pid}, sampler.commands
        unmarked = [p for p in below if usage._exe(p) == "sleep" and run_id.encode() not in Path(f"/proc/{p}/environ").read_bytes()]
        assert len(unmarked) == 1
        assert sampler.samples[-1].mb["browsers"] > 0 and sampler.samples[-1].mb["other"] > 0
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def test_the_summary_counts_findings_apart_from_failures() -> None:
    class FakeSampler:
        samples = _series([600.0] * 20, done=list(range(1, 21)))
        peak_mb = 600.0
        browser_mains = {1, 2}

        def cpu_seconds(self) -> dict:
            return dict.fromkeys(GROUPS, 1.0)

    cases = ([{"outcome": "passed", "duration_s": 1.0}] * 6 + [{"outcome": "xfailed", "finding": "f-1",
             "duration_s": 2.0}] * 3 + [{"outcome": "failed", "duration_s": 3.0}]
             + [{"outcome": "unsupported", "duration_s": 0.0}])
    f = soak.summarise({"cases": cases}, FakeSampler())
    assert f["unexpected"] == 1 and f["passed"] == 6 and f["expected_failures"] == {"f-1": 3}
    assert f["as_expected_rate"] == pytest.approx(0.9) and f["case_s"]["max"] == 3.0
    assert not f["memory"]["grew"] and f["browser_launches"] == 2
    out = soak.text(f)
    assert "1 failed or errors" in out and "f-1 3" in out and "no growth" in out
