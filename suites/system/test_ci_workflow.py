""".github/workflows/interop.yml, run here: every step that can run on this machine is executed
with bash as GitHub would (matrix variables substituted, a small catalogue: Chromium and aiortc, two
scenarios), the set-up steps in a bare Debian 12 root by test_debian_root.py, and each remaining
step (an action) is listed with its reason in workflow_steps.PLACES; a step in none of these fails
here, so a new one cannot slip by. The merged report must equal, cell by cell, an unsharded run of
the same catalogue, its junit.xml must carry the properties, and the gate must pass a full run
and refuse a full matrix that lost cells. About 40 s (three small matrix runs)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from workflow_steps import DEBIAN_ROOT, HERE, PLACES, WORKFLOW, bash_argv, expand, step, workflow, workflow_env

from rig import compare, options, runs
from rig.peerspec import PeerSpec

PEERS, SCENARIOS = "chromium,aiortc", "initial-datachannel,glare-datachannel"
JUNIT_PROPERTIES = {"case_id", "scenario", "polite.spec", "polite.kind", "polite.version", "impolite.spec",
                    "impolite.kind", "impolite.version", "outcome", "expected", "finding", "findings",
                    "glare.forced", "glare.observed", "glare.rolled_back", "glare.ignored", "glare.reoffered",
                    "case_page"}
SHA_PIN = re.compile(r"^\s*(?:-\s*)?uses:\s*([^@\s]+)@(\S+)(?:\s+#\s*(\S+))?\s*$")


def _bash(script: str, cwd: Path, env: dict[str, str], timeout: float = 300):
    return runs.run_bounded(bash_argv(script), cwd=cwd, env=env, timeout=timeout)


def _cells(results: Path) -> dict[tuple[str, str, str], tuple[str, list[str]]]:
    """Each cell's expectation and its outcomes."""
    run = json.loads(results.read_text())
    cells: dict[tuple[str, str, str], tuple[str, list[str]]] = {}
    for c in run["cases"]:
        key = (c["scenario"], c["polite"]["spec"], c["impolite"]["spec"])
        cells.setdefault(key, (c["expected"], []))[1].append(c["outcome"])
    return {k: (e, sorted(v)) for k, (e, v) in cells.items()}


def assert_same_verdicts(run: dict, other: dict) -> None:
    """Two runs of one catalogue: the same cells with the same expectations, and the same outcomes
    wherever the expectation is one outcome. A cell expected "xfail or pass" (an intermittent
    finding) may land either way in each run, so there only the expectation is compared."""
    assert sorted(run) == sorted(other), "the same cells"
    for key, (expected, outcomes) in run.items():
        assert other[key][0] == expected, f"{key}: the same expectation"
        if expected != "xfail or pass":
            assert other[key][1] == outcomes, f"{key}: the same outcomes"


def test_every_step_is_run_or_listed_with_its_reason() -> None:
    wf = workflow()
    seen = set()
    for job_name, job in wf["jobs"].items():
        for s in job["steps"]:
            assert s.get("id"), f"interop.yml: a step of job {job_name!r} without an id: {s.get('name') or s.get('uses')}"
            key = (job_name, s["id"])
            assert key not in seen, f"interop.yml: two steps {key}"
            seen.add(key)
            place = PLACES.get(key)
            assert place is not None, (f"interop.yml: step {key} is neither run by a test nor listed with the reason "
                                       "it cannot be: add it to suites/system/workflow_steps.py PLACES")
            if place in (HERE, DEBIAN_ROOT):
                assert "run" in s, f"{key} is placed {place!r} but is not a run step"
            else:
                assert "uses" in s and "run" not in s, f"{key}: only an action may go unrun (a run step can run here)"
    assert set(PLACES) == seen, f"PLACES lists steps the workflow does not have: {sorted(set(PLACES) - seen)}"
    in_root = {job for (job, _), place in PLACES.items() if place == DEBIAN_ROOT}
    assert in_root <= {"shard", "merge"}, f"test_debian_root.py runs the steps of jobs shard and merge, not {in_root}"


