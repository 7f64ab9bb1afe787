"""The case page's evidence sections (SDPs, transport stats, kept files): no browser, no network.

A hand-made detail carries every key the capture side writes; the tests pin what a reader of a
failing case relies on (the offer diff shows the m-line that appeared, the selected pair's
numbers, a working link and command per kept file) and that a detail lacking those keys, or
holding nonsense in them, still renders, with hostile text escaped.
"""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest

from rig import model
from rig.report import case_page, write_report

EVIL = "<script>alert(1)</script>"
SLUG = "glare-add-media__chromium-polite--aiortc-impolite__r0"
AUDIO = ["m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendrecv", "a=rtpmap:111 opus/48000/2"]
VIDEO = ["m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=sendrecv", "a=rtpmap:96 VP8/90000"]


def _sdp(*sections: list[str], session: str = "o=- 1 2 IN IP4 127.0.0.1") -> str:
    lines = ["v=0", session, "s=-", "t=0 0"] + [line for section in sections for line in section]
    return "\r\n".join(lines) + "\r\n"


def _detail(**extra) -> dict:
    detail = {
        "schema_version": model.SCHEMA_VERSION,
        "case": {"id": SLUG, "slug": SLUG, "scenario": "glare-add-media", "outcome": "failed",
                 "polite": {"spec": "chromium", "kind": "chromium"}, "impolite": {"spec": "aiortc", "kind": "aiortc"}},
        "plan": ["join both"],
        "messages": [],
        "events": {"polite": [], "impolite": []},
        "snapshots": {"polite": {"signalingState": "stable"}, "impolite": {"signalingState": "stable"}},
        "checks": [{"id": "both-stable", "name": "both stable", "ok": False, "detail": "impolite have-remote-offer"}],
    }
    detail.update(extra)
    return detail


def _full_detail() -> dict:
    first, second = _sdp(AUDIO), _sdp(AUDIO, VIDEO, session="o=- 1 3 IN IP4 127.0.0.1")
    sdps = [
        # deliberately out of order: the page sorts by time
        {"role": "polite", "t": 0.90, "op": "local", "type": "offer", "sdp": second},
        {"role": "polite", "t": 0.10, "op": "local", "type": "offer", "sdp": first},
        {"role": "polite", "t": 0.40, "op": "local", "type": "rollback", "sdp": ""},
        {"role": "impolite", "t": 0.20, "op": "remote", "type": "offer", "sdp": first},
        {"role": "impolite", "t": 0.25, "op": "local", "type": "answer", "sdp": _sdp(AUDIO)},
        {"role": "impolite", "t": 0.95, "op": "remote", "type": "offer", "sdp": second + f"a=x-evil:{EVIL}\r\n"},
    ]
    stats = {
        "pair": {"local": {"type": "host", "protocol": "udp", "address": "192.0.2.7", "port": 50123},
                 "remote": {"type": "prflx", "protocol": "udp", "address": "fe80::1", "port": 40000},
                 "bytesSent": 123456, "bytesReceived": 654321, "currentRoundTripTime": 0.0125,
                 "state": "succeeded"},
        "inbound": [{"mid": "1", "kind": "video", "bytesReceived": 98765, "packetsReceived": 321,
                     "framesDecoded": 42}],
        "outbound": [{"mid": "0", "kind": "audio", "bytesSent": 4321, "packetsSent": 55}],
        "channels": [{"label": f"chat {EVIL}", "state": "open", "messagesSent": 3, "messagesReceived": 2,
                      "bytesSent": 30, "bytesReceived": 20}],
    }
    aiortc_stats = {"pair": None, "inbound": [], "outbound": [], "channels": [],
                    "note": f"aiortc exposes no candidate-pair stats {EVIL}"}
    evidence = {"kept": True, "dir": f"cases/{SLUG}/", "files": [
        {"name": "trace-polite.zip", "kind": "playwright-trace", "role": "polite", "bytes": 2048},
        {"name": "aiortc.log", "kind": "aiortc-log", "role": "", "bytes": 0},
        {"name": 'x"><script>.txt', "kind": "other", "role": "", "bytes": 1},
        {"name": "../up.txt", "kind": "other", "role": "", "bytes": 1},
    ]}
    return _detail(sdps=sdps, evidence=evidence, snapshots={
        "polite": {"signalingState": "stable", "stats": stats},
        "impolite": {"signalingState": "stable", "stats": aiortc_stats},
    })


