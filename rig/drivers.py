"""Driver environments: other aiortc and Playwright releases, each in its own virtual environment.

The rig's own environment has one aiortc and one Playwright. A peer that needs another one
(``aiortc@1.14``; Firefox ESR 140, which only Playwright 1.55 drives) runs in a peer host
process (rig.peers.host) started with the Python of an environment built here, under
``<cache>/envs/<name>/`` (``aiortc-1.14.0``, ``playwright-1.55.0``).

Virtual environments cannot be moved once built, so an environment is built in place, under
an exclusive lock (concurrent xdist workers wait for the first), and counts only once its
``ready`` marker is written, last; a folder without the marker is a build that was interrupted
and is built again. Every subprocess is bounded; every error is one line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

from . import config
from .errors import RigError
from .peers.host import PeerHost
from .peerspec import PeerSpec
from .runs import run_bounded
from .versions import Installation, cache_root, locked, matches, version_key

#: What pip prints when it cannot reach the index (as opposed to "no such release").
_NETWORK = re.compile(r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
                      r"resolution|Name or service not known|Network is unreachable|Connection refused|"
                      r"ProxyError|ConnectTimeout|Read timed out|SSLError|No route to host")
#: How long a worker waits for another one that is building the same environment.
LOCK_WAIT = config.ENV_BUILD_TIMEOUT


def envs_root() -> Path:
    return cache_root() / "envs"


def env_python(env: Path) -> Path:
    return env / "bin" / "python"


def _python_line() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def read_ready(env: Path) -> dict | None:
    """The env's ``ready`` marker, or None when the env is unusable: never finished, or
    built for another Python than the rig's (its interpreter link would point elsewhere)."""
    try:
        ready = json.loads((env / "ready").read_text())
    except (OSError, ValueError):
        return None
    if ready.get("python") != _python_line() or not env_python(env).exists():
        return None
    return ready


def _pip_problem(out: str) -> str:
    """The line of pip's output that says what went wrong (its WARNING lines are about
    unreachable extra indexes and are not the cause unless nothing else is said)."""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    net = next((ln for ln in lines if _NETWORK.search(ln)), None)
    if net:
        where = re.search(r"host='([^']+)', port=(\d+)", net)
        why = re.search(r"\[Errno -?\d+\][^\"')]*", net)
        return "NETWORK:" + (f"{where.group(1)}:{where.group(2)}: " if where else "") + (
            why.group(0).strip() if why else _NETWORK.search(net).group(0))
    err = [ln for ln in lines if ln.startswith("ERROR:")]
    if err:
        return err[0]
    return lines[-1] if lines else "no output"


def _no_network(what: str, line: str) -> RigError:
    return RigError(f"{what}: the package index cannot be reached from here (pip: {line[:200]}); connect this "
                    f"machine to PyPI or a mirror (pip config / PIP_INDEX_URL) and run again")


