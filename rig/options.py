"""The matrix's options, declared once: `rig matrix` (argparse) and the pytest plugin both
build theirs from this table, and `rig matrix` hands its values to pytest through it."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config, evidence, mutants, scenarios, shards, variants
from .errors import RigError
from .faults import FAULTS
from .peerspec import PeerSpec
from .shards import Shard
from .versions import version_key
from .vocab import PEER_KINDS

DEFAULT_PEERS = "chromium,firefox,aiortc"
#: rig matrix's default is 2 workers, but 1 for a run of fewer cases than this: a second worker is
#: another pytest process with its own browsers (about 4 CPU s before its first case), and it paid
#: that back only from about 30 mixed cases on (idle 2 cores: 24 Chromium/aiortc cases 14.7 s on 1
#: worker, 18.4 s on 2; 16 Chromium/Firefox 30.5 s against 34.7 s; 45 of all three 51.5 s against
#: 47.8 s, with 8 CPU s more; docs/measurements.md)
SMALL_RUN_CASES = 30
#: rig mutants' default workers: one more than rig matrix's 2. A deadlocked mutant's case waits out
#: its settle bound (10 s) with both peers idle, and in a full run such waits are about 40 % of
#: the workers' time; a third worker runs cases meanwhile (docs/measurements.md: 1,338 -> 1,170 s).
MUTANTS_WORKERS = 3


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
    if not text:
        return None
    out = set()
    for item in (x.strip() for x in text.split(",") if x.strip()):
        pol, imp = parse_pair(item)
        out.add((str(pol), str(imp)))
    return out


def _split_pair(item: str) -> tuple[str, str, str]:
    """``POLITE:IMPOLITE`` split at the colon that starts a peer kind: a remote spec's endpoint
    has colons of its own (``chromium@ws://10.0.0.2:3000/x:firefox``)."""
    for i, ch in enumerate(item):
        if ch == ":":
            kind = item[i + 1:].split("@", 1)[0].strip().lower()
            if kind in PEER_KINDS:
                return item[:i], ":", item[i + 1:]
    return ("", "", "") if "://" in item else item.partition(":")


# The values every command takes are checked here, before the command starts anything: a
# mistake is a usage error (one line, exit status 2), never a run that leaves part of it out.
# A spec that is well-formed but cannot be resolved (a version no source has, no network) is
# not checked here: that is found during the run, and its cells say so.

def peer(text: str, what: str = "", *, ranges: bool = False) -> PeerSpec:
    """One peer spec; ``what`` names where it came from (``--peers``) in the message."""
    at = f"{what}: " if what else ""
    try:
        spec = PeerSpec.parse(text)
    except RigError as exc:
        raise RigError(f"{at}{exc}") from None
    if spec.range:
        first, last = spec.range
        if not ranges:
            raise RigError(f"{at}{spec}: a range is for rig bisect only; name one version (e.g. {spec.at(last)})")
        if version_key(first) > version_key(last):
            raise RigError(f"{at}{spec}: the range runs backwards; write {spec.at(last)}..{first}")
    return spec


def peer_list(text: str, what: str = "--peers") -> list[str]:
    """Comma-separated peer specs, each as its canonical string."""
    specs = [str(peer(x, what)) for x in text.split(",") if x.strip()]
    if not specs:
        raise RigError(f"{what} {text!r}: no peer spec; give e.g. {what} {DEFAULT_PEERS}")
    return specs


def scenario_list(text: str, what: str = "--scenarios") -> list[str]:
    """Comma-separated scenario names, or ``all`` (the whole catalogue)."""
    if text == "all":
        return list(scenarios.CATALOGUE)
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise RigError(f"{what} {text!r}: no scenario; give names (rig scenarios lists them) or all")
    for name in names:
        _scenario(name, what)
    return names


def parse_pair(item: str) -> tuple[PeerSpec, PeerSpec]:
    """``POLITE:IMPOLITE`` -> the two specs."""
    pol, sep, imp = _split_pair(item.strip())
    if not sep or not pol or not imp:
        raise RigError(f"pair {item!r}: expected POLITE:IMPOLITE, e.g. firefox:aiortc")
    return peer(pol), peer(imp)


def at_least(least: int, what: str) -> Callable[[int], None]:
    def check(value: int) -> None:
        if value < least:
            raise RigError(f"{what} {value}: give at least {least}")
    return check


def share(what: str) -> Callable[[float], None]:
    """A share a gate compares against: 1 or more could never be exceeded, so the gate could never fail."""
    def check(value: float) -> None:
        if not 0 <= value < 1:
            raise RigError(f"{what} {value:g}: give a share from 0 up to (not including) 1, e.g. 0.10")
    return check


def existing_file(what: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not Path(value).is_file():
            raise RigError(f"{what} {value}: no such file")
    return check


def negotiator_py(value: str) -> None:
    """``path.py[:attr]`` (the file must exist) or ``module:attr`` (a dotted name: it is imported
    where the peers run, so only its form is checked here)."""
    file_part = value.partition(":")[0] if ".py:" in value else value
    if file_part.endswith(".py"):
        if not Path(file_part).is_file():
            raise RigError(f"--negotiator-py {file_part}: no such file")
    elif not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?", value):
        raise RigError(f"--negotiator-py {value!r}: expected path.py[:attr] or module:attr")


def _pairs(text: str) -> None:
    try:
        parse_pairs(text)
    except RigError as exc:
        raise RigError(f"--pairs: {exc}") from None


def _one_pair(text: str) -> None:
    if "," in text:
        raise RigError(f"pair {text!r}: give one POLITE:IMPOLITE pair, e.g. chromium:aiortc")
    parse_pair(text)


def _variants(path: str) -> None:
    for v in variants.load(path):
        for name in v.scenarios or ():
            _scenario(name, f"--variants {path}: variant {v.name!r}")


def _scenario(name: str, what: str = "") -> None:
    if name not in scenarios.CATALOGUE:
        raise _unknown(what, "scenario", name, list(scenarios.CATALOGUE), "rig scenarios lists them")


def _unknown(what: str, thing: str, name: str, known: list[str], where: str) -> RigError:
    """The one line for a name that is not among ``known``: the closest one, if any, and where
    they are all listed (not the list itself: the catalogue grows)."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return RigError(f"{what + ': ' if what else ''}unknown {thing} {name!r}{hint}; {where}")


def _mutant_names(text: str) -> None:
    known = [m.name for m in mutants.discover()]
    where = mutants.MUTANTS_DIR.relative_to(config.ROOT) if mutants.MUTANTS_DIR.is_relative_to(config.ROOT) \
        else mutants.MUTANTS_DIR
    for name in (x.strip() for x in text.split(",") if x.strip()):
        if name not in known:
            raise _unknown("--only", "mutant", name, known, f"the mutants are the files in {where}/")


def _stub_host(value: str) -> None:
    from .signaling import check_stub_host  # aiohttp: kept out of `rig --help`
    check_stub_host(value, what="--stub-host")


def _shard(value: str) -> None:
    Shard.parse(value)


#: Namespace attribute -> its check. An attribute means the same in every command that has it
#: (``rig scenarios --plan NAME`` is a scenario name, so plans are loaded by the commands).
CHECKS: dict[str, Callable[[Any], object]] = {
    "peers": peer_list,
    "polite": lambda v: peer(v, "--polite", ranges=True),
    "impolite": lambda v: peer(v, "--impolite", ranges=True),
    "specs": lambda v: [peer(s) for s in v],
    "pair": _one_pair,
    "pairs": _pairs,
    "scenarios": scenario_list,
    "scenario": _scenario,
    "shard": _shard,
    "repeat": at_least(1, "--repeat"),
    "workers": at_least(1, "--workers"),
    "cases": at_least(1, "--cases"),
    "hit_rate_min_runs": at_least(1, "--hit-rate-min-runs"),
    "hit_rate_threshold": share("--hit-rate-threshold"),
    "negotiator_js": existing_file("--negotiator-js"),
    "negotiator_py": negotiator_py,
    "variants": _variants,
    "only": _mutant_names,
    "show_plan": lambda v: _scenario(v, "--plan"),
    "stub_host": _stub_host,
}


def check(args: argparse.Namespace) -> None:
    """Every value ``args`` holds, and how they go together, checked before its command starts
    anything (a run, a browser, a file); the first bad one is a one-line RigError."""
    for dest, fn in CHECKS.items():
        value = getattr(args, dest, None)
        if value is not None:
            fn(value)
    _together(args)


def _together(args: argparse.Namespace) -> None:
    get = vars(args).get
    if get("pair") is not None and not get("scenario") and not get("plan"):
        raise RigError("name a SCENARIO or give --plan FILE")
    if get("polite") and get("impolite"):
        from . import bisect  # pydantic and the case engine: kept out of `rig --help`
        bisect.parse_sides(get("polite"), get("impolite"))
    if get("plan") is not None:
        scenarios.load_plan(Path(get("plan")))
    if get("variants") and get("shard"):
        raise RigError("--variants cannot be combined with --shard")
    peers = get("peers")
    if not peers:
        return
    listed = peer_list(peers)
    pairs = parse_pairs(get("pairs"))
    for pol, imp in sorted(pairs or ()):
        for side in (pol, imp):
            if side not in listed:
                raise RigError(f"--pairs: {pol}:{imp} names {side}, which --peers {','.join(listed)} lacks; "
                               f"add it to --peers or leave the pair out")
    if get("shard"):
        names = [scenarios.load_plan(Path(get("plan"))).name] if get("plan") else scenario_list(get("scenarios"))
        shards.select(shards.catalogue(names, listed, pairs), shards.Shard.parse(get("shard")), shards.Costs.load())
