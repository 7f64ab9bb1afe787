"""``rig compare``: which cells changed between two runs, and the exit status CI gates on.
Hand-made results dicts, no browser."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rig import cli, compare

EVIL = "<script>alert(1)</script>"


def _case(scenario: str, polite: str, impolite: str, outcome: str, *, repeat: int = 0, expected: str = "pass") -> dict:
    slug = f"{scenario}_{polite}-polite--{impolite}-impolite-r{repeat}"
    return {"id": slug, "slug": slug, "scenario": scenario, "repeat": repeat, "outcome": outcome, "expected": expected,
            "polite": {"spec": polite, "kind": polite}, "impolite": {"spec": impolite, "kind": impolite}}


def _run(*cases: dict, versions: dict | None = None) -> dict:
    return {"started": "2026-11-25T20:00:00+00:00", "versions": versions or {"firefox": "153.7.0"}, "cases": list(cases)}


def _repeats(scenario: str, polite: str, impolite: str, *outcomes: str, expected: str = "pass") -> list[dict]:
    return [_case(scenario, polite, impolite, o, repeat=r, expected=expected) for r, o in enumerate(outcomes)]


def _kinds(old: dict, new: dict) -> dict[tuple[str, str, str], str]:
    changes = compare.compare(compare.from_results(old), compare.from_results(new))
    return {(c.key.scenario, c.key.polite, c.key.impolite): c.kind for c in changes}


def test_new_failures_are_failures_errors_and_xpasses_where_old_was_green_or_absent():
    old = _run(_case("a", "firefox", "firefox", "passed"), _case("b", "firefox", "aiortc", "xfailed", expected="xfail"),
               _case("c", "aiortc", "aiortc", "passed"), _case("same", "firefox", "firefox", "failed"))
    new = _run(_case("a", "firefox", "firefox", "failed"), _case("b", "firefox", "aiortc", "xpassed", expected="xfail"),
               _case("c", "aiortc", "aiortc", "error"), _case("d", "chromium", "firefox", "error"),
               _case("same", "firefox", "firefox", "failed"))
    assert _kinds(old, new) == {("a", "firefox", "firefox"): "new failure", ("b", "firefox", "aiortc"): "new failure",
                                ("c", "aiortc", "aiortc"): "new failure", ("d", "chromium", "firefox"): "new failure"}


def test_fixed_outcome_expectation_added_and_removed():
    old = _run(_case("fix", "firefox", "firefox", "failed"), _case("xf", "firefox", "firefox", "passed"),
               _case("err", "firefox", "firefox", "failed"), _case("exp", "aiortc", "aiortc", "passed"),
               _case("gone", "firefox", "firefox", "failed"))
    new = _run(_case("fix", "firefox", "firefox", "passed"), _case("xf", "firefox", "firefox", "xfailed", expected="xfail"),
               _case("err", "firefox", "firefox", "error"), _case("exp", "aiortc", "aiortc", "passed", expected="xfail or pass"),
               _case("new", "firefox", "firefox", "xfailed", expected="xfail"))
    assert _kinds(old, new) == {("fix", "firefox", "firefox"): "fixed", ("xf", "firefox", "firefox"): "outcome",
                                ("err", "firefox", "firefox"): "outcome", ("exp", "aiortc", "aiortc"): "expectation",
                                ("gone", "firefox", "firefox"): "removed", ("new", "firefox", "firefox"): "added"}


def test_pass_rate_changes_are_compared_as_rates_over_repeats():
    old = _run(*_repeats("flaky", "firefox", "aiortc", "passed", "passed", "xfailed", "xfailed", "xfailed",
                         expected="xfail or pass"),
               *_repeats("worse", "firefox", "firefox", "passed", "passed", "passed", "failed"),
               *_repeats("steady", "firefox", "firefox", "passed"))
    new = _run(*_repeats("flaky", "firefox", "aiortc", "passed", "passed", "passed", "passed", "xfailed",
                         expected="xfail or pass"),
               *_repeats("worse", "firefox", "firefox", "passed", "failed"),
               *_repeats("steady", "firefox", "firefox", "passed", "passed", "passed"))  # 1/1 vs 3/3: no change
    changes = compare.compare(compare.from_results(old), compare.from_results(new))
    assert [(c.key.scenario, c.kind) for c in changes] == [("flaky", "pass rate"), ("worse", "pass rate")]
    assert changes[0].detail() == "2/5 passed, 3 xfailed -> 4/5 passed, 1 xfailed"
    assert changes[1].new.text() == "1/2 passed, 1 failed"


def test_cells_are_keyed_by_scenario_and_both_specs_and_sorted_most_urgent_first():
    old = _run(_case("z", "firefox", "aiortc", "failed"), _case("a", "aiortc", "firefox", "passed"))
    new = _run(_case("z", "firefox", "aiortc", "passed"), _case("a", "aiortc", "firefox", "failed"),
               _case("a", "firefox", "aiortc", "passed"))
    changes = compare.compare(compare.from_results(old), compare.from_results(new))
    assert [(c.kind, str(c.key)) for c in changes] == [
        ("new failure", "a [aiortc polite x firefox impolite]"),
        ("fixed", "z [firefox polite x aiortc impolite]"),
        ("added", "a [firefox polite x aiortc impolite]")]


def _files(tmp_path: Path, old: dict, new: dict) -> tuple[Path, Path]:
    (tmp_path / "old").mkdir()
    (tmp_path / "new" / "cases").mkdir(parents=True)
    (tmp_path / "old" / "results.json").write_text(json.dumps(old))
    (tmp_path / "new" / "results.json").write_text(json.dumps(new))
    return tmp_path / "old", tmp_path / "new"


def test_exit_status_and_outputs(tmp_path, capsys, monkeypatch):
    old = _run(_case("a", "firefox", "firefox", "passed"), _case(EVIL, "firefox", "firefox", "passed"))
    new = _run(_case("a", "firefox", "firefox", "failed"), _case(EVIL, "firefox", "firefox", "passed"),
               versions={"firefox": "154.0"})
    old_dir, new_dir = _files(tmp_path, old, new)
    (new_dir / "cases" / "a_firefox-polite--firefox-impolite-r0.html").write_text("case page")

    assert cli.main(["compare", str(old_dir), str(new_dir)]) == 1
    out = capsys.readouterr().out
    assert "NEW FAILURE  a" in out and "passed  failed" in out
    assert "version firefox: 153.7.0 -> 154.0" in out
    assert "1 changed cell(s), 1 new failure; 1 unchanged" in out
    html = (new_dir / "compare.html").read_text()  # default: next to NEW, a folder
    assert 'href="../new/cases/a_firefox-polite--firefox-impolite-r0.html"' not in html  # relative to the diff
    assert 'href="cases/a_firefox-polite--firefox-impolite-r0.html"' in html
    assert "new failure" in html and "154.0" in html

    # the other way round: a fix, exit 0; NEW is a file, so the diff lands in the working directory
    monkeypatch.chdir(tmp_path)
    assert cli.main(["compare", str(new_dir / "results.json"), str(old_dir / "results.json")]) == 0
    assert "1 fixed" in capsys.readouterr().out
    assert (tmp_path / "compare.html").is_file()
    assert "<script" not in (tmp_path / "compare.html").read_text()

    target = tmp_path / "sub" / "diff.html"
    assert cli.main(["compare", str(old_dir), str(old_dir), "--html", str(target)]) == 0
    assert "0 changed cell(s); 2 unchanged" in capsys.readouterr().out and target.is_file()


@pytest.mark.parametrize("content, message", [
    (None, "no such file or folder"),
    ("folder", "folder holds no results.json"),
    ("<html>", "not a results.json (not JSON"),
    (json.dumps([1, 2]), "not a results.json (no 'cases' list)"),
    (json.dumps({"summary": {}}), "not a results.json (no 'cases' list)"),
    (json.dumps({"cases": ["x"]}), "not a results.json (case 0 is not an object)"),
    # a case is validated as the result model's CaseSummary: the first field it lacks, or a bad outcome
    (json.dumps({"cases": [{"scenario": "a", "outcome": "passed"}]}),
     "not a valid schema-1 results file (cases.0.id: Field required)"),
    (json.dumps({"cases": [_case("a", "firefox", "firefox", "weird")]}),
     "not a valid schema-1 results file (cases.0.outcome: Input should be 'passed', 'failed'"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys, content, message):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_run(_case("a", "firefox", "firefox", "passed"))))
    bad = tmp_path / "bad.json"
    if content == "folder":
        bad = tmp_path / "empty"
        bad.mkdir()
    elif content is not None:
        bad.write_text(content)
    for argv in (["compare", str(bad), str(good)], ["compare", str(good), str(bad)]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"rig: error: {bad}") and message in err[0], err
    assert not (tmp_path / "compare.html").exists()


def test_module_entry_point_gives_the_same_exit_status(tmp_path):
    import subprocess
    old_dir, new_dir = _files(tmp_path, _run(_case("a", "firefox", "firefox", "passed")),
                              _run(_case("a", "firefox", "firefox", "error")))
    r = subprocess.run([sys.executable, "-m", "rig", "compare", str(old_dir), str(new_dir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "NEW FAILURE" in r.stdout


def test_cells_match_by_kind_and_release_line_whatever_spec_named_them():
    def vcase(scenario, polite, pv, outcome):
        c = _case(scenario, polite, "firefox", outcome)
        c["polite"] = {"spec": polite, "kind": polite.partition("@")[0], "version": pv}
        c["impolite"]["version"] = "153.8.0"
        return c
    old = _run(vcase("a", "chromium", "156.0.8078.108", "passed"), vcase("a", "chromium@147", "147.0.7727.0", "passed"))
    new = _run(vcase("a", "chromium@156", "156.0.8078.114", "passed"), vcase("a", "chromium", "147.0.7727.0", "failed"),
               vcase("a", "chromium@150", "150.0.7871.100", "passed"))
    assert _kinds(old, new) == {("a", "chromium 147", "firefox 153"): "new failure",
                                ("a", "chromium 150", "firefox 153"): "added"}


def _vcase(scenario: str, polite: str, version: str, outcome: str = "passed") -> dict:
    c = _case(scenario, polite, "aiortc", outcome)
    c["polite"]["version"] = version
    c["impolite"]["version"] = "1.16.0"
    return c


def test_a_new_run_that_lacks_cells_of_the_old_one_exits_3_naming_them(tmp_path, capsys):
    scenarios = [f"s{i:02}" for i in range(12)]
    old = _run(*(_case(s, p, "aiortc", "passed") for s in scenarios for p in ("firefox", "aiortc")))
    new = _run(_case("s00", "firefox", "aiortc", "passed"))  # 1 of 24 cells left: the rest were cut
    old_dir, new_dir = _files(tmp_path, old, new)

    assert cli.main(["compare", str(old_dir), str(new_dir)]) == compare.EXIT_REMOVED == 3
    out, err = capsys.readouterr()
    assert "23 removed; 1 unchanged" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rig compare: NEW lacks 23 of the 24 cell(s) OLD had: "
                               "s00 [aiortc polite x aiortc impolite]; s01 [aiortc polite x aiortc impolite]; "
                               "s01 [firefox polite x aiortc impolite]; and 20 more; ")
    assert lines[0].endswith("pass --allow-removed when it is meant (exit status 3)")
    assert "NEW lacks 23 of the 24 cell(s) OLD had" in (new_dir / "compare.html").read_text()

    # meant: the same comparison passes, and still says what NEW lacks
    assert cli.main(["compare", str(old_dir), str(new_dir), "--allow-removed"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "rig compare: NEW lacks 23 of the 24 cell(s) OLD had" in out and "(allowed" in out
    assert "(allowed: --allow-removed)" in (new_dir / "compare.html").read_text()


def test_an_added_cell_of_another_scenario_does_not_make_up_for_a_lost_one():
    old = compare.from_results(_run(_case("a", "firefox", "aiortc", "passed"), _case("b", "firefox", "aiortc", "passed")))
    new = compare.from_results(_run(_case("a", "firefox", "aiortc", "failed"), _case("c", "firefox", "aiortc", "passed")))
    assert [str(k) for k in compare.lost(compare.compare(old, new))] == ["b [firefox polite x aiortc impolite]"]


def test_exit_status_1_when_there_are_both_a_regression_and_lost_cells(tmp_path, capsys):
    old_dir, new_dir = _files(tmp_path, _run(_case("a", "firefox", "aiortc", "passed"),
                                             _case("b", "firefox", "aiortc", "passed")),
                              _run(_case("a", "firefox", "aiortc", "failed")))
    assert cli.main(["compare", str(old_dir), str(new_dir)]) == compare.EXIT_REGRESSION
    assert "NEW lacks 1 of the 2 cell(s) OLD had" in capsys.readouterr().err


def test_a_peer_on_another_release_line_is_not_a_lost_cell(tmp_path, capsys):
    # the browser moved from 147 to 156 between the runs: its cells are removed and added, not lost
    old = _run(_vcase("a", "chromium", "147.0.7727.0"), _vcase("b", "chromium", "147.0.7727.0"))
    new = _run(_vcase("a", "chromium", "156.0.8078.114"), _vcase("b", "chromium", "156.0.8078.114"))
    old_dir, new_dir = _files(tmp_path, old, new)
    assert cli.main(["compare", str(old_dir), str(new_dir)]) == 0
    assert "2 added, 2 removed" in capsys.readouterr().out

    # a version matrix that lost one of its two lines lost that line's cells
    old = _run(_vcase("a", "chromium@147", "147.0.7727.0"), _vcase("a", "chromium@150", "150.0.7871.100"))
    new = _run(_vcase("a", "chromium@156", "156.0.8078.114"))
    changes = compare.compare(compare.from_results(old), compare.from_results(new))
    assert len(compare.lost(changes)) == 1