def _render(tmp_path, detail, *, slug: str = SLUG, files: dict[str, str] | None = None) -> str:
    cases = tmp_path / "cases"
    cases.mkdir(exist_ok=True)
    (cases / f"{slug}.json").write_text(json.dumps(detail), encoding="utf-8")
    for name, text in (files or {}).items():
        (cases / slug).mkdir(exist_ok=True)
        (cases / slug / name).write_text(text, encoding="utf-8")
    run = {"cases": [{"id": slug, "slug": slug, "scenario": "glare-add-media", "outcome": "failed",
                      "polite": {"spec": "chromium", "kind": "chromium"}, "impolite": {"spec": "aiortc", "kind": "aiortc"},
                      "details": f"cases/{slug}.json"}]}
    write_report(tmp_path, run)
    return (cases / f"{slug}.html").read_text(encoding="utf-8")


def _section(html: str, heading_id: str) -> str:
    start = html.index(f'<h2 id="{heading_id}">')
    end = html.find("<h2", start + 1)
    return html[start:end if end > 0 else None]


LOG = "".join(f"aiortc line {n:03d}\n" for n in range(1, 101))


@pytest.fixture
def page(tmp_path):
    return _render(tmp_path, _full_detail(), files={"trace-polite.zip": "PK" + "x" * 2046, "aiortc.log": LOG})


def test_offer_diff_shows_the_added_m_line(page):
    sdps = _section(page, "sdps")
    assert "<h3>polite: 3 set</h3>" in sdps and "<h3>impolite: 3 set</h3>" in sdps
    # the polite peer's own offers: the first in full, the second as a diff adding the video section
    local = sdps[sdps.index("polite: offers it set locally"):]
    assert "offer #1 at 0.100 s, in full (audio)" in local
    assert '<span class="d-add">+m=video 9 UDP/TLS/RTP/SAVPF 96</span>' in local
    assert '<span class="d-del">-o=- 1 2 IN IP4 127.0.0.1</span>' in local
    assert '<span class="d-add">+o=- 1 3 IN IP4 127.0.0.1</span>' in local
    assert "m-lines audio → audio video" in local
    # the impolite peer's remote offers form their own chain
    remote = sdps[sdps.index("impolite: offers it set remotely"):]
    assert '<span class="d-add">+m=video 9 UDP/TLS/RTP/SAVPF 96</span>' in remote
    assert "+a=x-evil:&lt;script&gt;alert(1)&lt;/script&gt;" in remote
    # every description is listed in time order with op, type and size, its text collapsible
    rows = re.findall(r'<td class="num">(\d+)</td><td class="num">([\d.]+)</td><td>(\w+)</td><td>(\w+)</td>', sdps)
    assert rows[:3] == [("1", "0.100", "local", "offer"), ("2", "0.400", "local", "rollback"),
                        ("3", "0.900", "local", "offer")]
    assert "<details><summary>audio video · 12 lines</summary>" in sdps
    assert f"{len(_sdp(AUDIO))} B" in sdps


def test_identical_offers_say_so(tmp_path):
    sdp = _sdp(AUDIO)
    html = _render(tmp_path, _detail(sdps=[{"role": "polite", "t": t, "op": "local", "type": "offer", "sdp": sdp}
                                           for t in (0.1, 0.2)]))
    assert "offer #2 at 0.200 s: identical to the one before." in html


def test_stats_tables(page):
    stats = _section(page, "stats")
    assert "<td>host</td><td>udp</td><td><code>192.0.2.7:50123</code></td>" in stats
    assert "<td>prflx</td><td>udp</td><td><code>[fe80::1]:40000</code></td>" in stats
    assert "succeeded · sent" in stats and ">123456<" in stats and ">654321<" in stats
    assert "RTT 12.5 ms" in stats
    assert '<td>1</td><td>video</td><td class="num">98765</td><td class="num">321</td><td class="num">42</td>' in stats
    assert '<td>0</td><td>audio</td><td class="num">4321</td><td class="num">55</td>' in stats
    assert "<td>chat &lt;script&gt;alert(1)&lt;/script&gt;</td><td>open</td>" in stats
    # aiortc's side: no pair, and the note says why
    impolite = stats[stats.index("<h3>impolite</h3>"):]
    assert "No selected candidate pair." in impolite
    assert "aiortc exposes no candidate-pair stats &lt;script&gt;" in impolite


