"""The scenario catalogue, peer specs, expectations and results files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rig import config, expectations, results, scenarios
from rig.peers.base import PeerSpec, RigError


def test_the_scenarios_page_shows_the_catalogue_as_it_is() -> None:
    page = (config.ROOT / "docs" / "scenarios.md").read_text()
    begin, end = "<!-- scenarios:begin -->\n", "<!-- scenarios:end -->"
    shown = page[page.index(begin) + len(begin):page.index(end)]
    assert shown == scenarios.markdown(), \
        "docs/scenarios.md is stale: paste `rig scenarios --markdown` between the markers"


def test_plans_round_trip_through_json(tmp_path: Path) -> None:
    for scen in scenarios.CATALOGUE.values():
        f = tmp_path / f"{scen.name}.json"
        f.write_text(json.dumps(scen.to_json()))
        assert scenarios.load_plan(f) == scen
    f.write_text(json.dumps({"case": {}, "plan_data": scenarios.get("glare-initial").to_json()}))
    assert scenarios.load_plan(f) == scenarios.get("glare-initial")
    f.write_text('{"steps": [{"step": "Teleport"}]}')
    with pytest.raises(RigError, match="bad plan"):
        scenarios.load_plan(f)


def test_glare_scenarios_plan_collisions_and_others_do_not() -> None:
    for scen in scenarios.CATALOGUE.values():
        assert (scen.collisions > 0) == scen.glare, scen.name
    assert scenarios.get("glare-repeated").collisions == 3


def test_unknown_names_are_one_line_errors() -> None:
    with pytest.raises(RigError, match="unknown scenario 'x'.*known: initial-datachannel"):
        scenarios.get("x")
    with pytest.raises(RigError, match="unknown peer kind 'safari'"):
        PeerSpec.parse("safari")
    with pytest.raises(RigError, match="unknown change"):
        scenarios.Change("polite", "add-hologram")


@pytest.mark.parametrize("text,kind,variant,label", [
    ("chromium", "chromium", "", "chromium"),
    ("Firefox", "firefox", "", "firefox"),
    ("chromium@150", "chromium", "150", "chromium_150"),
    ("chromium@/opt/c/chrome", "chromium", "/opt/c/chrome", "chromium_opt_c_chrome"),
])
def test_peer_specs(text: str, kind: str, variant: str, label: str) -> None:
    spec = PeerSpec.parse(text)
    assert (spec.kind, spec.variant, spec.label) == (kind, variant, label)
    assert PeerSpec.parse(str(spec)) == spec


def test_expectations_match_only_their_error() -> None:
    aiortc, firefox = PeerSpec("aiortc"), PeerSpec("firefox")
    exp = expectations.expected_failures("glare-initial", aiortc, firefox)
    assert exp and "rollback" in exp[0].reason
    assert expectations.expected_failures("add-video", aiortc, firefox) == []
    assert expectations.expected_failures("glare-add-media", firefox, aiortc) == []
    expectations.judge(True, "", exp)  # a pass returns (pytest turns it into a strict XPASS)
    with pytest.raises(expectations.ExpectedFinding):
        expectations.judge(False, 'InvalidStateError: Cannot handle offer in signaling state "have-local-offer"', exp)
    with pytest.raises(AssertionError, match="not with an expected finding") as info:
        expectations.judge(False, "polite ends connected: connectionState=failed", exp)
    assert not isinstance(info.value, expectations.ExpectedFinding)


def test_intermittent_findings_leave_the_cell_strict_only_with_a_strict_one() -> None:
    firefox, aiortc, chromium = PeerSpec("firefox"), PeerSpec("aiortc"), PeerSpec("chromium")
    race = expectations.expected_failures("stress-both-sides", firefox, aiortc)
    assert race and all(e.intermittent for e in race) and not expectations.strict(race)
    with pytest.raises(expectations.ExpectedFinding):
        expectations.judge(False, "negotiator on_message: ValueError: None is not in list", race)
    # Chromium's extmap finding is deterministic, so that cell must still fail every run.
    assert expectations.strict(expectations.expected_failures("stress-both-sides", chromium, aiortc))
    assert not expectations.strict([])


def test_every_expectation_has_a_reason_and_a_signature() -> None:
    for exp in expectations.KNOWN:
        assert len(exp.reason) > 40 and exp.signature


def test_case_files_are_collected_into_results(tmp_path: Path) -> None:
    peer = {"spec": "aiortc", "kind": "aiortc", "version": "1.16.0", "user_id": 2}
    for i, outcome in enumerate(["passed", "xfailed"]):
        cid = results.case_id("glare-initial", "aiortc", "firefox", i, 2)
        results.write_case(tmp_path, cid=cid, repeat=i, outcome=outcome, expected="pass", result=None,
                           reason="why" if i else "", duration_s=1.5, nodeid="n", scenario="glare-initial",
                           polite=peer, impolite={**peer, "spec": "firefox", "kind": "firefox", "version": "153"})
    run = results.collect(tmp_path, started=datetime.now(UTC), command="rig matrix", repeat=2,
                          peers=["aiortc", "firefox"], scenarios=[{"name": "glare-initial", "description": "d"}],
                          versions={})
    results.write_results(tmp_path, run)
    data = json.loads((tmp_path / "results.json").read_text())
    assert [c["id"] for c in data["cases"]] == ["glare-initial[aiortc-polite--firefox-impolite-r0]",
                                                 "glare-initial[aiortc-polite--firefox-impolite-r1]"]
    assert data["summary"]["passed"] == 1 and data["summary"]["xfailed"] == 1
    assert data["versions"]["firefox"] == "153" and data["versions"]["aiortc"]
    case = data["cases"][1]
    for key in ("scenario", "polite", "impolite", "outcome", "duration_s", "glare", "reason"):
        assert key in case
    assert (tmp_path / case["details"]).is_file()
    with pytest.raises(AssertionError):
        results.write_case(tmp_path, cid="x", repeat=0, outcome="great", expected="pass", result=None, reason="",
                           duration_s=0, nodeid="n", scenario="s", polite=peer, impolite=peer)


def test_gates_must_be_opened_and_name_known_steps() -> None:
    from rig.scenarios import AwaitGate, Gate, Join, OpenGate, Scenario
    with pytest.raises(RigError, match="never opened"):
        Scenario("x", "", (Join(), Gate("polite", "setLocalDescription")))
    with pytest.raises(RigError, match="no Gate before it"):
        Scenario("x", "", (Join(), OpenGate("polite", "setLocalDescription")))
    with pytest.raises(RigError, match="unknown gate step"):
        Gate("polite", "createDataChannel")
    with pytest.raises(RigError, match="must be 'before'"):
        Gate("polite", "negotiationneeded", when="after")
    with pytest.raises(RigError, match="unknown trigger"):
        Gate("polite", "negotiationneeded", open_on="soon")
    ok = Scenario("x", "", (Join(), Gate("impolite", "setRemoteDescription", "after", "offer"),
                            AwaitGate("impolite", "setRemoteDescription", "after", "offer"),
                            OpenGate("impolite", "setRemoteDescription", "after", "offer"),
                            Gate("polite", "negotiationneeded", open_on="srd-offer")))
    assert Scenario.from_json(ok.to_json()) == ok
