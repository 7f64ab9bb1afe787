"""Debian's archive as a source of browser builds: versions from ``apt-cache madison``, packages
from ``apt-get download`` (apt checks each against its signed lists) unpacked with ``dpkg -x``,
so no root is needed. Which packages make up a browser: rig.config.DEBIAN_BROWSERS.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .. import config
from ..errors import RigError
from ..peerspec import PeerSpec
from .cache import before_download, browsers_dir, downloads_dir, sha256
from .source import Available, Corrupt, first_line


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


def fetch(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
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
    where = downloads_dir()
    debs = [where / Path(r["Filename"]).name for r in records]
    for deb, rec in zip(debs, records, strict=True):
        if deb.is_file() and sha256(deb) != rec["SHA256"]:
            deb.unlink()
    downloaded = 0
    missing = [w for w, deb in zip(wanted, debs, strict=True) if not deb.is_file()]
    if missing:
        before_download("apt-get download " + " ".join(missing))
        r = _run(["apt-get", "download", *missing], timeout=config.DOWNLOAD_TIMEOUT, cwd=where)
        if r.returncode != 0:
            errs = [x for x in r.stderr.splitlines() if x.startswith("E:")] or r.stderr.splitlines() or ["no output"]
            raise RigError(f"{spec}: cannot download {' '.join(missing)} from the Debian archive ({errs[0]}); "
                           f"install it on a machine that can, or copy {browsers_dir(spec.kind)} here")
        downloaded = sum(deb.stat().st_size for deb in debs if deb.is_file())
    for deb, rec in zip(debs, records, strict=True):
        if not deb.is_file():
            raise Corrupt(f"apt-get download left no {deb.name}")
        if sha256(deb) != rec["SHA256"]:
            deb.unlink()
            raise Corrupt(f"{deb.name} does not match the SHA256 in the apt lists")
    for deb in debs:
        r = _run(["dpkg", "-x", str(deb), str(tmp)], timeout=config.APT_TIMEOUT)
        if r.returncode != 0:
            for d in debs:
                d.unlink(missing_ok=True)
            raise Corrupt(f"dpkg -x {deb.name} failed ({first_line(r.stderr or r.returncode)})")
    exe = tmp / inner
    if not exe.is_file():
        raise RigError(f"{spec}: {item.describe()} has no {inner}; this source's layout changed (rig/config.py "
                       "DEBIAN_BROWSERS)")
    archives = [{"name": deb.name, "sha256": rec["SHA256"], "size": deb.stat().st_size}
                for deb, rec in zip(debs, records, strict=True)]
    return exe, archives, downloaded
