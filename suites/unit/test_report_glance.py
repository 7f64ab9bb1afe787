"""The index answers at a glance (issue 24): unexpected outcomes first, expected failures one
entry per finding, unsupported cells collapsed, no notes on passing cells, filters kept in the
URL query, versions once per engine. A small synthetic run, no browser (the browser checks the
same page in suites/system/test_report_browser.py)."""

from __future__ import annotations

import re

import pytest

from rig import results
from rig.report import write_report

NO_ROLLBACK, EXTMAP = "aiortc-no-rollback", "chromium-rollback-extmap"
VERSIONS = {"chromium": "1.0", "aiortc": "2.0"}


def _case(scenario: str, polite: str, impolite: str, outcome: str, *, finding: str = "", reason: str = "",
          expected: str = "pass", findings: tuple[str, ...] = (), not_seen: tuple[str, ...] = ()) -> dict:
    pair = f"{polite}-polite--{impolite}-impolite"
    return {"id": f"{scenario}[{pair}]", "slug": f"{scenario}_{pair}", "scenario": scenario,
            "polite": {"spec": polite, "kind": polite, "version": VERSIONS[polite]},
            "impolite": {"spec": impolite, "kind": impolite, "version": VERSIONS[impolite]},
            "outcome": outcome, "expected": expected, "finding": finding or None, "reason": reason,
            "findings": list(findings or ([finding] if finding else [])), "not_seen": list(not_seen),
            "duration_s": 1.0, "glare": {"forced": False, "observed": False}}


CASES = [
    _case("glare-initial", "aiortc", "aiortc", "xfailed", expected="xfail", finding=NO_ROLLBACK, reason="r1"),
    _case("glare-initial", "aiortc", "chromium", "xfailed", expected="xfail", finding=NO_ROLLBACK, reason="r2"),
    _case("glare-repeated", "aiortc", "chromium", "xfailed", expected="xfail", finding=NO_ROLLBACK, reason="r3"),
    _case("glare-initial", "chromium", "aiortc", "xfailed", expected="xfail", finding=EXTMAP, reason="r4"),
    _case("glare-repeated", "chromium", "aiortc", "failed", reason="stuck in settle <b>"),
    _case("glare-repeated", "aiortc", "aiortc", "unsupported", expected="xfail", findings=(NO_ROLLBACK,),
          reason="the polite peer (aiortc) lacks trickle"),
    _case("glare-initial", "chromium", "chromium", "passed", not_seen=(EXTMAP,),
          reason=f"finding {EXTMAP} not seen on chromium 1.0"),
    _case("glare-repeated", "chromium", "chromium", "passed"),
]


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("glance")
    run = {"cases": CASES, "versions": VERSIONS,
           "findings": [f.model_dump() for f in results.finding_infos({NO_ROLLBACK, EXTMAP})]}
    return write_report(out, run).read_text(encoding="utf-8")


def _td(html: str, key: str) -> str:
    m = re.search(rf'<td [^>]*data-cell="{re.escape(key)}"[^>]*>.*?</td>', html, re.S)
    assert m, key
    return m.group(0)


def test_unexpected_outcomes_come_first_with_their_reasons(html):
    assert html.index('id="unexpected"') < html.index('id="matrix"') < html.index('id="findings"')
    unexpected = html[html.index('<table class="unexpected cases">'):]
    unexpected = unexpected[:unexpected.index("</table>")]
    assert "glare-repeated[chromium-polite--aiortc-impolite]" in unexpected and "stuck in settle &lt;b&gt;" in unexpected
    assert "xfailed" not in unexpected and "unsupported" not in unexpected  # explained: not news


def test_expected_failures_are_one_entry_per_finding_with_its_cells_and_hit_rate(html):
    entries = re.findall(r'<li id="note-(\d+)" value="\d+" data-finding="([^"]+)">(.*?)</li>', html, re.S)
    assert sorted(fid for _, fid, _ in entries) == sorted([NO_ROLLBACK, EXTMAP])  # each once
    entry = {fid: (n, body) for n, fid, body in entries}
    n, body = entry[NO_ROLLBACK]
    # three runs hit it; the unsupported cell was never attempted, so it is not a run that could
    assert "hit in 3 of 3 run(s), 3 cell(s)" in body
    assert len(re.findall(r'<a class="o-xfailed" href="cases/', body)) == 3
    assert '<a class="upstream" href="https://github.com/aiortc/aiortc/issues/975">' in body
    # one footnote for the finding, whichever cell it explains
    for key in ("glare-initial|aiortc|aiortc", "glare-initial|aiortc|chromium", "glare-repeated|aiortc|chromium"):
        assert re.findall(r'href="#note-(\d+)"', _td(html, key)) == [n]
    assert "https://issues.webrtc.org/issues/503013383" in entry[EXTMAP][1]


def test_unsupported_cells_are_collapsed_with_every_reason(html):
    m = re.search(r'<details id="unsupported">(.*?)</details>', html, re.S)
    assert m, "unsupported cells are not in a collapsed <details>"
    assert "Unsupported (1 cell(s))" in m.group(1) and "the polite peer (aiortc) lacks trickle" in m.group(1)
    assert 'href="cases/glare-repeated_aiortc-polite--aiortc-impolite.html"' in m.group(1)
    assert "#note-" not in _td(html, "glare-repeated|aiortc|aiortc")  # a tooltip, no footnote
    assert "lacks trickle" in _td(html, "glare-repeated|aiortc|aiortc")


def test_passing_cells_carry_no_notes(html):
    passing = _td(html, "glare-initial|chromium|chromium")
    assert "#note-" not in passing and "not seen on chromium 1.0" in passing  # said in its tooltip only
    footnotes = html[html.index('id="findings"'):html.index("</ol>", html.index('id="findings"'))]
    assert "not seen on" not in footnotes


def test_filters_and_view_are_kept_in_the_url_query(html):
    script = html[html.index("<script>"):]
    assert "new URLSearchParams(window.location.search)" in script  # read on load
    assert "history.replaceState(" in script  # written back as the filters change
    for name in ("peer", "polite", "impolite", "scenario", "outcome", "intermittent", "view"):
        assert f'"{name}"' in script, name


def test_versions_once_per_engine_not_per_column(html):
    heads = re.findall(r'<th class="pair" data-col[^>]*>(.*?)</th>', html, re.S)
    assert heads and not any("1.0" in h or "2.0" in h for h in heads)
    assert '<th title="polite chromium 1.0' not in html and 'title="polite chromium 1.0 → impolite' in html
    assert html.count("<tr><th>chromium</th><td>1.0</td></tr>") == 1
