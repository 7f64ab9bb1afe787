"""Mozilla's archive as a source of Firefox builds: every release by its exact number, and the
channels' current versions from product-details.

Layout (``config.MOZILLA_ARCHIVE_URL``, ``RIG_MOZILLA_ARCHIVE_URL``, is the archive's ``/pub``):
- a release, beta or ESR: ``firefox/releases/VERSION/linux-x86_64/en-US/firefox-VERSION.tar.xz``
  (``.tar.bz2`` before 135), with ``firefox/releases/VERSION/SHA256SUMS`` beside it;
- Developer Edition: the same under ``devedition/releases/``;
- nightly: ``firefox/nightly/latest-mozilla-central/firefox-VERSION.en-US.linux-x86_64.tar.xz``,
  with ``...linux-x86_64.checksums`` (``hash algorithm size name`` lines) beside it.
Channels (``config.MOZILLA_PRODUCT_DETAILS_URL``, ``RIG_MOZILLA_PRODUCT_DETAILS_URL``):
``firefox_versions.json``'s ``LATEST_FIREFOX_VERSION`` (release), ``LATEST_FIREFOX_DEVEL_VERSION``
(beta), ``FIREFOX_DEVEDITION``, ``FIREFOX_ESR`` and ``FIREFOX_NIGHTLY``.

The tarball holds ``firefox/firefox``: a stock Firefox, driven like Debian's firefox-esr (over
WebDriver BiDi, by the rig's Playwright or an older one: rig.install.launch decides).
"""

from __future__ import annotations

import lzma
import re
import tarfile
import zlib
from pathlib import Path

from .. import config
from ..errors import RigError
from ..peerspec import PeerSpec
from ..versions import version_key
from .cache import Missing, download, downloads_dir, hexdigest, read_feed, read_json
from .source import Available, Corrupt, first_line

SOURCE = "mozilla"
NAME = "Mozilla's archive"
PLATFORM = "linux-x86_64"
LOCALE = "en-US"
EXECUTABLE = "firefox/firefox"
#: From this major on, Linux builds are .tar.xz; before it, .tar.bz2.
XZ_SINCE = 135
VERSIONS = "firefox_versions.json"
#: product-details' key for each channel's version.
CHANNEL_KEYS = {
    "release": "LATEST_FIREFOX_VERSION",
    "beta": "LATEST_FIREFOX_DEVEL_VERSION",
    "devedition": "FIREFOX_DEVEDITION",
    "esr": "FIREFOX_ESR",
    "nightly": "FIREFOX_NIGHTLY",
}


def mirror_env(url: str) -> str:
    """The environment variable that points this source at a mirror of ``url``'s host."""
    if url.startswith(config.MOZILLA_PRODUCT_DETAILS_URL.rstrip("/")):
        return "RIG_MOZILLA_PRODUCT_DETAILS_URL"
    return "RIG_MOZILLA_ARCHIVE_URL"


#: A final release's folder in the archive's listing of its releases (no beta, ESR or candidate).
_RELEASE_HREF = re.compile(r'href="(?:[^"]*/)?(\d+\.\d+(?:\.\d+)*)/"')


def releases() -> list[str]:
    """The final Firefox releases in the archive's release list (the directory listing of
    ``firefox/releases/``), oldest first: what ``rig bisect --source official`` walks for Firefox."""
    text = read_feed(f"{config.MOZILLA_ARCHIVE_URL.rstrip('/')}/firefox/releases/").decode(errors="replace")
    return sorted(set(_RELEASE_HREF.findall(text)), key=version_key)


def is_release(version: str) -> bool:
    """Whether ``version`` can name one release in the archive: a major and a minor at least
    (``128.0``, ``128.0.3``, ``128.3.1esr``, ``134.0b5``); a bare major names no one directory."""
    return bool(re.fullmatch(r"\d+\.\d+(\.\d+)*(esr|[ab]\d+)?", version))


def extension(version: str) -> str:
    return "xz" if version_key(version)[:1] >= (XZ_SINCE,) else "bz2"


def locations(version: str, channel: str = "") -> tuple[str, str, str]:
    """The tarball's URL, its checksum file's URL, and the tarball's name in that file."""
    archive = config.MOZILLA_ARCHIVE_URL.rstrip("/")
    ext = extension(version)
    if channel == "nightly":
        base = f"{archive}/firefox/nightly/latest-mozilla-central"
        stem = f"firefox-{version}.{LOCALE}.{PLATFORM}"
        return f"{base}/{stem}.tar.{ext}", f"{base}/{stem}.checksums", f"{stem}.tar.{ext}"
    product = "devedition" if channel == "devedition" else "firefox"
    base = f"{archive}/{product}/releases/{version}"
    entry = f"{PLATFORM}/{LOCALE}/firefox-{version}.tar.{ext}"
    return f"{base}/{entry}", f"{base}/SHA256SUMS", entry


