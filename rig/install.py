"""Browser versions side by side with the system ones: what can be installed, what is
installed, and which one a peer spec means.

Sources: the system browsers (rig.config.BINARIES), Debian's archive (``apt-get download``, so
apt checks the archive against its signed lists, then ``dpkg -x``; no root needed), and npm
packages that ship a whole Chromium (fetched with urllib and unpacked with brotli, so neither
node nor npm is needed; the tarball is checked against the registry's sha512 integrity).

Installed versions live in the per-user cache (rig.versions.cache_root()), one directory per
exact version: ``browsers/<kind>/<version>/`` with the unpacked files and ``manifest.json``.
A version is listed only once the rig's own Playwright (or, failing that, a driver environment
from rig.drivers) has launched it, opened a page and found RTCPeerConnection; the exact version
is what the browser itself reports then (some binaries' ``--version`` prints nothing). An
installation is unpacked beside its final place and renamed there, under a lock, so two
installers never race and a half-installed directory is never seen.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import brotli

from . import config, remote, runs
from .errors import RigError
from .peerspec import PeerSpec
from .versions import Installation, cache_root, line, locked, matches, version_key
from .waits import bounded

BROWSERS = ("chromium", "firefox")

#: Called with a short description before every download (a registry tarball, an apt-get
#: download): the tests count them, to prove a second install downloads nothing.
DOWNLOAD_HOOKS: list[Callable[[str], None]] = []


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _playwright_version() -> str:
    return importlib.metadata.version("playwright")


def npm_host() -> str:
    return urllib.parse.urlparse(config.NPM_REGISTRY).netloc or config.NPM_REGISTRY


# -- what can be installed ----------------------------------------------------------------

@dataclass(frozen=True)
class Available:
    """One installable browser version.

    ``version`` is the browser's exact version when the source says it (Debian: the upstream
    part of the package version), else only its line (npm: the package major); the exact one
    is then known after installing, from the browser itself.
    """

    kind: str
    version: str
    source: str  # debian | npm
    package: str
    package_version: str
    url: str = ""  # npm: the tarball
    integrity: str = ""  # npm: "sha512-<base64>" (or "sha1-<hex>" when the registry has nothing better)

    @property
    def exact(self) -> bool:
        return self.source == "debian"

    @property
    def line(self) -> str:
        return line(self.kind, self.version)

    def matches(self, prefix: str) -> bool:
        if not prefix:
            return True
        if self.exact:
            return matches(prefix, self.version)
        # only the line is known: a longer prefix is checked once installed
        return version_key(prefix)[:1] == version_key(self.version)[:1]

    def describe(self) -> str:
        return f"{self.source} {self.package} {self.package_version}"


def upstream(debian_version: str) -> str:
    """``1:150.0.7871.100-1~deb12u1`` -> ``150.0.7871.100`` (no epoch, no Debian revision)."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def parse_madison(text: str) -> list[str]:
    """Versions from ``apt-cache madison PACKAGE`` output (binary packages only), as listed."""
    out: list[str] = []
    for row in text.splitlines():
        parts = [p.strip() for p in row.split("|")]
        if len(parts) == 3 and parts[2].endswith("Packages") and parts[1] not in out:
            out.append(parts[1])
    return out


