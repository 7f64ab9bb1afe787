"""``rig history``: each cell over a series of runs, and the run (and build) where a red cell
turned red; the index's pass share by engine version. Hand-made results files, no browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rig import cli, config, history
from rig.model import RunRecord
from rig.report import pass_share

EVIL = "<script>alert(1)</script>"


def _case(scenario: str, polite: str, impolite: str, outcome: str, *, versions: dict[str, str] | None = None,
          repeat: int = 0, expected: str = "pass") -> dict:
    versions = versions or {}
    slug = f"{scenario}_{polite}-polite--{impolite}-impolite-r{repeat}"
    return {"id": slug, "slug": slug, "scenario": scenario, "repeat": repeat, "outcome": outcome, "expected": expected,
            "polite": {"spec": polite, "kind": polite, "version": versions.get(polite, "")},
            "impolite": {"spec": impolite, "kind": impolite, "version": versions.get(impolite, "")}}


def _write(folder: Path, started: str, cases: list[dict], *, build: str = "", versions: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(
        {"started": started, "build": build, "versions": versions or {}, "cases": cases}))
    return folder


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """Five runs of three cells, written out of order: 'broke' turns red in run 3 (a Chromium
    update) and stays red; 'flaky' is red once in run 2 and green since; 'steady' passes."""
    runs = tmp_path / "history"
    v_old, v_new = {"chromium": "150.0.7871.100"}, {"chromium": "156.0.8078.129"}
    plan = [("2026-12-01T00:00:00+00:00", v_old, "passed", "passed"),
            ("2026-12-02T00:00:00+00:00", v_old, "passed", "failed"),
            ("2026-12-03T00:00:00+00:00", v_new, "failed", "passed"),
            ("2026-12-04T00:00:00+00:00", v_new, "error", "passed"),
            ("2026-12-05T00:00:00+00:00", v_new, "failed", "passed")]
    for i, (started, versions, broke, flaky) in reversed(list(enumerate(plan, 1))):
        _write(runs / f"run-{i}", started, [
            _case("broke", "chromium", "firefox", broke, versions=versions),
            _case("flaky", "firefox", "aiortc", flaky),
            _case("steady", "aiortc", "aiortc", "passed")], build=f"https://ci.example/runs/{i} (abc{i})",
            versions=versions)
    return runs


def test_a_red_cell_names_the_run_and_build_where_its_streak_began(series: Path) -> None:
    infos, rows = history.build(history.runs_in([series]))
    assert [i.label for i in infos] == [f"run-{i}" for i in range(1, 6)]  # by start time, not by name or order
    by = {r.key.scenario: r for r in rows}
    assert (by["broke"].red_since, by["broke"].last_good) == (2, 1)
    assert infos[by["broke"].red_since].build == "https://ci.example/runs/3 (abc3)"
    assert not by["flaky"].red and by["flaky"].changed
    assert not by["steady"].red and not by["steady"].changed
    text = history.text(infos, rows)
    assert "1 red" in text and "red since run-3 (2026-12-03T00:00:00+00:00, https://ci.example/runs/3 (abc3))" in text
    assert "last not red: run-2" in text


def test_a_cell_red_in_every_run_was_never_seen_otherwise(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "2026-12-01T00:00:00+00:00", [_case("s", "firefox", "aiortc", "failed")])
    b = _write(tmp_path / "b", "2026-12-02T00:00:00+00:00", [_case("s", "firefox", "aiortc", "not-run")])
    infos, rows = history.build(history.runs_in([b, a / "results.json"]))
    assert (rows[0].red_since, rows[0].last_good) == (0, None)
    assert "never seen otherwise" in history.text(infos, rows)


def test_a_cell_missing_from_the_latest_run_is_judged_by_its_latest_run(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", "2026-12-01T00:00:00+00:00", [_case("s", "firefox", "aiortc", "failed"),
                                                            _case("t", "aiortc", "aiortc", "passed")])
    b = _write(tmp_path / "b", "2026-12-02T00:00:00+00:00", [_case("t", "aiortc", "aiortc", "passed")])
    _, rows = history.build(history.runs_in([a, b]))
    assert {r.key.scenario: r.red_since for r in rows} == {"s": 0, "t": None}


def test_squares_tell_expected_failures_and_repeats_from_red() -> None:
    from rig import compare
    run = compare.from_results({"cases": [
        _case("x", "aiortc", "aiortc", "xfailed", expected="xfail"),
        _case("m", "aiortc", "aiortc", "passed", expected="xfail or pass"),
        _case("m", "aiortc", "aiortc", "xfailed", repeat=1, expected="xfail or pass"),
        _case("u", "aiortc", "aiortc", "unsupported"), _case("p", "aiortc", "aiortc", "xpassed", expected="xfail")]})
    assert {k.scenario: history.state(c) for k, c in run.cells.items()} == {
        "x": "xfail", "m": "mixed", "u": "unsupported", "p": "red"}
    assert history.state(None) == "absent"


def test_the_page_opens_from_disk_and_escapes_what_runs_recorded(series: Path, tmp_path: Path) -> None:
    _write(series / "run-6", "2026-12-06T00:00:00+00:00", [_case(EVIL, "chromium", "firefox", "failed")],
           build=EVIL)
    assert cli.main(["history", str(series)]) == 0
    page = (series / history.HISTORY_FILE).read_text()
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "default-src 'none'" in page and "<script" not in page
    assert re.search(r'<td class="sq s-red first-red" title="#3 run-3: failed">', page)
    assert '<a href="https://ci.example/runs/3">build</a>' in page
    assert "chromium 150.0.7871.100 → 156.0.8078.129" in page  # the version move of run 3
    assert page.index('id="red"') < page.index('id="changed"') < page.index('id="steady"')


def test_bad_input_is_one_line_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    for arg in (tmp_path / "nothing", tmp_path / "empty"):
        assert cli.main(["history", str(arg)]) == 2
        err = capsys.readouterr().err.strip()
        assert str(arg) in err and len(err.splitlines()) == 1, err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text('{"cases": [{"id": "x"}]}')
    assert cli.main(["history", str(bad)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_run_records_the_ci_build_it_belongs_to(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RIG_BUILD", "GITHUB_RUN_ID", "GITHUB_REPOSITORY", "GITHUB_SERVER_URL", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    assert config.build_id() == ""
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_REPOSITORY", "me/app")
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef")
    assert config.build_id() == "https://github.com/me/app/actions/runs/42 (0123456789ab)"
    monkeypatch.setenv("RIG_BUILD", "jenkins #7")
    assert config.build_id() == "jenkins #7"


def test_pass_share_is_per_engine_version_over_judged_cases() -> None:
    old, new = {"chromium": "150.0.7871.100", "firefox": "153.8.0"}, {"chromium": "156.0.8078.129", "firefox": "153.8.0"}
    run = RunRecord.model_validate({"cases": [
        _case("a", "chromium", "firefox", "passed", versions=old),
        _case("b", "chromium", "firefox", "xpassed", expected="xfail", versions=old),
        _case("a", "chromium", "firefox", "xfailed", expected="xfail", versions=new),
        _case("b", "chromium", "firefox", "failed", versions=new),
        _case("c", "chromium", "firefox", "unsupported", versions=new),
        _case("d", "firefox", "firefox", "passed", versions=new)]})
    got = {(s.kind, s.version): (s.good, s.known, s.bad) for s in pass_share.shares(run.cases)}
    # firefox x firefox counts once for its version, not once per role
    assert got == {("chromium", "150.0.7871.100"): (2, 0, 0), ("chromium", "156.0.8078.129"): (0, 1, 1),
                   ("firefox", "153.8.0"): (3, 1, 1)}
    picture = pass_share.svg(run.cases)
    assert picture.startswith("<svg") and picture.count("<text") == 6
    assert "chromium 150.0.7871.100" in picture and "100 % passed (2 of 2)" in picture
    assert "0 % passed (0 of 2, 1 unexpected)" in picture
    assert pass_share.svg([]) == ""
