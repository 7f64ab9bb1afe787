"""rig debug's summary and rig repro's folder, from recorded cases (no browsers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig import debugging, model, results
from rig.errors import RigError

DATA = Path(__file__).parent / "data"


def _mutant_case() -> dict:
    return json.loads((DATA / "diagram-glare-initial-mutant.json").read_text())


def _record(detail: dict) -> model.CaseDetail:
    """A hand-made detail as the typed record rig debug reads (what the summary does not show filled in)."""
    nobody = {"spec": "", "kind": "", "version": ""}
    case = {"id": "", "slug": "", "scenario": "", "outcome": "passed", "polite": nobody, "impolite": nobody,
            **{k: v or nobody if k in ("polite", "impolite") else v for k, v in detail.get("case", {}).items()}}
    checks = [{"id": c.get("name", ""), **c} for c in detail.get("checks", [])]
    return model.CaseDetail.model_validate({**detail, "case": case, "checks": checks})


def test_summary_names_the_divergence_and_the_unmet_invariant() -> None:
    detail = _mutant_case()
    text = debugging.summarize(_record(detail))
    first_bad = next(c for c in detail["checks"] if not c["ok"])
    assert f"-- unmet invariant: {first_bad['name']}" in text
    assert "-- diverged at: t=" in text and "peer:" in text  # an error of one peer, with its time
    assert "polite   firefox" in text and "impolite firefox" in text
    assert len(text.splitlines()) <= 50, "a summary must fit on one screen"


def test_summary_of_a_passing_case_says_nothing_diverged() -> None:
    detail = {"case": {"id": "x[a-polite--b-impolite]", "outcome": "passed", "polite": {}, "impolite": {}},
              "events": {"polite": [{"t": 0.1, "type": "change", "detail": {"action": "add-video"}}]},
              "checks": [{"name": "polite ends stable", "ok": True, "detail": ""}]}
    text = debugging.summarize(_record(detail))
    assert "diverged at: nowhere" in text and "unmet invariant: none" in text
    assert "change: add-video" in text


def test_long_timelines_keep_the_start_and_the_lead_up_to_the_first_error() -> None:
    evs = [{"t": i / 100, "type": "change", "detail": {"action": f"step-{i}"}} for i in range(200)]
    evs.insert(150, {"t": 1.505, "type": "api-error", "detail": {"method": "setRemoteDescription", "message": "boom"}})
    text = debugging.summarize(_record({"case": {}, "events": {"polite": evs}, "checks": []}))
    assert "step-0" in text and "boom" in text and "events ..." in text
    assert "step-199" not in text


def test_malformed_detail_is_refused_in_one_line_not_summarized() -> None:
    with pytest.raises(model.SchemaError, match="not a valid case detail") as err:
        model.parse_detail({"schema_version": model.SCHEMA_VERSION,
                            "events": {"polite": [{"no": "t"}, "junk"]}, "checks": [{}]})
    assert "\n" not in str(err.value)
    assert "==" in debugging.summarize(_record({}))


def _case_file(detail: dict) -> str:
    """A recorded detail as a case file of this schema (the sample predates its check ids)."""
    return _record(detail).model_dump_json(by_alias=True)


def test_repro_folder_is_standalone(tmp_path: Path) -> None:
    detail = _mutant_case()
    detail["plan_data"] = detail.get("plan_data") or {"name": "glare-initial", "steps": []}
    neg = tmp_path / "mine.js"
    neg.write_text("export default function attach() {}\n")
    detail["case"]["negotiators"] = {"js": str(neg), "py": "x"}
    cases = tmp_path / "run" / "cases"
    cases.mkdir(parents=True)
    slug = results.slug(detail["case"]["id"])
    (cases / f"{slug}.json").write_text(_case_file(detail))
    (cases / slug).mkdir()
    (cases / slug / "trace-polite.zip").write_bytes(b"PK")
    found = debugging.find_case(detail["case"]["id"], tmp_path / "run")
    assert found == cases / f"{slug}.json"
    assert debugging.find_case(slug, tmp_path / "run") == found
    out = debugging.write_repro(found, tmp_path / "repro")
    for name in ("README.md", "plan.json", "transcript.txt", "transcript.json", "versions.json", "case.json",
                 "negotiator.js", "replay.sh", "evidence/trace-polite.zip"):
        assert (out / name).exists(), name
    replay = (out / "replay.sh").read_text()
    assert "--plan plan.json" in replay and "--negotiator-js negotiator.js" in replay
    assert "--negotiator-py" not in replay  # no aiortc peer in this case
    assert "--peers firefox " in replay and replay.rstrip().endswith("--pairs firefox:firefox")  # this pair only
    assert " -k " not in replay  # pairs are selected by --pairs, not by pytest ids
    assert (out / "negotiator.js").read_text() == neg.read_text()
    assert json.loads((out / "plan.json").read_text()) == detail["plan_data"]
    held = [m for m in detail["messages"] if m.get("held")]
    if held:
        assert "held" in (out / "transcript.txt").read_text()


def test_repro_of_an_unknown_case_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(RigError, match="no case 'nope'"):
        debugging.find_case("nope", tmp_path)
    f = tmp_path / "cases" / "x.json"
    f.parent.mkdir()
    data = _mutant_case()
    data.pop("plan_data", None)
    f.write_text(_case_file(data))
    with pytest.raises(RigError, match="no plan recorded"):
        debugging.write_repro(f, tmp_path / "out")
    f.write_text(json.dumps({**_mutant_case(), "schema_version": 1}))  # another schema: a one-line error
    with pytest.raises(RigError, match=r"^\S+x\.json: case detail schema version 1; this glare-rig reads \d+$"):
        debugging.write_repro(f, tmp_path / "out")
    f.write_text("{")
    with pytest.raises(RigError, match=r"x\.json: .*not JSON"):
        debugging.write_repro(f, tmp_path / "out")