def _run(cmd: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except FileNotFoundError:
        raise RigError(f"{cmd[0]} not found (Debian's apt is needed for this source)") from None
    except subprocess.TimeoutExpired:
        raise RigError(f"{' '.join(cmd[:2])} did not finish within {timeout:.0f} s") from None


def debian_available(kind: str, notes: list[str] | None = None) -> list[Available]:
    """Versions of ``kind`` in the apt lists, for which every package it needs (chromium-common
    too) exists in the same version."""
    packages, _ = config.DEBIAN_BROWSERS[kind]
    try:
        per_package = [parse_madison(_run(["apt-cache", "madison", p], timeout=config.APT_TIMEOUT).stdout)
                       for p in packages]
    except RigError as exc:
        if notes is not None:
            notes.append(f"Debian archive not listed: {exc}")
        return []
    versions = [v for v in per_package[0] if all(v in other for other in per_package[1:])]
    if not versions and notes is not None:
        notes.append(f"Debian archive: no {packages[0]} in the apt lists (run apt-get update as root once)")
    return [Available(kind, upstream(v), "debian", packages[0], v) for v in versions]


def parse_npm(meta: dict, kind: str = "chromium", majors: dict[str, str] | None = None) -> list[Available]:
    """The newest release of each Chromium major in one package's registry metadata.

    ``majors``: only these releases, with their Chromium major (empty or None: every release,
    package major = Chromium major). Pre-releases (``119.0.1-next.0``) are left out.
    """
    name = meta.get("name", "")
    best: dict[str, tuple[tuple[int, ...], str, dict]] = {}
    for ver, info in (meta.get("versions") or {}).items():
        if not re.fullmatch(r"\d+\.\d+\.\d+", ver):
            continue
        if majors and ver not in majors:
            continue
        major = majors[ver] if majors else ver.split(".")[0]
        key = version_key(ver)
        if major not in best or key > best[major][0]:
            best[major] = (key, ver, info)
    out = []
    for major, (_, ver, info) in best.items():
        dist = info.get("dist") or {}
        sha512 = [i for i in str(dist.get("integrity", "")).split() if i.startswith("sha512-")]
        integrity = sha512[0] if sha512 else (f"sha1-{dist['shasum']}" if dist.get("shasum") else "")
        if dist.get("tarball") and integrity:
            out.append(Available(kind, major, "npm", name, ver, dist["tarball"], integrity))
    return out


def npm_metadata(package: str) -> dict:
    """A package's abbreviated registry metadata, within config.REGISTRY_TIMEOUT; RigError
    "cannot reach <host> (reason)" otherwise."""
    url = f"{config.NPM_REGISTRY.rstrip('/')}/{urllib.parse.quote(package, safe='@')}"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.npm.install-v1+json",
                                               "User-Agent": "glare-rig"})
    deadline = time.monotonic() + config.REGISTRY_TIMEOUT
    try:
        with urllib.request.urlopen(req, timeout=config.REGISTRY_TIMEOUT) as resp:
            body = b""
            while chunk := resp.read(1 << 16):
                body += chunk
                if time.monotonic() > deadline:
                    raise TimeoutError(f"metadata not read within {config.REGISTRY_TIMEOUT:g} s")
        return json.loads(body)
    except urllib.error.HTTPError as exc:
        raise RigError(f"cannot read {package} from {npm_host()} (HTTP {exc.code})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RigError(f"cannot reach {npm_host()} ({_first_line(reason)})") from None


_UNLISTED = "npm versions not listed: "


def npm_available(kind: str, notes: list[str] | None = None) -> list[Available]:
    if kind != "chromium":
        return []
    out: list[Available] = []
    for package, majors in config.NPM_CHROMIUM.items():
        try:
            out += parse_npm(npm_metadata(package), kind, majors)
        except RigError as exc:
            if notes is not None:
                notes.append(f"{_UNLISTED}{exc}")
            break  # one registry: when it is unreachable, do not wait for it again
    return out


def _newest_first(items: list[Available]) -> list[Available]:
    # Debian before npm for the same version: its archives are signed and its versions exact
    return sorted(items, key=lambda a: (version_key(a.version), a.source == "debian"), reverse=True)


def available(kind: str, notes: list[str] | None = None) -> list[Available]:
    """Installable versions of a browser kind, newest first. A source that cannot be reached
    within its bound is left out, with a line appended to ``notes``; never raises for that."""
    if kind not in BROWSERS:
        raise RigError(f"{kind}: only browsers are installed by rig browsers (known: {', '.join(BROWSERS)})")
    return _newest_first(debian_available(kind, notes) + npm_available(kind, notes))


# -- what is installed --------------------------------------------------------------------

def browsers_dir(kind: str | None = None) -> Path:
    root = cache_root() / "browsers"
    return root / kind if kind else root


_FIELDS = [f.name for f in dataclasses.fields(Installation)]


def _ordered(insts: list[Installation]) -> list[Installation]:
    """By kind, then newest first; the system browser before a cached copy of its version."""
    newest = sorted(insts, key=lambda i: (version_key(i.version), i.source == "system"), reverse=True)
    return sorted(newest, key=lambda i: BROWSERS.index(i.kind) if i.kind in BROWSERS else len(BROWSERS))


def read_manifest(folder: Path) -> Installation | None:
    """The Installation a cache directory holds; None when it is not one (or is damaged).
    The executable is found relative to the directory, so a cache copied from another
    machine (or another user's home) works where it lands."""
    try:
        data = json.loads((folder / "manifest.json").read_text())
        exe = folder / data["executable"]
        inst = Installation(**{k: data[k] for k in _FIELDS if k in data})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not exe.is_file():
        return None
    return dataclasses.replace(inst, path=str(exe))


def cached(kind: str | None = None) -> list[Installation]:
    """Installations in the per-user cache, newest first per kind."""
    out = []
    for k in [kind] if kind else BROWSERS:
        base = browsers_dir(k)
        if base.is_dir():
            for d in base.iterdir():
                if d.is_dir() and not d.name.startswith("."):
                    inst = read_manifest(d)
                    if inst is not None:
                        out.append(inst)
    return _ordered(out)


def system_binary(kind: str) -> str | None:
    path, _ = config.BINARIES[kind]
    return shutil.which(path) or (path if os.path.isfile(path) else None)


def system(kind: str) -> Installation:
    """The system browser (what the rig launches by default), with its exact version."""
    exe = system_binary(kind)
    if exe is None:
        path, package = config.BINARIES[kind]
        raise RigError(f"{kind}: no system browser at {path}; install it with 'apt-get install -y {package}' "
                       f"(as root), set RIG_{kind.upper()}, or name a version: rig browsers install {kind}@VERSION")
    try:
        inst = probe(kind, exe)
    except RigError as exc:
        raise RigError(f"{kind}: the system browser {exe} {exc}") from None
    return dataclasses.replace(inst, source="system")


def installed(kind: str | None = None, notes: list[str] | None = None) -> list[Installation]:
    """The cache's installations and the system browsers (exact versions), newest first per
    kind. A system browser that cannot be driven is left out, with a line in ``notes``."""
    out = cached(kind)
    for k in [kind] if kind else BROWSERS:
        if k not in BROWSERS or system_binary(k) is None:
            continue
        try:
            out.append(system(k))
        except RigError as exc:
            if notes is not None:
                notes.append(str(exc))
    return _ordered(out)


# -- checking that a browser can be driven ------------------------------------------------

def _launch_check(kind: str, executable: str) -> dict:
    """Launch ``executable`` with the rig's pinned Playwright in a child process (a hard bound,
    nothing left running, no event loop shared with the caller); its report as a dict:
    ``{"version": ...}`` or ``{"error": first line}``."""
    bound = config.LAUNCH_TIMEOUT + 2 * config.STEP_TIMEOUT + 20  # + interpreter and Playwright start
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(config.ROOT), os.environ.get("PYTHONPATH")])))
    try:
        r = runs.run_bounded([sys.executable, "-m", "rig.install", "check", kind, executable],
                             timeout=bound, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"launch check did not finish within {bound:.0f} s"}
    for row in reversed(r.stdout.splitlines()):
        if row.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(row)
    return {"error": _first_line(r.stderr or f"launch check exited with status {r.returncode} and no report")}


