"""The kill matrix from recorded runs, and the kill table of docs/measurements.md made from it."""

from pathlib import Path

from rig import mutants


def _case(cid: str, scenario: str, outcome: str, via: str = "") -> dict:
    return {"id": cid, "scenario": scenario, "outcome": outcome, "reason": f"{outcome} because\nmore", "via": via}


def test_a_kill_needs_a_failure_where_the_reference_did_not_fail_and_records_which_form() -> None:
    ref = {"scenarios": [{"name": "a"}, {"name": "b"}],
           "cases": [_case("a[F--F]", "a", "passed"), _case("b[F--F]", "b", "failed"),
                     _case("a[F--A]", "a", "passed")]}
    m = mutants.Mutant("m", "breaks it: details", Path("m.js"), Path("m.py"))
    runs = {"m": {"cases": [_case("a[F--F]", "a", "failed", "js"), _case("b[F--F]", "b", "failed", "js"),
                            _case("a[F--A]", "a", "error", "py")]}}
    matrix = mutants.kill_matrix(ref, runs, [m])
    row = matrix["mutants"][0]
    assert row["cells"]["a"]["killed"] and row["cells"]["a"]["by"] == ["js", "py"]
    assert not row["cells"]["b"]["killed"], "a cell that fails with the reference kills nothing"
    assert matrix["survivors"] == []
    table = mutants.markdown(matrix)
    assert "| `m` | breaks it | a | a |" in table


def test_a_survivor_and_a_missing_twin_are_spelled_out() -> None:
    ref = {"scenarios": [{"name": "a"}], "cases": [_case("a[F--F]", "a", "passed")]}
    m = mutants.Mutant("s", "survives", Path("s.js"), None)
    matrix = mutants.kill_matrix(ref, {"s": {"cases": [_case("a[F--F]", "a", "passed", "js")]}}, [m])
    assert matrix["survivors"] == ["s"]
    assert "| `s` | survives | **survived** | no twin |" in mutants.markdown(matrix)


def test_the_table_names_the_pairs_each_form_ran_on() -> None:
    ref = {"scenarios": [{"name": "a"}], "cases": [_case("a[F--C]", "a", "passed"), _case("a[F--A]", "a", "passed")]}
    m = mutants.Mutant("m", "breaks it", Path("m.js"), Path("m.py"))
    ff, chromium, aiortc = ({"kind": k} for k in ("firefox", "chromium", "aiortc"))
    runs = {"m": {"cases": [dict(_case("a[F--C]", "a", "failed", "js"), polite=ff, impolite=chromium),
                            dict(_case("a[F--A]", "a", "failed", "py"), polite=ff, impolite=aiortc)]}}
    matrix = mutants.kill_matrix(ref, runs, [m])
    assert matrix["pairs"] == {"js": ["firefox:chromium"], "py": ["firefox:aiortc"]}
    header = mutants.markdown(matrix).splitlines()[0]
    assert "(JS, Firefox polite x Chromium impolite)" in header
    assert "(Python twin, Firefox polite x aiortc impolite)" in header
    # a matrix recorded before it named its pairs: the defaults of then
    del matrix["pairs"]
    assert "(JS, Firefox x Firefox)" in mutants.markdown(matrix).splitlines()[0]


def test_the_kill_matrix_page_renders_with_and_without_pairs(tmp_path) -> None:
    ref = {"scenarios": [{"name": "a"}], "cases": [_case("a[F--C]", "a", "passed")]}
    m = mutants.Mutant("m", "breaks it", Path("m.js"), None)
    matrix = mutants.kill_matrix(ref, {"m": {"cases": [dict(_case("a[F--C]", "a", "failed", "js"),
                                                            polite={"kind": "firefox"}, impolite={"kind": "chromium"})]}}, [m])
    mutants.write_kill_matrix(tmp_path, matrix)
    assert "JS forms on\nfirefox:chromium; Python twins on none" in (tmp_path / "mutants.html").read_text()
    del matrix["pairs"]  # a mutants.json written before the matrix named its pairs
    mutants.write_kill_matrix(tmp_path, matrix)
    assert "JS forms on" not in (tmp_path / "mutants.html").read_text()