def test_the_workflow_has_every_shard_a_cache_and_a_gate() -> None:
    wf = workflow()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    shard_job, merge_job = wf["jobs"]["shard"], wf["jobs"]["merge"]
    assert shard_job["container"] == merge_job["container"] == "debian:12", "what test_debian_root.py builds"
    matrix = shard_job["strategy"]["matrix"]
    n = len(matrix["shard"])
    assert matrix["shard"] == [f"{i}/{n}" for i in range(1, n + 1)], "every slice 1/N..N/N, once"
    assert all({"name", "peers"} <= set(s) for s in matrix["set"]) and shard_job["strategy"]["fail-fast"] is False

    # least privilege: checks: write only where the JUnit check run is made
    assert wf["permissions"] == {"contents": "read"}
    assert "permissions" not in shard_job
    assert merge_job["permissions"] == {"contents": "read", "actions": "read", "checks": "write"}
    assert wf["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert {"github.workflow", "github.ref"} <= set(re.findall(r"\$\{\{\s*(.*?)\s*\}\}", wf["concurrency"]["group"]))

    caches = {s["id"]: s for s in shard_job["steps"] if str(s.get("uses", "")).startswith("actions/cache@")}
    assert caches["browser-cache"]["with"]["path"] == "~/.cache/glare-rig"
    for job in (shard_job, merge_job):
        apt, pip = step(job, "apt-cache")["with"], step(job, "pip-cache")["with"]
        assert apt["path"] == "/var/cache/apt/archives" and pip["path"] == "~/.cache/pip"
        for key in (apt["key"], pip["key"]):
            assert "steps.debian.outputs.release" in key, "a cache of another Debian release is not this one's"
        assert "github.job" in apt["key"], "the merge job installs no browser: its cache must not stand for the shards'"
        assert "hashFiles('pyproject.toml')" in pip["key"]
        assert "docker-clean" in step(job, "container")["run"], "debian:12 deletes apt's downloads unless told not to"
        ids = [s["id"] for s in job["steps"]]
        assert ids.index("debian") < ids.index("apt-cache") and ids.index("checkout") < ids.index("apt-cache")
        assert ids.index("apt-cache") < ids.index("setup") and ids.index("pip-cache") < ids.index("setup")

    assert "rig matrix" in step(shard_job, "shard")["run"] and "--shard" in step(shard_job, "shard")["run"]
    upload, download = step(shard_job, "upload"), step(merge_job, "download")
    assert upload["uses"].startswith("actions/upload-artifact@") and download["uses"].startswith("actions/download-artifact@")
    assert "strategy.job-index" in upload["with"]["name"], "one artifact per job, whatever its shard"
    name = expand(upload["with"]["name"], {"matrix.set.name": "newest", "strategy.job-index": "0"})
    assert fnmatch.fnmatch(name, download["with"]["pattern"]), "the merge job downloads every shard's artifact"
    assert merge_job["needs"] == "shard"
    assert "rig merge" in step(merge_job, "merge")["run"]
    assert "GITHUB_STEP_SUMMARY" in step(merge_job, "summary")["run"]

    junit = step(merge_job, "junit")
    assert junit["uses"].startswith("mikepenz/action-junit-report@") and junit["with"]["report_paths"].endswith("junit.xml")
    # a fork's pull request has a read-only token: annotations, no check run (which would fail with 403)
    assert junit["with"]["annotate_only"] == "${{ github.event.pull_request.head.repo.fork == true }}"

    # the baseline: only a full matrix of a push to main, and only full runs upload that name
    baseline = step(merge_job, "baseline")["with"]
    assert (baseline["branch"], baseline["event"], baseline["workflow_conclusion"]) == ("main", "push", "success")
    assert baseline["path"] == "baseline" and baseline["search_artifacts"] is True
    report_upload = step(merge_job, "upload")["with"]["name"]
    assert report_upload == "${{ env.REPORT_ARTIFACT }}"
    assert workflow_env(wf, "all")["REPORT_ARTIFACT"] == baseline["name"]
    assert workflow_env(wf, "glare-initial")["REPORT_ARTIFACT"] != baseline["name"]
    assert (workflow_env(wf, "all")["FULL_MATRIX"], workflow_env(wf, "glare-initial")["FULL_MATRIX"]) == ("true", "false")
    assert "rig compare baseline merged" in step(merge_job, "gate")["run"]


def test_every_action_is_pinned_to_a_commit_with_its_tag() -> None:
    uses = [m for line in WORKFLOW.read_text().splitlines() if (m := SHA_PIN.match(line))]
    assert len(uses) == sum(1 for job in workflow()["jobs"].values() for s in job["steps"] if "uses" in s)
    for m in uses:
        action, ref, tag = m.groups()
        assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action}@{ref}: pin a full commit SHA (a tag can be moved)"
        assert tag and re.fullmatch(r"v\d+(\.\d+)*", tag), f"{action}@{ref}: say its tag in a comment (# v1.2.3)"


#: the newest channels the workflow runs, and what each is paired with: the versions users run
CHANNEL_SPECS = {"chromium@beta", "chromium@canary", "firefox@beta", "firefox@nightly"}
USERS_RUN = {"chromium@stable", "firefox@release", "firefox@esr", "aiortc"}


def _sets() -> list[dict]:
    return workflow()["jobs"]["shard"]["strategy"]["matrix"]["set"]


