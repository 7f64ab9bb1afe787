"""How to run one case again, as commands to paste: the case page's "Reproduce" box and the
replay line of junit.xml both come from here, so the two never disagree.

Every command is meant to be run in the report folder: a case's plan is its detail file,
``cases/<case>.json``, a path relative to that folder.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from rig import config, model

#: the negotiators a run uses unless told otherwise, relative to a checkout: a command names only
#: a different one (the run may have been made in another checkout of the rig)
_REFERENCE = {"js": config.REFERENCE_NEGOTIATOR_JS.relative_to(config.ROOT).as_posix(),
              "py": config.REFERENCE_NEGOTIATOR_PY.relative_to(config.ROOT).as_posix()}


@dataclass(frozen=True)
class Command:
    #: what it does, in a few words ("step through it", ...)
    what: str
    line: str


def _negotiator_flags(case: model.CaseSummary) -> list[str]:
    flags = []
    for lang in ("js", "py"):
        path = case.negotiators.get(lang, "")
        if path and not path.replace("\\", "/").endswith("/" + _REFERENCE[lang]):
            flags += [f"--negotiator-{lang}", path]
    return flags


def plan_command(case: model.CaseSummary) -> str:
    """``rig matrix`` replaying the case's own plan on its pair ("" without a detail file)."""
    if not case.details:
        return ""
    p, i = case.polite.spec, case.impolite.spec
    return shlex.join(["rig", "matrix", "--plan", case.details, "--peers", f"{p},{i}", "--pairs", f"{p}:{i}",
                       *_negotiator_flags(case)])


def commands(case: model.CaseSummary) -> list[Command]:
    """The case's commands: step through it with ``rig debug`` (its own plan when the run kept
    one), write a self-contained folder with ``rig repro``, replay the plan in ``rig matrix``."""
    pair = f"{case.polite.spec}:{case.impolite.spec}"
    where = ["--plan", case.details] if case.details else [case.scenario]
    out = [Command("step through it, peers' logs kept", shlex.join(["rig", "debug", pair, *where,
                                                                    *_negotiator_flags(case)]))]
    if case.details:
        out.append(Command("a folder to hand on, with its replay script",
                           shlex.join(["rig", "repro", case.id, "--from", "."])))
    if plan := plan_command(case):
        out.append(Command("replay its plan as a matrix run", plan))
    return out
