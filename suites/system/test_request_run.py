"""A matrix run from a request, without the command line (rig.matrix.run): aiortc x aiortc on
one scenario, through pytest and its plugin as rig matrix runs it."""

from __future__ import annotations

from pathlib import Path

from rig import matrix, model
from rig.request import MatrixRequest, cases


def test_a_request_runs_without_the_cli(tmp_path: Path) -> None:
    request = MatrixRequest(peers=("aiortc",), scenarios=("add-video",), out=str(tmp_path / "out"), capture="off")
    assert [c.id for c in cases(request)] == ["add-video[aiortc-polite--aiortc-impolite]"]
    assert matrix.run(request) == 0
    run = model.load_run(tmp_path / "out")
    assert [(c.id, c.outcome) for c in run.cases] == [("add-video[aiortc-polite--aiortc-impolite]", "passed")]
    assert run.peers == ["aiortc"] and run.versions["aiortc"]
