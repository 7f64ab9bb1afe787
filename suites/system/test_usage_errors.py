"""Every bad input docs/cli.md lists (its *Bad input* table) is run as written: exit status 2,
the documented line verbatim as the only thing on stderr, and nothing run or written. The
table is the test's data, so the docs and the rig cannot drift apart. No browser."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rig import cli, config

TABLE_MARK = "<!-- usage-errors:"
#: Commands whose default output folder is in the checkout: each row gets its own --out, which
#: must not exist afterwards.
WRITES_OUT = {"matrix", "debug", "mutants", "soak", "bisect", "repro"}
#: The rows issue 21 was about: a matrix that ran without the bad peer and exited 1.
ISSUE_ROWS = ("rig matrix --peers aiortc,safari --scenarios glare-initial",
              "rig matrix --peers chromium@abc,aiortc --scenarios glare-initial",
              "rig matrix --peer aiortc --scenarios glare-initial")


def documented_rows() -> list[tuple[str, str]]:
    """(command, stderr line) per row of the table after TABLE_MARK in docs/cli.md."""
    lines = (config.ROOT / "docs" / "cli.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_MARK))
    rows = []
    for line in lines[start + 3:]:  # the mark, the header, the separator
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        command, message = (re.fullmatch(r"`(.*)`", c).group(1) for c in cells)
        rows.append((command, message))
    return rows


ROWS = documented_rows()


def test_the_table_is_there_and_holds_the_issues_rows() -> None:
    commands = [c for c, _ in ROWS]
    assert len(commands) >= 30 and len(set(commands)) == len(commands), commands
    assert set(ISSUE_ROWS) <= set(commands)
    assert all(m.startswith("rig: error: ") for _, m in ROWS)


def _argv(command: str, out: Path) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "rig", command
    argv = words[1:]
    if argv and argv[0] in WRITES_OUT:
        argv[1:1] = ["--out", str(out)]  # right after the command: before any REMAINDER
    return argv


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, and the run registry and per-user cache under tmp_path, so
    that whatever a row wrote or registered would be seen."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv(config.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setenv("GLARE_RIG_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _nothing_written(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd"], "a run was registered, or something installed"
    assert list((tmp_path / "cwd").iterdir()) == []


@pytest.mark.parametrize("command, message", ROWS, ids=[c for c, _ in ROWS])
def test_each_documented_bad_input_exits_2_with_its_line_and_runs_nothing(
        command: str, message: str, isolated: Path, capsys: pytest.CaptureFixture) -> None:
    began = time.monotonic()
    status = cli.main(_argv(command, isolated / "cwd" / "out"))
    took = time.monotonic() - began
    out, err = capsys.readouterr()
    assert (status, out, err) == (2, "", message + "\n")
    assert took < 2.0, f"a usage error took {took:.1f} s: something ran before the check"
    _nothing_written(isolated)


@pytest.mark.parametrize("command", ISSUE_ROWS)
def test_the_rig_process_exits_2_with_the_same_line(command: str, isolated: Path) -> None:
    message = dict(ROWS)[command]
    r = subprocess.run([sys.executable, "-m", "rig", *_argv(command, isolated / "cwd" / "out")],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", message + "\n")
    _nothing_written(isolated)
