"""The rig's command line end to end: lifecycle (no survivors after Ctrl-C),
exit status (bad input: test_usage_errors.py). Real browsers and aiortc, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rig import config, processes, runs

RIG = [sys.executable, "-m", "rig"]


def _is_browser(pid: int) -> bool:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return any(n in comm for n in ("chrom", "firefox", "headless"))


def test_ctrl_c_leaves_no_browser_behind(tmp_path: Path) -> None:
    run_id = f"test-{uuid.uuid4().hex}"
    env = dict(os.environ, **{config.RUN_MARKER_ENV: run_id})
    proc = subprocess.Popen(RIG + ["matrix", "--peers", "chromium,firefox", "--scenarios", "glare-repeated",
                                   "--repeat", "3", "--workers", "2", "--out", str(tmp_path)],
                            env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        browsers: list[int] = []
        while time.monotonic() < deadline and not browsers:
            browsers = [p for p in processes.marked(run_id) if _is_browser(p)]
            time.sleep(0.2)  # waiting for the run to start its browsers (bounded)
        assert browsers, "the run never started a browser within 60 s"
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode != 0
    survivors = [p for p in processes.marked(run_id) if Path(f"/proc/{p}").exists()]
    assert not survivors, f"processes outlived the interrupted run: {survivors}\n{out.decode()[-2000:]}"


def test_broken_negotiator_fails_its_cells_with_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("def attach(pc, signaler, *, polite):\n    raise RuntimeError('boom')\n")
    out = tmp_path / "out"
    r = runs.run_bounded(RIG + ["matrix", "--peers", "aiortc", "--scenarios", "initial-datachannel,add-video",
                         "--negotiator-py", str(bad), "--workers", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    run = json.loads((out / "results.json").read_text())
    assert len(run["cases"]) == 2  # every cell ran and has a verdict
    for case in run["cases"]:
        assert case["outcome"] in ("failed", "error")
        assert f"{bad}:2" in case["reason"] and "RuntimeError: boom" in case["reason"], case["reason"]


def test_version_is_one_line_with_the_pins_from_package_metadata() -> None:
    from importlib.metadata import version
    r = runs.run_bounded(RIG + ["--version"], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (f"rig {version('glare-rig')} (Playwright {version('playwright')}, aiortc {version('aiortc')}, "
                        f"Python {sys.version.split()[0]})\n")


def test_js_negotiator_that_does_not_parse_names_file_and_line_in_every_browser(tmp_path: Path) -> None:
    bad = tmp_path / "mine.js"
    bad.write_text("export default function attach(pc, signaler, { polite }) {\n  let x = ;\n}\n")
    out = tmp_path / "out"
    r = runs.run_bounded(RIG + ["matrix", "--peers", "chromium,firefox", "--scenarios", "initial-datachannel",
                         "--negotiator-js", str(bad), "--workers", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 1
    run = json.loads((out / "results.json").read_text())
    assert len(run["cases"]) == 4
    for case in run["cases"]:
        assert case["outcome"] == "failed"
        assert f"negotiator {bad}:2:" in case["reason"] and "SyntaxError" in case["reason"], case["reason"]


def test_a_logged_error_fails_the_case_with_its_name_and_message(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.js"
    noisy.write_text('import attach from "/fixtures/negotiators/perfect.js";\n'
                     "export default function (pc, signaler, opts) {\n"
                     '  console.error(new DOMException("noisy on purpose", "OperationError"));\n'
                     "  return attach(pc, signaler, opts);\n}\n")
    out = tmp_path / "out"
    runs.run_bounded(RIG + ["matrix", "--peers", "firefox", "--scenarios", "initial-datachannel",
                     "--negotiator-js", str(noisy), "--workers", "1", "--out", str(out)],
                   capture_output=True, text=True, timeout=180)
    case = json.loads((out / "results.json").read_text())["cases"][0]
    assert case["outcome"] == "failed"
    assert "OperationError: noisy on purpose" in case["reason"], case["reason"]


MDN_FORM = """\
// MDN's form of perfect negotiation: no pending-answer guard.
export default function attach(pc, signaler, { polite }) {
  let makingOffer = false;
  let ignoreOffer = false;
  pc.onnegotiationneeded = async () => {
    try {
      makingOffer = true;
      await pc.setLocalDescription();
      signaler.send({ description: pc.localDescription });
    } catch (err) {
      console.error(err);
    } finally {
      makingOffer = false;
    }
  };
  pc.onicecandidate = ({ candidate }) => signaler.send({ candidate });
  signaler.onmessage = async ({ data: { description, candidate } }) => {
    try {
      if (description) {
        const offerCollision = description.type === "offer" && (makingOffer || pc.signalingState !== "stable");
        ignoreOffer = !polite && offerCollision;
        if (ignoreOffer) return;
        await pc.setRemoteDescription(description);
        if (description.type === "offer") {
          await pc.setLocalDescription();
          signaler.send({ description: pc.localDescription });
        }
      } else if (candidate) {
        try {
          await pc.addIceCandidate(candidate);
        } catch (err) {
          if (!ignoreOffer) throw err;
        }
      }
    } catch (err) {
      console.error(err);
    }
  };
}
"""


@pytest.mark.long
def test_a_users_negotiator_gets_a_verdict_per_cell_naming_the_race_that_breaks_it(tmp_path: Path) -> None:
    mine = tmp_path / "mdn.js"
    mine.write_text(MDN_FORM)
    out = tmp_path / "out"
    r = runs.run_bounded(RIG + ["matrix", "--peers", "firefox", "--negotiator-js", str(mine),
                         "--scenarios", "add-video,offer-during-answer",
                         "--workers", "1", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    verdict = {c["scenario"]: c for c in json.loads((out / "results.json").read_text())["cases"]}
    # In other glare scenarios the polite peer's answer and re-offer are sent back to back, so MDN's
    # form fails them only when the re-offer happens to land while the answer is pending; the
    # offer-during-answer scenario makes that race happen every time.
    assert verdict["add-video"]["outcome"] == "passed"
    broken = verdict["offer-during-answer"]
    assert broken["outcome"] == "failed"
    # the race: the re-offer arrived while the answer was pending, and the impolite peer ignored it
    assert "window 'srd-answer' reached" not in broken["reason"]
    assert "not stable" in broken["reason"] or "ends stable" in broken["reason"], broken["reason"]
    detail = json.loads((out / broken["details"]).read_text())
    ignored = [e for e in detail["events"]["impolite"] if e["type"] == "offer-ignored"]
    assert len(ignored) == 2, "the impolite peer should ignore the colliding offer and then the re-offer"
