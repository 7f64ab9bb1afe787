"""rig bisect's search (rig.bisect), with a fake step runner: no browser."""

from __future__ import annotations

import argparse
import json
import socket

import pytest
from localhttp import Server, serve_bucket_listing

from rig import bisect, config, findings
from rig.errors import RigError
from rig.install import cache
from rig.model import PeerInfo

VERSIONS = ["92", "103", "110", "121", "130", "138", "147", "150", "153", "156"]


def _runner(first_bad: str, skip: tuple[str, ...] = (), calls: list | None = None):
    def evaluate(v: str) -> bisect.Step:
        if calls is not None:
            calls.append(v)
        verdict = "skip" if v in skip else ("fail" if int(v) >= int(first_bad) else "pass")
        return bisect.Step(version=v, spec=f"chromium@{v}", verdict=verdict, exact=f"{v}.0.1.0")
    return evaluate


@pytest.mark.parametrize("first_bad", VERSIONS[1:])
def test_finds_the_first_version_that_fails_in_few_steps(first_bad):
    calls: list[str] = []
    steps, good, bad, msg = bisect.bisect(VERSIONS, _runner(first_bad, calls=calls))
    assert bad.version == first_bad and good.version == VERSIONS[VERSIONS.index(first_bad) - 1]
    assert len(calls) <= 2 + 4, "two ends plus log2(8) middles"
    assert len(set(calls)) == len(calls), "no version is run twice"
    assert f"fail from chromium@{first_bad}" in msg


def test_a_fix_is_a_boundary_too_and_skipped_versions_are_stepped_over():
    def evaluate(v):
        verdict = "skip" if v in ("130", "138") else ("pass" if int(v) >= 138 else "fail")
        return bisect.Step(version=v, spec=v, verdict=verdict, exact=v)
    _, last_fail, first_pass, _ = bisect.bisect(VERSIONS, evaluate)
    assert (last_fail.version, first_pass.version) == ("121", "147"), "130 and 138 could not be judged"
    _, lo, hi, _ = bisect.bisect(VERSIONS, _runner("110", skip=("92",)))
    assert (lo.version, hi.version) == ("103", "110"), "an end that cannot be judged moves inward"


def test_ends_that_agree_are_no_boundary():
    steps, lo, hi, msg = bisect.bisect(VERSIONS, _runner("999"))
    assert lo is None and hi is None and "both ends pass" in msg and len(steps) == 2
    _, lo, _, msg = bisect.bisect(VERSIONS[:3], _runner("110", skip=tuple(VERSIONS)))
    assert lo is None and "fewer than two versions" in msg


def test_candidates_are_one_per_release_line_inside_the_range():
    listing = ["150.0.7871.100", "156.0.8078.114", "147.0.7727.0", "147.0.7700.0", "121.0.6167.0", "110.0.5478.0",
               "92.0.4512.0", "88.0.4298.0"]
    assert bisect.candidates("chromium", "110", "156", listing) == [
        "110.0.5478.0", "121.0.6167.0", "147.0.7727.0", "150.0.7871.100", "156.0.8078.114"]
    assert bisect.candidates("aiortc", "1.13", "1.16", ["1.12.0", "1.13.0", "1.14.0", "1.16.0", "1.16.1"]) == [
        "1.13.0", "1.14.0", "1.16.1"]


def test_a_step_verdict_counts_findings_as_failures_and_errors_as_unjudged():
    ok = {"outcome": "passed"}
    xf = {"outcome": "xfailed", "reason": "finding chromium-rollback-extmap: ...\nmore"}
    setup = {"outcome": "error", "cause": {"kind": "setup"}, "reason": "chromium@88: Playwright cannot drive it"}
    assert bisect.verdict_of([ok, ok]) == ("pass", "")
    assert bisect.verdict_of([ok, xf]) == ("fail", "finding chromium-rollback-extmap: ...")
    # the behaviour is bisected, not the expectation: a run that passed against a finding passed
    xp = {"outcome": "xpassed", "reason": "passed although finding chromium-rollback-extmap expects ..."}
    assert bisect.verdict_of([ok, xp, xp]) == ("pass", "")
    assert bisect.verdict_of([xp, xf])[0] == "fail"
    assert bisect.verdict_of([setup]) == ("skip", "not judged (error): chromium@88: Playwright cannot drive it")
    assert bisect.verdict_of([{"outcome": "unsupported", "reason": "no restartIce"}]) == (
        "skip", "not judged (unsupported): no restartIce")
    assert bisect.verdict_of([])[0] == "skip"
    # an error is the rig's or the set-up's, never the cell's behaviour, whatever its cause
    fault = {"outcome": "error", "cause": {"kind": "error"}, "reason": "injected fault in setLocalDescription"}
    assert bisect.verdict_of([fault])[0] == "skip"
    # the runs that were judged decide, and the verdict says how many were not
    assert bisect.verdict_of([ok, fault, xp]) == ("pass", "1 of 3 runs not judged: injected fault in setLocalDescription")
    verdict, reason = bisect.verdict_of([fault, xf])
    assert verdict == "fail" and reason.endswith("(1 of 2 runs not judged: injected fault in setLocalDescription)")