def _run(cmd: list[str], what: str, timeout: float) -> str:
    try:
        proc = run_bounded(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RigError(f"{what}: {Path(cmd[0]).name} {' '.join(cmd[1:4])} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise RigError(f"{what}: could not run {cmd[0]}: {exc.strerror or exc}") from None
    out = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        problem = _pip_problem(out)
        if problem.startswith("NETWORK:"):
            raise _no_network(what, problem.removeprefix("NETWORK:"))
        raise RigError(f"{what}: {Path(cmd[0]).name} {' '.join(cmd[1:4])} failed: {problem[:300]}")
    return out


def ensure_env(name: str, requirements: list[str], *, imports: list[str]) -> Path:
    """The Python of environment ``name`` with exactly ``requirements`` installed; built
    once (in place, under a lock, ``ready`` written last). ``imports``: modules checked to
    import in it before it counts as ready."""
    root = envs_root()
    root.mkdir(parents=True, exist_ok=True)
    env = root / name
    busy = (f"environment {name}: another process has been building it for over {LOCK_WAIT:.0f} s "
            f"(lock {root / name}.lock)")
    with locked(root / f"{name}.lock", LOCK_WAIT, busy):
        if read_ready(env) is not None:
            return env_python(env)
        shutil.rmtree(env, ignore_errors=True)  # an interrupted build, or one for another Python
        what = f"environment {name}"
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(env)], what, config.ENV_BUILD_TIMEOUT)
        py = env_python(env)
        left = max(30.0, config.ENV_BUILD_TIMEOUT - (time.monotonic() - started))
        _run([str(py), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", *requirements], what, left)
        check = f"import {', '.join(imports)}" if imports else "pass"
        _run([str(py), "-c", check], what, 60)
        versions = json.loads(_run([str(py), "-c", "import json, importlib.metadata as m; print(json.dumps("
                                    "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                                   what, 60).strip().splitlines()[-1])
        tmp = env / "ready.tmp"
        tmp.write_text(json.dumps({"name": name, "python": _python_line(), "requirements": requirements,
                                   "packages": versions, "built_s": round(time.monotonic() - started, 1)}, indent=1))
        tmp.replace(env / "ready")
        return py


# -- aiortc -------------------------------------------------------------------------------
def own_aiortc() -> Installation:
    """The rig's own aiortc: peers run in process."""
    return Installation(kind="aiortc", version=installed_version("aiortc"), path=sys.executable, source="rig")


def installed_aiortc() -> list[Installation]:
    """aiortc releases with a ready environment here, newest first."""
    out = []
    root = envs_root()
    for env in sorted(root.glob("aiortc-*")) if root.is_dir() else []:
        ready = read_ready(env)
        version = (ready or {}).get("packages", {}).get("aiortc")
        if version:
            out.append(_aiortc_installation(version, env_python(env)))
    return sorted(out, key=lambda i: version_key(i.version), reverse=True)


def _aiortc_installation(version: str, python: Path) -> Installation:
    return Installation(kind="aiortc", version=version, path=str(python), source="pypi", driver=str(python),
                        driver_label=f"aiortc {version}")


def available_aiortc() -> list[str]:
    """aiortc's releases on the package index this machine's pip uses, newest first."""
    try:
        out = _run([sys.executable, "-m", "pip", "index", "versions", "aiortc", "--disable-pip-version-check"],
                   "aiortc releases", config.PIP_INDEX_TIMEOUT)
    except RigError as exc:
        if "No matching distribution found for aiortc" in str(exc):  # PyPI has had aiortc since 2018
            raise _no_network("aiortc releases", "the index lists no aiortc at all") from None
        raise
    m = re.search(r"^Available versions:\s*(.+)$", out, re.M)
    if not m:
        raise RigError(f"aiortc releases: pip index printed no version list ({_pip_problem(out)[:200]})")
    return sorted((v.strip() for v in m.group(1).split(",") if v.strip()), key=version_key, reverse=True)


def resolve_aiortc(spec: PeerSpec, *, install: bool = False) -> Installation:
    """What an aiortc spec runs on: the rig's own aiortc in process when the spec names no
    version or a prefix of the rig's; otherwise the newest matching release in its own
    environment (built first with ``install``)."""
    if spec.kind != "aiortc":
        raise RigError(f"{spec} is not an aiortc spec")
    if spec.range:
        raise RigError(f"{spec}: a range is for rig bisect; name one release here (aiortc@1.14)")
    own = own_aiortc()
    if not spec.version or matches(spec.version, own.version):
        return own
    found = next((i for i in installed_aiortc() if matches(spec.version, i.version)), None)
    if found is not None:
        return found
    if not install:
        raise RigError(f"{spec} is not installed here; run: rig browsers install {spec}")
    releases = available_aiortc()
    wanted = [v for v in releases if matches(spec.version, v)]
    if not wanted:
        raise RigError(f"{spec}: no aiortc release matches {spec.version} (available: {', '.join(releases)})")
    exact = wanted[0]
    try:
        aiohttp = f"aiohttp=={installed_version('aiohttp')}"  # the signaling client, as the rig's
    except PackageNotFoundError:
        aiohttp = "aiohttp"
    py = ensure_env(f"aiortc-{exact}", [f"aiortc=={exact}", aiohttp], imports=["aiortc", "aiohttp"])
    return _aiortc_installation(exact, py)


# -- Playwright ---------------------------------------------------------------------------
def ensure_playwright(version: str) -> Path:
    """The Python of an environment with Playwright ``version`` (its own driver; no browser:
    ``playwright install`` cannot download here and is never run)."""
    return ensure_env(f"playwright-{version}", [f"playwright=={version}"], imports=["playwright.async_api"])


async def verify_browser_async(kind: str, executable: str, *, source: str = "path") -> Installation:
    """Find an older Playwright (config.OLDER_PLAYWRIGHTS, in order) that drives this browser
    in a peer host: launch it, open a page, read its version. The Installation names that
    driver; RigError names every Playwright tried and its first error line."""
    tried = []
    for pw in config.OLDER_PLAYWRIGHTS:
        try:
            py = await asyncio.to_thread(ensure_playwright, pw)
        except RigError as exc:
            tried.append(f"playwright {pw}: {exc}")
            continue
        inst = Installation(kind=kind, version="", path=executable, source=source, driver=str(py),
                            driver_label=f"playwright {pw}")
        host = PeerHost()
        try:
            await host.start(inst)
            return replace(inst, version=host.version)
        except RigError as exc:
            tried.append(str(exc).splitlines()[0])  # names the host: its Playwright, the binary
        finally:
            await host.close()
    raise RigError(f"{kind} {executable}: no Playwright here can drive it; tried: {'; '.join(tried) or 'none'}")


def verify_browser(kind: str, executable: str, *, source: str = "path") -> Installation:
    """:func:`verify_browser_async` for synchronous callers (the installer), also from inside
    a running event loop: it runs on a loop of its own in a helper thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, verify_browser_async(kind, executable, source=source)).result()


def main(argv: list[str] | None = None) -> int:
    """``python -m rig.drivers install aiortc@1.14 | list``: until ``rig browsers install`` exists."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["install"] and len(args) > 1:
            for text in args[1:]:
                inst = resolve_aiortc(PeerSpec.parse(text), install=True)
                print(f"{text}: aiortc {inst.version} ({'in process' if inst.in_process else inst.driver})")
            return 0
        if args == ["list"]:
            for inst in [own_aiortc(), *installed_aiortc()]:
                print(f"aiortc {inst.version}: {'in process' if inst.in_process else inst.driver}")
            return 0
    except RigError as exc:
        print(f"rig: error: {exc}", file=sys.stderr)
        return 2
    print("usage: python -m rig.drivers install aiortc@VERSION ... | list", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
