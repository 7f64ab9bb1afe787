"""What a source of browser builds offers: :class:`Available`, one installable version, and the
errors a source raises while fetching one.

A source is a module beside this one (rig.install.debian, rig.install.npm) that gives
``<source>_available(kind, notes)``, the versions it lists, and ``fetch(item, spec, tmp)``, which
downloads one of them (through rig.install.cache), checks it and unpacks it into ``tmp``; the
package (rig.install) asks every source and installs what it fetched. The official feeds
(rig.install.cft, rig.install.mozilla) list nothing up front: they give ``pick(spec)``, the one
build a spec names, asked only for specs that name them (a channel, ``cft:``, an exact Firefox
release), so a plain ``chromium@147`` never waits on a host this machine cannot reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..versions import line, matches, version_key

#: The kinds of browser rig browsers installs, in the order listings show them.
BROWSERS = ("chromium", "firefox")
#: Sources that name a browser's exact version before it is downloaded (npm names only its major).
EXACT_SOURCES = ("debian", "cft", "mozilla")


def first_line(exc: BaseException | str) -> str:
    """The first line of an error (a tool's or a library's are long), for one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class Available:
    """One installable browser version.

    ``version`` is the browser's exact version when the source says it (Debian: the upstream
    part of the package version), else only its line (npm: the package major); the exact one
    is then known after installing, from the browser itself.
    """

    kind: str
    version: str
    source: str  # debian | npm | cft | mozilla
    package: str
    package_version: str
    url: str = ""  # npm: the tarball; cft, mozilla: the archive
    integrity: str = ""  # npm: "sha512-<base64>" (or "sha1-<hex>"); mozilla: "sha256-<hex>" from its SHA256SUMS
    channel: str = ""  # cft, mozilla: the channel this version was resolved from (beta, nightly...), if any

    @property
    def exact(self) -> bool:
        return self.source in EXACT_SOURCES

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


class Corrupt(Exception):
    """A download or archive that is not what it should be; the message says how."""
