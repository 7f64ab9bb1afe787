"""junit.xml from the run record: names that group by scenario and pair, the properties a CI
system shows, the outcome as failure / error / skipped with a one-line message. No browser."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rig import junit, model, results

REASON = "at step '3. collide': polite peer (chromium) setRemoteDescription failed: InvalidAccessError: bad\nmore detail"


def _case(scenario: str, outcome: str, *, pol: str = "chromium@147", imp: str = "firefox", repeat: int = 0,
          repeats: int = 1, **extra) -> dict:
    cid = results.case_id(scenario, pol.replace("@", "_"), imp, repeat, repeats)
    return {"id": cid, "slug": results.slug(cid), "scenario": scenario, "outcome": outcome, "repeat": repeat,
            "reason": REASON if outcome != "passed" else "", "duration_s": 2.25, "details": f"cases/{results.slug(cid)}.json",
            "polite": {"spec": pol, "kind": pol.split("@")[0], "version": "147.0.7727.0"},
            "impolite": {"spec": imp, "kind": imp, "version": "153.8.0"}, **extra}


def _run(*cases: dict) -> model.RunRecord:
    return model.parse_run({"schema_version": 2, "started": "2026-11-30T10:00:00+00:00", "shard": "2/3",
                            "versions": {"chromium": "147.0.7727.0", "firefox": "153.8.0"},
                            "scenarios": [{"name": "glare-initial"}, {"name": "add-video"}], "cases": list(cases)})


def _props(el: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in el.findall("./properties/property")}


def _tree(*cases: dict) -> ET.Element:
    return junit.build(_run(*cases))


def test_a_suite_per_scenario_a_testcase_per_case_named_by_its_pair():
    root = _tree(_case("add-video", "passed"), _case("glare-initial", "passed"),
                 _case("glare-initial", "passed", pol="aiortc", imp="aiortc"))
    assert [s.get("name") for s in root.findall("testsuite")] == ["glare-initial", "add-video"], "the run's order"
    tcs = root.findall("./testsuite/testcase")
    assert [(t.get("classname"), t.get("name")) for t in tcs] == [
        ("glare-initial", "chromium@147 polite x firefox impolite"),
        ("glare-initial", "aiortc polite x aiortc impolite"),
        ("add-video", "chromium@147 polite x firefox impolite")]
    assert tcs[0].get("time") == "2.250" and root.get("tests") == "3"


def test_repeats_are_named_by_their_run():
    root = _tree(*(_case("glare-initial", "passed", repeat=r, repeats=2) for r in range(2)))
    assert [t.get("name") for t in root.iter("testcase")] == ["chromium@147 polite x firefox impolite r0",
                                                              "chromium@147 polite x firefox impolite r1"]


def test_every_testcase_carries_the_properties():
    glare = {"forced": True, "observed": False, "collisions": 1, "polite_rolled_back": False,
             "impolite_ignored_offer": True, "polite_reoffered": False}
    root = _tree(_case("glare-initial", "xfailed", finding="chromium-rollback-extmap", expected="xfail",
                       findings=["chromium-rollback-extmap"], glare=glare))
    tc = root.find("./testsuite/testcase")
    assert _props(tc) == {
        "case_id": "glare-initial[chromium_147-polite--firefox-impolite]", "scenario": "glare-initial",
        "polite.spec": "chromium@147", "polite.kind": "chromium", "polite.version": "147.0.7727.0",
        "impolite.spec": "firefox", "impolite.kind": "firefox", "impolite.version": "153.8.0",
        "outcome": "xfailed", "expected": "xfail", "finding": "chromium-rollback-extmap",
        "findings": "chromium-rollback-extmap", "glare.forced": "true", "glare.observed": "false",
        "glare.rolled_back": "false", "glare.ignored": "true", "glare.reoffered": "false", "glare.collisions": "1",
        "case_page": "cases/glare-initial_chromium_147-polite--firefox-impolite.html"}
    suite = _props(root.find("testsuite"))
    assert suite["version.chromium"] == "147.0.7727.0" and suite["shard"] == "2/3"


def test_outcomes_map_to_failure_error_and_skipped_with_a_one_line_message():
    cause = {"kind": "error", "step": "3. collide", "peer": "polite", "peer_kind": "chromium",
             "operation": "setRemoteDescription", "error_name": "InvalidAccessError", "message": "bad"}
    root = _tree(_case("glare-initial", "failed", cause=cause, failed_checks=["polite.stable"]),
                 _case("add-video", "error"), _case("add-video", "xpassed", pol="firefox", findings=["f-1"]),
                 _case("glare-initial", "unsupported", pol="aiortc"), _case("glare-initial", "passed", pol="firefox"))
    by = {_props(t)["case_id"]: t for t in root.iter("testcase")}
    failed = by["glare-initial[chromium_147-polite--firefox-impolite]"].find("failure")
    assert failed.get("type") == "failed" and failed.get("message") == "failed: " + REASON.splitlines()[0]
    assert "more detail" in failed.text and "cause: at step '3. collide'" in failed.text
    assert "failed checks: polite.stable" in failed.text and "case page: cases/" in failed.text
    assert "replay (in the report folder): rig matrix --plan cases/" in failed.text
    assert by["add-video[chromium_147-polite--firefox-impolite]"].find("error").get("type") == "error"
    xpassed = by["add-video[firefox-polite--firefox-impolite]"].find("failure")
    assert xpassed.get("message") == "xpassed: expected finding f-1, but the case passed"
    assert by["glare-initial[aiortc-polite--firefox-impolite]"].find("skipped").get("type") == "unsupported"
    assert len(by["glare-initial[firefox-polite--firefox-impolite]"]) == 1, "a pass has its properties only"
    counts = {s.get("name"): (s.get("failures"), s.get("errors"), s.get("skipped")) for s in root.iter("testsuite")}
    assert counts == {"glare-initial": ("1", "0", "1"), "add-video": ("1", "1", "0")}


def test_text_a_peer_sent_cannot_break_the_file(tmp_path):
    reason = "InvalidStateError: \x00\x1b[31m <b>&\"' ]]> \ud800 " + "x" * 1000
    path = junit.write(tmp_path / "junit.xml", _run(_case("glare-initial", "failed", reason=reason)))
    failure = ET.parse(path).getroot().find("./testsuite/testcase/failure")
    assert "<b>&\"' ]]>" in failure.text and "\x00" not in failure.text
    assert len(failure.get("message")) <= junit.MESSAGE_CHARS and "\n" not in failure.get("message")
