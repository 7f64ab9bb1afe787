"""The per-user cache of installed browsers and the downloads that fill it.

``browsers/<kind>/<version>/`` holds one installation and its ``manifest.json``; what is in the
cache is read from the manifests only. Downloads are kept in ``browsers/.downloads`` until their
version is installed, each checked against the integrity its source publishes (npm's sha512,
the apt lists' SHA256, Mozilla's SHA256SUMS) before it is used, or, for a source that publishes
none (Chrome for Testing), against the SHA-256 its first download had (``first-seen.json``);
installers take the cache's lock, so two never race and a dead one's leftovers are removed by
the next. Feeds (JSON listings, checksum files) are read with a hard bound, and remembered for
the process, so an unreachable host costs its bound once per run.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
import threading
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


class Unreachable(RigError):
    """A host that did not answer (refused, no route, no name, no answer within the bound)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.host = host_of(url)
        self.reason = reason
        super().__init__(f"cannot reach {self.host} ({reason})")


class Missing(RigError):
    """HTTP 404: the host answered, and what the URL names is not there."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"{host_of(url)} has no {url} (HTTP 404)")


def host_of(url: str) -> str:
    return urllib.parse.urlparse(url).netloc or url


#: The largest feed read (Chrome for Testing's known-good list is a few MB).
MAX_FEED_BYTES = 64 << 20
#: How long a feed read in this process is reused: a run asks twice per spec (installed? then
#: install), and an unreachable host must cost its bound once, not once per question.
FEED_TTL = 300.0
_FEEDS: dict[str, tuple[float, bytes | RigError]] = {}


def _get(url: str, out: dict) -> None:
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "glare-rig"})
        with urllib.request.urlopen(req, timeout=config.REGISTRY_TIMEOUT) as resp:
            out["body"] = resp.read(MAX_FEED_BYTES + 1)
    except Exception as exc:  # handed to the caller's thread, which says it in one line
        out["error"] = exc


def read_feed(url: str) -> bytes:
    """The body at ``url`` within config.REGISTRY_TIMEOUT in all, name lookup included (the
    request runs in a daemon thread, left behind if it overruns: urllib bounds each socket
    operation, not getaddrinfo). Unreachable, Missing or a one-line RigError otherwise; the
    answer, either way, is reused for FEED_TTL seconds."""
    hit = _FEEDS.get(url)
    if hit is not None and time.monotonic() - hit[0] < FEED_TTL:
        if isinstance(hit[1], RigError):
            raise hit[1].with_traceback(None)
        return hit[1]
    try:
        got: bytes | RigError = _read_feed(url)
    except RigError as exc:
        got = exc
    _FEEDS[url] = (time.monotonic(), got)
    if isinstance(got, RigError):
        raise got
    return got


def _read_feed(url: str) -> bytes:
    out: dict = {}
    worker = threading.Thread(target=_get, args=(url, out), daemon=True, name=f"feed {host_of(url)}")
    worker.start()
    worker.join(config.REGISTRY_TIMEOUT)
    if worker.is_alive():
        raise Unreachable(url, f"no answer within {config.REGISTRY_TIMEOUT:g} s")
    exc = out.get("error")
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code == 404:
            raise Missing(url)
        raise RigError(f"{host_of(url)} answered HTTP {exc.code} for {url}; try again later")
    if exc is not None:
        raise Unreachable(url, first_line(getattr(exc, "reason", None) or exc))
    body = out["body"]
    if len(body) > MAX_FEED_BYTES:
        raise RigError(f"{url} is larger than {MAX_FEED_BYTES >> 20} MB: not a feed")
    return body


def read_json(url: str) -> object:
    """A JSON feed (read_feed); RigError when it is not JSON."""
    try:
        return json.loads(read_feed(url))
    except ValueError as exc:
        raise RigError(f"{url} is not JSON ({first_line(exc)})") from None


def hexdigest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _first_seen_path() -> Path:
    return downloads_dir() / "first-seen.json"


def first_seen(name: str) -> dict | None:
    """What the first good download of archive ``name`` was (``sha256``, ``url``, ``at``), for a
    source that publishes no hashes; None when it was never downloaded here. Kept after the
    archive is deleted, so a later download of the same archive is checked against it too."""
    try:
        entry = json.loads(_first_seen_path().read_text()).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) and entry.get("sha256") else None


def remember_first(name: str, digest: str, url: str) -> Path:
    """Record the SHA-256 of the first good download of ``name`` (the caller holds the install lock)."""
    path = _first_seen_path()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    known[name] = {"sha256": digest, "url": url,
                   "at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    write_json(path, known)
    return path
