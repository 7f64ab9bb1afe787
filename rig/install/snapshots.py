"""Chromium's snapshot bucket as a source of Chromium builds by commit position: the builds
Chromium's own ``tools/bisect-builds.py`` walks, one per position that has one (not every
position does), for a boundary narrower than Chrome for Testing's releases.

Layout (``config.CHROMIUM_SNAPSHOTS_URL``, ``RIG_CHROMIUM_SNAPSHOTS_URL``, is the bucket's base):
``Linux_x64/POSITION/chrome-linux.zip`` holds ``chrome-linux/chrome``. The positions are the
``CommonPrefixes`` of the bucket's XML listing ``?delimiter=/&prefix=Linux_x64/`` (each a
``Prefix`` such as ``Linux_x64/1121455/``), a page at a time: a truncated page names the
``NextMarker`` to ask for the next with ``&marker=``. One position's listing
(``prefix=Linux_x64/1121455/``) says whether its archive is there.

Spec: ``chromium@snapshot:1121455``; a range ``chromium@snapshot:1121455..1121500`` is for ``rig
bisect``, which walks the listed positions in it. A position says nothing of the version, so the
installation's version is what the launched browser reports and its source names the position
(``snapshot r1121455``); many positions report one version, so each has its own directory.
Integrity is trust on first download, as for Chrome for Testing (rig.install.cft.fetch_zip): the
bucket publishes no hashes.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from ..errors import RigError
from ..peerspec import PeerSpec
from .cache import read_feed
from .cft import fetch_zip
from .source import Available, first_line

SOURCE = "snapshot"
NAME = "Chromium's snapshot bucket"
PACKAGE = "chromium-snapshot"
PLATFORM = "Linux_x64"
ARCHIVE = "chrome-linux.zip"
#: The archive's executable, relative to where it is unpacked.
EXECUTABLE = "chrome-linux/chrome"
#: A bound on the listing's pages (1000 positions each): a listing that keeps naming new
#: markers past it is not the bucket's.
MAX_PAGES = 2000


def base_url() -> str:
    return config.CHROMIUM_SNAPSHOTS_URL.rstrip("/")


def mirror_env(url: str) -> str:
    """The environment variable that points this source at a mirror of ``url``'s host."""
    return "RIG_CHROMIUM_SNAPSHOTS_URL"


def listing_url(prefix: str, marker: str = "") -> str:
    """The bucket's XML listing of ``prefix``, one level deep, from after ``marker``."""
    url = f"{base_url()}/?delimiter=/&prefix={urllib.parse.quote(prefix, safe='/')}"
    return url + (f"&marker={urllib.parse.quote(marker, safe='/')}" if marker else "")


def archive_url(position: str) -> str:
    return f"{base_url()}/{PLATFORM}/{position}/{ARCHIVE}"


def label(position: str) -> str:
    """An installation's source, naming its commit position: ``snapshot r1121455``."""
    return f"{SOURCE} r{position}"


@dataclass
class Page:
    """One page of the bucket's XML listing."""

    prefixes: list[str] = field(default_factory=list)  # CommonPrefixes: Linux_x64/1121455/
    keys: list[str] = field(default_factory=list)  # Contents: Linux_x64/1121455/chrome-linux.zip
    truncated: bool = False
    next_marker: str = ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # the bucket's elements are in the S3 namespace


def parse_listing(body: bytes, url: str = "the listing") -> Page:
    """A ``ListBucketResult`` page; RigError (one line) when it is not one."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise RigError(f"{url} is not the bucket's XML listing ({first_line(exc)})") from None
    if _local(root.tag) != "ListBucketResult":
        raise RigError(f"{url} is not the bucket's XML listing (its root is {_local(root.tag)})")
    page = Page()
    for child in root:
        name = _local(child.tag)
        if name == "CommonPrefixes":
            page.prefixes += [(p.text or "") for p in child if _local(p.tag) == "Prefix"]
        elif name == "Contents":
            page.keys += [(k.text or "") for k in child if _local(k.tag) == "Key"]
        elif name == "IsTruncated":
            page.truncated = (child.text or "").strip().lower() == "true"
        elif name == "NextMarker":
            page.next_marker = (child.text or "").strip()
    return page


def positions(first: int | None = None, last: int | None = None) -> list[str]:
    """The commit positions with a ``Linux_x64`` build, oldest first, from the bucket's listing
    (read a page at a time, each within its bound): what ``rig bisect`` walks for a range of
    positions. With ``first`` and ``last``, only those between them (both included): the listing
    is in lexical order, in which positions of one digit count keep their numeric order, so for
    each digit count the range spans it is read from a marker just before the range's first
    position of that count up to the first page past its last. cache.Unreachable when the
    bucket's host does not answer."""
    if first is None or last is None:
        return [str(p) for p in sorted(_listed("", None))]
    found: set[int] = set()
    for digits in range(len(str(first)), len(str(last)) + 1):
        lo, hi = max(first, 10 ** (digits - 1)), min(last, 10 ** digits - 1)
        found |= {p for p in _listed(f"{PLATFORM}/{lo}", f"{PLATFORM}/{hi}/") if lo <= p <= hi}
    return [str(p) for p in sorted(found)]


def _listed(marker: str, stop: str | None) -> set[int]:
    """The positions the listing names after ``marker``, page by page, until a page names a
    prefix past ``stop`` (None: to the listing's end)."""
    found: set[int] = set()
    for _ in range(MAX_PAGES):
        url = listing_url(f"{PLATFORM}/", marker)
        page = parse_listing(read_feed(url), url)
        for prefix in page.prefixes:
            m = re.fullmatch(rf"{PLATFORM}/(\d+)/", prefix)
            if m:
                found.add(int(m.group(1)))
        if not page.truncated or (stop is not None and any(p > stop for p in page.prefixes)):
            return found
        following = page.next_marker or (page.prefixes[-1] if page.prefixes else "")
        if not following or following == marker:
            raise RigError(f"{url} says it is truncated but names no next page")
        marker = following
    raise RigError(f"{base_url()}'s listing of {PLATFORM}/ goes on past {MAX_PAGES} pages")


def pick(spec: PeerSpec) -> Available:
    """The build of ``spec``'s commit position, once the position's listing shows its archive.
    cache.Unreachable when the bucket's host does not answer; RigError (one line, without the
    spec: the caller prefixes it) when the position has no build."""
    position = spec.position
    url = listing_url(f"{PLATFORM}/{position}/")
    page = parse_listing(read_feed(url), url)
    if f"{PLATFORM}/{position}/{ARCHIVE}" not in page.keys:
        raise RigError(f"{NAME} has no {PLATFORM} build at commit position {position} (not every position has "
                       f"one; rig bisect over a range, chromium@snapshot:FIRST..LAST, walks those that do)")
    return Available("chromium", "", SOURCE, PACKAGE, position, archive_url(position))


def archive_name(item: Available) -> str:
    return f"{PACKAGE}-{PLATFORM}-{item.package_version}.zip"


def fetch(item: Available, spec: PeerSpec, tmp: Path) -> tuple[Path, list[dict], int]:
    """Download (or reuse a kept) ``chrome-linux.zip``, checked and unzipped as Chrome for
    Testing's are (trust on first download)."""
    return fetch_zip(item, spec, tmp, archive_name(item), EXECUTABLE, NAME, "rig/install/snapshots.py")