def test_evidence_links_sizes_trace_command_and_log_tail(page):
    evidence = _section(page, "evidence")
    assert f'<a href="{SLUG}/trace-polite.zip">trace-polite.zip</a>' in evidence
    assert "2.0 KiB" in evidence
    assert f"playwright show-trace cases/{SLUG}/trace-polite.zip" in evidence
    assert ".venv/bin/playwright" in evidence
    assert f'<a href="{SLUG}/aiortc.log">aiortc.log</a>' in evidence
    assert f'title="{len(LOG)} bytes">1.6 KiB<' in evidence  # the file the link serves, not the recorded 0
    tail = re.search(r'<pre class="log">(.*?)</pre>', evidence, re.S).group(1)
    assert tail.splitlines() == [f"aiortc line {n:03d}" for n in range(61, 101)]  # the last 40
    assert "tail only" in evidence
    # an odd but plain name is linked percent-encoded and shown escaped; a path is listed, not linked
    assert f'<a href="{SLUG}/x%22%3E%3Cscript%3E.txt">x&#34;&gt;&lt;script&gt;.txt</a>' in evidence
    assert "../up.txt <span" in evidence and "not a plain file name" in evidence
    assert 'href="../' not in evidence


def test_trace_command_from_the_checkout_when_the_report_is_in_it(tmp_path, monkeypatch):
    monkeypatch.setattr(case_page.config, "ROOT", tmp_path)
    out = tmp_path / "reports"
    out.mkdir()
    html = _render(out, _full_detail(), files={"trace-polite.zip": "PK"})
    assert f".venv/bin/playwright show-trace reports/cases/{SLUG}/trace-polite.zip" in html


def test_missing_file_is_marked_and_log_not_read(tmp_path):
    html = _render(tmp_path, _full_detail())
    evidence = _section(html, "evidence")
    assert evidence.count("not found next to this page") == 3
    assert '<pre class="log">' not in evidence


def test_missing_keys_render_with_one_line_each(tmp_path):
    html = _render(tmp_path, _detail())
    assert "evidence of passing cases is kept only with <code>--keep all</code>" in html
    assert "No session descriptions recorded." in html
    assert "No transport stats recorded." in html
    html = _render(tmp_path, _detail(evidence={"kept": False, "dir": f"cases/{SLUG}/", "files": []}))
    assert "kept only with <code>--keep all</code>" in html


@pytest.mark.parametrize("odd", [
    {"sdps": [], "evidence": {}, "snapshots": {"polite": {"stats": {}}}},
    {"sdps": [{"sdp": 5, "t": "soon"}, {"role": EVIL, "op": None, "type": "offer", "sdp": None},
              {"role": "polite", "op": "local", "type": "offer", "sdp": ["not", "text"]},
              {"role": "polite", "op": "local", "type": "offer", "sdp": "m=x\nm=y"}],
     "evidence": {"kept": True, "dir": "../../etc/", "files": [{"name": "passwd", "kind": "aiortc-log"}, "x",
                                                                {"name": None}, {"name": "ok.txt", "bytes": "big"}]},
     "snapshots": {"polite": {"stats": {"pair": None, "inbound": [], "outbound": [{"mid": None, "x": {"o": 1}}],
                                        "channels": [{"label": None, "bytesSent": float("inf")}], "note": EVIL}},
                   "impolite": {"stats": {"pair": {"local": None, "remote": {}}, "currentRoundTripTime": "fast"}}}},
    {"sdps": [], "evidence": {"kept": True, "dir": "/etc", "files": None}, "snapshots": {}},
    {"evidence": {"kept": True, "dir": f"cases/{SLUG}/", "files": [{"name": "aiortc.log", "kind": "aiortc-log"}]}},
])
def test_malformed_keys_still_render(tmp_path, odd):
    html = _render(tmp_path, _detail(**odd), files={"aiortc.log": "\x00\xff ok\n"})
    assert "<h2 id=\"evidence\">" in html and "<h2 id=\"stats\">" in html and "<h2 id=\"sdps\">" in html
    assert "<script" not in html
    hrefs = re.findall(r'href="([^"]*)"', _section(html, "evidence"))
    assert all(h.startswith(f"{SLUG}/") for h in hrefs), hrefs


@pytest.mark.parametrize("bad", [
    {"sdps": "nope"}, {"sdps": [1, None]}, {"evidence": []}, {"snapshots": []}, {"snapshots": {"polite": {"stats": [1]}}},
    {"snapshots": {"polite": {"stats": {"pair": "x"}}}}, {"schema_version": 1}, {"checks": [{"name": EVIL}]},
])
def test_a_file_that_is_no_case_detail_gives_a_one_line_reason(tmp_path, bad):
    html = _render(tmp_path, _detail(**bad))
    note = re.search(r'<p class="muted detail-missing">(.*?)</p>', html).group(1)
    assert note.startswith(f"Detail file cases/{SLUG}.json: ") and "\n" not in note
    assert "<h2 id=\"stats\">" not in html and "<script" not in html


