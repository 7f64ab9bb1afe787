"""``rig``: the command line. ``rig matrix`` runs the interop suites under pytest (with
xdist workers) and writes the report; ``rig doctor`` says which peers can be driven here."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from . import config, doctor, mutants, options, processes, runs, scenarios, shards
from .errors import RigError


def _err(msg: str) -> None:
    print(f"rig: error: {msg}", file=sys.stderr)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def cmd_mutants(args: argparse.Namespace) -> int:
    from . import mutants_run  # pydantic, jinja2, the case engine: kept out of `rig --help`
    if args.markdown:
        try:
            matrix = json.loads((Path(args.markdown) / "mutants.json").read_text())
        except (OSError, ValueError) as exc:
            _err(f"--markdown {args.markdown}: no readable mutants.json ({exc})")
            return 2
        print(mutants.markdown(matrix), end="")
        return 0
    found = mutants.discover()
    if args.only:
        wanted = _split(args.only)  # each a known mutant (options.check)
        found = [m for m in found if m.name in wanted]
    if not found:
        _err(f"no mutants found in {mutants.MUTANTS_DIR}")
        return 2
    try:
        return mutants_run.run(found, args.peers, args.scenarios, Path(args.out).resolve(),
                               args.workers if args.workers is not None else options.MUTANTS_WORKERS, args.kills_only)
    except RigError as exc:
        _err(str(exc))
        return 2


def cmd_matrix(args: argparse.Namespace) -> int:
    # the values were checked (options.check); what is left are checks of the whole run, all
    # before anything starts or is written (rig.matrix.run)
    from . import matrix, request  # pydantic, jinja2, the case engine: kept out of `rig --help`
    try:
        req = request.MatrixRequest.from_options(request.user_paths(vars(args)), workers=args.workers,
                                                 pytest_args=tuple(args.pytest_args),
                                                 command=request.command_line())
    except RigError as exc:
        _err(str(exc))
        return 2
    return matrix.run(req)


def cmd_soak(args: argparse.Namespace) -> int:
    from . import soak  # pydantic, jinja2, the case engine: kept out of `rig --help`
    try:
        return soak.run(args.cases, args.peers, Path(args.out or config.ROOT / "reports" / "soak").resolve(),
                        args.workers)
    except RigError as exc:
        _err(str(exc))
        return 2


def cmd_scenarios(args: argparse.Namespace) -> int:
    if args.show_plan:
        try:
            print(json.dumps(scenarios.get(args.show_plan).to_json(), indent=2))
        except RigError as exc:
            _err(str(exc))
            return 2
    elif args.markdown:
        print(scenarios.markdown(), end="")
    else:
        for s in scenarios.CATALOGUE.values():
            print(f"{s.name:24} {s.description}")
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    from . import findings, findings_doc, model  # pydantic: kept out of `rig --help`
    if args.markdown:
        print(findings_doc.markdown(), end="")
    elif args.schema:
        print(json.dumps(model.json_schema(), indent=2))
    else:
        for f in findings.FINDINGS:
            print(f"{f.id:40} {f.engine:9} {f.title}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from . import compare  # pydantic, jinja2, the case engine: kept out of `rig --help`
    try:
        return compare.run(args.old, args.new, args.html, args.hit_rate_threshold, args.hit_rate_min_runs,
                           args.allow_removed)
    except compare.CompareError as exc:
        _err(str(exc))
        return 2


def cmd_history(args: argparse.Namespace) -> int:
    from . import history  # pydantic, jinja2: kept out of `rig --help`
    try:
        return history.run(args.runs, args.html)
    except history.HistoryError as exc:
        _err(str(exc))
        return 2


def cmd_merge(args: argparse.Namespace) -> int:
    from . import merge  # pydantic, jinja2, the case engine: kept out of `rig --help`
    command = "rig merge " + " ".join(shlex.quote(a) for a in [*args.inputs, "--out", args.out])
    try:
        return merge.run(args.inputs, args.out, command)
    except merge.MergeError as exc:
        _err(str(exc))
        return 2


def cmd_report(args: argparse.Namespace) -> int:
    from . import junit, model, report, summary  # pydantic, jinja2, the case engine: kept out of `rig --help`
    try:
        run = model.load_run(Path(args.folder))
    except model.SchemaError as exc:
        _err(f"{exc}; give a report folder that rig matrix or rig merge wrote")
        return 2
    if args.markdown:
        print(summary.markdown(run), end="")
        return 0
    folder = Path(args.folder)
    folder = folder.parent if folder.is_file() else folder
    junit.write(folder / "junit.xml", run)
    print(f"rig report: {report.write_report(folder, run)}")
    return 0


def cmd_costs(args: argparse.Namespace) -> int:
    from . import model  # pydantic: kept out of `rig --help`
    runs = []
    for path in args.results:
        try:
            runs.append(model.load_run(Path(path)).model_dump(mode="json"))
        except model.SchemaError as exc:
            _err(f"{exc}; give the results.json of a real run (rig matrix)")
            return 2
    print(json.dumps(shards.measure(runs), indent=1))
    return 0


def cmd_debug(args: argparse.Namespace) -> int:
    from . import debugging  # pydantic, jinja2, the case engine: kept out of `rig --help`
    return debugging.run_debug(args)


def cmd_bisect(args: argparse.Namespace) -> int:
    from . import bisect, request  # pydantic, jinja2, the case engine: kept out of `rig --help`
    paths = request.user_paths({"negotiator_js": args.negotiator_js, "negotiator_py": args.negotiator_py})
    return bisect.run_bisect(args, request.MatrixRequest(
        peers=(), scenarios=(args.scenario,), repeat=args.repeat, workers=1, keep="all",
        negotiator_js=paths["negotiator_js"], negotiator_py=paths["negotiator_py"]))


def cmd_repro(args: argparse.Namespace) -> int:
    from . import debugging, results  # pydantic, jinja2, the case engine: kept out of `rig --help`
    where = Path(args.source).resolve()
    try:
        detail_path = debugging.find_case(args.case, where)
        out = Path(args.out) if args.out else config.ROOT / "reports" / "repro" / results.slug(detail_path.stem)
        folder = debugging.write_repro(detail_path, out.resolve())
    except (RigError, OSError, ValueError) as exc:
        _err(str(exc))
        return 2
    print(f"rig repro: {folder} (replay: {folder / 'replay.sh'})")
    return 0


def _matrix_parser() -> argparse.ArgumentParser:
    m = Parser(prog="rig matrix")
    _matrix_options(m)
    return m


def _matrix_options(m: argparse.ArgumentParser) -> None:
    options.add_to_argparse(m)
    m.add_argument("--workers", type=int, default=None, help=f"pytest-xdist workers (default: 2; 1 for fewer than {options.SMALL_RUN_CASES} cases)")
    m.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments")


class UsageError(Exception):
    """A command line argparse refused."""


class Parser(argparse.ArgumentParser):
    """argparse as the rig uses it: an option is spelled out (``--peer`` is not ``--peers``), and
    a refusal is one line (exit status 2, as every other usage error), not a usage block."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)  # every subparser too: add_parser makes this class
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see {self.prog} --help")


