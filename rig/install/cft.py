"""Chrome for Testing as a source of Chromium builds: Google's JSON feeds name every build since
milestone 113 and the four channels' current ones, each with its download URLs per platform; the
``linux64`` Chrome is ``chrome-linux64.zip``, holding ``chrome-linux64/chrome``.

Specs that name this source: ``chromium@cft:130`` (the newest build of milestone 130, from
``latest-versions-per-milestone-with-downloads.json``), ``chromium@cft:130.0.6723.58`` (that
build, from ``known-good-versions-with-downloads.json``, which Google describes as meant for
bisecting) and ``chromium@stable|beta|dev|canary`` (the channel's build now, from
``last-known-good-versions-with-downloads.json``). The feeds are read at ``config.CFT_URL``
(``RIG_CFT_URL``, a mirror's address), the archives where the feeds say.

The feeds carry no hashes, so integrity is trust on first download: the archive's SHA-256 is
recorded the first time it unpacks (rig.install.cache.first_seen, and the manifest), and a kept
or later download of the same archive must have the same one.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .. import config
from ..errors import RigError
from ..peerspec import PeerSpec
from ..versions import matches, version_key
from .cache import Missing, download, downloads_dir, first_seen, host_of, read_json, remember_first, sha256
from .source import Available, Corrupt, first_line

#: The source's name in Available, manifests and reports, and in messages.
SOURCE = "cft"
NAME = "Chrome for Testing"
PACKAGE = "chrome-for-testing"
PLATFORM = "linux64"
#: The archive's executable, relative to where it is unpacked.
EXECUTABLE = f"chrome-{PLATFORM}/chrome"
KNOWN = "known-good-versions-with-downloads.json"
CHANNELS = "last-known-good-versions-with-downloads.json"
MILESTONES = "latest-versions-per-milestone-with-downloads.json"
#: The feeds' channel names for the spec's.
CHANNEL_NAMES = {"stable": "Stable", "beta": "Beta", "dev": "Dev", "canary": "Canary"}


def feed_url(name: str) -> str:
    return f"{config.CFT_URL.rstrip('/')}/{name}"


def mirror_env(url: str) -> str:
    """The environment variable that points this source at a mirror of ``url``'s host."""
    return "RIG_CFT_URL"


def linux_url(entry: dict, asset: str = "chrome") -> str:
    """The ``linux64`` download URL of ``asset`` in one feed entry; "" when it has none."""
    for d in ((entry.get("downloads") or {}).get(asset) or []):
        if isinstance(d, dict) and d.get("platform") == PLATFORM and d.get("url"):
            return str(d["url"])
    return ""


def _item(entry: dict, channel: str = "") -> Available | None:
    version, url = str(entry.get("version", "")), linux_url(entry)
    if not version or not url:
        return None
    return Available("chromium", version, SOURCE, PACKAGE, version, url, channel=channel)


def parse_known(feed: dict) -> list[Available]:
    """Every build of ``known-good-versions-with-downloads.json`` with a linux64 Chrome, newest first."""
    items = [_item(e) for e in feed.get("versions") or [] if isinstance(e, dict)]
    return sorted((i for i in items if i), key=lambda a: version_key(a.version), reverse=True)


def parse_channels(feed: dict) -> dict[str, Available]:
    """``last-known-good-versions-with-downloads.json``: the build of each channel, by the spec's
    name for it (``beta``)."""
    out = {}
    for mine, theirs in CHANNEL_NAMES.items():
        entry = (feed.get("channels") or {}).get(theirs)
        item = _item(entry, mine) if isinstance(entry, dict) else None
        if item:
            out[mine] = item
    return out


def parse_milestones(feed: dict) -> dict[str, Available]:
    """``latest-versions-per-milestone-with-downloads.json``: the newest build of each milestone."""
    out = {}
    for milestone, entry in (feed.get("milestones") or {}).items():
        item = _item(entry) if isinstance(entry, dict) else None
        if item:
            out[str(milestone)] = item
    return out


def _feed(name: str) -> dict:
    data = read_json(feed_url(name))
    if not isinstance(data, dict):
        raise RigError(f"{feed_url(name)} is not a Chrome for Testing feed (not a JSON object)")
    return data


def pick(spec: PeerSpec) -> Available:
    """The one build ``spec`` names, from the feeds (read within their bound). Raises
    cache.Unreachable when the feeds' host does not answer, RigError (one line, without the spec:
    the caller prefixes it) when the feeds have no such build."""
    if spec.channel:
        item = parse_channels(_feed(CHANNELS)).get(spec.channel)
        if item is None:
            raise RigError(f"{NAME}'s {CHANNELS} has no {CHANNEL_NAMES[spec.channel]} build for {PLATFORM}")
        return item
    want = spec.version
    if len(version_key(want)) == 1:
        try:
            item = parse_milestones(_feed(MILESTONES)).get(want)
        except Missing:  # a mirror without the per-milestone feed: the full list has the same builds
            item = None
        if item is not None:
            return item
    known = parse_known(_feed(KNOWN))
    found = [a for a in known if a.version == want] or [a for a in known if matches(want, a.version)]
    if found:
        return found[0]
    span = f"{known[-1].version} to {known[0].version}" if known else "none"
    older = f"; for older Chromium use chromium@{want} (npm or Debian)" if known and \
        version_key(want) < version_key(known[-1].version) else ""
    raise RigError(f"{NAME} has no {PLATFORM} build matching {want} (its builds: {span}){older}")


