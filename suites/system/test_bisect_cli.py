"""rig bisect for real: the boundary of chromium-rollback-extmap between Chromium 147 (a polite
Chromium passes glare-add-media against Firefox) and 148 (it fails), installing what it needs.
About 30 s with both versions cached (130 MB of downloads the first time)."""

from __future__ import annotations

import json
import sys

import pytest

from rig import config, runs

pytestmark = pytest.mark.network


@pytest.mark.long
def test_bisect_names_the_last_good_and_the_first_bad_chromium(tmp_path):
    out = tmp_path / "bisect"
    got = runs.run_bounded([sys.executable, "-m", "rig", "bisect", "glare-add-media", "--polite",
                                 "chromium@147..148", "--impolite", "firefox", "--repeat", "1", "--out", str(out)],
                                cwd=config.ROOT, timeout=600)
    if got.returncode == 2 and "cannot reach" in got.stderr:
        pytest.skip(got.stderr.strip().splitlines()[-1])
    assert got.returncode == 0, got.stdout + got.stderr
    assert "pass up to chromium@147 (147.0.7727.0), fail from chromium@148 (148.0." in got.stdout
    data = json.loads((out / "bisect.json").read_text())
    assert data["found"] and data["last_like_first"]["verdict"] == "pass"
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