async def _check(kind: str, executable: str) -> dict:
    """In the child: launch as every run does, open a page, find RTCPeerConnection, close."""
    # Playwright only in this child, which checks one browser and exits
    from playwright.async_api import async_playwright

    from .peers.browser import launch
    async with async_playwright() as pw:
        browser = await asyncio.wait_for(launch(pw, kind, executable), config.LAUNCH_TIMEOUT)
        try:
            page = await asyncio.wait_for(browser.new_page(), config.STEP_TIMEOUT)
            rtc = await asyncio.wait_for(page.evaluate("() => typeof RTCPeerConnection"), config.STEP_TIMEOUT)
            if rtc != "function":
                return {"error": f"typeof RTCPeerConnection is {rtc!r} in a page"}
            return {"version": browser.version}
        finally:
            await bounded(browser.close(), config.CLOSE_TIMEOUT)


def _drivers():
    """rig.drivers (driver environments with other Playwright and aiortc releases), or None
    when this checkout does not have it."""
    name = f"{__package__ or 'rig'}.drivers"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def verify(kind: str, executable: str) -> Installation:
    """Whether the rig can drive ``executable``, and its exact version: the pinned Playwright
    first, then rig.drivers' environments. RigError (one line, no spec: the caller prefixes
    it) names every Playwright tried and its first error line."""
    got = _launch_check(kind, executable)
    if "version" in got:
        return Installation(kind, got["version"], executable, "path")
    tried = f"Playwright {_playwright_version()}: {got['error']}"
    drivers = _drivers()
    if drivers is None:
        raise RigError(f"cannot be driven ({tried}; no other driver: rig.drivers is not in this checkout)")
    try:
        inst = drivers.verify_browser(kind, executable)
    except RigError as exc:
        raise RigError(f"cannot be driven ({tried}; then {_first_line(exc)})") from None
    return dataclasses.replace(inst, kind=kind, path=executable)


