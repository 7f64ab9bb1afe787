"""The HTML report, rendered from a synthetic run: no browser, no network.

The report is the only thing most people look at after a CI run, so these tests pin
what they rely on: every case reachable from the index, hostile text escaped, and a
missing or odd input rendered rather than crashing the run's last step.
"""

from __future__ import annotations

import json
import re

import pytest
from markupsafe import escape

from rig.report import load_run, write_report

EVIL = "<script>alert(1)</script>"
XFAIL_REASON = "firefox <153> never rolls back\nsee bug 1234 & co"
FAIL_REASON = f"timed out waiting for stable\nerror text: {EVIL}"
#: Names a detail file that is never written; another case names none at all.
MISSING_DETAIL = "initial-datachannel__firefox-polite--firefox-impolite__r0"


def _case(scenario, polite, impolite, outcome="passed", *, repeat=0, expected="pass", reason="",
          glare=False, details=True):
    pair = f"{polite}-polite--{impolite}-impolite"
    case_id = f"{scenario}[{pair}]" + (f"-r{repeat}" if repeat else "")
    slug = f"{scenario}__{pair}__r{repeat}"
    case = {
        "id": case_id,
        "slug": slug,
        "scenario": scenario,
        "polite": {"spec": polite, "kind": polite, "version": f"{polite}-v1", "user_id": 202},
        "impolite": {"spec": impolite, "kind": impolite, "version": f"{impolite}-v1", "user_id": 101},
        "repeat": repeat,
        "outcome": outcome,
        "expected": expected,
        "duration_s": 1.5 + repeat,
        "glare": {"forced": glare, "observed": glare, "polite_rolled_back": glare,
                  "impolite_ignored_offer": glare, "polite_reoffered": glare,
                  "collisions": int(glare), "planned": int(glare)},
        "reason": reason,
    }
    if details:
        case["details"] = f"cases/{slug}.json"
    return case


def _detail(case):
    failing = case["outcome"] in ("failed", "error")
    return {
        "schema_version": 2,
        "case": case,
        "plan": ["join both", "hold offers polite->impolite and impolite->polite", "release"],
        "messages": [
            {"seq": 1, "t": 0.123, "from": "polite", "to": "impolite", "kind": "offer", "size": 1234,
             "held": True, "released_t": 0.51, "delivered_t": 0.52, "note": "a=<sdp-line>"},
            {"seq": 2, "t": 0.2, "from": "impolite", "to": "polite", "kind": "error", "size": 10,
             "held": False, "released_t": None, "delivered_t": 0.21, "note": ""},
        ],
        "events": {
            "polite": [
                {"t": 0.30, "type": "rollback", "detail": {}},
                {"t": 0.10, "type": "signalingstatechange", "detail": {"state": "have-local-offer"}},
            ],
            "impolite": [
                {"t": 0.20, "type": "offer-ignored", "detail": {}},
                {"t": 0.40, "type": "error", "detail": {"message": EVIL}},
            ],
        },
        "snapshots": {"polite": {"signalingState": "stable", "sdp": "v=0 <evil>"}, "impolite": {"x": [1, 2]}},
        "checks": [
            {"id": "polite.stable", "name": "polite ends stable", "ok": True, "detail": "signalingState=stable"},
            {"id": "channels", "name": "channel open both ways", "ok": not failing,
             "detail": "closed" if failing else "open"},
        ],
    }


@pytest.fixture
def run():
    cases = []
    for scenario, glare in (("initial-datachannel", False), ("glare-add-media", True)):
        for polite in ("chromium", "firefox"):
            for impolite in ("chromium", "firefox"):
                outcome, expected, reason = "passed", "pass", ""
                if (scenario, polite, impolite) == ("glare-add-media", "chromium", "firefox"):
                    outcome, reason = "failed", FAIL_REASON
                if (scenario, polite, impolite) == ("glare-add-media", "firefox", "firefox"):
                    outcome, expected, reason = "xfailed", "xfail", XFAIL_REASON
                no_details = (scenario, polite, impolite) == ("initial-datachannel", "firefox", "chromium")
                cases.append(_case(scenario, polite, impolite, outcome, expected=expected,
                                   reason=reason, glare=glare, details=not no_details))
    # A repeat group: the same pair and scenario twice more, one of them failing.
    cases.append(_case("initial-datachannel", "chromium", "chromium", "passed", repeat=1))
    cases.append(_case("initial-datachannel", "chromium", "chromium", "error", repeat=2, reason="boom"))
    return {
        "rig_version": "0.1.0",
        "started": "2026-11-25T18:40:00Z",
        "finished": "2026-11-25T18:42:03Z",
        "duration_s": 123.4,
        "command": "rig matrix --peers chromium,firefox",
        "repeat": 1,
        "versions": {"chromium": "156.0.8078.108", "firefox": "153.7.0esr", "aiortc": "unavailable: not installed",
                     "playwright": "1.64.1", "python": "3.11.7"},
        "peers": ["chromium", "firefox"],
        "scenarios": [
            {"name": "initial-datachannel", "description": "one side opens a data channel"},
            {"name": "glare-add-media", "description": f"both add media at once {EVIL}"},
        ],
        "summary": {"passed": 7, "failed": 1, "error": 1, "xfailed": 1, "xpassed": 0},
        "cases": cases,
    }


def _write(tmp_path, run):
    (tmp_path / "cases").mkdir()
    for case in run["cases"]:
        if "details" in case and case["slug"] != MISSING_DETAIL:
            (tmp_path / case["details"]).write_text(json.dumps(_detail(case)), encoding="utf-8")
    (tmp_path / "results.json").write_text(json.dumps(run), encoding="utf-8")
    return write_report(tmp_path, load_run(tmp_path))


