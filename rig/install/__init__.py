"""Browser versions side by side with the system ones: what can be installed, what is
installed, and which one a peer spec means.

Sources: the system browsers (rig.config.BINARIES), Debian's archive (rig.install.debian) and
npm packages that ship a whole Chromium (rig.install.npm), listed by :func:`available`; and the
official feeds, Chrome for Testing (rig.install.cft), Chromium's snapshot bucket
(rig.install.snapshots) and Mozilla's archive (rig.install.mozilla), asked only for the specs that
name them (:func:`official`: a channel such as ``chromium@beta``, ``chromium@cft:130``,
``chromium@snapshot:1121455``; an exact Firefox release no other source has), so that a machine that
cannot reach them never waits on them for anything else. A new source is one more module giving
``fetch(item, spec, tmp)`` and either ``<source>_available(kind, notes)`` or ``pick(spec)``
(rig.install.source), named in ``FETCH`` here.

Installed versions live in the per-user cache (rig.install.cache), one directory per exact
version. A version is listed only once the rig's own Playwright (or, failing that, a driver
environment from rig.drivers) has launched it, opened a page and found RTCPeerConnection
(rig.install.launch); the exact version is what the browser itself reports then (some
binaries' ``--version`` prints nothing). An installation is unpacked beside its final place and
renamed there, under a lock, so two installers never race and a half-installed directory is
never seen.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from .. import config, remote
from ..errors import RigError
from ..peerspec import PeerSpec
from ..versions import Installation, line, matches, version_key
from . import cft, debian, launch, mozilla, npm, snapshots
from .cache import (
    DOWNLOAD_HOOKS,
    Unreachable,
    browsers_dir,
    cached,
    downloads_dir,
    install_lock,
    ordered,
    read_manifest,
)
from .debian import debian_available, parse_apt_show, parse_madison, upstream
from .launch import playwright_version, probe, verify
from .npm import UNLISTED, npm_available, npm_host, npm_metadata, parse_npm
from .source import BROWSERS, Available, Corrupt

#: Each source's fetch, by the name an Available gives as its ``source``.
FETCH = {"debian": debian.fetch, "npm": npm.fetch, "cft": cft.fetch, "mozilla": mozilla.fetch,
         "snapshot": snapshots.fetch}
#: How messages name each source of an installation.
SOURCE_NAMES = {"system": "the system browser", "debian": "Debian", "npm": "npm", "cft": cft.NAME,
                "mozilla": mozilla.NAME, "snapshot": snapshots.NAME, "path": "a binary"}

__all__ = [
    "BROWSERS", "DOWNLOAD_HOOKS", "FETCH", "Available", "Outcome", "available", "browsers_dir", "cached",
    "debian_available", "install", "installed", "npm_available", "npm_host", "npm_metadata", "official", "parse_apt_show",
    "parse_madison", "parse_npm", "probe", "read_manifest", "resolve", "system", "system_binary", "upstream",
    "verify",
]

def _newest_first(items: list[Available]) -> list[Available]:
    # Debian before npm for the same version: its archives are signed and its versions exact
    return sorted(items, key=lambda a: (version_key(a.version), a.source == "debian"), reverse=True)


def available(kind: str, notes: list[str] | None = None) -> list[Available]:
    """Installable versions of a browser kind, newest first. A source that cannot be reached
    within its bound is left out, with a line appended to ``notes``; never raises for that."""
    if kind not in BROWSERS:
        raise RigError(f"{kind}: only browsers are installed by rig browsers (known: {', '.join(BROWSERS)})")
    return _newest_first(debian_available(kind, notes) + npm_available(kind, notes))


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
    return ordered(out)


@dataclass(frozen=True)
class Outcome:
    """What ``install`` did: the installation, whether it was already there, bytes downloaded."""

    installation: Installation
    already: bool
    downloaded: int = 0


def _best(insts: list[Installation], prefix: str) -> Installation | None:
    found = [i for i in insts if not prefix or matches(prefix, i.version)]
    return found[0] if found else None


def _lines(items: list[Available]) -> str:
    return ", ".join(sorted({a.line for a in items}, key=version_key))


def _pick(spec: PeerSpec) -> Available:
    notes: list[str] = []
    offer = available(spec.kind, notes)
    found = [a for a in offer if a.matches(spec.version)]
    if found:
        return found[0]
    if spec.kind == "firefox" and mozilla.is_release(spec.version):
        return _ask(spec, mozilla)
    unreachable = [n for n in notes if n.startswith(UNLISTED)]
    if unreachable:
        reason = unreachable[0].removeprefix(UNLISTED)
        raise RigError(f"{spec}: {reason}; install it on a machine that can, or copy {browsers_dir(spec.kind)} here")
    hint = ("; Mozilla's archive has every Firefox release by its exact number (firefox@128.0.3) and the channels "
            "(firefox@release|beta|devedition|esr|nightly)") if spec.kind == "firefox" else ""
    if not offer:
        raise RigError(f"{spec}: no installable version here ({'; '.join(notes) or 'no source listed any'}){hint}")
    raise RigError(f"{spec}: no installable version matches; installable: {_lines(offer)}{hint}")


def official_source(source: str) -> bool:
    return source in (cft.SOURCE, mozilla.SOURCE, snapshots.SOURCE)


def _source_of(item: Available) -> str:
    """What an installation of ``item`` gives as its source: the source's name, and a snapshot's
    commit position (``snapshot r1121455``: the position names the build, its version does not)."""
    return snapshots.label(item.package_version) if item.source == snapshots.SOURCE else item.source


def official(spec: PeerSpec) -> ModuleType | None:
    """The official feed a spec names (rig.install.cft, rig.install.snapshots or
    rig.install.mozilla), or None: Chrome for Testing for ``chromium@cft:...`` and Chromium's
    channels, the snapshot bucket for ``chromium@snapshot:...``, Mozilla's archive for Firefox's
    channels. (An exact Firefox release goes to Mozilla's archive only when no listed source has
    it: :func:`_pick`.)"""
    if spec.kind == "chromium" and (spec.channel or spec.source == cft.SOURCE):
        return cft
    if spec.kind == "chromium" and spec.source == snapshots.SOURCE:
        return snapshots
    if spec.kind == "firefox" and spec.channel:
        return mozilla
    return None


def _ask(spec: PeerSpec, src: ModuleType) -> Available:
    """``src.pick(spec)``, its errors as one line that starts with the spec; an unreachable host
    is named, with what to use instead: the newest version installed here from elsewhere, and
    the variable that points the source at a mirror."""
    try:
        return src.pick(spec)
    except Unreachable as exc:
        raise RigError(f"{spec}: cannot reach {exc.host} ({src.NAME}: {exc.reason}); {_instead(spec, src)} "
                       f"or set {src.mirror_env(exc.url)} to a mirror") from None
    except RigError as exc:
        raise RigError(f"{spec}: {exc}") from None


def _instead(spec: PeerSpec, src: ModuleType) -> str:
    try:
        others = [i for i in installed(spec.kind) if i.source != src.SOURCE]
    except RigError:
        others = []
    if not others:
        return f"use a {spec.kind} version from Debian or npm (rig browsers list --available)"
    best = others[0]
    return f"use {spec.kind}@{best.line} ({SOURCE_NAMES.get(best.source, best.source)})"


def _same(installed_version: str, feed_version: str) -> bool:
    """Whether a feed's version is an installed one: Mozilla names an ESR ``153.8.0esr``, and the
    browser reports itself as ``153.8.0``."""
    return installed_version.removesuffix("esr") == feed_version.removesuffix("esr")


def _labelled(spec: PeerSpec, inst: Installation) -> Installation:
    """A channel's installation says which channel it came from: its source reads ``cft, beta channel``."""
    return dataclasses.replace(inst, source=f"{inst.source}, {spec.channel} channel") if spec.channel else inst