def channels() -> dict[str, str]:
    """Each channel's build today, by the spec's name for it: what ``rig browsers list
    --available`` shows (cache.Unreachable when the feeds' host does not answer)."""
    return {c: a.version for c, a in parse_channels(_feed(CHANNELS)).items()}


def known_versions() -> list[str]:
    """Every build of the known-good list with a linux64 Chrome, oldest first: what ``rig bisect
    --source official`` walks for Chromium."""
    return sorted((a.version for a in parse_known(_feed(KNOWN))), key=version_key)


def revisions() -> dict[str, str]:
    """The commit position (the feed's ``revision``) of each build of the known-good list with a
    linux64 Chrome, by version: where ``rig bisect --source official`` hands over to Chromium's
    snapshots (rig.install.snapshots) once two adjacent builds disagree."""
    out = {}
    for e in _feed(KNOWN).get("versions") or []:
        if isinstance(e, dict) and linux_url(e) and str(e.get("revision", "")).isdigit():
            out[str(e.get("version", ""))] = str(e["revision"])
    return out


def archive_name(item: Available) -> str:
    return f"{PACKAGE}-{item.package_version}-{PLATFORM}.zip"


def fetch(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
    """Download (or reuse a kept) ``chrome-linux64.zip``, check it against the SHA-256 of its first
    download when there was one, unzip it into ``tmp``; then it becomes the first download."""
    return fetch_zip(item, spec, tmp, archive_name(item), EXECUTABLE, NAME, "rig/install/cft.py")


def fetch_zip(item: Available, spec: PeerSpec, tmp: Path, name: str, executable: str, source: str,
              module: str) -> tuple[Path, list[dict], int]:
    """A zip from a source that publishes no hashes (Chrome for Testing, Chromium's snapshots),
    kept in the downloads as ``name``: downloaded (or a kept copy reused), checked against the
    SHA-256 of its first download when there was one, unzipped into ``tmp``, ``executable`` found
    in it; then it becomes the first download. ``source`` and ``module`` name the source and its
    layout's code in messages."""
    archive = downloads_dir() / name
    seen = first_seen(name)
    if archive.is_file() and (seen is None or sha256(archive) != seen["sha256"]):
        archive.unlink()  # a kept archive that no longer checks out (or was never checked): fetch it again
    downloaded = 0
    if not archive.is_file():
        downloaded = download(item.url, archive, spec)
    digest = sha256(archive)
    if seen is not None and digest != seen["sha256"]:
        archive.unlink()
        raise Corrupt(f"{name} from {host_of(item.url)} has SHA-256 {digest[:16]}..., not the {seen['sha256'][:16]}... "
                      f"of its first download ({seen.get('at', '?')}); {source} publishes no hashes, so the first "
                      f"download is the reference: if the new one is right, remove {name} from "
                      f"{downloads_dir() / 'first-seen.json'}")
    try:
        unzip(archive, tmp)
    except Corrupt:
        archive.unlink(missing_ok=True)
        raise
    exe = tmp / executable
    if not exe.is_file():
        archive.unlink(missing_ok=True)
        raise RigError(f"{spec}: {name} has no {executable}; {source}'s layout changed ({module})")
    if seen is None:
        remember_first(name, digest, item.url)
    archives = [{"name": name, "sha256": digest, "size": archive.stat().st_size, "url": item.url,
                 "integrity": "sha256 of the first download (the source publishes none)"}]
    return exe, archives, downloaded


def unzip(archive: Path, dest: Path) -> None:
    """Unpack a zip into ``dest`` keeping its Unix modes (zipfile's extractall drops them, and the
    browser's executables need theirs) and its symlinks, refusing members that would land
    outside ``dest``. Corrupt (one line) when it is not a whole, readable zip."""
    try:
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                rel = PurePosixPath(info.filename)
                if rel.is_absolute() or ".." in rel.parts:
                    raise Corrupt(f"{archive.name} has a member outside its folder: {info.filename}")
                target = dest.joinpath(*rel.parts)
                mode = info.external_attr >> 16
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if stat.S_ISLNK(mode):
                    link = z.read(info).decode()
                    if link.startswith("/") or os.path.normpath(os.path.join(str(rel.parent), link)).startswith(".."):
                        raise Corrupt(f"{archive.name}: {info.filename} links outside its folder ({link})")
                    os.symlink(link, target)
                    continue
                with z.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                if mode & 0o777:
                    target.chmod(mode & 0o755)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, UnicodeDecodeError, ValueError) as exc:
        raise Corrupt(f"{archive.name} is not a readable zip ({first_line(exc)})") from None