def test_evidence_outside_the_report_folder_is_not_linked(tmp_path):
    outside = tmp_path.parent / "secret.log"
    outside.write_text("TOPSECRET", encoding="utf-8")
    detail = _detail(evidence={"kept": True, "dir": "../", "files": [{"name": "secret.log", "kind": "aiortc-log"}]})
    html = _render(tmp_path, detail)
    evidence = _section(html, "evidence")
    assert "is not a path inside the report folder" in evidence
    assert "<a href" not in evidence and "secret.log" in evidence and "TOPSECRET" not in evidence


def test_hostile_text_is_escaped(page):
    assert "<script" not in page
    assert htmllib.escape(EVIL, quote=False) in page
    assert "x&#34;&gt;" in page  # attribute-breaking quote escaped too


def test_sdp_text_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(case_page, "SDP_TEXT_BUDGET", 100)
    html = _render(tmp_path, _full_detail())
    assert "(text in the detail JSON)" in html and "left out of this page" in html
    assert '<span class="d-add">+m=video 9 UDP/TLS/RTP/SAVPF 96</span>' in html  # diffs stay


def _reproduce(html: str) -> list[str]:
    box = html[html.index('<section class="reproduce" id="reproduce">'):html.index("</section>")]
    return [htmllib.unescape(line) for line in re.findall(r'<code class="cmd">(.*?)</code>', box)]


def test_reproduce_box_comes_first_with_the_commands_for_this_case(page):
    assert page.index('id="reproduce"') < page.index('<table class="kv">\n<tr><th>outcome')
    plan = f"cases/{SLUG}.json"
    assert _reproduce(page) == [
        f"rig debug chromium:aiortc --plan {plan}",
        f"rig repro {SLUG} --from .",
        f"rig matrix --plan {plan} --peers chromium,aiortc --pairs chromium:aiortc",
    ]
    assert f'<a href="../{plan}"><code>{plan}</code></a>' in page  # the plan file, linked from cases/


def test_reproduce_commands_quote_the_case_id_and_name_a_negotiator_other_than_the_reference(tmp_path):
    from rig import model
    from rig.junit import build
    from rig.report import reproduce
    case = model.CaseSummary.model_validate({
        "id": "glare-initial[firefox-polite--aiortc-impolite]", "slug": "glare-initial_firefox-polite--aiortc-impolite",
        "scenario": "glare-initial",
        "polite": {"spec": "firefox", "kind": "firefox"}, "impolite": {"spec": "aiortc", "kind": "aiortc"},
        "outcome": "failed", "details": "cases/glare-initial_firefox-polite--aiortc-impolite.json",
        "negotiators": {"js": "/elsewhere/my negotiator.js", "py": "/other/checkout/fixtures/negotiators/perfect.py"}})
    lines = [c.line for c in reproduce.commands(case)]
    assert lines[0] == ("rig debug firefox:aiortc --plan cases/glare-initial_firefox-polite--aiortc-impolite.json "
                        "--negotiator-js '/elsewhere/my negotiator.js'")
    assert lines[1] == "rig repro 'glare-initial[firefox-polite--aiortc-impolite]' --from ."
    assert lines[2] == reproduce.plan_command(case)
    # junit.xml's replay line is the same command, from the same function
    assert f"replay (in the report folder): {lines[2]}" in "".join(build({"cases": [case.model_dump()]}).itertext())
    # without a detail file: the scenario by name, nothing to hand on
    bare = case.model_copy(update={"details": "", "negotiators": {}})
    assert [c.line for c in reproduce.commands(bare)] == ["rig debug firefox:aiortc glare-initial"]


def test_the_finding_links_its_upstream_reports_or_says_none_was_found(tmp_path):
    from rig import results
    cases = tmp_path / "cases"
    cases.mkdir()
    run = {"cases": [{"id": f"{s}-x", "slug": f"{s}-x", "scenario": "glare-initial", "outcome": "xfailed",
                      "expected": "xfail", "finding": fid, "findings": [fid],
                      "polite": {"spec": "chromium", "kind": "chromium"}, "impolite": {"spec": "firefox", "kind": "firefox"}}
                     for s, fid in (("a", "chromium-rollback-extmap"), ("b", "aiortc-no-operations-chain"))],
           "findings": [f.model_dump() for f in results.finding_infos({"chromium-rollback-extmap",
                                                                        "aiortc-no-operations-chain"})]}
    write_report(tmp_path, run)
    linked = (cases / "a-x.html").read_text(encoding="utf-8")
    assert '<a href="https://issues.webrtc.org/issues/503013383">' in linked
    assert '<a href="https://github.com/versatica/mediasoup-client/issues/368">' in linked
    assert "no upstream report found" in (cases / "b-x.html").read_text(encoding="utf-8")
