"""``rig``: the command line. ``rig matrix`` runs the interop suites under pytest (with
xdist workers) and writes the report; ``rig doctor`` says which peers can be driven here."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from . import config, drivers, hostnet, install, mutants, options, processes, runs, scenarios, shards, soak, variants
from .errors import RigError
from .peerspec import PeerSpec
from .vocab import PEER_KINDS


def _err(msg: str) -> None:
    print(f"rig: error: {msg}", file=sys.stderr)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


#: rig mutants' default workers: one more than rig matrix's 2. A deadlocked mutant's case waits out
#: its settle bound (10 s) with both peers idle, and in a full run such waits are about 40 % of
#: the workers' time; a third worker runs cases meanwhile (docs/measurements.md: 1,338 -> 1,170 s).
MUTANTS_WORKERS = 3
#: rig matrix's default is 2 workers, but 1 for a run of fewer cases than this: a second worker is
#: another pytest process with its own browsers (about 4 CPU s before its first case), and it paid
#: that back only from about 30 mixed cases on (idle 2 cores: 24 Chromium/aiortc cases 14.7 s on 1
#: worker, 18.4 s on 2; 16 Chromium/Firefox 30.5 s against 34.7 s; 45 of all three 51.5 s against
#: 47.8 s, with 8 CPU s more; docs/measurements.md)
SMALL_RUN_CASES = 30


def cmd_mutants(args: argparse.Namespace) -> int:
    from . import junit, report, results  # pydantic, jinja2, the case engine: kept out of `rig --help`
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
    out = Path(args.out).resolve()
    # Default: JS mutants on Firefox polite x Chromium impolite, Python twins on Firefox polite x aiortc
    # impolite: pairs where the reference passes every scenario but the stated findings (a Chromium
    # polite peer fails glare on its own; an aiortc peer cannot be polite). Firefox x Chromium rather
    # than Firefox x Firefox: a Chromium (headless shell) page costs a quarter of a Firefox one, and
    # every mutant is killed there too (docs/design.md). --peers widens both to every ordered pair.
    # The reference and every mutant form run in one pytest session (rig.variants): one start-up,
    # one set of browsers per worker, instead of a run per mutant.
    js_pairs = None if args.peers else ("firefox:chromium",)
    py_pairs = None if args.peers else ("firefox:aiortc",)
    forms: dict[str, tuple[mutants.Mutant, str]] = {}
    vs: list[variants.Variant] = []
    for m in found:
        for lang, path, pairs, kills in (("js", m.js, js_pairs, m.kills), ("py", m.py, py_pairs, m.kills_py)):
            if path is None:
                continue
            # its verdicts are what counts, not its traces and logs (about 10 % less time a case)
            v = variants.Variant(f"{m.name}.{lang}", js=str(path) if lang == "js" else None,
                                 py=str(path) if lang == "py" else None, pairs=pairs,
                                 scenarios=tuple(kills) if args.kills_only else None, capture=False)
            vs.append(v)
            forms[v.name] = (m, lang)
    if args.kills_only:
        missing = [f"{v.name}: no 'kills:' header" for v in vs if not v.scenarios]
        if missing:
            _err("--kills-only: " + "; ".join(missing))
            return 2
        scen_text = ",".join(dict.fromkeys(s for v in vs for s in v.scenarios or ()))
    else:
        scen_text = args.scenarios
    # the reference runs on the pairs the mutants run on, nothing more; with --kills-only, only
    # on the cells some mutant form runs: a kill counts where the reference did not fail, and
    # its other cells would say nothing about any mutant (the interop matrix runs them all)
    ref_pairs = None if args.peers else ("firefox:chromium", "firefox:aiortc")
    ref_cells = None
    if args.kills_only:
        every = [str(PeerSpec.parse(p)) for p in _split(args.peers or "firefox,chromium,aiortc")]
        ref_cells = tuple(dict.fromkeys(variants.cell(s, p, i) for v in vs for s in v.scenarios or ()
                                        for p in every for i in every if v.allows(p, i, s)))
    vs.insert(0, variants.Variant("", pairs=ref_pairs, cells=ref_cells))
    out.mkdir(parents=True, exist_ok=True)
    vfile = variants.dump(vs, out / "variants.json")
    peers = args.peers or "firefox,chromium,aiortc"
    print(f"rig mutants: the reference and {len(forms)} mutant forms ({len(found)} mutants) in one run on {peers} "
          f"-> {out}", flush=True)
    main(["matrix", "--peers", peers, "--scenarios", scen_text, "--variants", str(vfile), "--out", str(out),
          "--workers", str(args.workers if args.workers is not None else MUTANTS_WORKERS)])
    try:
        run = report.load_run(out)
    except (OSError, ValueError) as exc:
        _err(f"the mutants' run wrote no results ({exc})")
        return 1
    by: dict[str, list] = {}
    for c in run.cases:
        by.setdefault(variants.plain_id(c.id)[0], []).append(c)
    runs: dict[str, dict] = {}
    for name, (m, lang) in forms.items():
        cases = by.get(name, [])
        sub = out / "mutants" / name
        _move_cases(out, sub, cases)
        sub_run = results.subset(run, cases, command=f"{run.command} (variant {name})")
        results.write_results(sub, sub_run)
        report.write_report(sub, sub_run)
        runs.setdefault(m.name, {"cases": []})["cases"] += [
            dict(c.model_dump(mode="json"), id=variants.plain_id(c.id)[1], via=lang) for c in cases]
    reference = results.subset(run, by.get("", [])).model_dump(mode="json")
    matrix = mutants.kill_matrix(reference, runs, found)
    mutants.write_kill_matrix(out, matrix)
    reference["links"] = [{"href": "mutants.html", "text": "mutant kill matrix"}]
    report.write_report(out, reference)
    (out / "results.json").write_text(json.dumps(reference, indent=1))
    junit.write(out / "junit.xml", reference)
    width = max(len(m.name) for m in found)
    for row in matrix["mutants"]:
        killers = [s for s, c in row["cells"].items() if c["killed"]]
        print(f"{row['mutant']:{width}}  {'killed by ' + ', '.join(killers) if killers else 'SURVIVED'}")
    print(f"rig mutants: kill matrix {out / 'mutants.html'}")
    return 1 if matrix["survivors"] else 0


def _move_cases(out: Path, sub: Path, cases: list) -> None:
    """A variant's case files (detail JSON, page, evidence folder) from out/cases to sub/cases."""
    from .results import slug as slug_of  # pydantic, jinja2, the case engine: kept out of `rig --help`
    (sub / "cases").mkdir(parents=True, exist_ok=True)
    for c in cases:
        slug = Path(c.details).stem if c.details else slug_of(c.id)
        for src in (out / "cases" / f"{slug}.json", out / "cases" / f"{slug}.html", out / "cases" / slug):
            if src.exists():
                dst = sub / "cases" / src.name
                if dst.is_dir():
                    shutil.rmtree(dst)
                shutil.move(str(src), str(dst))


