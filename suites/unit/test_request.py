"""A run's request (rig.request): its case list is the one the interop suite collects, and the
file a controller writes is the request its workers read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rig import config
from rig.errors import RigError
from rig.request import MatrixRequest, cases, user_paths

REQUEST = MatrixRequest(peers=("firefox", "aiortc"), scenarios=("add-video", "glare-initial"),
                        pairs=(("aiortc", "aiortc"), ("firefox", "aiortc"), ("firefox", "firefox")), repeat=2)


def test_a_request_lists_every_cell_and_repeat_in_run_order() -> None:
    got = [c.id for c in cases(REQUEST)]
    assert len(got) == 2 * 3 * 2
    assert got[:3] == ["add-video[firefox-polite--firefox-impolite-r0]", "add-video[firefox-polite--aiortc-impolite-r0]",
                       "add-video[aiortc-polite--aiortc-impolite-r0]"]
    assert got[6:] == [i.replace("-r0]", "-r1]") for i in got[:6]]  # repeat-major


def test_the_request_lists_what_the_interop_suite_collects(tmp_path: Path) -> None:
    path = REQUEST.dump(tmp_path / "request.json")
    listed = subprocess.run([sys.executable, "-m", "pytest", str(config.ROOT / "suites" / "interop"), "--collect-only",
                             "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "--rig-request", str(path)],
                            capture_output=True, text=True, cwd=config.ROOT, timeout=120)
    ids = [line[line.index("[") + 1:-1] for line in listed.stdout.splitlines() if "::" in line and "[" in line]
    assert ids == [c.id for c in cases(REQUEST)], listed.stdout + listed.stderr


def test_a_shard_lists_its_slice_and_the_slices_make_the_whole() -> None:
    whole = {c.id for c in cases(REQUEST)}
    parts = [{c.id for c in cases(MatrixRequest(**{**REQUEST.__dict__, "shard": f"{i}/2"}))} for i in (1, 2)]
    assert parts[0] and parts[1] and not parts[0] & parts[1] and parts[0] | parts[1] == whole


def test_the_file_is_the_request_and_keeps_what_the_controller_resolved(tmp_path: Path) -> None:
    resolved = MatrixRequest(**{**REQUEST.__dict__, "unresolved": {"firefox": "firefox: no such version"},
                                "installs": {"aiortc": {"kind": "aiortc", "version": "1.16.0", "path": sys.executable,
                                                        "source": "rig", "driver": "", "driver_label": ""}}})
    back = MatrixRequest.load(resolved.dump(tmp_path / "request.json"))
    assert back == resolved
    assert back.installation(REQUEST.specs()[1]).version == "1.16.0"
    with pytest.raises(RigError, match="no such version"):
        back.installation(REQUEST.specs()[0])


def test_options_make_the_same_request_as_one_built_by_hand() -> None:
    made = MatrixRequest.from_options({"peers": "firefox, aiortc", "scenarios": "add-video,glare-initial",
                                       "pairs": "firefox:aiortc,aiortc:aiortc,firefox:firefox", "repeat": 2})
    assert made == REQUEST
    assert user_paths({"plan": "plan.json", "negotiator_py": "neg.py:Neg"}) == {
        "plan": str(Path("plan.json").resolve()), "negotiator_py": str(Path("neg.py").resolve()) + ":Neg"}
