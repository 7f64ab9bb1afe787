"""The workflow's set-up in what it runs on: a bare `debian:12`. A minimal Debian 12 root is made
with mmdebstrap from this machine's Debian sources; into it go the checkout's tracked files; then,
chrooted as root, the steps workflow_steps.PLACES puts here run in the workflow's order with bash
as GitHub runs them: the shard job's (apt-get for git, the Debian release, `./run setup`, which
must install python3, python3-venv and the browsers itself) and then one shard of a small matrix
(Chromium and aiortc, one scenario), whose browser must really run in the root; then the merge
job's set-up steps in the same root.

The root is a private tmpfs, unmounted in the `finally` (lazily if something still holds it, which
fails the test). Each step runs in a private mount namespace of its own (unshare), where /proc,
/sys, /dev/shm, /dev/pts, the caches and pip's local configuration are mounted: the kernel drops
those mounts with the namespace's last process, so none outlives its step, even when pytest is
killed; the `finally` first ends any process still rooted in the tree (which would keep its
namespace), and the test fails if a process or a mount under the tree is left.

Cost: the bare root is cached as a tarball (rebuilt after BASE_MAX_AGE, like pulling a newer
debian:12), apt's downloads and pip's cache are kept per user, so only the first run downloads
them; docs/ci.md has the figures."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from workflow_steps import DEBIAN_ROOT, bash_argv, expand, steps_placed, workflow, workflow_env

from rig import config, runs, versions

#: the workflow's container image -> the Debian suite mmdebstrap makes of it
SUITES = {"debian:12": "bookworm"}
#: what a root of the debian:12 image has too (its docker-apt-speedup, docker-no-languages)
BASE_OPTIONS = ["--variant=minbase", "--mode=root", "--dpkgopt=force-unsafe-io", '--aptopt=Acquire::Languages "none"']
BASE_MAX_AGE = 30 * 24 * 3600
BASE_BUILD_TIMEOUT = 900
#: seconds per step; the cold figures (nothing cached, 2 cores) are a third of these
STEP_TIMEOUTS = {"container": 300, "debian": 60, "setup": 1500, "shard": 300}
PEERS, SCENARIOS = "chromium,aiortc", "initial-datachannel"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKSPACE = "/src"
HOST_CA = "/run/glare-rig-host/ca-certificates.crt"
#: the root after set-up is about 2 GB (Chromium, Firefox ESR, Mesa, GTK, .venv); a tmpfs takes only what is written
TMPFS_SIZE = "6g"


def _why_not_here() -> str | None:
    if os.geteuid() != 0:
        return "bare Debian root test: needs root (chroot, mounts)"
    missing = [t for t in ("mmdebstrap", "chroot", "unshare", "flock", "tar", "git") if shutil.which(t) is None]
    if missing:
        return f"bare Debian root test: {', '.join(missing)} missing (as root: apt-get install -y mmdebstrap; ./run tests does)"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"bare Debian root test: root here may not make mounts ({probe.stderr.strip()})"
    return None


def _cache() -> Path:
    path = versions.cache_root() / "debian-root"
    (path / "apt" / "partial").mkdir(parents=True, exist_ok=True)
    (path / "pip").mkdir(parents=True, exist_ok=True)
    (path / "lock").touch()
    return path


def _debian_sources() -> list[Path]:
    """This machine's sources of Debian's own archive (a third-party repository's key is not in
    the root); none: mmdebstrap's default, deb.debian.org with updates and security."""
    apt = Path("/etc/apt")
    files = sorted((apt / "sources.list.d").glob("*.sources")) + sorted((apt / "sources.list.d").glob("*.list"))
    files += [apt / "sources.list"] if (apt / "sources.list").is_file() else []
    return [f for f in files if "deb.debian.org" in f.read_text() or "security.debian.org" in f.read_text()]


def _step_failed(what: str, timeout: float) -> None:
    pytest.fail(f"Debian root: {what} did not end within {timeout:.0f} s")