def _resolve_peers(peers: list[str], remote: dict[str, str] | None = None) -> dict[str, str]:
    """Resolve each peer spec to one exact version before the workers start, installing a
    missing version on demand (rig.install). A spec that cannot be resolved (unknown version,
    no network, a version nothing can drive) is said in one line and stays in the matrix: its
    cells become errors that give the same reason, and the rest of the matrix runs."""
    bad: dict[str, str] = {}
    for text in peers:
        spec = PeerSpec.parse(text)
        try:
            inst = install.resolve(spec)
        except RigError as exc:
            if spec.endpoint:  # a remote browser: nothing to install on this host
                _err(f"{exc}; its cells will say so")
                bad[str(spec)] = str(exc)
                continue
            try:
                print(f"rig: {spec} is not installed here: installing it", flush=True)
                inst = install.resolve(spec, install=True)
            except RigError as exc:
                _err(f"{exc}; its cells will say so")
                bad[str(spec)] = str(exc)
                continue
        if spec.endpoint and remote is not None:
            remote[str(spec)] = inst.version
        driver = f", driven by {inst.driver_label}" if inst.driver_label else ""
        print(f"rig: {spec} is {inst.kind} {inst.version} ({inst.source}{driver})", flush=True)
    return bad


def cmd_matrix(args: argparse.Namespace) -> int:
    # the values were checked (options.check); what is left are checks of the whole run, all
    # before anything starts or is written
    try:
        peers = options.peer_list(args.peers)
        scens = [scenarios.load_plan(Path(args.plan)).name] if args.plan else options.scenario_list(args.scenarios)
        pairs = options.parse_pairs(args.pairs)
        if args.shard:
            shard, costs = shards.Shard.parse(args.shard), shards.Costs.load()
            every = shards.catalogue(scens, peers, pairs)
            mine = shards.select(every, shard, costs)
            print(f"rig: shard {shard}: {len(mine)} of {len(every)} cells, about "
                  f"{sum(costs.of(c) for c in mine) * args.repeat / 1000:.0f} s of cases", flush=True)
        expected = None if args.pytest_args else _expected_cases(scens, peers, args.pairs, args.shard, args.repeat,
                                                                 args.variants)
    except RigError as exc:
        _err(str(exc))
        return 2
    negotiator_py = args.negotiator_py
    if negotiator_py:
        file_part, sep, attr = negotiator_py.partition(":") if ".py:" in negotiator_py else (negotiator_py, "", "")
        if file_part.endswith(".py"):
            # a path is the user's, relative to where they are (pytest runs from the checkout)
            negotiator_py = str(Path(file_part).resolve()) + (sep + attr if sep else "")
    suite = config.ROOT / "suites" / "interop"
    if not suite.is_dir():
        _err(f"interop suites not found at {suite}: run rig from a glare-rig checkout")
        return 2
    remote: dict[str, str] = {}
    unusable = _resolve_peers(peers, remote)
    out = Path(args.out or config.ROOT / "reports").resolve()
    out.mkdir(parents=True, exist_ok=True)
    workers = args.workers if args.workers is not None else min(2, os.cpu_count() or 1)
    if args.workers is None and expected is not None and len(expected) < SMALL_RUN_CASES:
        workers = 1
    # junit.xml is written by the plugin from results.json (rig.junit), as rig merge writes it
    cmd = [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider", f"--rootdir={config.ROOT}"]
    # Hypothesis (a dev dependency, for the rig's own tests) plugs into every pytest, and its
    # terminal summary imports all of it, assertion-rewritten (uncached where bytecode is not
    # written): 1.5 CPU s at the end of each pytest process of a run, controller and workers.
    # The interop suite has no property test.
    cmd += ["-p", "no:hypothesispytest"]
    if workers > 1:
        cmd += ["-n", str(workers)]
    cmd += options.to_pytest({
        "peers": ",".join(peers), "scenarios": ",".join(scens), "pairs": args.pairs, "shard": args.shard,
        "plan": str(Path(args.plan).resolve()) if args.plan else None, "repeat": args.repeat, "out": str(out),
        "negotiator-js": str(Path(args.negotiator_js).resolve()) if args.negotiator_js else None,
        "negotiator-py": negotiator_py, "keep": args.keep, "capture": args.capture, "headed": args.headed,
        "stub-host": args.stub_host, "fault": args.fault,
        "variants": str(Path(args.variants).resolve()) if args.variants else None})
    if args.variants:
        # a variants run (rig mutants) expects most of its variants' cases to fail: the report and
        # the kill matrix say how; the terminal keeps its progress line and pytest's summary
        cmd += ["--tb=no", "-rN"]
    cmd += args.pytest_args
    env = dict(os.environ, **{"RIG_COMMAND": "rig " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                              # the workers give these specs' cells the reason found here
                              config.UNRESOLVED_ENV: json.dumps(unusable),
                              config.REMOTE_RESOLVED_ENV: json.dumps(remote)})
    if hostnet.loopback_only():
        print(f"rig: {hostnet.describe()}", flush=True)
    with runs.Run() as run:
        began = time.time()
        proc = run.popen(cmd, env=env, cwd=config.ROOT)
        try:
            rc = run.wait(proc)
        except runs.Interrupted as exc:
            print(f"rig: {exc.text()}; {_partial(out, began)}", file=sys.stderr)
            exc.reported = True
            raise
        finally:
            left = processes.sweep(run.id)
            if left:
                print(f"rig: ended {len(left)} process(es) the run left behind: {processes.describe(left)}",
                      file=sys.stderr)
    if rc < 0:
        _err(f"pytest (pid {proc.pid}) was killed by {runs.signal_name(-rc)}; {_partial(out, began)}")
        return 1
    if rc - 128 in runs.SIGNALS:  # a signal to pytest or one of its workers, not to rig
        print(f"rig: pytest was interrupted by {runs.signal_name(rc - 128)}; {_partial(out, began)}", file=sys.stderr)
        return rc
    try:
        results = _fresh_results(out, began)
    except RigError as exc:
        _err(f"{exc} (pytest exit status {rc})")
        return 1
    print(f"rig: report {out / 'index.html'}")
    problems = _integrity(results, expected)
    for line in problems:
        _err(line)
    if unusable:
        _err(f"{len(unusable)} peer spec(s) could not be resolved; their cells are errors (see above)")
        return 1
    return 0 if rc == 0 and not problems else 1


def _expected_cases(scens: list[str], peers: list[str], pairs_text: str | None, shard_text: str | None,
                    repeat: int, variants_file: str | None = None) -> set[str]:
    """The case ids this run's pytest should collect (rig.results.case_id), computed here as the
    plugin parametrizes them, to check its results.json against."""
    from . import results  # pydantic, jinja2, the case engine: kept out of `rig --help`
    label = {p: PeerSpec.parse(p).label for p in peers}
    if variants_file:
        if shard_text:
            raise RigError("--variants cannot be combined with --shard")
        pairs = options.parse_pairs(pairs_text)
        loaded = variants.load(variants_file)
        for v in loaded:
            for name in v.scenarios or ():
                scenarios.get(name)  # an unknown one is a RigError line here, not a pytest usage error
        return {v.case_id(results.case_id(s, label[p], label[i], r, repeat))
                for v in loaded
                for s in (scens if v.scenarios is None else v.scenarios)
                for p in peers for i in peers if v.allows(p, i, s) and (pairs is None or (p, i) in pairs)
                for r in range(repeat)}
    every = shards.catalogue(scens, peers, options.parse_pairs(pairs_text))
    cells = shards.select(every, shards.Shard.parse(shard_text), shards.Costs.load()) if shard_text else every
    return {results.case_id(c.scenario, label[c.polite], label[c.impolite], r, repeat)
            for c in cells for r in range(repeat)}


def _fresh_results(out: Path, began: float):
    """This run's results.json (not one an earlier run left in ``out``), validated."""
    from . import model  # pydantic: kept out of `rig --help`
    path = out / "results.json"
    try:
        if path.stat().st_mtime < began:
            raise RigError(f"the run wrote no results ({path} is an earlier run's)")
        return model.load_run(path)
    except FileNotFoundError:
        raise RigError("the run wrote no results") from None
    except model.SchemaError as exc:
        raise RigError(f"the run's results are unreadable: {exc}") from None


def _integrity(run, expected: set[str] | None) -> list[str]:
    """One line per way the results fall short of the run: cases that did not run or whose
    worker died (in the report already, as not-run and error), and cases the run should have
    had that results.json lacks altogether (never a silent gap)."""
    lines = []
    not_run = [c.id for c in run.cases if c.outcome == "not-run"]
    if not_run:
        lines.append(f"{len(not_run)} case(s) did not run: {_some(not_run)}")
    if expected is not None:
        missing = sorted(expected - {c.id for c in run.cases})
        if missing:
            lines.append(f"results.json lacks {len(missing)} case(s) of this run: {_some(missing)}")
    return lines


def _some(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _partial(out: Path, began: float) -> str:
    """Where the partial results are, and how many cases finished."""
    try:
        run = _fresh_results(out, began)
    except RigError:
        return "it wrote no results"
    done = sum(c.outcome != "not-run" for c in run.cases)
    return f"partial report {out / 'index.html'}: {done} of {len(run.cases)} case(s) finished, the rest not run"


async def _probe_browser(spec: PeerSpec) -> str:
    # Playwright only for `rig doctor`'s probe
    from playwright.async_api import async_playwright

    from .peers.browser import BrowserPool
    async with async_playwright() as pw:
        pool = BrowserPool(pw)
        try:
            browser = await pool.get(spec)
            page = await browser.new_page()
            ok = await page.evaluate("() => typeof RTCPeerConnection === 'function' && new RTCPeerConnection().signalingState")
            await page.close()
            return f"drivable (Playwright {pool.playwright_version()}, signalingState={ok}, version {browser.version})"
        finally:
            await pool.close()


async def _probe_aiortc() -> str:
    from aiortc import RTCConfiguration, RTCPeerConnection  # only for `rig doctor`'s probe
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("doctor")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    return "drivable (offer created with iceServers=[])"


def cmd_soak(args: argparse.Namespace) -> int:
    try:
        return soak.run(args.cases, args.peers, Path(args.out or config.ROOT / "reports" / "soak").resolve(),
                        args.workers, main)
    except RigError as exc:
        _err(str(exc))
        return 2


def cmd_doctor(args: argparse.Namespace) -> int:

    from .peers.browser import binary_for  # imports Playwright: only `rig doctor` needs it
    bad = 0
    for kind in PEER_KINDS:
        spec = PeerSpec(kind)
        if kind == "aiortc":
            where, ver = "(Python package)", version("aiortc")
            try:
                status = asyncio.run(asyncio.wait_for(_probe_aiortc(), config.LAUNCH_TIMEOUT))
            except Exception as exc:
                status, bad = f"NOT drivable: {exc}; fix: pip install 'aiortc>=1.16,<1.17'", bad + 1
            print(f"{kind:9} {where:28} {ver:18} {status}")
            continue
        try:
            where = binary_for(spec)
        except RigError as exc:
            print(f"{kind:9} {'-':28} {'-':18} MISSING: {exc}")
            bad += 1
            continue
        try:
            ver = subprocess.run([where, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
            ver = ver.split()[-1] if kind == "firefox" else ver.split()[1]
        except Exception as exc:
            ver = f"? ({exc})"
        try:
            status = asyncio.run(asyncio.wait_for(_probe_browser(spec), config.LAUNCH_TIMEOUT + 10))
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fix = (f"fix: pip install 'playwright{config.PLAYWRIGHT_PIN}'" if kind == "firefox"
                   else f"fix: apt-get install -y {config.BINARIES[kind][1]}")
            status, bad = f"NOT drivable: {first}; {fix}", bad + 1
        print(f"{kind:9} {where:28} {ver:18} {status}")
        if kind == "chromium" and config.HEADLESS_SHELL:
            from .peers.browser import headless_shell  # imports Playwright (see above)
            shell = headless_shell(where)
            print(f"{'':9} headless runs use {shell} (the same build's headless shell)" if shell else
                  f"{'':9} headless runs use the full browser (no headless shell of {ver} beside it; "
                  "on Debian: apt-get install -y chromium-headless-shell)")
    notes: list[str] = []
    have = install.installed(notes=notes)
    print("\nbrowser versions installed (rig browsers list; more: rig browsers install KIND@VERSION):")
    print("\n".join(_installed_rows(have)) or "(none)")
    for n in notes:
        print(f"note: {n}")
    return 1 if bad else 0


def _driver_text(inst) -> str:
    if inst.driver_label:
        return inst.driver_label
    return "in the rig's process" if inst.kind == "aiortc" else f"playwright {version('playwright')} (the rig's)"


def _installed_rows(insts: list) -> list[str]:
    return [f"{i.kind:9} {i.version:18} {i.source:7} {_driver_text(i):32} {i.path}" for i in insts]


def cmd_browsers(args: argparse.Namespace) -> int:
    if args.action == "list":
        notes: list[str] = []
        have = install.installed(notes=notes) + [drivers.own_aiortc()] + drivers.installed_aiortc()
        print(f"{'kind':9} {'version':18} {'source':7} {'driver':32} path")
        print("\n".join(_installed_rows(have)))
        if args.available:
            print(f"\n{'kind':9} {'installable':18} {'source':7} {'package':35} installed")
            for kind in install.BROWSERS:
                for a in install.available(kind, notes):
                    there = [i.version for i in have if i.kind == kind and a.matches(i.version if a.exact else i.line)]
                    print(f"{kind:9} {a.version:18} {a.source:7} {a.package + ' ' + a.package_version:35} "
                          f"{', '.join(there)}")
            try:
                releases = drivers.available_aiortc()
                print(f"aiortc    {', '.join(releases[:12])}{' ...' if len(releases) > 12 else ''} (pypi; "
                      "each release in its own environment: rig browsers install aiortc@VERSION)")
            except RigError as exc:
                notes.append(str(exc))
        for n in dict.fromkeys(notes):
            print(f"note: {n}", file=sys.stderr)
        return 0
    if args.action == "path":
        try:
            print(install.resolve(options.peer(args.specs[0])).path)
        except RigError as exc:
            _err(str(exc))
            return 1
        return 0
    failed = 0
    for text in args.specs:
        spec = options.peer(text)
        try:
            done = install.install(spec, progress=lambda m: print(f"rig: {m}", file=sys.stderr, flush=True))
        except RigError as exc:
            _err(str(exc))
            failed += 1
            continue
        i = done.installation
        what = i.source + (f", driven by {i.driver_label}" if i.driver_label else "")
        if done.already:
            print(f"{spec}: already installed: {i.kind} {i.version} ({what}) at {i.path}", flush=True)
        else:
            got = f", {done.downloaded / 1e6:.0f} MB downloaded" if done.downloaded else ""
            print(f"{spec}: installed {i.kind} {i.version} ({what}{got}) at {i.path}", flush=True)
    return 1 if failed else 0


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


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_debug(args: argparse.Namespace) -> int:
    """Re-run one case with full capture and print a one-screen summary per run."""
    from . import debugging, report  # pydantic, jinja2, the case engine: kept out of `rig --help`
    try:
        polite, impolite = options.parse_pair(args.pair)
        if args.plan:
            scen = scenarios.load_plan(Path(args.plan))
        elif args.scenario:
            scen = scenarios.get(args.scenario)
        else:
            raise RigError("name a SCENARIO or give --plan FILE")
    except RigError as exc:
        _err(str(exc))
        return 2
    headed = args.headed
    if headed and not _has_display():
        print("rig debug: --headed needs a display and none is set (DISPLAY and WAYLAND_DISPLAY are empty), so "
              "the browsers run headless. To watch them: run on a desktop session, or under a virtual display "
              "you can view (e.g. `xvfb-run -a rig debug ...` with x11vnc). The evidence below is the same.",
              flush=True)
        headed = False
    label = f"{polite.label}-polite--{impolite.label}-impolite"
    out = Path(args.out or config.ROOT / "reports" / "debug" / f"{scen.name}_{label}").resolve()
    matrix_args = ["matrix", "--peers", ",".join(dict.fromkeys([str(polite), str(impolite)])),
                   "--repeat", str(args.repeat), "--out", str(out), "--keep", "all"]
    matrix_args += ["--plan", str(Path(args.plan).resolve())] if args.plan else ["--scenarios", scen.name]
    if args.negotiator_js:
        matrix_args += ["--negotiator-js", args.negotiator_js]
    if args.negotiator_py:
        matrix_args += ["--negotiator-py", args.negotiator_py]
    ns = _matrix_parser().parse_args(matrix_args[1:] + ["--pairs", f"{polite}:{impolite}"])
    ns.capture, ns.headed = "full", headed
    print(f"rig debug: {scen.name} with {polite} polite x {impolite} impolite, {args.repeat} run(s), full capture "
          f"-> {out}", flush=True)
    rc = cmd_matrix(ns)
    try:
        run = report.load_run(out).model_dump(mode="json")
    except (OSError, ValueError):
        _err(f"the run wrote no results (rig matrix exit status {rc})")
        return 2
    cases = [c for c in run["cases"] if label in c["id"]]
    if not cases:
        _err(f"no case of {label} ran (rig matrix exit status {rc})")
        return 2
    for c in cases:
        path = out / c.get("details", f"cases/{c['slug']}.json")
        try:
            detail = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            _err(f"{c['id']}: its detail file is unreadable ({exc})")
            continue
        print()
        print(debugging.summarize(detail, path))
    met = [c for c in cases if c["outcome"] in ("passed", "xfailed")]
    print(f"\nrig debug: {len(met)} of {len(cases)} run(s) met their expectation; report {out / 'index.html'}")
    return 0 if len(met) == len(cases) else 1


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
    m.add_argument("--workers", type=int, default=None, help=f"pytest-xdist workers (default: 2; 1 for fewer than {SMALL_RUN_CASES} cases)")
    m.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments")


def cmd_bisect(args: argparse.Namespace) -> int:
    from . import bisect  # pydantic, jinja2, the case engine: kept out of `rig --help`
    try:
        side, rng, other = bisect.parse_sides(args.polite, args.impolite)
        scenarios.get(args.scenario)
    except RigError as exc:
        _err(str(exc))
        return 2
    first, last = rng.range
    try:
        listing = bisect.installable(rng.kind)
    except RigError as exc:
        _err(f"{rng}: {exc}")
        return 2
    versions = bisect.candidates(rng.kind, first, last, listing)
    if len(versions) < 2:
        _err(f"{rng}: {len(versions)} installable version(s) in that range ({', '.join(versions) or 'none'}); "
             f"installable {rng.kind} versions: {', '.join(sorted({bisect.line(rng.kind, v) for v in listing}, key=bisect.version_key))}")
        return 2
    out = Path(args.out or config.ROOT / "reports" / "bisect" / f"{args.scenario}_{rng.label}_{other.label}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"rig bisect: {args.scenario}, {side} {rng.kind} over {len(versions)} versions "
          f"({', '.join(bisect.line(rng.kind, v) for v in versions)}) against {other}, {args.repeat} run(s) each "
          f"-> {out}", flush=True)
    extra = [x for pair in (("--negotiator-js", args.negotiator_js), ("--negotiator-py", args.negotiator_py)) if pair[1]
             for x in pair]
    evaluate = bisect.matrix_step(args.scenario, side, rng, other, args.repeat, out, extra)
    # each step asks for one release line: the newest installable build of it
    lines = [bisect.line(rng.kind, v) for v in versions]
    steps, lo, hi, message = bisect.bisect(lines, evaluate, on_step=lambda s: print(f"  {s.text()}", flush=True))
    b = bisect.Bisection(args.scenario, side, str(other), rng.kind, versions, steps, lo, hi, message)
    bisect.write_json(out, b)
    page = bisect.write_html(out, b)
    for wide in b.too_wide():
        print(f"rig bisect: {wide}")
    if not b.found:
        print(f"rig bisect: no boundary: {message}\n  steps: {page}")
        return 1
    print(f"rig bisect: {message}")
    print(f"  last {lo.verdict}:  {lo.text()}\n    {out / lo.pages[0] if lo.pages else '-'}")
    print(f"  first {hi.verdict}: {hi.text()}\n    {out / hi.pages[0] if hi.pages else '-'}")
    if lo.details and hi.details:
        print("  SDP differences (the " + side + " peer's local descriptions):")
        for ln in bisect.sdp_differences(out / lo.details[0], out / hi.details[0], side, limit=30).splitlines():
            print(f"    {ln}")
    print(f"  side by side: {page}")
    return 0


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


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="rig", description="glare-rig: WebRTC perfect-negotiation interop rig")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)
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
                    help=f"pytest-xdist workers (default: {MUTANTS_WORKERS}: its deadlocked mutants wait more than they work)")
    mu.add_argument("--kills-only", action="store_true",
                    help="run each mutant form only on the scenarios its header names ('kills:'), and the reference "
                         "on those: a quick check that every shipped mutant is still caught")
    mu.add_argument("--markdown", metavar="DIR", default=None,
                    help="print the kill table (as in docs/measurements.md) from an earlier run's DIR/mutants.json, "
                         "run nothing")
    mu.set_defaults(func=cmd_mutants)
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
    bs.add_argument("--polite", required=True, help="a peer spec; one side is a range, e.g. chromium@110..156")
    bs.add_argument("--impolite", required=True, help="a peer spec, e.g. firefox@153")
    bs.add_argument("--repeat", type=int, default=3, help="runs per version, so an intermittent cell is not "
                                                          "misjudged (default: %(default)s)")
    bs.add_argument("--out", default=None, help="folder (default: reports/bisect/<scenario>_<range>_<other>/)")
    bs.add_argument("--negotiator-js", default=None)
    bs.add_argument("--negotiator-py", default=None)
    bs.set_defaults(func=cmd_bisect)
    br = sub.add_parser("browsers", help="browser versions: list those installed (or installable), install more, "
                                         "print one's executable")
    brs = br.add_subparsers(dest="action", required=True)
    bl = brs.add_parser("list", help="installed versions (system and cache): kind, exact version, source, driver, path")
    bl.add_argument("--available", action="store_true", help="also the installable ones (Debian's archive, npm)")
    bi = brs.add_parser("install", help="install versions into the per-user cache, each checked by launching")
    bi.add_argument("specs", metavar="SPEC", nargs="+", help="e.g. chromium@147 firefox@140")
    bp = brs.add_parser("path", help="the executable a spec resolves to (nothing is installed)")
    bp.add_argument("specs", metavar="SPEC", nargs=1, help="e.g. chromium@150")
    br.set_defaults(func=cmd_browsers)
    d = sub.add_parser("doctor", help="list each peer kind, its binary and version, and whether it can be driven")
    d.set_defaults(func=cmd_doctor)
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
    nested = runs.Run.current is not None  # rig mutants / rig debug run rig matrix in this process
    parent = os.environ.get(config.PARENT_ENV)
    if not nested and parent and parent.isdigit() and not processes.die_with_parent(int(parent)):
        _err(f"the process that started this rig (pid {parent}) is gone; not starting")
        return 128 + signal.SIGTERM
    try:
        with runs.Run("rig " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))) as run:
            rc = args.func(args)
    except runs.Interrupted as exc:
        if nested:
            raise
        if not getattr(exc, "reported", False):
            print(f"rig: {exc.text()}", file=sys.stderr)
        return exc.status
    if not nested and run.signals:  # a signal that came while a child's time ran out
        return 128 + run.signals[0]
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
