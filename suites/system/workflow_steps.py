""".github/workflows/interop.yml as the system tests read it, and where each of its steps is
exercised. A step that nobody runs is a step that can rot unseen (issue 21: the set-up steps were
never run and could not have worked), so every step has a place here, and
test_ci_workflow.py fails on a step that has none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rig import config

WORKFLOW = config.ROOT / ".github" / "workflows" / "interop.yml"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

#: run on this machine by test_ci_workflow.py
HERE = "here"
#: run in a bare Debian 12 root, as in the job's debian:12 container, by test_debian_root.py
DEBIAN_ROOT = "debian-root"

#: (job, step id) -> HERE, DEBIAN_ROOT, or why the step is not run anywhere
PLACES: dict[tuple[str, str], str] = {
    ("shard", "container"): DEBIAN_ROOT,
    ("shard", "debian"): DEBIAN_ROOT,
    ("shard", "checkout"): "an action (GitHub's runner); test_debian_root.py copies the checkout's tracked files instead",
    ("shard", "apt-cache"): "an action; test_debian_root.py binds a per-user cache at /var/cache/apt/archives instead",
    ("shard", "pip-cache"): "an action; test_debian_root.py binds a per-user cache at ~/.cache/pip instead",
    ("shard", "browser-cache"): "an action; its key and path are checked by test_ci_workflow.py",
    ("shard", "setup"): DEBIAN_ROOT,
    ("shard", "shard"): HERE,  # and once more in the Debian root, on the browser it installed
    ("shard", "upload"): "an action; test_ci_workflow.py lays the artifact out as download-artifact would",
    ("merge", "container"): DEBIAN_ROOT,
    ("merge", "debian"): DEBIAN_ROOT,
    ("merge", "checkout"): "an action (GitHub's runner)",
    ("merge", "apt-cache"): "an action; keyed by the job, checked by test_ci_workflow.py",
    ("merge", "pip-cache"): "an action; checked by test_ci_workflow.py",
    ("merge", "setup"): DEBIAN_ROOT,
    ("merge", "download"): "an action; test_ci_workflow.py lays the shards out as it does",
    ("merge", "merge"): HERE,
    ("merge", "summary"): HERE,
    ("merge", "junit"): "an action (a check run, or annotations on a fork's pull request); its inputs are checked",
    ("merge", "baseline"): "an action (the runs API); its filters are checked by test_ci_workflow.py",
    ("merge", "gate"): HERE,
    ("merge", "history-restore"): "an action (a cache restored by key prefix); test_ci_workflow.py lays out a restored history",
    ("merge", "history"): HERE,
    ("merge", "history-save"): "an action; its key and condition are checked by test_ci_workflow.py",
    ("merge", "upload"): "an action; its artifact name, full or partial, is checked by test_ci_workflow.py",
}


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def step(job: dict, step_id: str) -> dict:
    found = [s for s in job["steps"] if s.get("id") == step_id]
    assert len(found) == 1, f"interop.yml: expected one step with id {step_id!r} in the job"
    return found[0]


def steps_placed(wf: dict, job: str, place: str) -> list[dict]:
    """The job's steps that ``place`` runs, in the workflow's order (the order they depend on)."""
    return [s for s in wf["jobs"][job]["steps"] if PLACES.get((job, s.get("id", ""))) == place]


def expand(text: str, values: dict[str, str]) -> str:
    """The text with each ${{ expression }} replaced; an expression the caller does not know
    fails the test, so a new variable in a step cannot slip past it untested."""
    def one(m: re.Match) -> str:
        if m.group(1) not in values:
            pytest.fail(f"interop.yml: unknown expression ${{{{ {m.group(1)} }}}} in {text!r}; teach "
                        "the test that runs this step its local value")
        return values[m.group(1)]
    return EXPR.sub(one, text)


def bash_argv(script: str) -> list[str]:
    """A `run:` step as GitHub runs it with `shell: bash`."""
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script]


def workflow_env(wf: dict, scenarios: str) -> dict[str, str]:
    """The workflow-level env for a run whose `scenarios` input is ``scenarios`` (a push, a pull
    request and the weekly run have none: 'all')."""
    full = scenarios == "all"
    values = {"inputs.scenarios || 'all'": scenarios,
              "(inputs.scenarios || 'all') == 'all'": "true" if full else "false",
              "(inputs.scenarios || 'all') == 'all' && 'interop-report-full' || 'interop-report-partial'":
                  "interop-report-full" if full else "interop-report-partial"}
    return {k: expand(str(v), values) for k, v in wf["env"].items()}


def path_in(root: Path, path: str) -> Path:
    return root / path.lstrip("/")
