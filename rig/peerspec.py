"""A peer as the user names it: ``kind[@version|@channel|@cft:version|@snapshot:position|@/binary|@first..last|@ws://endpoint]``."""

from __future__ import annotations

import difflib
import re
import urllib.parse
from dataclasses import dataclass

from .errors import RigError
from .vocab import PEER_KINDS

#: A spec variant with one of these prefixes is a Playwright server's address (a remote browser).
ENDPOINT_SCHEMES = ("ws://", "wss://")
#: Release channels, as the official feeds name them (rig.install.cft: Chrome for Testing's
#: last-known-good versions; rig.install.mozilla: product-details' firefox_versions.json). A
#: channel resolves at run time to one exact version.
CHANNELS = {
    "chromium": ("stable", "beta", "dev", "canary"),
    "firefox": ("release", "beta", "devedition", "esr", "nightly"),
}
#: ``chromium@cft:130``: a version from Chrome for Testing only (the newest of milestone 130,
#: or an exact build such as ``cft:130.0.6723.58``), whatever other sources have.
CFT = "cft:"
#: ``chromium@snapshot:1121455``: the build of Chromium's commit position 1121455 from Chromium's
#: snapshot bucket (rig.install.snapshots); ``chromium@snapshot:1121455..1121500`` is a range of
#: positions, for ``rig bisect``.
SNAPSHOT = "snapshot:"
#: Examples of each kind's version forms (a line, an exact version, a range), for messages.
FORMS = {
    "chromium": ("147", "147.0.7727.0", "110..156"),
    "firefox": ("153", "128.0.3", "140..153"),
    "aiortc": ("1.14", "1.16.0"),
}
VERSION_RE = r"\d+(\.\d+)*(esr|[ab]\d*)?"  # 147.0.7727.0, 153.8.0esr, Firefox's 134.0b5 and 135.0a1


