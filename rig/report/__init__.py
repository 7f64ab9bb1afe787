"""HTML report for a glare-rig run.

The report is what people open after a CI run, often straight out of a downloaded
artefact, so it has to work from disk: relative links, inline CSS, no fetches (a
Content-Security-Policy in every page enforces that). It is rendered only from
results.json and the per-case detail files, so it can be regenerated after the
fact without re-running any browser.

Input is normalised into plain view dicts before rendering: results.json is written
by other parts of the rig and may lack a field or carry an unexpected value, and a
report that crashes after a twenty-minute matrix run loses the only record of it.
The templates then run with StrictUndefined, so a template typo fails loudly in the
unit tests instead of silently rendering blanks.

Here: :func:`write_report`, the entry. ``_view``: the Jinja environment and each case as the
pages show it; ``index``: the matrix page; ``case_page``: a case's page from its detail file.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from rig import model
from rig.report._view import _cases, _list, _peers, environment, known_findings
from rig.report.case_page import load_detail
from rig.report.index import INTERMITTENT_UNHIT, finding_note, write_index
from rig.vocab import RESULTS_FILE

__all__ = ["INTERMITTENT_UNHIT", "case_pages", "environment", "finding_note", "load_run", "write_report"]


def load_run(out_dir: pathlib.Path) -> model.RunRecord:
    """Read a finished run back (validated), so the report can be rebuilt without re-running it."""
    return model.load_run(pathlib.Path(out_dir) / RESULTS_FILE)


def write_report(out_dir: pathlib.Path, run: model.RunRecord | Mapping) -> pathlib.Path:
    """Render out_dir/index.html and out_dir/cases/<slug>.html from `run`; return index path.

    results.json itself is left alone: whoever produced `run` owns that file.
    """
    if isinstance(run, model.RunRecord):
        run = run.model_dump(mode="json")
    out_dir = pathlib.Path(out_dir)
    cases_dir = out_dir / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    env = environment()

    cases = _cases(run.get("cases"), known_findings(run))
    peers = _peers(run, cases)
    case_tpl = env.get_template("case.html")
    for i, case in enumerate(cases):
        detail, detail_note = load_detail(out_dir, case)
        html = case_tpl.render(
            case=case,
            detail=detail,
            detail_note=detail_note,
            prev=cases[i - 1] if i > 0 else None,
            next=cases[i + 1] if i + 1 < len(cases) else None,
        )
        (cases_dir / case["page"]).write_text(html, encoding="utf-8")

    return write_index(out_dir, env, run, cases, peers)


def case_pages(raw_cases: Any) -> list[str]:
    """Each case's page as write_report names it, relative to the report folder (cases/...)."""
    return [c["href"] for c in _cases([c.model_dump(mode="json") if isinstance(c, model.Model) else c
                                       for c in _list(raw_cases)], {})]