def test_every_version_set_is_a_valid_matrix_of_every_shard() -> None:
    """Each set's peers, pairs and every shard pass the checks rig matrix makes before it starts
    (options.check: each spec through the peer-spec parser, each pair's specs among the peers,
    the shard cut from the whole catalogue); no feed is read, nothing downloaded."""
    sets = _sets()
    assert len({s["name"] for s in sets}) == len(sets), "set names key the caches and artifacts"
    for s in sets:
        assert set(s) <= {"name", "peers", "pairs"}, f"{s['name']}: the shard step reads name, peers, pairs only"
        for shard in workflow()["jobs"]["shard"]["strategy"]["matrix"]["shard"]:
            options.check(argparse.Namespace(peers=s["peers"], pairs=s.get("pairs"), shard=shard, scenarios="all"))
        for spec in options.peer_list(s["peers"]):
            assert str(PeerSpec.parse(spec)) == spec


def test_channel_sets_pair_each_newest_channel_with_what_users_run_in_both_role_orders() -> None:
    pairs: set[tuple[str, str]] = set()
    for s in _sets():
        got = options.parse_pairs(s.get("pairs"))
        peers = options.peer_list(s["peers"])
        pairs |= got if got is not None else {(p, i) for p in peers for i in peers}
    for channel in CHANNEL_SPECS:
        assert PeerSpec.parse(channel).channel, f"{channel}: not a channel rig resolves from its official feed"
        for other in USERS_RUN:
            assert {(channel, other), (other, channel)} <= pairs, f"{channel} and {other}: both role orders"
    # a channel meets only what users run: two moving channels would leave no fixed side to blame
    for p, i in pairs:
        assert not (p in CHANNEL_SPECS and i in CHANNEL_SPECS), f"{p}:{i} pairs two channels"
    assert {"chromium@stable", "firefox@release", "firefox@esr"} == {
        x for x in USERS_RUN if PeerSpec.parse(x).channel}, "what users run comes from the official feeds too"


