"""The matrix's options, declared once: `rig matrix` (argparse) and the pytest plugin both
build theirs from this table, and `rig matrix` hands its values to pytest through it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from . import evidence
from .faults import FAULTS

DEFAULT_PEERS = "chromium,firefox,aiortc"


@dataclass(frozen=True)
class Option:
    name: str  # `rig matrix --NAME`; the value's attribute is NAME with - as _
    help: str
    default: Any = None
    type: Any = str
    choices: tuple[str, ...] | None = None
    flag: bool = False  # a switch (store_true)
    pytest: str = ""  # the pytest option, when it is not --rig-NAME

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def pytest_flag(self) -> str:
        return self.pytest or f"--rig-{self.name}"

    def kwargs(self) -> dict:
        if self.flag:
            return {"action": "store_true", "help": self.help}
        kw: dict[str, Any] = {"default": self.default, "help": self.help}
        if self.type is not str:
            kw["type"] = self.type
        if self.choices:
            kw["choices"] = self.choices
        return kw


MATRIX: tuple[Option, ...] = (
    Option("peers", "comma-separated peer specs; every ordered pair is run (default: %(default)s)", DEFAULT_PEERS),
    Option("scenarios", "comma-separated scenario names, or 'all' (default)", "all"),
    Option("pairs", "only these ordered pairs, comma-separated POLITE:IMPOLITE specs (e.g. firefox:aiortc); "
                    "default: every ordered pair of --peers", None),
    Option("shard", "run only slice I of N of the cells (1-based, e.g. 2/3): a stable slice, balanced by measured "
                    "case cost, with every repeat of a cell in the same slice (rig merge puts the slices together)",
           None),
    Option("plan", "run this plan (a plan JSON, or a case's cases/<case>.json) instead of the catalogue", None),
    Option("repeat", "run every cell N times (default: 1)", 1, type=int),
    Option("out", "output folder: results.json, cases/, index.html (default: reports/)", None),
    Option("negotiator-js", "ES module to use as the browsers' negotiator", None, pytest="--negotiator-js"),
    Option("negotiator-py", "path.py[:attr] or module:attr: the negotiator for aiortc peers", None,
           pytest="--negotiator-py"),
    Option("keep", "keep the evidence (SDPs, Playwright traces, aiortc log) of cases that did not pass (failed, "
                   "the default) or of all cases (all)", "failed", choices=evidence.KEEP),
    Option("capture", "evidence files: off (no Playwright traces, no aiortc log), normal, or full (aiortc's "
                      "per-packet debug lines too; rig debug uses it)", "normal", choices=("off", "normal", "full")),
    Option("fault", "inject this fault into the first repeat of every cell, right after both peers joined "
                    "(rig.faults; docs/faults.md): its case is "
                    "an error naming the fault, later repeats show the run going on", None,
           choices=tuple(FAULTS)),
    Option("variants", "a JSON file of negotiator variants to run in this one session, each on its own pairs and "
                       "scenarios (rig mutants writes one; rig/variants.py)", None),
    Option("headed", "show the browsers (needs a display)", flag=True),
    Option("stub-host", "an address of this machine where the signaling stub also listens (HTTPS) for remote "
                        "browsers (peer specs KIND@ws://HOST:PORT/PATH); default: $RIG_STUB_HOST, else 127.0.0.1 "
                        "only (docs/remote.md)", None),
)
BY_NAME = {o.name: o for o in MATRIX}


def add_to_argparse(parser: argparse.ArgumentParser) -> None:
    for o in MATRIX:
        parser.add_argument(f"--{o.name}", dest=o.dest, **o.kwargs())


def add_to_pytest(group: Any) -> None:
    for o in MATRIX:
        kw = o.kwargs()
        if "help" in kw:
            kw["help"] = kw["help"].replace("%(default)s", str(o.default))
        group.addoption(o.pytest_flag, dest=f"rig_{o.dest}", **kw)


def to_pytest(values: dict[str, Any]) -> list[str]:
    """pytest arguments carrying ``values`` (option name -> value; None and defaults left out)."""
    out: list[str] = []
    for name, value in values.items():
        o = BY_NAME[name]
        if value is None or value is False or (not o.flag and value == o.default):
            continue
        out += [o.pytest_flag] if o.flag else [o.pytest_flag, str(value)]
    return out


def parse_pairs(text: str | None) -> set[tuple[str, str]] | None:
    """``firefox:aiortc,chromium:chromium`` -> {(polite spec, impolite spec)}; None for all pairs."""
    from .peers.base import PeerSpec, RigError
    if not text:
        return None
    out = set()
    for item in (x.strip() for x in text.split(",") if x.strip()):
        pol, sep, imp = _split_pair(item)
        if not sep or not pol or not imp:
            raise RigError(f"pair {item!r}: expected POLITE:IMPOLITE, e.g. firefox:aiortc")
        out.add((str(PeerSpec.parse(pol)), str(PeerSpec.parse(imp))))
    return out


def _split_pair(item: str) -> tuple[str, str, str]:
    """``POLITE:IMPOLITE`` split at the colon that starts a peer kind: a remote spec's endpoint
    has colons of its own (``chromium@ws://10.0.0.2:3000/x:firefox``)."""
    from .peers.base import KNOWN_KINDS
    for i, ch in enumerate(item):
        if ch == ":":
            kind = item[i + 1:].split("@", 1)[0].strip().lower()
            if kind in KNOWN_KINDS:
                return item[:i], ":", item[i + 1:]
    return ("", "", "") if "://" in item else item.partition(":")
