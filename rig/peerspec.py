"""A peer as the user names it: ``kind[@version|@/binary|@first..last|@ws://endpoint]``."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from .errors import RigError
from .vocab import PEER_KINDS

#: A spec variant with one of these prefixes is a Playwright server's address (a remote browser).
ENDPOINT_SCHEMES = ("ws://", "wss://")


@dataclass(frozen=True)
class PeerSpec:
    """A peer as the user names it: ``kind[@version|@/binary|@first..last|@ws://endpoint]``.

    ``chromium`` (whatever is installed), ``chromium@147`` (a version: a prefix of an exact
    one, resolved by rig.install to the newest installed or installable match),
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
        if self.variant and not self.binary:
            bad = [v for v in (self.range or (self.variant,)) if not re.fullmatch(r"\d+(\.\d+)*(esr)?", v)]
            if bad:
                raise RigError(f"{self}: {bad[0]!r} is not a version (write {self.kind}@147, "
                               f"{self.kind}@147.0.7727.0, {self.kind}@110..156 or {self.kind}@/path/to/binary)")
        if self.kind == "aiortc" and self.binary:
            raise RigError(f"{self}: aiortc is chosen by version (aiortc@1.14), not by path")

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
        """``("110", "156")`` for ``chromium@110..156``; None otherwise."""
        if ".." in self.variant and not self.binary and not self.endpoint:
            first, _, last = self.variant.partition("..")
            return first, last
        return None

    @property
    def version(self) -> str:
        """The version asked for (a prefix of an exact version); "" for any, a binary, a range or an endpoint."""
        return "" if self.binary or self.range or self.endpoint else self.variant

    def __str__(self) -> str:
        return f"{self.kind}@{self.variant}" if self.variant else self.kind

    @property
    def label(self) -> str:
        """Spec made safe for a pytest id or a file name."""
        return re.sub(r"[^\w.]+", "_", str(self)).strip("_")