def _stamp(executable: str) -> list:
    """What must stay the same for a remembered version to hold: the binary (path, mtime,
    size), the pinned Playwright, and whether rig.drivers could be asked."""
    st = os.stat(executable)
    return [os.path.realpath(executable), st.st_mtime_ns, st.st_size, _playwright_version(), _drivers() is not None]


def probe(kind: str, executable: str) -> Installation:
    """verify(), remembered per binary path and mtime (``browsers/probed.json``), so listing
    and resolving the system browsers costs a launch only after they change."""
    store = browsers_dir() / "probed.json"
    key = f"{kind}:{executable}"
    stamp = _stamp(executable)
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(key)
    if not (isinstance(entry, dict) and entry.get("stamp") == stamp):
        try:
            entry = {"stamp": stamp, "installation": verify(kind, executable).as_dict()}
        except RigError as exc:
            entry = {"stamp": stamp, "error": str(exc)}
        # re-read and merge under a lock: two workers probing two browsers at once must not
        # lose each other's entry (a lost entry costs a launch, and a soak counts launches)
        with locked(store.with_name(".probed.lock"), config.INSTALL_LOCK_TIMEOUT,
                    f"another rig process held {store}'s lock for {config.INSTALL_LOCK_TIMEOUT:.0f} s"):
            try:
                known = json.loads(store.read_text())
            except (OSError, ValueError):
                known = {}
            known[key] = entry
            _write_json(store, known)
    if "error" in entry:
        raise RigError(entry["error"])
    return Installation(**{k: v for k, v in entry["installation"].items() if k in _FIELDS})


def _write_json(path: Path, data: dict) -> None:
    """Atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


# -- installing ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What ``install`` did: the installation, whether it was already there, bytes downloaded."""

    installation: Installation
    already: bool
    downloaded: int = 0


@contextlib.contextmanager
def _lock(spec: PeerSpec) -> Iterator[None]:
    """The cache's install lock, waited for at most config.INSTALL_LOCK_TIMEOUT. Holding it
    means no other installer is running, so leftover temporary directories are a dead
    installer's and are removed."""
    root = browsers_dir()
    path = root / ".lock"
    busy = (f"{spec}: another rig install held {path} for {config.INSTALL_LOCK_TIMEOUT:.0f} s; "
            f"wait for it to finish, then run rig browsers install {spec} again")
    with locked(path, config.INSTALL_LOCK_TIMEOUT, busy, poll=0.5):
        for stale in list(root.glob("*/.tmp-*")) + list(root.glob(".downloads/*.part")):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        yield


def _best(insts: list[Installation], prefix: str) -> Installation | None:
    found = [i for i in insts if not prefix or matches(prefix, i.version)]
    return found[0] if found else None


def _lines(items: list[Available]) -> str:
    return ", ".join(sorted({a.line for a in items}, key=version_key))


class _Corrupt(Exception):
    """A download or archive that is not what it should be; the message says how."""


def _downloads() -> Path:
    d = browsers_dir() / ".downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _check_integrity(path: Path, integrity: str) -> bool:
    algo, _, want = integrity.partition("-")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    got = base64.b64encode(h.digest()).decode() if algo != "sha1" else h.hexdigest()
    return got == want


