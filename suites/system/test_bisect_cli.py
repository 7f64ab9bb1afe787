"""rig bisect for real: the boundary of chromium-rollback-extmap in glare-initial between Chromium
148 (a polite Chromium passes glare-initial against Firefox 153) and 149 (it fails), installing
what it needs. glare-initial's boundary is one version later than the finding's general range
(from glare-add-media, which fails from 148): the bisect judges the behaviour, and the finding
keeps glare-initial's own range. About 40 s with both versions cached (130 MB of downloads the
first time)."""

from __future__ import annotations

import json
import sys

import pytest

from rig import config, runs

pytestmark = pytest.mark.network


@pytest.mark.long
def test_bisect_names_the_last_good_and_the_first_bad_chromium(tmp_path):
    out = tmp_path / "bisect"
    got = runs.run_bounded([sys.executable, "-m", "rig", "bisect", "glare-initial", "--polite",
                                 "chromium@148..149", "--impolite", "firefox@153", "--repeat", "1", "--out", str(out)],
                                cwd=config.ROOT, timeout=600)
    if got.returncode == 2 and "cannot reach" in got.stderr:
        pytest.skip(got.stderr.strip().splitlines()[-1])
    assert got.returncode == 0, got.stdout + got.stderr
    assert "pass up to chromium@148 (148.0.7778.0), fail from chromium@149 (149.0." in got.stdout
    data = json.loads((out / "bisect.json").read_text())
    good = data["last_like_first"]
    assert data["found"] and good["verdict"] == "pass" and good["outcomes"] == {"passed": 1}, (
        "148 lies outside glare-initial's range of chromium-rollback-extmap: a strict pass")
    assert data["too_wide"] == [] and "too wide" not in got.stdout
    bad = data["first_like_last"]
    assert bad["verdict"] == "fail" and bad["outcomes"] == {"xfailed": 1} and "chromium-rollback-extmap" in bad["reason"]
    page = (out / "bisect.html").read_text()
    assert page.count("<iframe") == 2 and "SDP differences" in page
    for step in (data["last_like_first"], data["first_like_last"]):
        assert (out / step["pages"][0]).is_file(), "the case pages the boundary links to exist"


def test_a_range_with_nothing_installable_in_it_is_a_one_line_error(tmp_path):
    got = runs.run_bounded([sys.executable, "-m", "rig", "bisect", "glare-add-media", "--polite",
                                 "chromium@144..146", "--impolite", "firefox", "--out", str(tmp_path)],
                                cwd=config.ROOT, timeout=120)
    assert got.returncode == 2
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "chromium@144..146: 0 installable version(s) in that range" in lines[0], got.stderr
    assert "147" in lines[0], "the message lists what is installable"