class _Version(argparse.Action):
    """``rig --version``: the facts a bug report needs first, read only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the rig's version and its pins, then exit")

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:

        def of(package: str) -> str:
            try:
                return version(package)
            except PackageNotFoundError:
                return "not installed"
        print(f"rig {of('glare-rig')} (Playwright {of('playwright')}, aiortc {of('aiortc')}, "
              f"Python {sys.version.split()[0]})")
        parser.exit(0)


def _add_case_commands(sub) -> None:
    """matrix, debug, repro, mutants: the commands that run or replay cases."""
    m = sub.add_parser("matrix", help="run every ordered (polite, impolite) pair x scenario; write the report")
    _matrix_options(m)
    m.set_defaults(func=cmd_matrix)
    db = sub.add_parser("debug", help="re-run one case with full capture; print who did what and where it diverged")
    db.add_argument("pair", metavar="POLITE:IMPOLITE", help="e.g. chromium:aiortc (peer specs)")
    db.add_argument("scenario", metavar="SCENARIO", nargs="?", help="a scenario name (or give --plan)")
    db.add_argument("--repeat", type=int, default=1, help="run it N times (default: 1)")
    db.add_argument("--plan", default=None, help="a plan JSON, or a case's cases/<case>.json")
    db.add_argument("--headed", action="store_true", help="show the browsers (needs a display)")
    db.add_argument("--out", default=None, help="output folder (default: reports/debug/<scenario>_<pair>/)")
    db.add_argument("--negotiator-js", default=None, help="ES module used as the browsers' negotiator")
    db.add_argument("--negotiator-py", default=None, help="path.py[:attr] or module:attr for aiortc peers")
    db.set_defaults(func=cmd_debug)
    rp = sub.add_parser("repro", help="write a standalone reproducer folder for one case (for a bug report)")
    rp.add_argument("case", metavar="CASE_ID", help="a case id (scenario[pair]), its slug, or its cases/<case>.json")
    rp.add_argument("--from", dest="source", default=str(config.ROOT / "reports"),
                    help="report folder to look in (default: reports/, subfolders included)")
    rp.add_argument("--out", default=None, help="folder to write (default: reports/repro/<case>/)")
    rp.set_defaults(func=cmd_repro)
    mu = sub.add_parser("mutants", help="run the matrix with every shipped mutant; print and write the kill matrix")
    mu.add_argument("--peers", default=None,
                    help="every ordered pair of these (default: Firefox polite x Chromium impolite for JS, "
                         "Firefox polite x aiortc impolite for Python)")
    mu.add_argument("--scenarios", default="all")
    mu.add_argument("--only", default="", help="comma-separated mutant names")
    mu.add_argument("--out", default=str(config.ROOT / "reports"))
    mu.add_argument("--workers", type=int, default=None,
                    help=f"pytest-xdist workers (default: {options.MUTANTS_WORKERS}: its deadlocked mutants wait more than they work)")
    mu.add_argument("--kills-only", action="store_true",
                    help="run each mutant form only on the scenarios its header names ('kills:'), and the reference "
                         "on those: a quick check that every shipped mutant is still caught")
    mu.add_argument("--markdown", metavar="DIR", default=None,
                    help="print the kill table (as in docs/measurements.md) from an earlier run's DIR/mutants.json, "
                         "run nothing")
    mu.set_defaults(func=cmd_mutants)


def _add_host_commands(sub) -> None:
    """soak, bisect, browsers, doctor: long runs, and what this host has."""
    so = sub.add_parser("soak", help="the glare catalogue on every pair, N cases in all: pass rate, case times, "
                                     "memory at start and end (exit 1 on a failure or a memory growth trend)")
    so.add_argument("--cases", type=int, default=1000, help="cases in all, rounded up to whole repeats of the cells "
                                                            "(default: %(default)s)")
    so.add_argument("--peers", default=None, help="comma-separated peer specs (default: chromium,firefox,aiortc)")
    so.add_argument("--out", default=None, help="output folder (default: reports/soak/)")
    so.add_argument("--workers", type=int, default=None)
    so.set_defaults(func=cmd_soak)
    bs = sub.add_parser("bisect", help="find the first version where a cell changed, among installable versions")
    bs.add_argument("scenario", metavar="SCENARIO")
    bs.add_argument("--polite", required=True, help="a peer spec; one side is a range, e.g. chromium@110..156 (or commit "
                                                          "positions: chromium@snapshot:1121455..1121500)")
    bs.add_argument("--impolite", required=True, help="a peer spec, e.g. firefox@153")
    bs.add_argument("--repeat", type=int, default=3, help="runs per version, so an intermittent cell is not "
                                                          "misjudged (default: %(default)s)")
    bs.add_argument("--source", choices=("installable", "official"), default="installable",
                    help="versions to walk: installable here (default), or the official feeds' builds (Chrome for "
                         "Testing's known-good list, Mozilla's archive's releases)")
    bs.add_argument("--out", default=None, help="folder (default: reports/bisect/<scenario>_<range>_<other>/)")
    bs.add_argument("--negotiator-js", default=None)
    bs.add_argument("--negotiator-py", default=None)
    bs.set_defaults(func=cmd_bisect)
    br = sub.add_parser("browsers", help="browser versions: list those installed (or installable), install more, "
                                         "print one's executable")
    brs = br.add_subparsers(dest="action", required=True)
    bl = brs.add_parser("list", help="installed versions (system and cache): kind, exact version, source, driver, path")
    bl.add_argument("--available", action="store_true", help="also the installable ones (Debian's archive, npm, and the official channels today)")
    bi = brs.add_parser("install", help="install versions into the per-user cache, each checked by launching")
    bi.add_argument("specs", metavar="SPEC", nargs="+", help="e.g. chromium@147 firefox@140")
    bp = brs.add_parser("path", help="the executable a spec resolves to (nothing is installed)")
    bp.add_argument("specs", metavar="SPEC", nargs=1, help="e.g. chromium@150")
    br.set_defaults(func=doctor.cmd_browsers)
    d = sub.add_parser("doctor", help="list each peer kind, its binary and version, and whether it can be driven")
    d.set_defaults(func=doctor.cmd_doctor)


def _add_report_commands(sub) -> None:
    """scenarios, findings, compare, history, merge, report, costs: the catalogues and finished runs."""
    sc = sub.add_parser("scenarios", help="list the scenario catalogue")
    sc.add_argument("--markdown", action="store_true", help="the table and timing plans of docs/scenarios.md")
    sc.add_argument("--plan", metavar="NAME", dest="show_plan",
                    help="print one scenario's plan as JSON (edit it, replay with --plan)")
    sc.set_defaults(func=cmd_scenarios)
    fi = sub.add_parser("findings", help="list the known findings (rig/findings.py)")
    fi.add_argument("--markdown", action="store_true", help="docs/findings.md, generated from the findings data")
    fi.add_argument("--schema", action="store_true", help="the JSON Schema of results.json (docs/results.schema.json)")
    fi.set_defaults(func=cmd_findings)
    co = sub.add_parser("compare", help="cells that changed between two runs; exit 1 on a new failure or a rising "
                                        "intermittent hit rate, 3 when NEW lacks cells OLD had")
    co.add_argument("old", metavar="OLD", help="results.json, or a report folder holding one")
    co.add_argument("new", metavar="NEW", help="results.json, or a report folder holding one")
    co.add_argument("--html", default=None, help="HTML diff (default: compare.html in NEW if a folder, else here)")
    co.add_argument("--hit-rate-threshold", type=float, default=0.10,
                    help="fail when an intermittent finding's hit rate on a cell rose by more than this (absolute; "
                         "default: %(default)s, so 1/20 -> 5/20 fails)")
    co.add_argument("--hit-rate-min-runs", type=int, default=5,
                    help="gate on a hit rate only for cells with at least this many runs in NEW (default: %(default)s)")
    co.add_argument("--allow-removed", action="store_true",
                    help="NEW may lack cells OLD had (a smaller matrix on purpose); without it that is exit status 3")
    co.set_defaults(func=cmd_compare)
    hi = sub.add_parser("history", help="each cell's outcome over a series of runs, and the run and build where "
                                        "a red cell turned red")
    hi.add_argument("runs", metavar="RUN", nargs="+",
                    help="results.json files, report folders, or a folder of report folders (oldest to newest by "
                         "their start time, whatever the order given)")
    hi.add_argument("--html", default=None,
                    help="the page (default: history.html in the folder of runs when one is given, else here)")
    hi.set_defaults(func=cmd_history)
    mg = sub.add_parser("merge", help="one report from several runs (shards, hosts, repeats); exit 1 when a shard "
                                      "or cell is missing")
    mg.add_argument("inputs", metavar="DIR", nargs="+", help="report folders (or their results.json)")
    mg.add_argument("--out", required=True, help="folder of the merged report (new, empty, or an earlier report)")
    mg.set_defaults(func=cmd_merge)
    rr = sub.add_parser("report", help="rewrite a report's pages and junit.xml from its results.json, or print it "
                                       "as Markdown")
    rr.add_argument("folder", metavar="DIR", help="a report folder (or its results.json)")
    rr.add_argument("--markdown", action="store_true",
                    help="print a compact matrix as Markdown (for a CI job summary); writes nothing")
    rr.set_defaults(func=cmd_report)
    cs = sub.add_parser("costs", help="print the cost table --shard balances with (rig/costs.json), from real runs")
    cs.add_argument("results", metavar="RESULTS", nargs="+", help="results.json files (or report folders)")
    cs.set_defaults(func=cmd_costs)

def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="rig", description="glare-rig: WebRTC perfect-negotiation interop rig")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_case_commands, _add_host_commands, _add_report_commands):
        add(sub)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}; see rig {args.command} --help")
        options.check(args)
    except (UsageError, RigError) as exc:
        _err(str(exc))
        return 2
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    if args.command not in STARTS_PROCESSES:
        return args.func(args)
    return _run(args, argv)


#: Commands that start browsers or pytest: each is a run (rig.runs) with signal handling, the
#: marker sweep at its end, and a look for what an earlier, killed run left behind.
STARTS_PROCESSES = ("matrix", "debug", "bisect", "mutants", "doctor", "browsers")


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    parent = os.environ.get(config.PARENT_ENV)
    if runs.Run.current is None and parent and parent.isdigit() and not processes.die_with_parent(int(parent)):
        _err(f"the process that started this rig (pid {parent}) is gone; not starting")
        return 128 + signal.SIGTERM
    command = "rig " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    return runs.run_command(command, lambda: args.func(args))

if __name__ == "__main__":
    raise SystemExit(main())