@dataclass(frozen=True)
class PeerSpec:
    """A peer as the user names it: ``kind[@version|@channel|@cft:version|@snapshot:position|@/binary|@first..last|@ws://endpoint]``.

    ``chromium`` (whatever is installed), ``chromium@147`` (a version: a prefix of an exact
    one, resolved by rig.install to the newest installed or installable match),
    ``chromium@beta`` / ``firefox@nightly`` (a release channel, resolved at run time to one exact
    version from the official feed), ``chromium@cft:130`` (from Chrome for Testing only),
    ``chromium@snapshot:1121455`` (the build of that commit position, from Chromium's snapshots),
    ``chromium@/opt/c/chrome`` (a binary), ``chromium@110..156`` (a range, for ``rig
    bisect`` only), ``chromium@ws://host:3000/path`` (a browser on another host, behind a
    Playwright server: docs/remote.md). Specs stay one short string in ids and reports; the
    exact version they resolved to is recorded beside them (rig.versions.Installation).
    """

    kind: str
    variant: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PEER_KINDS:
            raise RigError(f"unknown peer kind {self.kind!r} (known: {', '.join(PEER_KINDS)})")
        if self.variant.startswith(ENDPOINT_SCHEMES):
            self._check_endpoint()
            return
        if re.fullmatch(r"[a-z][a-z0-9+.-]*://.*", self.variant, re.I):
            raise RigError(f"{self}: a remote browser is reached through a Playwright server: write "
                           f"{self.kind}@ws://HOST:PORT/PATH (or wss://), the address the server printed")
        if self.variant and not re.fullmatch(r"[\w./:=+-]+", self.variant):
            raise RigError(f"bad peer variant {self.variant!r} in {self}")
        if self.variant and not self.binary and not self.channel:
            if self.variant.startswith(CFT):
                self._check_cft()
                return
            if self.variant.startswith(SNAPSHOT):
                self._check_snapshot()
                return
            bad = [v for v in (self.range or (self.variant,)) if not re.fullmatch(VERSION_RE, v)]
            if bad:
                close = difflib.get_close_matches(bad[0], CHANNELS.get(self.kind, ()), n=1)
                hint = f" or a channel; did you mean {self.kind}@{close[0]}?" if close else ""
                raise RigError(f"{self}: {bad[0]!r} is not a version{hint} (write {self._forms()})")
        if self.kind == "aiortc" and self.binary:
            raise RigError(f"{self}: aiortc is chosen by version (aiortc@1.14), not by path")

    def _forms(self) -> str:
        """The forms a version of this kind takes, for the one line that says a spec is none."""
        k = self.kind
        forms = [f"{k}@{v}" for v in FORMS.get(k, FORMS["chromium"])]
        if k in CHANNELS:
            forms.append(f"{k}@{'|'.join(CHANNELS[k])}")
        if k == "chromium":
            forms.append(f"{k}@{CFT}130")
        if k != "aiortc":  # aiortc is chosen by version, never by path
            forms.append(f"{k}@/path/to/binary")
        return ", ".join(forms[:-1]) + f" or {forms[-1]}"

    def _check_cft(self) -> None:
        """``chromium@cft:130`` or ``chromium@cft:130.0.6723.58``: Chrome for Testing has Chromium only."""
        if self.kind != "chromium":
            raise RigError(f"{self}: Chrome for Testing has Chromium only; write chromium@{self.variant}")
        rest = self.variant[len(CFT):]
        if not re.fullmatch(r"\d+(\.\d+)*", rest):
            what = f"{rest!r} is not a Chrome for Testing version" if rest else f"no version after {CFT}"
            raise RigError(f"{self}: {what} (write chromium@{CFT}130 for the newest build of milestone 130, "
                           f"or chromium@{CFT}130.0.6723.58 for that build)")

    def _check_snapshot(self) -> None:
        """``chromium@snapshot:1121455``, or a range of positions ``chromium@snapshot:1121455..1121500``."""
        if self.kind != "chromium":
            raise RigError(f"{self}: Chromium's snapshot bucket has Chromium only; write chromium@{self.variant}")
        rest = self.variant[len(SNAPSHOT):]
        bad = [p for p in (rest.split("..", 1) if ".." in rest else [rest]) if not re.fullmatch(r"\d+", p)]
        if bad:
            what = f"{bad[0]!r} is not a commit position" if bad[0] else f"no commit position after {SNAPSHOT}"
            raise RigError(f"{self}: {what} (write chromium@{SNAPSHOT}1121455 for the build of that position, "
                           f"or chromium@{SNAPSHOT}1121455..1121500 for rig bisect)")

    def _check_endpoint(self) -> None:
        """A Playwright server's address: ws:// or wss://, a host, a valid port; no spaces and no
        commas (specs are listed comma-separated)."""
        if self.kind not in ("chromium", "firefox"):
            raise RigError(f"{self}: only a browser can be remote (a Playwright server runs browsers); "
                           f"{self.kind} peers run on the rig's host or one of its xdist workers")
        if re.search(r"[\s,]", self.variant):
            raise RigError(f"{self}: an endpoint has no spaces or commas")
        try:
            url = urllib.parse.urlsplit(self.variant)
            port = url.port
        except ValueError as exc:
            raise RigError(f"{self}: bad endpoint ({exc}); write {self.kind}@ws://HOST:PORT/PATH") from None
        if not url.hostname:
            raise RigError(f"{self}: the endpoint names no host; write {self.kind}@ws://HOST:PORT/PATH")
        if port is None:
            raise RigError(f"{self}: the endpoint names no port; write {self.kind}@ws://{url.hostname}:PORT"
                           f"{url.path or '/'} (the address the Playwright server printed)")

    @classmethod
    def parse(cls, text: str) -> PeerSpec:
        text = text.strip()
        if not text:
            raise RigError("empty peer spec")
        kind, _, variant = text.partition("@")
        return cls(kind.lower(), variant)

    @property
    def binary(self) -> str | None:
        return self.variant if self.variant.startswith("/") else None

    @property
    def endpoint(self) -> str | None:
        """The Playwright server's address for ``chromium@ws://host:3000/path``; None otherwise."""
        return self.variant if self.variant.startswith(ENDPOINT_SCHEMES) else None

    @property
    def range(self) -> tuple[str, str] | None:
        """``("110", "156")`` for ``chromium@110..156``, ``("1121455", "1121500")`` for
        ``chromium@snapshot:1121455..1121500``; None otherwise."""
        if ".." in self.variant and not self.binary and not self.endpoint:
            first, _, last = self.variant.removeprefix(SNAPSHOT).partition("..")
            return first, last
        return None

    def at(self, version: str) -> str:
        """One version of this spec's range, as a spec: ``chromium@156`` of ``chromium@110..156``,
        ``chromium@snapshot:1121500`` of ``chromium@snapshot:1121455..1121500``."""
        return f"{self.kind}@{SNAPSHOT if self.source == SNAPSHOT[:-1] else ''}{version}"

    @property
    def channel(self) -> str:
        """``beta`` for ``chromium@beta``: a release channel of the official feeds; "" otherwise."""
        return self.variant if self.variant in CHANNELS.get(self.kind, ()) else ""

    @property
    def source(self) -> str:
        """The source a spec insists on: ``cft`` for ``chromium@cft:130``, ``snapshot`` for
        ``chromium@snapshot:1121455``; "" (any source) otherwise."""
        for prefix in (CFT, SNAPSHOT):
            if self.variant.startswith(prefix):
                return prefix[:-1]
        return ""

    @property
    def position(self) -> str:
        """The commit position ``chromium@snapshot:1121455`` names (``1121455``); "" otherwise."""
        return self.variant.removeprefix(SNAPSHOT) if self.source == SNAPSHOT[:-1] and not self.range else ""

    @property
    def version(self) -> str:
        """The version asked for (a prefix of an exact version: ``130`` for ``chromium@cft:130``); "" for
        any, a channel (its version is known only once its feed is read), a commit position (its build says
        its version once launched), a binary, a range or an endpoint."""
        if self.binary or self.range or self.endpoint or self.channel or self.source == SNAPSHOT[:-1]:
            return ""
        return self.variant.removeprefix(CFT)

    def __str__(self) -> str:
        return f"{self.kind}@{self.variant}" if self.variant else self.kind

    @property
    def label(self) -> str:
        """Spec made safe for a pytest id or a file name."""
        return re.sub(r"[^\w.]+", "_", str(self)).strip("_")