def _base(suite: str, cache: Path) -> Path:
    """The bare root as a tarball, made once per BASE_MAX_AGE: what pulling the image is to a job."""
    sources = _debian_sources()
    digest = hashlib.sha256(json.dumps([BASE_OPTIONS, suite, [f.read_text() for f in sources]]).encode()).hexdigest()
    tarball = cache / f"{suite}-minbase-{digest[:12]}.tar"
    if tarball.is_file() and time.time() - tarball.stat().st_mtime < BASE_MAX_AGE:
        return tarball
    part = tarball.with_name(f"{tarball.name}.{os.getpid()}.part")
    try:
        got = runs.run_bounded(["mmdebstrap", *BASE_OPTIONS, "--format=tar", suite, str(part), *map(str, sources)],
                               timeout=BASE_BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        part.unlink(missing_ok=True)
        _step_failed("mmdebstrap (making the bare root)", BASE_BUILD_TIMEOUT)
    assert got.returncode == 0, f"mmdebstrap: {got.stderr[-3000:]}"
    part.replace(tarball)
    for old in cache.glob(f"{suite}-minbase-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)
    return tarball


def _copy_checkout(root: Path) -> None:
    """The checkout's tracked files as they are now (what the rest of the suite tests), without
    its .venv, reports or anything untracked: what actions/checkout gives a job."""
    listed = subprocess.run(["git", "-C", str(config.ROOT), "ls-files", "-z"], capture_output=True, timeout=60,
                            check=True).stdout.decode().split("\0")
    dest = root / WORKSPACE.lstrip("/")
    for name in filter(None, listed):
        src = config.ROOT / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name, follow_symlinks=False)


def _pip_binds() -> tuple[list[str], str | None]:
    """Local paths this machine's pip configuration names (its files, find-links, file://
    indexes, constraints), to be mounted read-only at the same place, and its CA bundle, which
    goes elsewhere: the root's own ca-certificates writes /etc/ssl/certs."""
    got = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    paths, cert = {p for p in ("/etc/pip.conf", "/etc/xdg/pip", os.environ.get("PIP_CONFIG_FILE", ""))
                   if p and os.path.exists(p)}, None
    for line in got.stdout.splitlines():
        key, _, value = line.partition("=")
        for token in value.strip().strip("'\"").split():
            token = token.removeprefix("file://")
            if token.startswith("/") and os.path.exists(token):
                if key.endswith(".cert"):
                    cert = token
                elif key.endswith("index-url"):
                    paths.add(str(Path(token).parent))  # a local index links to files beside it (../../files)
                else:
                    paths.add(token)
    outer = [p for p in paths if not any(Path(p).is_relative_to(q) and p != q for q in paths)]
    return sorted(outer), cert


class DebianRoot:
    """A bare root and how to run a step in it, as a debian:12 job container would."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root, self.cache, self.lock = root, cache, cache / "lock"
        self.on_tmpfs = False
        self.path_entries: list[str] = []  # what steps added to $GITHUB_PATH, newest first
        self.env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
        self.mounts: list[list[str]] = []

    def make(self, base: Path) -> None:
        """The root on a tmpfs of its own: dpkg's gigabyte is written to memory, and removing it is
        an unmount (deleting it from this disk, mounted with online discard, took 36 s of the
        test's 159); private, so that nothing mounted under it propagates."""
        root, cache = self.root, self.cache
        root.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(root)], check=True, timeout=60)
        self.on_tmpfs = True
        subprocess.run(["mount", "--make-private", str(root)], check=True, timeout=60)
        started = time.monotonic()
        subprocess.run(["tar", "-C", str(root), "-xf", str(base)], check=True, timeout=300)
        print(f"Debian root: unpacked in {time.monotonic() - started:.1f} s")
        binds, cert = _pip_binds()
        # what the browsers and apt need of a running system, the caches, and pip's configuration
        self.mounts = [["mount", "-t", "proc", "proc", self._in("/proc")],
                       ["mount", "-t", "sysfs", "sysfs", self._in("/sys")],
                       ["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", self._in("/dev/shm")],
                       ["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts", self._in("/dev/pts")],
                       ["mount", "--bind", str(cache / "apt"), self._in("/var/cache/apt/archives")],
                       ["mount", "--bind", str(cache / "pip"), self._in("/root/.cache/pip")]]
        for path in binds:
            self.mounts.append(["mount", "--bind", "-o", "ro", path, self._mountpoint(path, path)])
        if cert:
            self.mounts.append(["mount", "--bind", "-o", "ro", cert, self._mountpoint(cert, HOST_CA)])
            self.env["PIP_CERT"] = HOST_CA
        (root / "github").mkdir()

    def _in(self, path: str) -> str:
        target = self.root / path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        return str(target)

    def _mountpoint(self, host: str, inside: str) -> str:
        target = self.root / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(host):
            target.mkdir(exist_ok=True)
        else:
            target.touch()
        return str(target)

    def run_step(self, what: str, script: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        """A `run:` step: bash in the root, in the workspace, with GitHub's step files."""
        files = {"GITHUB_PATH": "/github/path", "GITHUB_OUTPUT": "/github/output",
                 "GITHUB_STEP_SUMMARY": "/github/summary", "GITHUB_ENV": "/github/env"}
        for inside in files.values():
            (self.root / inside.lstrip("/")).write_text("")
        run_id = f"debian-root-{uuid.uuid4().hex}"
        inner = {"PATH": ":".join([*self.path_entries, PATH]), "HOME": "/root", "CI": "true",
                 "GITHUB_WORKSPACE": WORKSPACE, **files, **self.env, **env, config.RUN_MARKER_ENV: run_id}
        chrooted = ["chroot", str(self.root), "/usr/bin/env", "-i", "-C", WORKSPACE,
                    *[f"{k}={v}" for k, v in inner.items()], *bash_argv(script)]
        # flock: one user of the apt cache at a time (apt's own lock would fail, not wait)
        cmd = ["flock", "-w", str(int(timeout)), str(self.lock), "unshare", "--mount", "--propagation", "private",
               "sh", "-ec", " && ".join(map(shlex.join, self.mounts)) + ' && exec "$@"', "sh", *chrooted]
        started = time.monotonic()
        try:
            got = runs.run_bounded(cmd, timeout=timeout, run_id=run_id, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            _step_failed(f"step {what}", timeout)
        print(f"Debian root: step {what}: exit status {got.returncode} in {time.monotonic() - started:.1f} s")
        added = (self.root / "github" / "path").read_text().split()
        self.path_entries[:0] = reversed(added)
        return got

    def outputs(self) -> dict[str, str]:
        lines = (self.root / "github" / "output").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def processes_inside(self) -> list[int]:
        inside = []
        for d in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if d.name.isdigit() and Path(os.readlink(d / "root")).is_relative_to(self.root):
                    inside.append(int(d.name))
        return inside

    def end(self) -> None:
        """Ends what is left inside (a daemon a package started would keep its mount namespace)."""
        for pid in self.processes_inside():
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue  # already gone
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            select.select([fd], [], [], 10)  # readable once it has exited
            os.close(fd)


@pytest.mark.long
@pytest.mark.timeout(BASE_BUILD_TIMEOUT + 300 + 2 * sum(STEP_TIMEOUTS.values()))
def test_the_workflows_set_up_and_a_shard_run_in_a_bare_debian_12_root(tmp_path: Path) -> None:
    why = _why_not_here()
    if why:
        pytest.skip(why)
    wf = workflow()
    shard_job, merge_job = wf["jobs"]["shard"], wf["jobs"]["merge"]
    suite = SUITES[shard_job["container"]]
    cache = _cache()
    base = _base(suite, cache)
    root = DebianRoot(tmp_path / "root", cache)
    try:
        root.make(base)
        assert not (root.root / "usr/bin/python3").exists(), "a bare root has no python3 (issue 21)"
        started = time.monotonic()
        _copy_checkout(root.root)
        print(f"Debian root: checkout copied in {time.monotonic() - started:.1f} s")
        env = workflow_env(wf, SCENARIOS)

        for step in steps_placed(wf, "shard", DEBIAN_ROOT):
            got = root.run_step(f"shard/{step['id']}", expand(step["run"], {}), env, STEP_TIMEOUTS[step["id"]])
            assert got.returncode == 0, f"shard/{step['id']}: {got.stdout[-3000:]}{got.stderr[-5000:]}"
            if step["id"] == "debian":
                assert root.outputs().get("release", "").startswith("12."), root.outputs()
            if step["id"] == "setup":
                # the bare root lacked them: ./run installed them itself
                assert "python3 python3-venv" in got.stderr and "creating .venv" in got.stderr, got.stderr[-3000:]
                assert root.path_entries[0] == f"{WORKSPACE}/.venv/bin"

        shard = next(s for s in shard_job["steps"] if s["id"] == "shard")
        values = {"matrix.set.peers": PEERS, "matrix.shard": shard_job["strategy"]["matrix"]["shard"][0]}
        got = root.run_step("shard/shard", expand(shard["run"], values), env, STEP_TIMEOUTS["shard"])
        assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
        run = json.loads((root.root / WORKSPACE.lstrip("/") / "report" / "results.json").read_text())
        cases = run["cases"]
        assert cases and all(c["outcome"] == "passed" for c in cases), [(c["id"], c["outcome"]) for c in cases]
        browser_cases = [c for c in cases if "chromium" in (c["polite"]["kind"], c["impolite"]["kind"])]
        assert browser_cases, "the shard ran no Chromium case: nothing proves a browser runs in the root"
        assert all(c[side]["version"] for c in browser_cases for side in ("polite", "impolite"))

        merge_env = {**env, **{k: str(v) for k, v in merge_job.get("env", {}).items()}}
        for step in steps_placed(wf, "merge", DEBIAN_ROOT):
            got = root.run_step(f"merge/{step['id']}", expand(step["run"], {}), merge_env, STEP_TIMEOUTS[step["id"]])
            assert got.returncode == 0, f"merge/{step['id']}: {got.stdout[-3000:]}{got.stderr[-3000:]}"
    finally:
        root.end()
        left = root.processes_inside()
        if root.on_tmpfs:
            unmounted = subprocess.run(["umount", str(root.root)], capture_output=True, timeout=60)
            if unmounted.returncode != 0:  # still busy: detach it now, freed when its last user goes
                subprocess.run(["umount", "--lazy", str(root.root)], timeout=60)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(root.root))]
        if not mounts:
            shutil.rmtree(root.root, ignore_errors=True)
    assert not left and not mounts, f"left in the Debian root: processes {left}, mounts {mounts}"