def _fetch(url: str, dest: Path, spec: PeerSpec) -> int:
    """Download ``url`` to ``dest`` within config.DOWNLOAD_TIMEOUT; bytes written."""
    for hook in DOWNLOAD_HOOKS:
        hook(url)
    part = dest.with_name(dest.name + ".part")
    deadline = time.monotonic() + config.DOWNLOAD_TIMEOUT
    size = 0
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "glare-rig"})
        with urllib.request.urlopen(req, timeout=config.REGISTRY_TIMEOUT) as resp, open(part, "wb") as f:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                size += len(chunk)
                if time.monotonic() > deadline:
                    raise _Corrupt(f"not complete after {config.DOWNLOAD_TIMEOUT:.0f} s, {size >> 20} MB in")
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise RigError(f"{spec}: {urllib.parse.urlparse(url).netloc} answered HTTP {exc.code} for {url}; "
                       f"run rig browsers install {spec} again later") from None
    except (OSError, urllib.error.URLError) as exc:
        part.unlink(missing_ok=True)
        reason = _first_line(getattr(exc, "reason", None) or exc)
        if size:
            raise _Corrupt(f"the download broke off after {size >> 20} MB: {reason}") from None
        raise RigError(f"{spec}: cannot reach {urllib.parse.urlparse(url).netloc} ({reason}); install it on a "
                       f"machine that can, or copy {browsers_dir(spec.kind)} here") from None
    except _Corrupt:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return size


