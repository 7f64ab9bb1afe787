"""The index's matrix: pass rates over repeats, expected-failure notes, intermittent cells,
the filters' hooks and the mutant kill matrix. Synthetic runs, no browser (the browser
test of the same page is suites/system/test_report_browser.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from markupsafe import escape

from rig.report import INTERMITTENT_UNHIT, expectation_reason, write_report

FINDING = "aiortc 1.16.0 has no rollback <evil>"
OTHER = "aiortc 1.16.0 has no restartIce()"


def _case(scenario: str, polite: str, impolite: str, outcome: str = "passed", *, repeat: int = 0,
          expected: str = "pass", reason: str = "") -> dict:
    pair = f"{polite}-polite--{impolite}-impolite"
    return {
        "id": f"{scenario}[{pair}-r{repeat}]", "slug": f"{scenario}_{pair}-r{repeat}", "scenario": scenario,
        "polite": {"spec": polite, "kind": polite, "version": "1"},
        "impolite": {"spec": impolite, "kind": impolite, "version": "2"},
        "repeat": repeat, "outcome": outcome, "expected": expected, "duration_s": 1.0, "reason": reason,
        "glare": {"forced": False, "observed": False},
    }


def _cell(html: str, key: str) -> str:
    m = re.search(rf'<td [^>]*data-cell="{re.escape(str(escape(key)))}"[^>]*>(.*?)</td>', html, re.S)
    assert m, f"no cell {key}"
    return m.group(0)


def _render(tmp_path, cases: list[dict], **extra) -> str:
    return write_report(tmp_path, {"cases": cases, **extra}).read_text(encoding="utf-8")


def test_a_cell_shows_its_pass_rate_over_repeats_coloured_by_the_worst_and_links_every_run(tmp_path):
    cases = [_case("add-video", "firefox", "aiortc", "failed" if r == 3 else "passed", repeat=r,
                   reason="boom" if r == 3 else "") for r in range(5)]
    html = _render(tmp_path, cases)
    cell = _cell(html, "add-video|firefox|aiortc")
    assert 'class="o-failed"' in cell and 'data-worst="failed"' in cell
    assert re.search(r'<a class="rate" href="cases/add-video_firefox-polite--aiortc-impolite-r3.html"[^>]*>4/5</a>', cell)
    assert 'data-outcomes="failed passed"' in cell
    for r in range(5):  # never collapsed into one tick
        assert f'href="cases/add-video_firefox-polite--aiortc-impolite-r{r}.html"' in cell
    assert "1 failed" in cell


def test_matrix_is_scenarios_by_pairs_and_empty_pairs_are_left_out(tmp_path):
    cases = [_case("add-video", "firefox", "aiortc"), _case("glare-initial", "aiortc", "firefox")]
    html = _render(tmp_path, cases, peers=["firefox", "aiortc"])
    heads = re.findall(r'<th class="pair" data-col="(\d+)" data-polite="(\w+)" data-impolite="(\w+)"', html)
    assert heads == [("0", "firefox", "aiortc"), ("1", "aiortc", "firefox")]
    assert re.findall(r'<tr id="row-([\w-]+)" data-scenario=', html) == ["add-video", "glare-initial"]
    assert html.count('class="empty"') == 2


def test_expected_failure_reasons_are_footnoted_once_and_in_the_tooltip(tmp_path):
    cases = [
        _case("glare-initial", "aiortc", "firefox", "xfailed", expected="xfail",
              reason=f"expected failure: {FINDING}\nobserved: stuck at step 2"),
        _case("glare-initial", "aiortc", "aiortc", "xfailed", expected="xfail",
              reason=f"expected failure: {FINDING} | {OTHER}\nobserved: stuck"),
        _case("glare-add-media", "aiortc", "firefox", "xpassed", expected="xfail",
              reason=f"passed although expected to fail ({FINDING}): remove the expectation"),
    ]
    html = _render(tmp_path, cases)
    notes = re.findall(r'<li id="note-(\d+)" value="\d+">(.*?)</li>', html)
    assert notes == [("1", str(escape(FINDING))), ("2", str(escape(OTHER)))]
    assert 'href="#note-1">[1]' in _cell(html, "glare-initial|aiortc|firefox")
    both = _cell(html, "glare-initial|aiortc|aiortc")
    assert 'href="#note-1">[1]' in both and 'href="#note-2">[2]' in both
    assert 'href="#note-1">[1]' in _cell(html, "glare-add-media|aiortc|firefox")
    assert f"[1] {escape(FINDING)}" in both  # tooltip
    assert "stuck at step 2" not in html.split('<ol class="notes')[1].split("</ol>")[0]


def test_intermittent_cells_are_marked_whether_or_not_they_hit_the_finding(tmp_path):
    hit = f"expected failure (intermittent): {FINDING}\nobserved: ValueError"
    cases = [_case("stress-both-sides", "firefox", "aiortc", "passed", expected="xfail or pass"),
             _case("stress-both-sides", "firefox", "firefox", "passed", repeat=0, expected="xfail or pass"),
             _case("stress-both-sides", "firefox", "firefox", "xfailed", repeat=1, expected="xfail or pass", reason=hit)]
    html = _render(tmp_path, cases)
    unhit = _cell(html, "stress-both-sides|firefox|aiortc")
    assert "intermittent" in unhit.split(">")[0] and 'data-intermittent="1"' in unhit and 'class="tilde"' in unhit
    assert 'class="o-passed intermittent"' in unhit
    assert str(escape(INTERMITTENT_UNHIT)) in html
    hit_cell = _cell(html, "stress-both-sides|firefox|firefox")
    assert 'class="o-xfailed intermittent"' in hit_cell and ">1/2</a>" in hit_cell
    assert "(intermittent finding)" in hit_cell
    def note(text: str) -> str:
        return re.search(rf'<li id="note-(\d+)" value="\d+">{re.escape(str(escape(text)))}</li>', html).group(1)
    assert f'href="#note-{note(FINDING)}"' in hit_cell and f'href="#note-{note(INTERMITTENT_UNHIT)}"' in unhit
    assert f'href="#note-{note(INTERMITTENT_UNHIT)}"' not in hit_cell  # a repeat recorded the finding itself


def test_expectation_reason_reads_what_the_plugin_wrote():
    assert expectation_reason({"reason": "expected failure: R (x)\nobserved: y"}) == "R (x)"
    assert expectation_reason({"reason": "expected failure (intermittent): R\nobserved: y"}) == "R"
    assert expectation_reason({"reason": "passed although expected to fail (R (1)): remove the expectation"}) == "R (1)"
    assert expectation_reason({"reason": "failed, but not with an expected finding (/x/):\nboom"}) == ""
    assert expectation_reason({}) == ""


def test_filters_have_every_kind_scenario_and_outcome_and_the_script_is_admitted_by_its_hash(tmp_path):
    cases = [_case("add-video", "firefox", "aiortc"), _case("glare-initial", "chromium", "firefox", "error")]
    html = _render(tmp_path, cases)
    form = html[html.index('<form id="filters"'):html.index("</form>")]
    assert " hidden>" in form.split("\n")[0]  # shown by the script, so no dead controls without it
    for name in ("peer", "polite", "impolite"):
        assert re.search(rf'<select name="{name}"><option value="">any</option><option>aiortc</option>'
                         r"<option>chromium</option><option>firefox</option></select>", form)
    assert "<option>add-video</option><option>glare-initial</option>" in form
    for outcome in ("passed", "failed", "error", "xfailed", "xpassed"):
        assert f'name="outcome" value="{outcome}" checked' in form
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html
    rows = re.findall(r'<tr data-scenario="([\w-]+)" data-polite="(\w+)" data-impolite="(\w+)" data-outcome="(\w+)"',
                      html)
    assert ("glare-initial", "chromium", "firefox", "error") in rows  # the case lists carry the same keys


def test_mutant_kill_matrix_is_linked_and_summarised_when_the_folder_has_one(tmp_path):
    cases = [_case("add-video", "firefox", "firefox")]
    assert "mutants.html" not in _render(tmp_path, cases)
    (tmp_path / "mutants.json").write_text(json.dumps({"scenarios": ["add-video"], "survivors": ["lazy"], "mutants": [
        {"mutant": "sld-not-awaited", "breaks": "no await", "cells": {"add-video": {"killed": True}}},
        {"mutant": "lazy", "breaks": "nothing <b>", "cells": {"add-video": {"killed": False}}}]}))
    (tmp_path / "mutants.html").write_text("<p>kill matrix</p>")
    html = _render(tmp_path, cases, links=[{"href": "mutants.html", "text": "mutant kill matrix"}])
    assert html.count('href="mutants.html"') == 2  # the header link (not doubled) and the section's
    assert "2 mutants, 1 killed" in html and "survivors: lazy" in html
    assert "nothing &lt;b&gt;" in html and "SURVIVED" in html
    (tmp_path / "mutants.json").write_text("{not json")
    assert "Mutant kill matrix" not in _render(tmp_path, cases)
