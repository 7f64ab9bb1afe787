"""HTML report for a glare-rig run.

The report is what people open after a CI run, often straight out of a downloaded
artefact, so it has to work from disk: relative links, inline CSS, no fetches (a
Content-Security-Policy in every page enforces that). It is rendered only from
results.json and the per-case detail files, so it can be regenerated after the
fact without re-running any browser.

The run is read as its typed record (rig.model.RunRecord: results.json validated once,
by the model), and each case is turned into a plain view dict for the templates. A case's
detail file is read as its typed record too (rig.model.parse_detail: ledger, events, messages,
snapshots, checks); a file that is absent or is not one gives its page a one-line reason instead
of those sections, since a report that crashes after a twenty-minute matrix run loses the only
record of it. What the record still holds free-form (an SDP entry's fields, the evidence list,
an event's detail) is read without trusting it.
The templates run with StrictUndefined, so a template typo fails loudly in the unit tests
instead of silently rendering blanks.

Here: :func:`write_report`, the entry. ``_view``: the Jinja environment and each case as the
pages show it; ``index``: the matrix page; ``case_page``: a case's page from its detail file.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

from rig import model
from rig.report._view import _cases, _peers, case_pages, environment, known_findings
from rig.report.case_page import load_detail
from rig.report.index import INTERMITTENT_UNHIT, finding_note, write_index
from rig.vocab import RESULTS_FILE

__all__ = ["INTERMITTENT_UNHIT", "case_pages", "environment", "finding_note", "load_run", "write_report"]


def load_run(out_dir: pathlib.Path) -> model.RunRecord:
    """Read a finished run back (validated), so the report can be rebuilt without re-running it."""
    return model.load_run(pathlib.Path(out_dir) / RESULTS_FILE)


def write_report(out_dir: pathlib.Path, run: model.RunRecord | Mapping) -> pathlib.Path:
    """Render out_dir/index.html and out_dir/cases/<slug>.html from `run`; return index path.

    ``run`` is the run's record; a mapping is validated into one first (pydantic's
    ValidationError, a ValueError, names the first field that is wrong), and its ``links``
    (pages the index links to, e.g. rig mutants' kill matrix) are kept. results.json itself is
    left alone: whoever produced `run` owns that file.
    """
    links: list[dict] = []
    if not isinstance(run, model.RunRecord):
        links = [{"href": str(link.get("href", "")), "text": str(link.get("text", ""))}
                 for link in run.get("links") or [] if isinstance(link, Mapping)]
        run = model.RunRecord.model_validate(run)
    out_dir = pathlib.Path(out_dir)
    cases_dir = out_dir / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    env = environment()

    cases = _cases(run.cases, known_findings(run))
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

    return write_index(out_dir, env, run, cases, peers, links)
