"""A user's negotiator is judged by what its peer did, not by how it words its logs: known browser
findings stay explained when it logs ``console.error("prefix:", err)``. Real peers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rig import config, runs

RIG = [sys.executable, "-m", "rig"]


def _outcomes(out: Path) -> dict[str, tuple[str, str | None]]:
    return {c["id"]: (c["outcome"], c.get("finding")) for c in json.loads((out / "results.json").read_text())["cases"]}


def test_a_prefixed_console_error_keeps_the_finding_explained(tmp_path: Path) -> None:
    """glare-add-media with a polite Chromium fails on finding chromium-rollback-extmap; a
    negotiator that logs a prefix before the error gets the same explained cells."""
    reference = (config.ROOT / "fixtures" / "negotiators" / "perfect.js").read_text()
    prefixed = tmp_path / "prefixed.js"
    prefixed.write_text(reference.replace("console.error(err);", 'console.error("negotiation failed:", err);'))
    assert prefixed.read_text().count('"negotiation failed:"') == 2
    outcomes = {}
    for name, negotiator in (("reference", []), ("prefixed", ["--negotiator-js", str(prefixed)])):
        out = tmp_path / name
        runs.run_bounded([*RIG, "matrix", "--peers", "chromium,aiortc", "--pairs", "chromium:chromium,chromium:aiortc",
                               "--scenarios", "glare-add-media", "--workers", "1", "--capture", "off",
                               "--out", str(out), *negotiator], timeout=180, cwd=config.ROOT)
        outcomes[name] = _outcomes(out)
    assert outcomes["reference"] == outcomes["prefixed"], outcomes
    assert {o for o, _ in outcomes["prefixed"].values()} == {"xfailed"}, outcomes
    assert {f for _, f in outcomes["prefixed"].values()} == {"chromium-rollback-extmap"}, outcomes
