"""junit.xml, written from the run record (results.json), for CI systems to read.

Why from results.json and not pytest's ``--junitxml``: ``rig merge`` has to write one
junit.xml for shards run on other machines, and it has only their results.json files; one
writer for both means a merged file is exactly what one run would have written. The
record also holds what a CI system should show (versions, finding, glare proof), which
pytest's file would only carry as ``user_properties`` added in the plugin's hooks.

Layout (the "JUnit XML" most CI systems read: GitHub actions, GitLab, Jenkins):

- one ``<testsuite>`` per scenario, with the run's versions, command, shard and catalogue
  digest as its properties;
- one ``<testcase>`` per case: ``classname`` is the scenario, ``name`` the ordered pair as
  specs (``chromium@147 polite x firefox impolite``, `` r2`` added when the cell has
  repeats), so tools group by scenario and a test keeps its name when a browser's patch
  version changes; the exact versions are properties;
- properties per case: ``case_id``, ``scenario``, ``polite.spec/kind/version``, the same for
  ``impolite``, ``outcome``, ``expected``, ``finding`` (the one that explained an xfailed case),
  ``findings`` (every finding of the cell), ``glare.forced``, ``glare.observed``,
  ``glare.rolled_back``, ``glare.ignored``, ``glare.reoffered``, ``glare.collisions``,
  ``case_page`` (relative to the report folder);
- ``failed``/``xpassed`` are ``<failure>``, ``error`` is ``<error>``, ``xfailed``,
  ``unsupported`` and ``not-run`` are ``<skipped>`` (an expected failure, a cell not
  attempted, a case the run ended before; ``type`` says which, and a not-run case still
  fails the run: rig's exit status, and ``not_run`` on ``<testsuites>``): the
  message is one line (the outcome and the first line of the reason), the body the whole
  reason, the cause, the failed checks, the case page and the command that replays it.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from . import model
from .report import case_pages
from .report.reproduce import plan_command

#: Characters XML 1.0 cannot carry; a peer's error text may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MESSAGE_CHARS = 300


def _x(text: object) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", str(text))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def case_name(case: model.CaseSummary, repeats: bool) -> str:
    name = f"{case.polite.spec} polite x {case.impolite.spec} impolite"
    return f"{name} r{case.repeat}" if repeats else name


def properties(case: model.CaseSummary, page: str) -> list[tuple[str, str]]:
    g = case.glare
    props = [("case_id", case.id), ("scenario", case.scenario)]
    for role, peer in (("polite", case.polite), ("impolite", case.impolite)):
        props += [(f"{role}.spec", peer.spec), (f"{role}.kind", peer.kind), (f"{role}.version", peer.version)]
    props += [("outcome", case.outcome), ("expected", case.expected), ("finding", case.finding or ""),
              ("findings", ",".join(case.findings)),
              ("glare.forced", _flag(g.forced)), ("glare.observed", _flag(g.observed)),
              ("glare.rolled_back", _flag(g.polite_rolled_back)), ("glare.ignored", _flag(g.impolite_ignored_offer)),
              ("glare.reoffered", _flag(g.polite_reoffered)), ("glare.collisions", str(g.collisions)),
              ("case_page", page)]
    return props


def _message(case: model.CaseSummary) -> str:
    first = (case.reason.strip().splitlines() or [""])[0]
    line = f"{case.outcome}: {first}" if first else case.outcome
    if case.outcome == "xpassed" and case.findings:
        line = f"xpassed: expected finding {', '.join(case.findings)}, but the case passed"
    return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 1] + "…"


def _body(case: model.CaseSummary, page: str) -> str:
    lines = [case.reason.strip() or case.outcome]
    if case.cause is not None:
        lines.append(f"cause: {case.cause.text()}")
    if case.finding:
        lines.append(f"finding: {case.finding}")
    if case.failed_checks:
        lines.append(f"failed checks: {', '.join(case.failed_checks)}")
    lines.append(f"case page: {page}")
    if case.details:
        lines.append(f"replay (in the report folder): {plan_command(case)}")
    return "\n".join(lines)


def _props(parent: ET.Element, items: list[tuple[str, str]]) -> None:
    el = ET.SubElement(parent, "properties")
    for name, value in items:
        ET.SubElement(el, "property", name=_x(name), value=_x(value))


def _counts(cases: list[model.CaseSummary]) -> dict[str, str]:
    n = Counter(c.outcome for c in cases)
    return {"tests": str(len(cases)), "failures": str(n["failed"] + n["xpassed"]), "errors": str(n["error"]),
            "skipped": str(n["xfailed"] + n["unsupported"] + n["not-run"]),
            "time": f"{sum(c.duration_s for c in cases):.3f}"}


def build(run: model.RunRecord | Mapping) -> ET.Element:
    """The <testsuites> element of ``run``."""
    if not isinstance(run, model.RunRecord):
        run = model.parse_run(dict(run))
    pages = case_pages(run.cases)
    per_cell = Counter((c.scenario, c.polite.spec, c.impolite.spec) for c in run.cases)
    order = [s.name for s in run.scenarios]
    order += [c.scenario for c in run.cases if c.scenario not in order]
    run_props = [(f"version.{k}", v) for k, v in run.versions.items()]
    run_props += [("command", run.command), ("started", run.started), ("shard", run.shard),
                  ("catalogue_digest", run.catalogue_digest)]
    if run.merged is not None:
        run_props += [("merged_inputs", str(len(run.merged.inputs)))]
        run_props += [("merge_note", note) for note in (*run.merged.missing, *run.merged.duplicates)]
    root = ET.Element("testsuites", name="glare-rig", **_counts(run.cases))
    if run.interrupted:  # a partial run: CI must not read its skipped cases as a complete pass
        root.set("interrupted", _x(run.interrupted))
        root.set("not_run", str(sum(c.outcome == "not-run" for c in run.cases)))
    for scenario in dict.fromkeys(order):
        mine = [(c, pages[i]) for i, c in enumerate(run.cases) if c.scenario == scenario]
        if not mine:
            continue
        suite = ET.SubElement(root, "testsuite", name=_x(scenario), timestamp=_x(run.started),
                              **_counts([c for c, _ in mine]))
        _props(suite, run_props)
        for case, page in mine:
            repeats = per_cell[(case.scenario, case.polite.spec, case.impolite.spec)] > 1
            tc = ET.SubElement(suite, "testcase", classname=_x(case.scenario), name=_x(case_name(case, repeats)),
                               time=f"{case.duration_s:.3f}")
            _props(tc, properties(case, page))
            tag = {"failed": "failure", "xpassed": "failure", "error": "error",
                   "xfailed": "skipped", "unsupported": "skipped", "not-run": "skipped"}.get(case.outcome)
            if tag:
                el = ET.SubElement(tc, tag, type=case.outcome, message=_x(_message(case)))
                el.text = _x(_body(case, page))
    return root


def write(path: Path, run: model.RunRecord | Mapping) -> Path:
    path = Path(path)
    tree = ET.ElementTree(build(run))
    ET.indent(tree, space=" ")
    tmp = path.with_name(f".{path.name}.tmp")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path
