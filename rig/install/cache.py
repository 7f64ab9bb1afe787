"""The per-user cache of installed browsers and the downloads that fill it.

``browsers/<kind>/<version>/`` holds one installation and its ``manifest.json``; what is in the
cache is read from the manifests only. Downloads are kept in ``browsers/.downloads`` until their
version is installed, each checked against the integrity its source publishes (npm's sha512,
the apt lists' SHA256) before it is used; installers take the cache's lock, so two never race
and a dead one's leftovers are removed by the next.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import config
from ..errors import RigError
from ..peerspec import PeerSpec
from ..versions import Installation, cache_root, locked, version_key
from .source import BROWSERS, Corrupt, first_line

#: Called with a short description before every download (a registry tarball, an apt-get
#: download): the tests count them, to prove a second install downloads nothing.
DOWNLOAD_HOOKS: list[Callable[[str], None]] = []


def before_download(what: str) -> None:
    """Tell every hook in ``DOWNLOAD_HOOKS`` that ``what`` is about to be downloaded."""
    for hook in DOWNLOAD_HOOKS:
        hook(what)


def browsers_dir(kind: str | None = None) -> Path:
    root = cache_root() / "browsers"
    return root / kind if kind else root


FIELDS = [f.name for f in dataclasses.fields(Installation)]


def ordered(insts: list[Installation]) -> list[Installation]:
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
        inst = Installation(**{k: data[k] for k in FIELDS if k in data})
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
    return ordered(out)


def write_json(path: Path, data: dict) -> None:
    """Atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


@contextlib.contextmanager
def install_lock(spec: PeerSpec) -> Iterator[None]:
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


def downloads_dir() -> Path:
    d = browsers_dir() / ".downloads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def check_integrity(path: Path, integrity: str) -> bool:
    algo, _, want = integrity.partition("-")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    got = base64.b64encode(h.digest()).decode() if algo != "sha1" else h.hexdigest()
    return got == want


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, spec: PeerSpec) -> int:
    """Download ``url`` to ``dest`` within config.DOWNLOAD_TIMEOUT; bytes written."""
    before_download(url)
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
                    raise Corrupt(f"not complete after {config.DOWNLOAD_TIMEOUT:.0f} s, {size >> 20} MB in")
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise RigError(f"{spec}: {urllib.parse.urlparse(url).netloc} answered HTTP {exc.code} for {url}; "
                       f"run rig browsers install {spec} again later") from None
    except (OSError, urllib.error.URLError) as exc:
        part.unlink(missing_ok=True)
        reason = first_line(getattr(exc, "reason", None) or exc)
        if size:
            raise Corrupt(f"the download broke off after {size >> 20} MB: {reason}") from None
        raise RigError(f"{spec}: cannot reach {urllib.parse.urlparse(url).netloc} ({reason}); install it on a "
                       f"machine that can, or copy {browsers_dir(spec.kind)} here") from None
    except Corrupt:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return size