def test_index_lists_every_case_with_counts_and_versions(tmp_path, run):
    index = _write(tmp_path, run)
    assert index == tmp_path / "index.html"
    html = index.read_text(encoding="utf-8")

    for case in run["cases"]:
        assert f'href="cases/{case["slug"]}.html"' in html
    for outcome, n in run["summary"].items():
        assert re.search(rf'id="count-{outcome}">{n}<', html)
    for version in ("156.0.8078.108", "153.7.0esr", "unavailable: not installed", "1.64.1", "3.11.7"):
        assert version in html
    assert "rig matrix --peers chromium,firefox" in html
    assert "2026-11-25T18:40:00Z" in html
    assert "scenario ↓ / polite → impolite" in html
    assert ">2/3</a>" in html  # the repeat group: its pass rate, one link per run
    assert "⚡ forced+observed" in html


def test_hostile_text_is_escaped_everywhere(tmp_path, run):
    _write(tmp_path, run)
    pages = [tmp_path / "index.html", *sorted((tmp_path / "cases").glob("*.html"))]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        if page.name == "index.html":  # its one script is the filters, admitted by hash
            assert html.count("<script") == 1 and "alert(1)" not in html.split("<script>")[1], page.name
        else:
            assert "<script" not in html, page.name
        assert "<evil>" not in html and "<sdp-line>" not in html, page.name
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert str(escape(XFAIL_REASON)) in index  # expected-failure reason shown inline


def test_report_is_self_contained(tmp_path, run):
    _write(tmp_path, run)
    for page in [tmp_path / "index.html", *(tmp_path / "cases").glob("*.html")]:
        html = page.read_text(encoding="utf-8")
        assert "<link" not in html and " src=" not in html
        assert not re.search(r'href="(https?:)?//', html)


def test_each_case_page_shows_reason_checks_and_log(tmp_path, run):
    _write(tmp_path, run)
    for case in run["cases"]:
        page = tmp_path / "cases" / f"{case['slug']}.html"
        assert page.exists()
        html = page.read_text(encoding="utf-8")
        assert 'href="../index.html"' in html
        assert str(escape(case["id"])) in html
        if case["reason"]:
            assert str(escape(case["reason"])) in html
        if case["slug"] == MISSING_DETAIL:
            assert "not found" in html  # detail file recorded but absent
            continue
        if "details" not in case:
            assert "No detail file" in html
            continue
        assert "polite ends stable" in html and "channel open both ways" in html
        assert 'class="held-mark">held<' in html
        assert "hold offers polite-&gt;impolite" in html
        assert "<details>" in html
        # The merged timeline is in time order whatever order each peer logged in.
        timeline = html[html.index('<table class="timeline">'):]
        order = [timeline.index(s) for s in ("have-local-offer", "offer-ignored", ">rollback<", "&lt;script&gt;alert")]
        assert order == sorted(order)


def test_failed_check_is_highlighted(tmp_path, run):
    _write(tmp_path, run)
    failed = tmp_path / "cases" / "glare-add-media__chromium-polite--firefox-impolite__r0.html"
    html = failed.read_text(encoding="utf-8")
    assert re.search(r'<tr class="bad"><td>✘</td><td>channel open both ways</td>', html)
    passed = tmp_path / "cases" / "glare-add-media__chromium-polite--chromium-impolite__r0.html"
    passed_html = passed.read_text(encoding="utf-8")
    assert 'class="bad"' not in passed_html
    # the glare counts are numbers, not flags (a 0 must not read as a failed proof)
    assert "<tr><th>collisions</th><td>1</td></tr>" in passed_html
    assert "<tr><th>planned</th><td>1</td></tr>" in passed_html
    no_glare = tmp_path / "cases" / "initial-datachannel__chromium-polite--firefox-impolite__r0.html"
    assert "<tr><th>planned</th><td>0</td></tr>" in no_glare.read_text(encoding="utf-8")


def _sparse(cid: str, **kw) -> dict:
    """A case with only the fields its record requires, each as empty as the record allows."""
    nobody = {"spec": "", "kind": ""}
    return {"id": cid, "slug": "", "scenario": "", "outcome": "passed", "polite": nobody, "impolite": nobody, **kw}


def test_sparse_and_odd_input_still_renders(tmp_path):
    # the report reads the run's record: a value the record cannot hold is refused, naming the field
    with pytest.raises(ValueError, match="outcome"):
        write_report(tmp_path, {"cases": [_sparse("odd", outcome="weird")]})
    run = {"cases": [
        _sparse("bare"),
        _sparse("sneaky", slug="../../escape", outcome="failed", details="cases/nope.json",
                polite={"spec": "aiortc", "kind": ""}),
    ]}
    (tmp_path / "cases").mkdir(exist_ok=True)
    (tmp_path / "cases" / "nope.json").write_text("[1, 2]", encoding="utf-8")
    html = write_report(tmp_path, run).read_text(encoding="utf-8")
    pages = sorted(p.name for p in (tmp_path / "cases").glob("*.html"))
    assert pages == ["_.._escape.html", "bare.html"]
    assert not (tmp_path.parent / "escape.html").exists()
    assert 'href="cases/bare.html"' in html and 'href="cases/_.._escape.html"' in html
    assert "does not hold a JSON object" in (tmp_path / "cases" / "_.._escape.html").read_text(encoding="utf-8")


def test_duplicate_slugs_get_distinct_pages(tmp_path):
    run = {"cases": [_sparse("a", slug="same"), _sparse("b", slug="same")]}
    html = write_report(tmp_path, run).read_text(encoding="utf-8")
    assert 'href="cases/same.html"' in html and 'href="cases/same-2.html"' in html
