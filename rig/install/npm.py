"""npm packages that ship a whole Chromium as a source of browser builds: the registry's metadata
read with urllib (no node, no npm), the newest release of each Chromium major, the tarball
checked against the registry's integrity and its ``chromium.br`` unpacked with brotli. Which
packages: rig.config.NPM_CHROMIUM.
"""

from __future__ import annotations

import json
import re
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import brotli

from .. import config
from ..errors import RigError
from ..peerspec import PeerSpec
from ..versions import version_key
from .cache import check_integrity, download, downloads_dir
from .source import Available, Corrupt, first_line


def npm_host() -> str:
    return urllib.parse.urlparse(config.NPM_REGISTRY).netloc or config.NPM_REGISTRY


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
        raise RigError(f"cannot reach {npm_host()} ({first_line(reason)})") from None


UNLISTED = "npm versions not listed: "


def npm_available(kind: str, notes: list[str] | None = None) -> list[Available]:
    if kind != "chromium":
        return []
    out: list[Available] = []
    for package, majors in config.NPM_CHROMIUM.items():
        try:
            out += parse_npm(npm_metadata(package), kind, majors)
        except RigError as exc:
            if notes is not None:
                notes.append(f"{UNLISTED}{exc}")
            break  # one registry: when it is unreachable, do not wait for it again
    return out


def fetch(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
    """Download (or reuse) the package tarball, check its integrity, unpack the Chromium in it
    into ``tmp``. The executable, the archives (name, hash, size) and bytes downloaded."""
    name = f"{item.package.lstrip('@').replace('/', '-')}-{item.package_version}.tgz"
    archive = downloads_dir() / name
    downloaded = 0
    if archive.is_file() and not check_integrity(archive, item.integrity):
        archive.unlink()  # a kept archive that no longer checks out: fetch it again
    if not archive.is_file():
        downloaded = download(item.url, archive, spec)
        if not check_integrity(archive, item.integrity):
            archive.unlink()
            raise Corrupt(f"{name} does not match the registry's integrity {item.integrity[:20]}...")
    exe = tmp / "chromium"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("package/bin/chromium.br")
            if member is None:
                raise Corrupt(f"{name} has no package/bin/chromium.br")
            dec = brotli.Decompressor()
            with open(exe, "wb") as out:
                while chunk := member.read(1 << 20):
                    out.write(dec.process(chunk))
            if not dec.is_finished():
                raise Corrupt(f"{name}: package/bin/chromium.br is truncated")
    except (tarfile.TarError, KeyError, EOFError, OSError, brotli.error) as exc:
        archive.unlink(missing_ok=True)
        raise Corrupt(f"{name} is not a readable package ({first_line(exc)})") from None
    except Corrupt:
        archive.unlink(missing_ok=True)
        raise
    exe.chmod(0o755)
    return exe, [{"name": name, "integrity": item.integrity, "size": archive.stat().st_size}], downloaded
