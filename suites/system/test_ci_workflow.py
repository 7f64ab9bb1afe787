""".github/workflows/interop.yml, run here: its shard and merge steps are read from the file
and executed with bash as GitHub would (matrix variables substituted, a small catalogue: Chromium
and aiortc, two scenarios), so the file cannot rot. The merged report must equal, cell by cell,
an unsharded run of the same catalogue, and its junit.xml must carry the properties.
About 40 s (three small matrix runs)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from rig import config, processes

WORKFLOW = config.ROOT / ".github" / "workflows" / "interop.yml"
PEERS, SCENARIOS = "chromium,aiortc", "initial-datachannel,glare-datachannel"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
JUNIT_PROPERTIES = {"case_id", "scenario", "polite.spec", "polite.kind", "polite.version", "impolite.spec",
                    "impolite.kind", "impolite.version", "outcome", "expected", "finding", "findings",
                    "glare.forced", "glare.observed", "glare.rolled_back", "glare.ignored", "glare.reoffered",
                    "case_page"}


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _step(job: dict, step_id: str) -> dict:
    found = [s for s in job["steps"] if s.get("id") == step_id]
    assert len(found) == 1, f"interop.yml: expected one step with id {step_id!r} in the job"
    return found[0]


def _expand(text: str, values: dict[str, str]) -> str:
    """The text with each ${{ expression }} replaced; an expression this test does not know fails it,
    so a new variable in a step cannot slip past it untested."""
    def one(m: re.Match) -> str:
        if m.group(1) not in values:
            pytest.fail(f"interop.yml: unknown expression ${{{{ {m.group(1)} }}}} in {text!r}; teach "
                        "suites/system/test_ci_workflow.py its local value")
        return values[m.group(1)]
    return EXPR.sub(one, text)


def _bash(script: str, cwd: Path, env: dict[str, str], timeout: float = 300):
    """A `run:` step as GitHub runs it with `shell: bash`."""
    return processes.run_bounded(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                 cwd=cwd, env=env, timeout=timeout)


def _cells(results: Path) -> dict[tuple[str, str, str], list[str]]:
    run = json.loads(results.read_text())
    cells: dict[tuple[str, str, str], list[str]] = {}
    for c in run["cases"]:
        cells.setdefault((c["scenario"], c["polite"]["spec"], c["impolite"]["spec"]), []).append(c["outcome"])
    return {k: sorted(v) for k, v in cells.items()}


def test_the_workflow_has_every_shard_a_cache_and_a_gate() -> None:
    wf = _workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    shard_job, merge_job = wf["jobs"]["shard"], wf["jobs"]["merge"]
    matrix = shard_job["strategy"]["matrix"]
    n = len(matrix["shard"])
    assert matrix["shard"] == [f"{i}/{n}" for i in range(1, n + 1)], "every slice 1/N..N/N, once"
    assert all({"name", "peers"} <= set(s) for s in matrix["set"]) and shard_job["strategy"]["fail-fast"] is False
    cache = next(s for s in shard_job["steps"] if str(s.get("uses", "")).startswith("actions/cache@"))
    assert cache["with"]["path"] == "~/.cache/glare-rig"
    assert "rig matrix" in _step(shard_job, "shard")["run"] and "--shard" in _step(shard_job, "shard")["run"]
    upload, download = _step(shard_job, "upload"), _step(merge_job, "download")
    assert upload["uses"].startswith("actions/upload-artifact@") and download["uses"].startswith("actions/download-artifact@")
    assert "strategy.job-index" in upload["with"]["name"], "one artifact per job, whatever its shard"
    name = _expand(upload["with"]["name"], {"matrix.set.name": "newest", "strategy.job-index": "0"})
    assert fnmatch.fnmatch(name, download["with"]["pattern"]), "the merge job downloads every shard's artifact"
    assert merge_job["needs"] == "shard"
    assert "rig merge" in _step(merge_job, "merge")["run"]
    assert "GITHUB_STEP_SUMMARY" in _step(merge_job, "summary")["run"]
    junit = next(s for s in merge_job["steps"] if "junit" in str(s.get("uses", "")))
    assert junit["with"]["report_paths"].endswith("junit.xml")
    baseline = _step(merge_job, "baseline")
    assert baseline["with"]["branch"] == "main" and baseline["with"]["path"] == "baseline"
    assert "rig compare baseline" in _step(merge_job, "gate")["run"]


def test_the_workflows_shard_and_merge_steps_run_here(tmp_path: Path) -> None:
    wf = _workflow()
    shard_job, merge_job = wf["jobs"]["shard"], wf["jobs"]["merge"]
    shard_values = shard_job["strategy"]["matrix"]["shard"]
    bin_dir = tmp_path / "bin"  # `rig` on PATH, as ./run setup puts .venv/bin there
    bin_dir.mkdir()
    (bin_dir / "rig").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rig "$@"\n')
    (bin_dir / "rig").chmod(0o755)
    workflow_env = {k: _expand(str(v), {"inputs.scenarios || 'all'": SCENARIOS}) for k, v in wf["env"].items()}
    env = {**os.environ, **workflow_env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    # the reference: the same catalogue in one unsharded run
    ref = tmp_path / "unsharded"
    got = processes.run_bounded([sys.executable, "-m", "rig", "matrix", "--peers", PEERS, "--scenarios", SCENARIOS,
                                 "--out", str(ref)], cwd=tmp_path, env=env, timeout=300)
    assert got.returncode in (0, 1) and (ref / "results.json").is_file(), got.stdout[-2000:] + got.stderr[-2000:]

    merge_dir = tmp_path / "merge-job"
    download = _step(merge_job, "download")["with"]["path"]
    for index, shard in enumerate(shard_values):
        values = {"matrix.set.peers": PEERS, "matrix.set.name": "local", "matrix.shard": shard,
                  "strategy.job-index": str(index)}
        job_dir = tmp_path / f"job-{index}"
        job_dir.mkdir()
        got = _bash(_expand(_step(shard_job, "shard")["run"], values), job_dir, env)
        assert got.returncode == 0, f"shard {shard}: {got.stdout[-2000:]}{got.stderr[-2000:]}"
        upload = _step(shard_job, "upload")["with"]
        # download-artifact with a pattern puts each artifact in PATH/<its name>/
        shutil.copytree(job_dir / _expand(upload["path"], values),
                        merge_dir / download / _expand(upload["name"], values))
        data = json.loads((job_dir / _expand(upload["path"], values) / "results.json").read_text())
        assert data["shard"] == shard and len(data["catalogue"]) == 8

    got = _bash(_step(merge_job, "merge")["run"], merge_dir, env, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr
    merged = merge_dir / "merged"
    assert _cells(merged / "results.json") == _cells(ref / "results.json"), "the shards, merged, are the whole run"

    summary = tmp_path / "step-summary.md"
    got = _bash(_step(merge_job, "summary")["run"], merge_dir, {**env, "GITHUB_STEP_SUMMARY": str(summary)})
    assert got.returncode == 0, got.stderr
    text = summary.read_text()
    assert "| `glare-datachannel` |" in text and "chromium → aiortc" in text and "Merged from 2 report(s)" in text

    shutil.copytree(ref, merge_dir / "baseline")  # what the baseline step downloads: main's last report
    got = _bash(_step(merge_job, "gate")["run"], merge_dir, env, timeout=120)
    assert got.returncode == 0 and "0 changed cell(s)" in got.stdout, got.stdout + got.stderr

    # every link of the merged index opens a page that is there
    index = (merged / "index.html").read_text()
    for href in set(re.findall(r'href="(cases/[^"#]+)"', index)):
        assert (merged / href).is_file(), href
    run = json.loads((merged / "results.json").read_text())
    for case in run["cases"]:
        assert (merged / case["details"]).is_file()

    cases = {c["id"]: c for c in run["cases"]}
    testcases = ET.parse(merged / "junit.xml").getroot().findall("./testsuite/testcase")
    assert len(testcases) == len(cases) == 8
    for tc in testcases:
        props = {p.get("name"): p.get("value") for p in tc.findall("./properties/property")}
        assert JUNIT_PROPERTIES <= set(props), sorted(JUNIT_PROPERTIES - set(props))
        case = cases[props["case_id"]]
        assert tc.get("classname") == case["scenario"] == props["scenario"]
        assert tc.get("name") == f"{case['polite']['spec']} polite x {case['impolite']['spec']} impolite"
        assert props["outcome"] == case["outcome"] and props["polite.version"] == case["polite"]["version"]
        assert (merged / props["case_page"]).is_file()
        if case["outcome"] == "xfailed":
            skipped = tc.find("skipped")
            assert skipped is not None and "\n" not in skipped.get("message") and props["finding"] == case["finding"]
