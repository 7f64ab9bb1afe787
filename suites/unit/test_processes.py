"""rig.processes: a sweep ends the run's marked processes, never the one sweeping nor its
ancestors (a rig matrix started by rig bisect, both inheriting one marker)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from rig import config, processes


def test_a_sweep_from_inside_a_marked_tree_spares_its_ancestors_and_ends_the_rest():
    run_id = f"unit-{uuid.uuid4().hex}"
    env = dict(os.environ, **{config.RUN_MARKER_ENV: run_id})
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    # a marked child that sweeps its own run: its parent (a marked shell) must survive it
    script = ("from rig import processes, config; import os; "
              "print(sorted(processes.sweep(os.environ[config.RUN_MARKER_ENV], grace=2)))")
    shell = subprocess.run(["bash", "-c", f'{sys.executable} -c "{script}"; echo shell-alive'], env=env,
                           capture_output=True, text=True, timeout=30, cwd=config.ROOT)
    try:
        assert "shell-alive" in shell.stdout, shell.stdout + shell.stderr
        assert str(sleeper.pid) in shell.stdout, "the other marked process was swept"
        assert sleeper.wait(timeout=5) is not None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_ancestors_start_at_this_process_and_go_up():
    mine = processes.ancestors()
    assert os.getpid() in mine and os.getppid() in mine and 1 not in mine
