"""rig soak end to end on a small scale, and browser recycling in a real run."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

from rig import config, runs
from rig.usage import Sampler

RIG = [sys.executable, "-m", "rig"]


def test_soak_prints_its_figures_and_writes_them(tmp_path: Path) -> None:
    proc = runs.run_bounded([*RIG, "soak", "--cases", "5", "--peers", "aiortc", "--out", str(tmp_path),
                                  "--workers", "1"], timeout=300, cwd=config.ROOT)
    out = proc.stdout
    figures = json.loads((tmp_path / "soak.json").read_text())
    n = figures["cases"]
    assert n >= 5 and n == len(json.loads((tmp_path / "results.json").read_text())["cases"])
    assert f"rig soak: {n} cases in" in out, out
    assert "case time p50" in out and "memory (PSS of the run's processes): start" in out
    assert figures["case_s"]["p50"] > 0 and figures["memory"]["peak_mb"] > 0
    # the exit status follows the figures: 0 only when nothing unexpected and no growth
    clean = figures["unexpected"] == 0 and not figures["memory"]["grew"]
    assert proc.returncode == (0 if clean else 1), out + proc.stderr


def _sampled_matrix(tmp_path: Path, scenarios: str, repeat: int, **env: str) -> tuple[list[dict], Sampler, str]:
    """A Chromium x Chromium ``rig matrix`` with ``env`` set, its processes sampled: its cases,
    the sampler and its output."""
    run_id = f"recycle-{uuid.uuid4().hex}"
    sampler = Sampler(run_id, every=0.2)
    sampler.start()
    try:
        proc = runs.run_bounded(
            [*RIG, "matrix", "--peers", "chromium", "--scenarios", scenarios, "--repeat", str(repeat),
             "--workers", "1", "--capture", "off", "--out", str(tmp_path)], timeout=300, cwd=config.ROOT,
            env=dict(os.environ, **env), run_id=run_id)
    finally:
        sampler.stop.set()
        sampler.join()
    return json.loads((tmp_path / "results.json").read_text())["cases"], sampler, proc.stdout + proc.stderr


def _launches(sampler: Sampler) -> list[str]:
    """Each driver and browser main the sampler counted: pid, parent pid, command line."""
    return [f"{p} (parent {sampler.parents[p]}): {sampler.commands[p]}"
            for p in sorted(sampler.drivers | sampler.browser_mains)]


def test_a_browser_is_recycled_after_its_pages(tmp_path: Path) -> None:
    """RIG_RECYCLE_PAGES=2: a Chromium x Chromium case takes two pages, so every case after
    the first runs on a freshly launched browser, and still passes."""
    cases, sampler, out = _sampled_matrix(tmp_path, "add-video,glare-datachannel", 2, RIG_RECYCLE_PAGES="2")
    assert [c["outcome"] for c in cases] == ["passed"] * 4, out
    assert len(sampler.drivers) == 1 and len(sampler.browser_mains) == 4, _launches(sampler)
    assert {sampler.parents[m] for m in sampler.browser_mains} == sampler.drivers, _launches(sampler)


def test_a_driver_is_restarted_with_its_browsers_after_its_pages(tmp_path: Path) -> None:
    """RIG_RECYCLE_DRIVER_PAGES=2: each Chromium x Chromium case makes two pages, so the worker
    starts a new Playwright driver (and browser) for each case, and every case passes."""
    cases, sampler, out = _sampled_matrix(tmp_path, "add-video", 3, RIG_RECYCLE_DRIVER_PAGES="2")
    assert [c["outcome"] for c in cases] == ["passed"] * 3, out
    assert len(sampler.drivers) == 3 and len(sampler.browser_mains) == 3, _launches(sampler)
    # one browser per driver: each main's parent is a different driver
    assert sorted(sampler.parents[m] for m in sampler.browser_mains) == sorted(sampler.drivers), _launches(sampler)
    assert "left behind" not in out