def test_a_version_that_passed_against_a_finding_says_the_range_is_too_wide():
    """The glare-initial cell passes on 148 against a finding whose range (from another
    scenario's bisect) starts at 148: the bisect names 148 the last pass and says so."""
    def evaluate(v):
        step = bisect.Step(version=v, spec=f"chromium@{v}", exact=v)
        step.verdict = "pass" if int(v) <= 148 else "fail"
        step.passed_against = ["chromium-rollback-extmap"] if v == "148" else []
        return step
    steps, lo, hi, msg = bisect.bisect(["147", "148", "149", "156"], evaluate)
    assert (lo.version, hi.version) == ("148", "149") and "pass up to chromium@148" in msg
    b = bisect.Bisection("glare-initial", "polite", "firefox@153", "chromium", [], steps, lo, hi, msg)
    (wide,) = b.too_wide()
    assert wide.startswith("finding chromium-rollback-extmap expects glare-initial to fail on chromium@148, but")
    assert "too wide for glare-initial" in wide and "--repeat" in wide


def _steps(verdicts: dict[str, str], passed_against: str = "chromium-rollback-extmap") -> list[bisect.Step]:
    return [bisect.Step(version=v.split(".")[0], spec=f"chromium@{v.split('.')[0]}", verdict=verdict, exact=v,
                        passed_against=[passed_against] if verdict == "pass" else [])
            for v, verdict in verdicts.items()]


def test_a_range_too_wide_names_the_range_to_write_for_the_scenario(monkeypatch):
    """The finding's general range starts at 148.0.7778.0 (a bisect of glare-add-media); a scenario
    that passes on 148 and fails from 149 gets the range from the first failing build to the old end."""
    f = findings.Finding("fake-extmap", "t", "chromium", (findings.Cells(("glare-*",), "chromium", "*"),),
                         peer="polite", operation="setRemoteDescription", detail="d", message="x",
                         seen={"chromium": (findings.Seen("148.0.7778.0", "156.0.8078.114"),)})
    monkeypatch.setitem(bisect.BY_ID, f.id, f)
    steps = _steps({"147.0.7727.0": "pass", "148.0.7778.0": "pass", "149.0.7827.0": "fail", "156.0.8078.114": "fail"},
                   f.id)
    steps[0].passed_against = []  # 147 lies outside the finding's range
    b = bisect.Bisection("glare-initial", "polite", "firefox@153", "chromium", [], steps, steps[1], steps[2], "")
    (wide,) = b.too_wide()
    assert ('seen_in={"glare-initial": {"chromium": (Seen("149.0.7827.0", "156.0.8078.114"),)}} '
            '(was 148.0.7778.0 .. 156.0.8078.114)') in wide
    # a fix inside the range: the range ends at the last build that failed
    fixed = _steps({"150.0.1.0": "fail", "152.0.1.0": "fail", "153.0.1.0": "pass", "156.0.8078.114": "pass"}, f.id)
    (wide,) = bisect.Bisection("glare-initial", "polite", "firefox", "chromium", [], fixed).too_wide()
    assert 'Seen("148.0.7778.0", "152.0.1.0")' in wide
    # passes and failures that interleave are no range: rerun or split
    mixed = _steps({"149.0.1.0": "fail", "150.0.1.0": "pass", "153.0.1.0": "fail"}, f.id)
    (wide,) = bisect.Bisection("glare-initial", "polite", "firefox", "chromium", [], mixed).too_wide()
    assert "interleave" in wide and "--repeat" in wide