def parse_sums(text: str, entry: str) -> str:
    """The hash of ``entry`` as ``sha256-<hex>`` (or ``sha512-<hex>`` when a nightly's checksums
    list no SHA-256), from SHA256SUMS (``<hex>  <path>``) or a nightly's ``.checksums``
    (``<hex> <algorithm> <size> <name>``); "" when it is not listed."""
    found = {}
    for row in text.splitlines():
        parts = row.split()
        if len(parts) == 2 and parts[1].lstrip("*").removeprefix("./") == entry and len(parts[0]) == 64:
            found["sha256"] = parts[0].lower()
        elif len(parts) == 4 and parts[3] == entry and parts[1] in ("sha256", "sha512"):
            found[parts[1]] = parts[0].lower()
    algo = "sha256" if "sha256" in found else "sha512" if "sha512" in found else ""
    return f"{algo}-{found[algo]}" if algo else ""


def _details_url() -> str:
    return f"{config.MOZILLA_PRODUCT_DETAILS_URL.rstrip('/')}/{VERSIONS}"


def channels() -> dict[str, str]:
    """Each channel's Firefox version today, from product-details (a channel it gives no release
    name for is left out): what ``pick`` resolves a channel with and ``rig browsers list
    --available`` shows (cache.Unreachable when the host does not answer)."""
    data = read_json(_details_url())
    if not isinstance(data, dict):
        return {}
    found = {c: str(data.get(key, "")) for c, key in CHANNEL_KEYS.items()}
    return {c: v for c, v in found.items() if is_release(v)}


def pick(spec: PeerSpec) -> Available:
    """The one build ``spec`` names: a channel's version from product-details, or the exact
    release ``spec.version``; its hash from the checksum file beside it (read within its bound,
    and required). cache.Unreachable when a host does not answer; RigError (one line, without the
    spec) when the archive has no such release."""
    version = spec.version
    if spec.channel:
        version = channels().get(spec.channel, "")
        if not version:
            raise RigError(f"{_details_url()} gives no {CHANNEL_KEYS[spec.channel]} (a Firefox version) for the "
                           f"{spec.channel} channel")
    url, sums_url, entry = locations(version, spec.channel)
    try:
        sums = read_feed(sums_url).decode(errors="replace")
    except Missing:
        raise RigError(f"{NAME} has no Firefox {version} for {PLATFORM} ({sums_url} is not there; releases are "
                       f"named like 128.0.3, 128.3.1esr or 134.0b5)") from None
    integrity = parse_sums(sums, entry)
    if not integrity:
        raise RigError(f"{sums_url} lists no {entry}: {NAME} has no {PLATFORM} {LOCALE} build of Firefox {version}")
    package = "devedition" if spec.channel == "devedition" else "firefox"
    return Available("firefox", version, SOURCE, package, version, url, integrity, channel=spec.channel)


def _checks(path: Path, integrity: str) -> bool:
    algo, _, want = integrity.partition("-")
    return hexdigest(path, algo) == want


def fetch(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
    """Download (or reuse a kept) tarball, check it against the archive's checksum file, unpack
    it into ``tmp`` (xz or bz2, as its name says)."""
    name = f"{SOURCE}-{item.package}-{item.url.rsplit('/', 1)[-1]}"
    archive = downloads_dir() / name
    if archive.is_file() and not _checks(archive, item.integrity):
        archive.unlink()  # a kept archive that no longer checks out: fetch it again
    downloaded = 0
    if not archive.is_file():
        downloaded = download(item.url, archive, spec)
        if not _checks(archive, item.integrity):
            archive.unlink()
            raise Corrupt(f"{name} does not match the {item.integrity.partition('-')[0].upper()} in "
                          f"{NAME}'s checksums")
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        archive.unlink(missing_ok=True)
        raise Corrupt(f"{name} is not a readable tarball ({first_line(exc)})") from None
    exe = tmp / EXECUTABLE
    if not exe.is_file():
        archive.unlink(missing_ok=True)
        raise RigError(f"{spec}: {name} has no {EXECUTABLE}; {NAME}'s layout changed (rig/install/mozilla.py)")
    archives = [{"name": name, "integrity": item.integrity, "size": archive.stat().st_size, "url": item.url}]
    return exe, archives, downloaded
