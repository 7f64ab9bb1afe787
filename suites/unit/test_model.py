"""The typed result model: its JSON Schema is the one checked in, old results files still
load, newer ones are refused in one line, and the generated docs are current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig import compare, config, findings_doc, model
from rig.events import PeerEvent

SCHEMA = config.ROOT / "docs" / "results.schema.json"


def test_the_checked_in_schema_is_the_models() -> None:
    assert json.loads(SCHEMA.read_text()) == model.json_schema(), \
        "docs/results.schema.json is stale: rig findings --schema > docs/results.schema.json"


def test_docs_findings_is_generated_from_the_findings_data() -> None:
    assert (config.ROOT / "docs" / "findings.md").read_text() == findings_doc.markdown(), \
        "docs/findings.md is stale: rig findings --markdown > docs/findings.md"


def _v1() -> dict:
    case = {"id": "glare-initial[aiortc-polite--firefox-impolite]", "slug": "s", "scenario": "glare-initial",
            "polite": {"spec": "aiortc", "kind": "aiortc", "version": "1.16.0", "user_id": 2},
            "impolite": {"spec": "firefox", "kind": "firefox", "version": "153", "user_id": 1},
            "repeat": 0, "outcome": "xfailed", "expected": "xfail", "duration_s": 1.0,
            "glare": {"forced": True, "observed": False}, "reason": "expected failure: ...",
            "findings": ["aiortc 1.16.0 has no rollback: ..."]}
    return {"rig_version": "0.1.0", "command": "rig matrix", "cases": [case], "summary": {"xfailed": 1}}


def test_a_version_1_results_file_is_upgraded_and_compares(tmp_path: Path) -> None:
    run = model.parse_run(_v1())
    assert run.schema_version == model.SCHEMA_VERSION and run.cases[0].finding is None
    assert run.cases[0].findings == []  # v1 listed reason texts, not finding ids
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_v1()))
    current = _v1()
    current.update(schema_version=2)
    current["cases"][0].update(finding="aiortc-no-rollback", findings=["aiortc-no-rollback"])
    new.write_text(json.dumps(current))
    assert compare.run(str(old), str(new), str(tmp_path / "c.html")) == 0


def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    newer = {**_v1(), "schema_version": model.SCHEMA_VERSION + 1}
    with pytest.raises(model.SchemaError) as info:
        model.parse_run(newer, "x/results.json")
    assert "\n" not in str(info.value) and f"version {model.SCHEMA_VERSION + 1}" in str(info.value)
    p = tmp_path / "r.json"
    p.write_text(json.dumps(newer))
    with pytest.raises(compare.CompareError, match="upgrade glare-rig"):
        compare.load(p)


def test_a_broken_case_names_the_field() -> None:
    bad = _v1()
    bad["cases"][0]["outcome"] = "green"
    with pytest.raises(model.SchemaError, match=r"cases\.0\.outcome"):
        model.parse_run(bad)


def test_outcomes_include_unsupported_and_the_schema_lists_them() -> None:
    assert "unsupported" in model.OUTCOMES and "unsupported" not in model.ATTEMPTED
    text = SCHEMA.read_text()
    for o in model.OUTCOMES:
        assert f'"{o}"' in text


def test_matrix_options_are_declared_once_for_the_cli_and_pytest() -> None:
    from rig import cli, options
    flags = {a for act in cli._matrix_parser()._actions for a in act.option_strings}
    assert {f"--{o.name}" for o in options.MATRIX} <= flags
    assert options.to_pytest({"peers": "firefox", "pairs": "firefox:aiortc", "repeat": 1, "headed": True}) == [
        "--rig-peers", "firefox", "--rig-pairs", "firefox:aiortc", "--rig-headed"]
    assert options.parse_pairs("firefox:aiortc, chromium:chromium") == {("firefox", "aiortc"), ("chromium", "chromium")}
    with pytest.raises(Exception, match="expected POLITE:IMPOLITE"):
        options.parse_pairs("firefox")


def test_only_a_run_that_wrote_cases_drops_the_earlier_ones(tmp_path: Path) -> None:
    """Running the unit tests while (or after) a matrix ran must not empty its report: a run
    keeps the cases it wrote (reported back by its workers) and drops only the others."""
    from rig.plugin.finish import stale_cases as _stale_cases
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text("{}")
    new.write_text("{}")
    assert _stale_cases(tmp_path, {"new"}) == ([new], [old])
    assert _stale_cases(tmp_path, set())[0] == []  # nothing of this run: nothing is removed


def _record(**kw) -> model.CaseDetail:
    summary = model.CaseSummary(id="", slug="", scenario="add-video", outcome="failed",
                                polite=model.PeerInfo(spec="aiortc", kind="aiortc"),
                                impolite=model.PeerInfo(spec="aiortc", kind="aiortc"))
    return model.CaseDetail(case=summary, **kw)


def test_the_case_record_is_written_as_the_detail_file_was_and_reads_back_typed() -> None:
    record = _record(
        events={"polite": [PeerEvent(1.23456789, "rollback", {"how": "explicit"})]},
        messages=[{"seq": 3, "t": 0.5, "from": "polite", "to": "impolite", "kind": "offer", "size": 10}],
        checks=[model.Check(id="polite.stable", name="polite ends stable", ok=False),
                model.Check(id="impolite.stable", name="impolite ends stable", ok=True)])
    data = record.model_dump(mode="json")
    # no ledger (the steps never started) is written as {}; times to 0.1 ms; the sender as "from"
    assert data["ledger"] == {}
    assert data["events"]["polite"] == [{"t": 1.2346, "type": "rollback", "detail": {"how": "explicit"}}]
    assert data["messages"][0]["from"] == "polite" and "sender" not in data["messages"][0]
    # the summary's failed checks are read off the checks
    assert data["case"]["failed_checks"] == ["polite.stable"]
    back = model.parse_detail(json.loads(json.dumps(data)))
    assert back.ledger is None and isinstance(back.events["polite"][0], PeerEvent)
    assert back.messages[0].sender == "polite" and back.events["polite"][0].detail == {"how": "explicit"}
    ledger = model.Ledger(scenario="add-video", reached=2)
    assert model.parse_detail(_record(ledger=ledger).model_dump(mode="json")).ledger == ledger


KEPT_CASES = sorted((config.ROOT / "fixtures" / "findings" / "evidence").glob("*.json"))


@pytest.mark.parametrize("path", KEPT_CASES, ids=[p.name for p in KEPT_CASES])
def test_a_kept_case_reads_and_writes_back_its_records_unchanged(path: Path) -> None:
    """The typed ledger records and snapshots keep a detail file's shape: every key a peer or the
    rig wrote, no key it left out, in its order (only a ledger field newer than the file is added)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    out = model.dump(model.parse_detail(raw, path.name))
    for key in ("snapshots", "messages", "events"):
        assert json.dumps(out[key]) == json.dumps(raw[key]), key
    for field, records in raw["ledger"].items():
        assert json.dumps(out["ledger"][field]) == json.dumps(records), field
    assert any(s.stats is not None for s in model.parse_detail(raw).snapshots.values())


def test_a_snapshot_keeps_what_the_peer_added_and_an_error_alone_stays_alone() -> None:
    snap = model.Snapshot.model_validate({"signalingState": "stable", "page": "https://x/", "newCounter": 3,
                                          "received": [{"kind": "audio", "mid": "0", "jitter": 0.1}]})
    assert snap.received[0].bytesReceived is None and snap.transceivers == []
    assert model.dump(snap) == {"signalingState": "stable", "page": "https://x/", "newCounter": 3,
                                "received": [{"kind": "audio", "mid": "0", "jitter": 0.1}]}
    assert model.dump(model.Snapshot(error="snapshot failed: gone")) == {"error": "snapshot failed: gone"}
    assert model.dump(model.Ledger())["fault"] == {} and model.Ledger.model_validate({"fault": {}}).fault is None