def test_a_scenario_range_overrides_the_general_one_for_that_scenario_only():
    f = findings.Finding("fake", "t", "chromium", (findings.Cells(("glare-*",), "chromium", "*"),), peer="polite",
                         operation="x", detail="d", message="x",
                         seen={"chromium": (findings.Seen("148.0.1.0", "156.0.1.0"),), "firefox": (findings.Seen("153"),)},
                         seen_in={"glare-initial": {"chromium": (findings.Seen("149.0.1.0", "156.0.1.0"),)}})
    c148, fx = PeerInfo(spec="chromium", kind="chromium", version="148.0.1.0"), PeerInfo(spec="firefox", kind="firefox", version="153.8.0")
    assert f.cell("glare-add-media", c148, fx) is not None
    assert f.cell("glare-initial", c148, fx) is None, "glare-initial's own range starts at 149"
    assert f.cell("glare-initial", PeerInfo(spec="chromium", kind="chromium", version="149.0.1.0"), fx) is not None
    assert f.ranges(scenario="glare-initial") == "chromium 149.0.1.0 .. 156.0.1.0; firefox 153"
    assert f.ranges() == "chromium 148.0.1.0 .. 156.0.1.0; firefox 153"
    with pytest.raises(ValueError, match="none of its cells covers"):
        findings.Finding("fake", "t", "chromium", (findings.Cells(("glare-*",)),), peer=None, operation="x",
                         detail="d", message="x", seen_in={"restart-ice": {}})


def test_exactly_one_side_is_a_range():
    assert bisect.parse_sides("chromium@110..156", "firefox@153")[0] == "polite"
    assert bisect.parse_sides("firefox", "aiortc@1.13..1.16")[0] == "impolite"
    for p, i in (("chromium", "firefox"), ("chromium@110..120", "chromium@121..156")):
        with pytest.raises(RigError, match="exactly one side"):
            bisect.parse_sides(p, i)


def test_sdp_differences_leave_out_what_differs_in_every_run(tmp_path):
    def detail(name, ext):
        sdp = (f"v=0\r\no=- {name} 2 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:{name}\r\n"
               f"a=extmap:{ext} urn:ietf:params:rtp-hdrext:sdes:mid\r\n")
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"sdps": [{"role": "polite", "op": "local", "type": "offer", "sdp": sdp},
                                          {"role": "impolite", "op": "local", "type": "answer", "sdp": "v=0"}]}))
        return p
    diff = bisect.sdp_differences(detail("a", 4), detail("b", 9), "polite")
    assert "-a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid" in diff and "+a=extmap:9" in diff
    assert "ice-ufrag" not in diff and "o=-" not in diff
    assert "the same" in bisect.sdp_differences(detail("c", 4), detail("d", 4), "polite")


# --- over the official feeds (a local HTTP server in their layouts) ------------------------

CFT = ["146.0.7680.0", "147.0.7727.0", "147.0.7727.24", "148.0.7778.0", "149.0.7827.0", "149.0.7827.5", "156.0.8078.1"]
#: Each build's commit position, the feed's ``revision`` (a branch build has its branch point's).
REVISIONS = {"146.0.7680.0": "1547490", "147.0.7727.0": "1561371", "147.0.7727.24": "1561371",
             "148.0.7778.0": "1575161", "149.0.7827.0": "1589410", "149.0.7827.5": "1589410", "156.0.8078.1": "1690000"}
#: The commit positions Chromium's snapshot bucket has builds of (not every position).
POSITIONS = ["1575161", "1575170", "1577003", "1580000", "1589410", "1589500", "1600000", "999999"]
LISTING = """<html><body><h1>Index of /pub/firefox/releases/</h1>
<a href="/pub/firefox/releases/">..</a><a href="/pub/firefox/releases/128.0/">128.0/</a>
<a href="/pub/firefox/releases/128.0.3/">128.0.3/</a><a href="/pub/firefox/releases/128.3.1esr/">128.3.1esr/</a>
<a href="/pub/firefox/releases/134.0b5/">134.0b5/</a><a href="/pub/firefox/releases/140.0.4/">140.0.4/</a>
<a href="/pub/firefox/releases/153.0/">153.0/</a><a href="/pub/firefox/releases/latest/">latest/</a></body></html>"""


