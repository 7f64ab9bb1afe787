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
