"""A user's negotiator is judged by what its peer did, not by how it words its logs: known browser
findings stay explained when it logs ``console.error("prefix:", err)``, and when it reports no
error at all (the rig's own record of the rejected call names the finding). Real peers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rig import config, runs

RIG = [sys.executable, "-m", "rig"]


def _outcomes(out: Path) -> dict[str, tuple[str, str | None]]:
    return {c["id"]: (c["outcome"], c.get("finding")) for c in json.loads((out / "results.json").read_text())["cases"]}


def _reasons(out: Path) -> dict[str, str]:
    return {c["id"]: c.get("reason", "") for c in json.loads((out / "results.json").read_text())["cases"]}


PAIRS = ["--peers", "chromium,aiortc", "--pairs", "chromium:chromium,chromium:aiortc"]


def _matrix(out: Path, scenarios: str, negotiator: list[str], workers: int = 1) -> None:
    runs.run_bounded([*RIG, "matrix", *PAIRS, "--scenarios", scenarios, "--workers", str(workers), "--capture", "off",
                      "--out", str(out), *negotiator], timeout=300, cwd=config.ROOT)


def test_a_prefixed_console_error_keeps_the_finding_explained(tmp_path: Path) -> None:
    """glare-add-media with a polite Chromium fails on finding chromium-rollback-extmap (the
    reference negotiator's cells in suites/interop); a negotiator that logs a prefix before the
    error gets the same explained cells."""
    text = (config.ROOT / "fixtures" / "negotiators" / "perfect.js").read_text()
    prefixed = tmp_path / "prefixed.js"
    prefixed.write_text(text.replace("console.error(err);", 'console.error("negotiation failed:", err);'))
    assert prefixed.read_text().count('"negotiation failed:"') == 2
    _matrix(tmp_path / "prefixed", "glare-add-media", ["--negotiator-js", str(prefixed)])
    outcomes = _outcomes(tmp_path / "prefixed")
    assert sorted(outcomes) == ["glare-add-media[chromium-polite--aiortc-impolite]",
                                "glare-add-media[chromium-polite--chromium-impolite]"], outcomes
    assert set(outcomes.values()) == {("xfailed", "chromium-rollback-extmap")}, outcomes


def test_a_negotiator_that_swallows_every_error_keeps_the_findings_explained(tmp_path: Path) -> None:
    """A negotiator that catches and drops every error (as Unity Render Streaming's does) never
    reports the rejected call, so its case ends stuck at a settle; the rig's own record of the
    rejection still names the finding, and the reason says the negotiator did not report it. The
    cells are the reference's expected failures (its run is suites/interop, where the reference's
    own error names the finding): the same outcome and finding. glare-initial also has the
    impolite Chromium's rejected candidates of the ignored offer before it, which the pattern
    drops and the verdict passes over. Two workers: each case waits out its settle bound."""
    text = (config.ROOT / "fixtures" / "negotiators" / "perfect.js").read_text()
    assert text.count("console.error(err);") == 2 and text.count("throw err;") == 1
    swallowing = tmp_path / "swallowing.js"
    swallowing.write_text(text.replace("console.error(err);", "/* dropped */").replace("throw err;", "/* dropped */"))
    text = swallowing.read_text()
    assert text.count("/* dropped */") == 3 and "console.error" not in text and "throw" not in text
    out = tmp_path / "swallowing"
    _matrix(out, "glare-add-media,glare-initial", ["--negotiator-js", str(swallowing)], workers=2)
    outcomes, reasons = _outcomes(out), _reasons(out)
    assert sorted(outcomes) == [f"{s}[chromium-polite--{p}-impolite]" for s in ("glare-add-media", "glare-initial")
                                for p in ("aiortc", "chromium")], outcomes
    assert set(outcomes.values()) == {("xfailed", "chromium-rollback-extmap")}, (outcomes, reasons)
    for case, reason in reasons.items():
        assert "recorded by the rig" in reason and "the negotiator did not report it" in reason, (case, reason)