@pytest.fixture
def feeds(monkeypatch: pytest.MonkeyPatch):
    server = Server()
    server.put("/cft/known-good-versions-with-downloads.json", {"timestamp": "2026-12-01T00:00:00.000Z", "versions": [
        {"version": v, "revision": REVISIONS[v], "downloads": {"chrome": [
            {"platform": p, "url": f"{server.url}/dl/{v}/{p}/chrome-{p}.zip"} for p in ("linux64", "win64")]}}
        for v in CFT] + [{"version": "150.0.7871.0", "downloads": {"chrome": [{"platform": "win64", "url": "x"}]}}]})
    server.put("/pub/firefox/releases/", LISTING)
    serve_bucket_listing(server, "/snap", "Linux_x64/", [f"Linux_x64/{p}/" for p in POSITIONS], page=5)
    monkeypatch.setattr(config, "CFT_URL", server.url + "/cft")
    monkeypatch.setattr(config, "CHROMIUM_SNAPSHOTS_URL", server.url + "/snap")
    monkeypatch.setattr(config, "MOZILLA_ARCHIVE_URL", server.url + "/pub")
    monkeypatch.setattr(cache, "_FEEDS", {})
    yield server
    server.close()


def test_the_official_feeds_list_the_builds_to_walk(feeds):
    chromium = bisect.installable("chromium", "official")
    assert chromium == CFT, "linux64 builds only, oldest first"
    assert bisect.candidates("chromium", "147", "149", chromium) == ["147.0.7727.24", "148.0.7778.0", "149.0.7827.5"]
    firefox = bisect.installable("firefox", "official")
    assert firefox == ["128.0", "128.0.3", "140.0.4", "153.0"], "final releases: no ESR build, beta or link"
    assert bisect.candidates("firefox", "128", "153", firefox) == ["128.0.3", "140.0.4", "153.0"]
    assert str(bisect.step_spec("chromium", "147.0.7727.24", "official")) == "chromium@cft:147.0.7727.24"
    assert str(bisect.step_spec("firefox", "140.0.4", "official")) == "firefox@140.0.4"
    assert str(bisect.step_spec("chromium", "147")) == "chromium@147"
    with pytest.raises(RigError, match="aiortc has no official feed"):
        bisect.installable("aiortc", "official")


def _args(polite: str, impolite: str, out, source: str = "official") -> argparse.Namespace:
    return argparse.Namespace(scenario="glare-initial", polite=polite, impolite=impolite, repeat=1, out=str(out),
                              source=source)


def test_a_bisect_over_chrome_for_testing_steps_through_its_exact_builds(feeds, monkeypatch, tmp_path, capsys):
    asked: list[str] = []

    def matrix_step(scenario, side, rng, other, repeat, out, base, source):
        def evaluate(v: str) -> bisect.Step:
            spec = bisect.step_spec(rng.kind, v, source)
            asked.append(str(spec))
            return bisect.Step(version=v, spec=str(spec), exact=v, verdict="pass" if int(v.split(".")[0]) < 149 else "fail")
        return evaluate
    monkeypatch.setattr(bisect, "matrix_step", matrix_step)
    assert bisect.run_bisect(_args("chromium@146..156", "firefox@153", tmp_path), base=None) == 0
    said = capsys.readouterr().out
    assert "over 5 official builds (146, 147, 148, 149, 156)" in said
    assert ("pass up to chromium@cft:148.0.7778.0 (148.0.7778.0), fail from chromium@cft:149.0.7827.5 (149.0.7827.5)"
            in said)
    assert all(a.startswith("chromium@cft:") for a in asked)


