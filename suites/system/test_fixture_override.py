"""The plugin's fixtures are a chain a suite can override from its conftest (docs/design.md,
"pytest is the engine"): a suite whose conftest replaces ``rig_peer_factory`` runs the rig's
cases with its own peers. Here the conftest's factory makes the real peers and records each one
it made, and refuses one kind: the cases it served pass, the refused one is an error with the
factory's one-line reason, and the run still writes its results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rig import config, model

CONFTEST = '''
import json
import os

import pytest

from rig.errors import RigError
from rig.plugin.peers import PeerFactory


class Recording(PeerFactory):
    async def make_peer(self, spec, name, user_id, t0):
        if name == "impolite" and os.environ.get("REFUSE_IMPOLITE"):
            raise RigError(f"{spec}: this suite's factory makes no impolite peer")
        peer = await super().make_peer(spec, name, user_id, t0)
        with open(os.environ["MADE"], "a") as f:
            f.write(json.dumps([str(spec), name, type(peer).__name__]) + "\\n")
        return peer


@pytest.fixture(scope="session")
def rig_peer_factory(rig_peer_factory):
    base = rig_peer_factory
    return Recording(base.stub, base.drivers, base.request, negotiator_js=base.negotiator_js,
                     negotiator_py=base.negotiator_py, trace=base.trace, full_capture=base.full_capture,
                     headed=base.headed)
'''

TEST = '''
def test_interop(rig_case):
    rig_case.judge(rig_case.run())
'''


def _suite(tmp_path: Path, refuse: bool) -> tuple[model.RunRecord, list, str]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["rig.pytest_plugin"]\n' + CONFTEST)
    (suite / "test_mine.py").write_text(TEST)
    made, out = tmp_path / "made.jsonl", tmp_path / "out"
    env = {**os.environ, "MADE": str(made), "PYTHONPATH": str(config.ROOT)}
    env.pop("REFUSE_IMPOLITE", None)
    if refuse:
        env["REFUSE_IMPOLITE"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider",
                           f"--rootdir={suite}", "--rig-peers", "aiortc", "--rig-scenarios", "add-video",
                           "--rig-capture", "off", "--rig-out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    made_rows = [json.loads(r) for r in made.read_text().splitlines()] if made.exists() else []
    return model.load_run(out), made_rows, done.stdout + done.stderr


def test_a_conftest_factory_makes_the_cases_peers(tmp_path: Path) -> None:
    run, made, log = _suite(tmp_path, refuse=False)
    assert [(c.id, c.outcome) for c in run.cases] == [("add-video[aiortc-polite--aiortc-impolite]", "passed")], log
    assert sorted(made) == [["aiortc", "impolite", "AiortcPeer"], ["aiortc", "polite", "AiortcPeer"]], log


def test_a_conftest_factory_that_refuses_a_peer_makes_that_case_an_error_with_its_reason(tmp_path: Path) -> None:
    run, made, log = _suite(tmp_path, refuse=True)
    (case,) = run.cases
    assert case.outcome == "error", log
    assert "aiortc: this suite's factory makes no impolite peer" in case.reason, case.reason