def _get_npm(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
    """Download (or reuse) the package tarball, check its integrity, unpack the Chromium in it
    into ``tmp``. The executable, the archives (name, hash, size) and bytes downloaded."""
    name = f"{item.package.lstrip('@').replace('/', '-')}-{item.package_version}.tgz"
    archive = _downloads() / name
    downloaded = 0
    if archive.is_file() and not _check_integrity(archive, item.integrity):
        archive.unlink()  # a kept archive that no longer checks out: fetch it again
    if not archive.is_file():
        downloaded = _fetch(item.url, archive, spec)
        if not _check_integrity(archive, item.integrity):
            archive.unlink()
            raise _Corrupt(f"{name} does not match the registry's integrity {item.integrity[:20]}...")
    exe = tmp / "chromium"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("package/bin/chromium.br")
            if member is None:
                raise _Corrupt(f"{name} has no package/bin/chromium.br")
            dec = brotli.Decompressor()
            with open(exe, "wb") as out:
                while chunk := member.read(1 << 20):
                    out.write(dec.process(chunk))
            if not dec.is_finished():
                raise _Corrupt(f"{name}: package/bin/chromium.br is truncated")
    except (tarfile.TarError, KeyError, EOFError, OSError, brotli.error) as exc:
        archive.unlink(missing_ok=True)
        raise _Corrupt(f"{name} is not a readable package ({_first_line(exc)})") from None
    except _Corrupt:
        archive.unlink(missing_ok=True)
        raise
    exe.chmod(0o755)
    return exe, [{"name": name, "integrity": item.integrity, "size": archive.stat().st_size}], downloaded


def parse_apt_show(text: str) -> dict[str, str]:
    """The first record of ``apt-cache show PACKAGE=VERSION``: its fields."""
    fields: dict[str, str] = {}
    for row in text.splitlines():
        if not row.strip():
            if fields:
                break
            continue
        if row[0] not in " \t" and ":" in row:
            k, _, v = row.partition(":")
            fields[k] = v.strip()
    return fields


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _get_debian(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
    """``apt-get download`` (apt checks each .deb against the signed lists) the packages of one
    version, or reuse them when kept from an earlier try and their SHA256 still matches the
    lists; ``dpkg -x`` each into ``tmp``."""
    packages, inner = config.DEBIAN_BROWSERS[item.kind]
    wanted = [f"{p}={item.package_version}" for p in packages]
    records = []
    for w in wanted:
        rec = parse_apt_show(_run(["apt-cache", "show", w], timeout=config.APT_TIMEOUT).stdout)
        if not rec.get("Filename") or not rec.get("SHA256"):
            raise RigError(f"{spec}: apt-cache show {w} gives no archive; run apt-get update (as root) and try again")
        records.append(rec)
    where = _downloads()
    debs = [where / Path(r["Filename"]).name for r in records]
    for deb, rec in zip(debs, records, strict=True):
        if deb.is_file() and _sha256(deb) != rec["SHA256"]:
            deb.unlink()
    downloaded = 0
    missing = [w for w, deb in zip(wanted, debs, strict=True) if not deb.is_file()]
    if missing:
        for hook in DOWNLOAD_HOOKS:
            hook("apt-get download " + " ".join(missing))
        r = _run(["apt-get", "download", *missing], timeout=config.DOWNLOAD_TIMEOUT, cwd=where)
        if r.returncode != 0:
            errs = [x for x in r.stderr.splitlines() if x.startswith("E:")] or r.stderr.splitlines() or ["no output"]
            raise RigError(f"{spec}: cannot download {' '.join(missing)} from the Debian archive ({errs[0]}); "
                           f"install it on a machine that can, or copy {browsers_dir(spec.kind)} here")
        downloaded = sum(deb.stat().st_size for deb in debs if deb.is_file())
    for deb, rec in zip(debs, records, strict=True):
        if not deb.is_file():
            raise _Corrupt(f"apt-get download left no {deb.name}")
        if _sha256(deb) != rec["SHA256"]:
            deb.unlink()
            raise _Corrupt(f"{deb.name} does not match the SHA256 in the apt lists")
    for deb in debs:
        r = _run(["dpkg", "-x", str(deb), str(tmp)], timeout=config.APT_TIMEOUT)
        if r.returncode != 0:
            for d in debs:
                d.unlink(missing_ok=True)
            raise _Corrupt(f"dpkg -x {deb.name} failed ({_first_line(r.stderr or r.returncode)})")
    exe = tmp / inner
    if not exe.is_file():
        raise RigError(f"{spec}: {item.describe()} has no {inner}; this source's layout changed (rig/config.py "
                       "DEBIAN_BROWSERS)")
    archives = [{"name": deb.name, "sha256": rec["SHA256"], "size": deb.stat().st_size}
                for deb, rec in zip(debs, records, strict=True)]
    return exe, archives, downloaded


def _pick(spec: PeerSpec) -> Available:
    notes: list[str] = []
    offer = available(spec.kind, notes)
    found = [a for a in offer if a.matches(spec.version)]
    if found:
        return found[0]
    unreachable = [n for n in notes if n.startswith(_UNLISTED)]
    if unreachable:
        reason = unreachable[0].removeprefix(_UNLISTED)
        raise RigError(f"{spec}: {reason}; install it on a machine that can, or copy {browsers_dir(spec.kind)} here")
    if not offer:
        raise RigError(f"{spec}: no installable version here ({'; '.join(notes) or 'no source listed any'})")
    raise RigError(f"{spec}: no installable version matches; installable: {_lines(offer)}")


def install(spec: PeerSpec, *, progress: Callable[[str], None] | None = None) -> Outcome:
    """Make a version matching ``spec`` installed: nothing to do when one already is (the
    system browser counts), else the newest installable match is fetched, unpacked, checked
    by launching, and renamed into the cache. One-line RigError otherwise."""
    return _install_spec(spec, progress)


def _install_spec(spec: PeerSpec, progress: Callable[[str], None] | None) -> Outcome:
    if spec.kind not in BROWSERS:
        inst = resolve(spec, install=True)
        return Outcome(inst, already=False)
    if spec.range:
        raise RigError(f"{spec}: install one version, not a range (e.g. {spec.kind}@{spec.range[1]})")
    if not spec.version:
        return Outcome(resolve(spec), already=True)
    have = _best(installed(spec.kind), spec.version)
    if have is not None:
        return Outcome(have, already=True)
    with _lock(spec):
        have = _best(cached(spec.kind), spec.version)  # another installer may have finished meanwhile
        if have is not None:
            return Outcome(have, already=True)
        item = _pick(spec)
        return _install_item(spec, item, progress or (lambda _: None))


def _install_item(spec: PeerSpec, item: Available, progress: Callable[[str], None]) -> Outcome:
    base = browsers_dir(spec.kind)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
    try:
        progress(f"{spec}: fetching {item.describe()}")
        try:
            get = _get_debian if item.source == "debian" else _get_npm
            exe, archives, downloaded = get(item, spec, tmp)
        except _Corrupt as exc:
            raise RigError(f"{spec}: the download is corrupt ({exc}); the partial files were deleted; "
                           f"run rig browsers install {spec} again") from None
        progress(f"{spec}: launching {item.describe()} to check it")
        try:
            inst = verify(spec.kind, str(exe))
        except RigError as exc:
            raise RigError(f"{spec}: {item.describe()} unpacks but {exc}; its archive stays in "
                           f"{_downloads()} for the next try") from None
        if not matches(spec.version, inst.version):
            for a in archives:
                (_downloads() / a["name"]).unlink(missing_ok=True)
            raise RigError(f"{spec}: {item.describe()} is {spec.kind} {inst.version}, which does not match; "
                           f"installable: {_lines(available(spec.kind))}")
        final = base / inst.version
        if final.exists():  # the same exact version from another source: keep the first
            existing = read_manifest(final)
            if existing is not None:
                return Outcome(existing, already=True)
            shutil.rmtree(final)
        inst = dataclasses.replace(inst, path=str(final / exe.relative_to(tmp)), source=item.source)
        manifest = dict(inst.as_dict(), executable=str(exe.relative_to(tmp)), package=item.package,
                        package_version=item.package_version, archives=archives,
                        verified_with=f"playwright {_playwright_version()}",
                        verified_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for a in archives:  # installed: the archive would only be a second copy
        (_downloads() / a["name"]).unlink(missing_ok=True)
    return Outcome(inst, already=False, downloaded=downloaded)


# -- which installation a spec means ------------------------------------------------------

def _resolve_aiortc(spec: PeerSpec, install: bool) -> Installation:
    drivers = _drivers()
    if drivers is not None:
        return drivers.resolve_aiortc(spec, install=install)
    own = importlib.metadata.version("aiortc")
    if spec.version and not matches(spec.version, own):
        raise RigError(f"{spec}: only the rig's own aiortc {own} is here (rig.drivers, which installs other "
                       f"releases, is not in this checkout); use aiortc or aiortc@{line('aiortc', own)}")
    return Installation("aiortc", own, sys.executable, "rig")


def resolve(spec: PeerSpec, *, install: bool = False) -> Installation:
    """The installation ``spec`` means. ``kind``: the system browser; ``kind@/path``: that
    binary; ``kind@prefix``: the newest installed match (the system browser counts), else,
    with ``install``, the newest installable match once installed; ``kind@ws://...``: the
    browser behind that Playwright server, checked by connecting (rig.remote; nothing to
    install here). One-line RigError otherwise."""
    if spec.endpoint:
        return remote.resolve(spec)
    if spec.range:
        raise RigError(f"{spec}: a range is for rig bisect only; name one version (e.g. {spec.kind}@{spec.range[1]})")
    if spec.kind == "aiortc":
        return _resolve_aiortc(spec, install)
    if spec.binary:
        if not os.path.isfile(spec.binary):
            raise RigError(f"{spec}: no such file {spec.binary}; give the path of a {spec.kind} executable")
        try:
            return dataclasses.replace(probe(spec.kind, spec.binary), source="path")
        except RigError as exc:
            raise RigError(f"{spec}: {exc}") from None
    if not spec.version:
        return system(spec.kind)
    have = _best(installed(spec.kind), spec.version)
    if have is not None:
        return have
    if install:
        return _install_spec(spec, None).installation
    raise RigError(f"{spec} is not installed here; run: rig browsers install {spec}")


if __name__ == "__main__":  # the launch check's child process (see _launch_check)
    if sys.argv[1:2] != ["check"] or len(sys.argv) != 4:
        raise SystemExit("usage: python -m rig.install check KIND EXECUTABLE")
    try:
        result = asyncio.run(_check(sys.argv[2], sys.argv[3]))
    except TimeoutError:
        result = {"error": f"launch did not finish within {config.LAUNCH_TIMEOUT:.0f} s"}
    except Exception as exc:  # Playwright's errors are long: its first line says it
        result = {"error": _first_line(exc)}
    print(json.dumps(result), flush=True)