def test_a_range_of_commit_positions_walks_the_positions_the_bucket_has(feeds, monkeypatch, tmp_path, capsys):
    listing = bisect.installable("chromium", "snapshot")
    assert listing == sorted(POSITIONS, key=int), "every page, by number"
    assert bisect.candidates("chromium", "1575161", "1589410", listing) == [
        "1575161", "1575170", "1577003", "1580000", "1589410"]
    assert str(bisect.step_spec("chromium", "1577003", "snapshot")) == "chromium@snapshot:1577003"
    asked: list[str] = []

    def matrix_step(scenario, side, rng, other, repeat, out, base, source):
        def evaluate(v: str) -> bisect.Step:
            spec = bisect.step_spec(rng.kind, v, source)
            asked.append(str(spec))
            return bisect.Step(version=v, spec=str(spec), exact="148.0.7778.0", verdict="pass" if int(v) < 1580000
                               else "fail")
        return evaluate
    monkeypatch.setattr(bisect, "matrix_step", matrix_step)
    assert bisect.run_bisect(_args("firefox@153", "chromium@snapshot:1575161..1589410", tmp_path,
                                   source="installable"), base=None) == 0
    said = capsys.readouterr().out
    assert "impolite chromium over 5 snapshot positions (1575161 to 1589410) against firefox@153" in said
    assert ("pass up to chromium@snapshot:1577003 (148.0.7778.0), fail from chromium@snapshot:1580000 (148.0.7778.0)"
            in said)
    assert asked[:2] == ["chromium@snapshot:1575161", "chromium@snapshot:1589410"]
    assert all(a.startswith("chromium@snapshot:") for a in asked)
    assert "narrow by commit position" not in said
    assert bisect.run_bisect(_args("chromium@snapshot:1575162..1577002", "firefox@153", tmp_path), base=None) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("rig: error: chromium@snapshot:1575162..1577002: 1 commit position(s) with a build in that range "
                   "(1575170); Chromium's snapshot bucket has a Linux_x64 build at some positions only: widen the range")


def test_an_official_chromium_bisect_ending_on_adjacent_builds_names_their_positions(feeds, monkeypatch, tmp_path,
                                                                                     capsys):
    def matrix_step(scenario, side, rng, other, repeat, out, base, source):
        def evaluate(v: str) -> bisect.Step:
            spec = bisect.step_spec(rng.kind, v, source)
            return bisect.Step(version=v, spec=str(spec), exact=v, verdict="pass" if int(v.split(".")[0]) < 149 else "fail")
        return evaluate
    monkeypatch.setattr(bisect, "matrix_step", matrix_step)
    assert bisect.run_bisect(_args("chromium@146..156", "firefox@153", tmp_path), base=None) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == ("rig bisect: chromium@cft:148.0.7778.0 and chromium@cft:149.0.7827.5 are adjacent builds, "
                    "revisions 1575161 and 1589410; narrow by commit position: rig bisect glare-initial --polite "
                    "chromium@snapshot:1575161..1589410 --impolite firefox@153 --repeat 1")
    assert bisect.run_bisect(_args("firefox@153", "chromium@146..156", tmp_path), base=None) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(
        "rig bisect glare-initial --polite firefox@153 --impolite chromium@snapshot:1575161..1589410 --repeat 1")
    # builds that are not adjacent, or an installable (not official) bisect: no such line
    b = bisect.Bisection("glare-initial", "polite", "firefox@153", "chromium", CFT,
                         last_like_first=bisect.Step("147.0.7727.24", "chromium@cft:147.0.7727.24"),
                         first_like_last=bisect.Step("149.0.7827.5", "chromium@cft:149.0.7827.5"))
    assert bisect.by_positions(b, ["146.0.7680.0", "147.0.7727.24", "148.0.7778.0", "149.0.7827.5"], REVISIONS, 1) == ""
    assert bisect.by_positions(b, ["147.0.7727.24", "149.0.7827.5"], REVISIONS, 1) != ""
    assert bisect.by_positions(b, ["147.0.7727.24", "149.0.7827.5"], {}, 1) == ""


def test_an_official_feed_offline_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(config, "MOZILLA_ARCHIVE_URL", f"http://127.0.0.1:{port}/pub")
    monkeypatch.setattr(cache, "_FEEDS", {})
    assert bisect.run_bisect(_args("chromium@153", "firefox@128..153", tmp_path), base=None) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rig: error: firefox@128..153: cannot reach 127.0.0.1:{port}"), err
    monkeypatch.setattr(config, "CHROMIUM_SNAPSHOTS_URL", f"http://127.0.0.1:{port}/snap")
    assert bisect.run_bisect(_args("chromium@snapshot:1121455..1121500", "firefox@153", tmp_path), base=None) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rig: error: chromium@snapshot:1121455..1121500: cannot reach 127.0.0.1:{port} ([Errno 111] "
                   "Connection refused)"], err
