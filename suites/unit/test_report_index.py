"""The index's matrix: pass rates over repeats, finding notes, intermittent cells,
the filters' hooks and the mutant kill matrix. Synthetic runs, no browser (the browser
test of the same page is suites/system/test_report_browser.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from markupsafe import escape

from rig import findings, results
from rig.model import OUTCOMES
from rig.report import INTERMITTENT_UNHIT, finding_note, write_report

FINDING = "aiortc-no-rollback"
#: one cell, two findings (whichever comes first): each run names the one it hit
RESTART, CANDIDATES = "firefox-restart-answer-setup-active", "pattern-late-ignored-candidates"
#: a finding this rig does not know (a report of another version's run): shown as its bare id, escaped
UNKNOWN = "a-finding-of-another-version <evil>"


def _case(scenario: str, polite: str, impolite: str, outcome: str = "passed", *, repeat: int = 0,
          expected: str = "pass", reason: str = "", finding: str | None = None,
          findings_: tuple[str, ...] = ()) -> dict:
    pair = f"{polite}-polite--{impolite}-impolite"
    return {
        "id": f"{scenario}[{pair}-r{repeat}]", "slug": f"{scenario}_{pair}-r{repeat}", "scenario": scenario,
        "polite": {"spec": polite, "kind": polite, "version": "1"},
        "impolite": {"spec": impolite, "kind": impolite, "version": "1"},
        "repeat": repeat, "outcome": outcome, "expected": expected, "duration_s": 1.0, "reason": reason,
        "finding": finding, "findings": list(findings_ or ([finding] if finding else [])),
        "glare": {"forced": False, "observed": False},
    }


def _cell(html: str, key: str) -> str:
    m = re.search(rf'<td [^>]*data-cell="{re.escape(str(escape(key)))}"[^>]*>(.*?)</td>', html, re.S)
    assert m, f"no cell {key}"
    return m.group(0)


def _render(tmp_path, cases: list[dict], **extra) -> str:
    """The index of a run of ``cases``, its findings recorded as rig.results records them."""
    named = {f for c in cases for f in (c.get("finding"), *c.get("findings", ())) if f}
    run = {"cases": cases, "findings": [f.model_dump() for f in results.finding_infos(named)], **extra}
    return write_report(tmp_path, run).read_text(encoding="utf-8")


#: every finding of the catalogue as a run records it
KNOWN = {f.id: f for f in results.finding_infos(set(findings.BY_ID))}


def _note(fid: str) -> str:
    return finding_note(fid, KNOWN)


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


def _notes(html: str) -> dict[str, str]:
    """note text (as rendered) -> its number: one entry per finding under the matrix."""
    notes = re.findall(r'<li id="note-(\d+)" value="\d+" data-finding="[^"]*">.*?<p class="note-text">(.*?)</p>',
                       html, re.S)
    texts = [text for _, text in notes]
    assert len(texts) == len(set(texts)), f"a note is listed twice: {texts}"
    return {text: n for n, text in notes}


def test_expected_failures_footnote_the_finding_that_explained_them_once_and_in_the_tooltip(tmp_path):
    cases = [
        _case("glare-initial", "aiortc", "firefox", "xfailed", expected="xfail", finding=FINDING,
              reason=f"finding {FINDING}: aiortc has no rollback\nfirst failure: stuck at step 2"),
        _case("glare-initial", "aiortc", "aiortc", "xfailed", expected="xfail", finding=FINDING),
        _case("glare-ice-restart", "chromium", "firefox", "xfailed", repeat=0, expected="xfail", finding=RESTART,
              findings_=(RESTART, CANDIDATES)),
        _case("glare-ice-restart", "chromium", "firefox", "xfailed", repeat=1, expected="xfail", finding=CANDIDATES,
              findings_=(RESTART, CANDIDATES)),
        _case("glare-add-media", "aiortc", "firefox", "xpassed", expected="xfail", findings_=(FINDING,),
              reason=f"passed although finding {FINDING} expects this cell to fail: narrow or remove the finding"),
        _case("add-video", "aiortc", "firefox", "xfailed", expected="xfail", finding=UNKNOWN),
    ]
    assert {FINDING, RESTART, CANDIDATES} <= set(findings.BY_ID), "known findings are footnoted with their text"
    html = _render(tmp_path, cases)
    notes = _notes(html)
    assert sorted(notes) == sorted(str(escape(_note(f))) for f in (FINDING, RESTART, CANDIDATES, UNKNOWN))
    assert sorted(notes.values(), key=int) == ["1", "2", "3", "4"]
    known = findings.BY_ID[FINDING]
    assert _note(FINDING) == f"{FINDING}: {known.title}. {known.detail}"  # id, title, evidence
    assert _note(UNKNOWN) == UNKNOWN and UNKNOWN not in html and str(escape(UNKNOWN)) in html

    def mark(fid: str) -> str:
        n = notes[str(escape(_note(fid)))]
        return f'href="#note-{n}">[{n}]'
    assert mark(FINDING) in _cell(html, "glare-initial|aiortc|firefox")
    assert mark(FINDING) in _cell(html, "glare-initial|aiortc|aiortc")  # the same finding: the same note
    both = _cell(html, "glare-ice-restart|chromium|firefox")
    assert mark(RESTART) in both and mark(CANDIDATES) in both and mark(FINDING) not in both
    assert mark(FINDING) in _cell(html, "glare-add-media|aiortc|firefox")  # xpassed: the finding to narrow
    assert mark(UNKNOWN) in _cell(html, "add-video|aiortc|firefox")
    n = notes[str(escape(_note(RESTART)))]
    assert f"[{n}] {escape(_note(RESTART))}" in both  # tooltip
    assert "stuck at step 2" not in html.split('<ol class="notes')[1].split("</ol>")[0]


def test_intermittent_cells_are_marked_whether_or_not_they_hit_the_finding(tmp_path):
    unhit_finding = "aiortc-answer-with-pending-transceiver"  # intermittent on stress-both-sides x aiortc
    hit_finding = "firefox-rolled-back-sockets"  # intermittent on glare-candidate-answer, Firefox polite
    assert {unhit_finding, hit_finding} <= set(findings.BY_ID)
    cases = [_case("stress-both-sides", "firefox", "aiortc", "passed", expected="xfail or pass",
                   findings_=(unhit_finding,)),
             _case("glare-candidate-answer", "firefox", "firefox", "passed", repeat=0, expected="xfail or pass",
                   findings_=(hit_finding,)),
             _case("glare-candidate-answer", "firefox", "firefox", "xfailed", repeat=1, expected="xfail or pass",
                   finding=hit_finding, reason=f"finding {hit_finding}: ...\nfirst failure: stuck in settle")]
    html = _render(tmp_path, cases)
    unhit = _cell(html, "stress-both-sides|firefox|aiortc")
    assert "intermittent" in unhit.split(">")[0] and 'data-intermittent="1"' in unhit and 'class="tilde"' in unhit
    assert 'class="o-passed intermittent"' in unhit
    assert ">hit 0/1</span>" in unhit
    unhit_note = INTERMITTENT_UNHIT.format(id=unhit_finding, title=findings.BY_ID[unhit_finding].title)
    assert unhit_finding in unhit_note and findings.BY_ID[unhit_finding].title in unhit_note
    assert str(escape(unhit_note)) in unhit  # said in the tooltip; the footnote is the finding's own
    notes = _notes(html)
    assert str(escape(unhit_note)) not in notes
    hit_cell = _cell(html, "glare-candidate-answer|firefox|firefox")
    assert 'class="o-xfailed intermittent"' in hit_cell and ">1/2</a>" in hit_cell
    assert "(intermittent finding)" in hit_cell and ">hit 1/2</span>" in hit_cell
    assert "intermittent finding hit in 1 of 2 run(s)" in hit_cell  # tooltip

    def note(text: str) -> str:
        return notes[str(escape(text))]
    assert f'href="#note-{note(_note(hit_finding))}"' in hit_cell
    assert f'href="#note-{note(_note(unhit_finding))}"' in unhit
    # a repeat hit the finding, so the passing repeat adds no "not hit" line
    hit_unhit_note = INTERMITTENT_UNHIT.format(id=hit_finding, title=findings.BY_ID[hit_finding].title)
    assert str(escape(hit_unhit_note)) not in html
    assert len(notes) == 2
    # each finding's entry says how many of the runs that could hit it did
    assert re.search(rf'data-finding="{hit_finding}">.*?hit in 1 of 2 run\(s\), 1 cell\(s\)', html, re.S)
    assert re.search(rf'data-finding="{unhit_finding}">.*?hit in 0 of 1 run\(s\), 1 cell\(s\)', html, re.S)


def test_notes_come_from_the_finding_ids_not_from_the_reason_text(tmp_path):
    # a reason that reads like an old expected failure names no finding: no note
    cases = [_case("add-video", "firefox", "firefox", "failed", reason="expected failure: R (x)\nobserved: y"),
             _case("add-video", "firefox", "aiortc", "xfailed", expected="xfail", finding=FINDING,
                   reason="whatever the text says")]
    html = _render(tmp_path, cases)
    notes = _notes(html)
    assert list(notes) == [str(escape(_note(FINDING)))]
    assert "href=\"#note-" not in _cell(html, "add-video|firefox|firefox")
    assert "R (x)" not in html.split('<ol class="notes')[1].split("</ol>")[0]


def test_filters_have_every_kind_scenario_and_outcome_and_the_script_is_admitted_by_its_hash(tmp_path):
    cases = [_case("add-video", "firefox", "aiortc"), _case("glare-initial", "chromium", "firefox", "error")]
    html = _render(tmp_path, cases)
    form = html[html.index('<form id="filters"'):html.index("</form>")]
    assert " hidden>" in form.split("\n")[0]  # shown by the script, so no dead controls without it
    for name in ("peer", "polite", "impolite"):
        assert re.search(rf'<select name="{name}"><option value="">any</option><option>aiortc</option>'
                         r"<option>chromium</option><option>firefox</option></select>", form)
    assert "<option>add-video</option><option>glare-initial</option>" in form
    for outcome in OUTCOMES:  # passed, failed, error, xfailed, xpassed, unsupported
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


def _vcase(scenario: str, polite: tuple[str, str], impolite: tuple[str, str], outcome: str = "passed",
           **extra) -> dict:
    (ps, pv), (is_, iv) = polite, impolite
    pair = f"{ps}-polite--{is_}-impolite".replace("@", "_")
    return {"id": f"{scenario}[{pair}]", "slug": f"{scenario}_{pair}", "scenario": scenario,
            "polite": {"spec": ps, "kind": ps.partition("@")[0], "version": pv},
            "impolite": {"spec": is_, "kind": is_.partition("@")[0], "version": iv, "driver": "playwright 1.55.0"},
            "repeat": 0, "outcome": outcome, "expected": "pass", "duration_s": 1.0, "glare": {}, **extra}


def test_a_version_matrix_groups_columns_by_kind_and_version_and_has_a_view_per_scenario(tmp_path):
    c156, c147, c110 = ("chromium", "156.0.8078.114"), ("chromium@147", "147.0.7727.0"), ("chromium@110", "110.0.5478.0")
    f140 = ("firefox@140", "140.12.0")
    cases = [_vcase("glare-initial", p, f140, "failed" if p is c156 else "passed") for p in (c156, c147, c110)]
    cases.append(_vcase("glare-initial", c147, f140, "passed", not_seen=[FINDING],
                        reason=f"finding {FINDING} not seen on chromium 147.0.7727.0") | {"scenario": "add-video"})
    html = _render(tmp_path, cases, peers=["chromium", "chromium@147", "firefox@140", "chromium@110"])
    heads = re.findall(r'<th class="pair" data-col[^>]*>(.*?)</th>', html, re.S)
    # the run named chromium first, then 147 ... but columns go by kind, then by version
    assert [re.sub(r"<.*", "", h) for h in heads] == ["chromium@110", "chromium@147", "chromium"]
    assert "140.12.0" in heads[0] and "110.0.5478.0" in heads[0]
    assert 'id="versions"' in html
    view = re.search(r'<table class="matrix byver" data-scenario="glare-initial">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r"<tr><th[^>]*>(.*?)</th>(.*?)</tr>", view.split("<tbody>")[1], re.S)
    assert [re.sub(r"<[^>]+>", "", r[0]).split() for r in rows] == [
        ["chromium", "110.0.5478.0"], ["chromium", "147.0.7727.0"], ["chromium", "156.0.8078.114"]]
    assert ["o-passed", "o-passed", "o-failed"] == [re.search(r'class="(o-\w+)', r[1]).group(1) for r in rows]
    assert "driven by playwright 1.55.0" in view
    # a pass on a version the finding was never seen on is said in its tooltip, not footnoted
    passing = _cell(html, "add-video|chromium@147|firefox@140")
    assert f"finding {FINDING} not seen on chromium 147.0.7727.0" in passing and "#note-" not in passing


def test_a_run_of_one_version_per_kind_has_no_version_view(tmp_path):
    html = _render(tmp_path, [_case("add-video", "firefox", "aiortc")])
    assert 'id="versions"' not in html


def test_finding_titles_come_from_the_runs_own_record(tmp_path):
    # the run recorded the finding as it was when the run was judged: the index writes that,
    # whatever this rig's catalogue says now
    cases = [_case("add-video", "firefox", "aiortc", "xfailed", expected="xfail", finding=FINDING)]
    recorded = [{"id": FINDING, "title": "as the run saw it", "detail": "then"}]
    notes = _notes(_render(tmp_path, cases, findings=recorded))
    assert list(notes) == [f"{FINDING}: as the run saw it. then"]
    page = (tmp_path / "cases" / "add-video_firefox-polite--aiortc-impolite-r0.html").read_text(encoding="utf-8")
    assert f"<code>{FINDING}</code>: as the run saw it" in page