def test_the_shard_step_passes_a_sets_pairs_and_only_then(tmp_path: Path) -> None:
    """The shard step's bash, with `rig` a stub that prints its arguments: a set without pairs
    runs every ordered pair of its peers, a set with them passes --pairs as one argument."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rig").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (bin_dir / "rig").chmod(0o755)
    env = {**os.environ, **workflow_env(workflow(), "all"), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    shard = step(workflow()["jobs"]["shard"], "shard")
    for s in _sets():
        values = {"matrix.set.peers": s["peers"], "matrix.set.pairs": s.get("pairs", ""), "matrix.shard": "1/2"}
        step_env = {k: expand(str(v), values) for k, v in shard["env"].items()}
        got = _bash(expand(shard["run"], values), tmp_path, {**env, **step_env}, timeout=30)
        assert got.returncode == 0, got.stderr
        argv = got.stdout.splitlines()
        assert argv[:3] == ["matrix", "--peers", s["peers"]] and "--shard" in argv
        if s.get("pairs"):
            assert argv[argv.index("--pairs") + 1] == s["pairs"]
        else:
            assert "--pairs" not in argv


@pytest.mark.long
def test_the_workflows_steps_run_here(tmp_path: Path) -> None:
    wf = workflow()
    shard_job, merge_job = wf["jobs"]["shard"], wf["jobs"]["merge"]
    ran: set[tuple[str, str]] = set()
    shard_values = shard_job["strategy"]["matrix"]["shard"]
    bin_dir = tmp_path / "bin"  # `rig` on PATH, as the setup step puts .venv/bin there
    bin_dir.mkdir()
    (bin_dir / "rig").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rig "$@"\n')
    (bin_dir / "rig").chmod(0o755)
    env = {**os.environ, **workflow_env(wf, SCENARIOS), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    # a subset of the scenarios: not a full matrix
    assert env["FULL_MATRIX"] == "false" and env["SCENARIOS"] == SCENARIOS

    # the reference: the same catalogue in one unsharded run
    ref = tmp_path / "unsharded"
    got = runs.run_bounded([sys.executable, "-m", "rig", "matrix", "--peers", PEERS, "--scenarios", SCENARIOS,
                                 "--out", str(ref)], cwd=tmp_path, env=env, timeout=300)
    assert got.returncode in (0, 1) and (ref / "results.json").is_file(), got.stdout[-2000:] + got.stderr[-2000:]

    merge_dir = tmp_path / "merge-job"
    shards: dict = {}
    download = step(merge_job, "download")["with"]["path"]
    for index, shard in enumerate(shard_values):
        values = {"matrix.set.peers": PEERS, "matrix.set.name": "local", "matrix.shard": shard,
                  "strategy.job-index": str(index)}
        job_dir = tmp_path / f"job-{index}"
        job_dir.mkdir()
        got = _bash(expand(step(shard_job, "shard")["run"], values), job_dir, env)
        assert got.returncode == 0, f"shard {shard}: {got.stdout[-2000:]}{got.stderr[-2000:]}"
        ran.add(("shard", "shard"))
        upload = step(shard_job, "upload")["with"]
        # download-artifact with a pattern puts each artifact in PATH/<its name>/
        shutil.copytree(job_dir / expand(upload["path"], values),
                        merge_dir / download / expand(upload["name"], values))
        data = json.loads((job_dir / expand(upload["path"], values) / "results.json").read_text())
        assert data["shard"] == shard and len(data["catalogue"]) == 8
        shards.update(_cells(job_dir / expand(upload["path"], values) / "results.json"))

    got = _bash(step(merge_job, "merge")["run"], merge_dir, env, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr
    ran.add(("merge", "merge"))
    merged = merge_dir / "merged"
    assert _cells(merged / "results.json") == shards, "the merged run is its shards' cells, each as its shard ran it"
    assert_same_verdicts(_cells(merged / "results.json"), _cells(ref / "results.json"))

    summary = tmp_path / "step-summary.md"
    got = _bash(step(merge_job, "summary")["run"], merge_dir, {**env, "GITHUB_STEP_SUMMARY": str(summary)})
    assert got.returncode == 0, got.stderr
    ran.add(("merge", "summary"))
    text = summary.read_text()
    assert "| `glare-datachannel` |" in text and "chromium → aiortc" in text and "Merged from 2 report(s)" in text

    gate = step(merge_job, "gate")["run"]
    shutil.copytree(ref, merge_dir / "baseline")  # what the baseline step downloads: main's last full report
    # two runs of one catalogue differ at most in the cells of intermittent findings, and the gate
    # passes those (a hit rate from one run is not a regression)
    changes = compare.compare(compare.load(ref), compare.load(merged))
    assert all(c.old.intermittent and c.new.intermittent for c in changes), [str(c.key) for c in changes]
    for full in ("true", "false"):
        got = _bash(gate, merge_dir, {**env, "FULL_MATRIX": full}, timeout=120)
        assert got.returncode == 0 and f"{len(changes)} changed cell(s)" in got.stdout, got.stdout + got.stderr
    ran.add(("merge", "gate"))
    # a run that lost cells (here: one shard's report as the whole): a full matrix fails the gate,
    # a subset run by hand passes it, saying what it lacks
    lost = tmp_path / "lost-cells"
    shutil.copytree(ref, lost / "baseline")
    shutil.copytree(tmp_path / "job-0" / "report", lost / "merged")
    got = _bash(gate, lost, {**env, "FULL_MATRIX": "true"}, timeout=120)
    assert got.returncode == 3 and "lacks" in got.stderr, got.stdout + got.stderr
    got = _bash(gate, lost, {**env, "FULL_MATRIX": "false"}, timeout=120)
    assert got.returncode == 0 and "--allow-removed" in got.stdout, got.stdout + got.stderr
    # the job-summary line when main has no report yet
    nothing = tmp_path / "no-baseline"
    shutil.copytree(ref, nothing / "merged")
    got = _bash(gate, nothing, {**env, "GITHUB_STEP_SUMMARY": str(summary)}, timeout=60)
    assert got.returncode == 0 and "gate is skipped" in summary.read_text(), got.stdout + got.stderr

    # the history: what the cache restores (earlier runs' results, one folder each, named by time),
    # this run added, the oldest beyond HISTORY_KEEP dropped, the page written into the report
    history = merge_dir / "history"
    for name in ("20261201T000000Z-1-1", "20261202T000000Z-2-1"):
        (history / name).mkdir(parents=True)
        shutil.copy(ref / "results.json", history / name / "results.json")
    got = _bash(step(merge_job, "history")["run"], merge_dir,
                {**env, "GITHUB_RUN_ID": "3", "GITHUB_RUN_ATTEMPT": "1", "HISTORY_KEEP": "2"}, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr
    ran.add(("merge", "history"))
    kept = sorted(p.name for p in history.iterdir())
    assert len(kept) == 2 and kept[0] == "20261202T000000Z-2-1" and kept[1].endswith("-3-1"), kept
    assert "rig history: 2 run(s)" in got.stdout and (merged / "history.html").is_file(), got.stdout
    save, restore = step(merge_job, "history-save"), step(merge_job, "history-restore")
    assert restore["with"]["restore-keys"] == "history-" and save["with"]["path"] == restore["with"]["path"] == "history"
    assert "refs/heads/main" in save["if"] and "FULL_MATRIX == 'true'" in save["if"], save["if"]

    assert ran == {k for k, place in PLACES.items() if place == HERE}, "every step placed here is run here"

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