def _official(spec: PeerSpec, src: ModuleType, *, install: bool, progress: Callable[[str], None] | None) -> Outcome:
    """A spec an official feed resolves, to a build from that source only (another source's build
    of the same version is another binary). ``cft:VERSION``: an installed Chrome for Testing build
    that matches needs no feed. Otherwise the feed names one exact build (a channel's moves, so it
    is asked every run); an installation of exactly that version from that source serves, else it
    is installed (with ``install``) or the one-line error says how. ``snapshot:POSITION``: only
    that position's installation serves, found by its source (``snapshot r1121455``), as its
    version is known only once launched."""
    own = snapshots.label(spec.position) if src is snapshots else src.SOURCE

    def mine() -> list[Installation]:  # Debian's Chromium 156 is not Chrome for Testing's 156
        return [i for i in cached(spec.kind) if i.source == own]

    def built(item: Available) -> Installation | None:
        return next((i for i in mine() if not item.version or _same(i.version, item.version)), None)

    if not spec.channel:
        have = _best(mine(), spec.version)
        if have is not None:
            return Outcome(have, already=True)
    item = _ask(spec, src)
    have = built(item)
    if have is None and install:
        with install_lock(spec):
            have = built(item)
            if have is None:
                done = _install_item(spec, item, progress or (lambda _: None))
                return dataclasses.replace(done, installation=_labelled(spec, done.installation))
    if have is None:
        raise RigError(f"{spec} ({spec.kind} {item.version or 'r' + item.package_version} from {src.NAME}) "
                       f"is not installed here; run: rig browsers install {spec}")
    return Outcome(_labelled(spec, have), already=True)


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
        raise RigError(f"{spec}: install one version, not a range (e.g. {spec.at(spec.range[1])})")
    src = official(spec)
    if src is not None:
        return _official(spec, src, install=True, progress=progress)
    if not spec.version:
        return Outcome(resolve(spec), already=True)
    have = _best(installed(spec.kind), spec.version)
    if have is not None:
        return Outcome(have, already=True)
    with install_lock(spec):
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
            exe, archives, downloaded = FETCH[item.source](item, spec, tmp)
        except Corrupt as exc:
            raise RigError(f"{spec}: the download is corrupt ({exc}); the partial files were deleted; "
                           f"run rig browsers install {spec} again") from None
        progress(f"{spec}: launching {item.describe()} to check it")
        try:
            inst = verify(spec.kind, str(exe))
        except RigError as exc:
            raise RigError(f"{spec}: {item.describe()} unpacks but {exc}; its archive stays in "
                           f"{downloads_dir()} for the next try") from None
        wanted = spec.version or item.version  # "" for a commit position: its build says its version
        if wanted and not matches(wanted, inst.version):
            for a in archives:
                (downloads_dir() / a["name"]).unlink(missing_ok=True)
            raise RigError(f"{spec}: {item.describe()} is {spec.kind} {inst.version}, which does not match; "
                           f"installable: {_lines(available(spec.kind))}")
        final = base / inst.version
        if item.source == snapshots.SOURCE:  # many commit positions report one version: each its own
            final = base / f"{inst.version}+r{item.package_version}"
        existing = read_manifest(final) if final.exists() else None
        if existing is not None and existing.source != item.source and official_source(item.source):
            # Chrome for Testing's or Mozilla's build of a version another source has too: another binary
            final = base / f"{inst.version}+{item.source}"
            existing = read_manifest(final) if final.exists() else None
        if final.exists():  # the same exact version from another source: keep the first
            if existing is not None:
                return Outcome(existing, already=True)
            shutil.rmtree(final)
        inst = dataclasses.replace(inst, path=str(final / exe.relative_to(tmp)), source=_source_of(item))
        manifest = dict(inst.as_dict(), executable=str(exe.relative_to(tmp)), package=item.package,
                        package_version=item.package_version, archives=archives,
                        **({"channel": item.channel} if item.channel else {}),
                        verified_with=f"playwright {playwright_version()}",
                        verified_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for a in archives:  # installed: the archive would only be a second copy
        (downloads_dir() / a["name"]).unlink(missing_ok=True)
    return Outcome(inst, already=False, downloaded=downloaded)


def _resolve_aiortc(spec: PeerSpec, install: bool) -> Installation:
    drivers = launch.rig_drivers()
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
        raise RigError(f"{spec}: a range is for rig bisect only; name one version (e.g. {spec.at(spec.range[1])})")
    if spec.kind == "aiortc":
        return _resolve_aiortc(spec, install)
    if spec.binary:
        if not os.path.isfile(spec.binary):
            raise RigError(f"{spec}: no such file {spec.binary}; give the path of a {spec.kind} executable")
        try:
            return dataclasses.replace(probe(spec.kind, spec.binary), source="path")
        except RigError as exc:
            raise RigError(f"{spec}: {exc}") from None
    src = official(spec)
    if src is not None:
        return _official(spec, src, install=install, progress=None).installation
    if not spec.version:
        return system(spec.kind)
    have = _best(installed(spec.kind), spec.version)
    if have is not None:
        return have
    if install:
        return _install_spec(spec, None).installation
    raise RigError(f"{spec} is not installed here; run: rig browsers install {spec}")
