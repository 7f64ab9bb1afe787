"""``rig bisect``: the first version where a cell changed, among the installable versions.

    rig bisect glare-add-media --polite chromium@110..156 --impolite firefox@153 --repeat 3

One side is a range of versions of one engine, the other a fixed peer. The installable
versions in the range (rig.install: Debian archives, npm packages, PyPI releases, and what
is installed) are walked by binary search: the two ends first, then the middle of the
interval whose ends disagree. Each step is an ordinary ``rig matrix`` run of that one cell,
``--repeat`` times (so an intermittent cell is not misjudged on one run), in its own
folder; a version that is not installed yet is installed on demand by that run.

A step's verdict is ``pass`` when every run's behaviour passed (``xpassed`` included: a run
that passed although a finding expected it to fail), ``fail`` when any failed (an expected
failure included: a finding is a failure of the cell), and ``skip`` when no run could be
judged (the version could not be installed or driven, the scenario is unsupported on it, or
every run ended in an error, the rig's and not the cell's): a skipped version is dropped from
the interval, as ``git bisect skip`` does, and the output lists it with its reason. A run that
passed against a finding whose range covers the version shows the range too wide for the
scenario: the output names the finding and the range to write for that scenario (its
``seen_in``, rig.findings). The boundary
is the last version that agrees with the first end and the first that agrees with the
other; its two case pages are linked side by side in ``bisect.html``, with the differences
between the SDPs the bisected peer wrote in them.

Chromium by commit position: a range ``chromium@snapshot:FIRST..LAST`` walks the positions
Chromium's snapshot bucket lists between the two (rig.install.snapshots), each step
``chromium@snapshot:N``. An official Chromium bisect (Chrome for Testing's builds) that ends
between two adjacent builds names their commit positions (the feed's ``revision``) and the
command that narrows the boundary to one position.

Exit status: 0 a boundary was found, 1 the ends agree (or every version between them was
skipped), 2 bad input.
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import config, install, results, runs, scenarios
from .errors import RigError
from .findings import BY_ID, Seen
from .install import cft, mozilla, snapshots
from .peerspec import CFT, SNAPSHOT, PeerSpec
from .versions import in_range, line, version_key
from .vocab import RESULTS_FILE

VERDICTS = ("pass", "fail", "skip")
#: outcomes in which the cell's behaviour passed: an xpassed run passed against a finding's
#: expectation, and bisection is about the behaviour, not the expectation
BEHAVED = ("passed", "xpassed")


@dataclass
class Step:
    """One version's runs of the cell."""

    version: str  # as given to the spec (a release line or exact version: "147", "1.14")
    spec: str  # the spec that ran ("chromium@147")
    verdict: str = "skip"
    exact: str = ""  # the exact version the runs resolved to
    outcomes: dict[str, int] = field(default_factory=dict)
    reason: str = ""  # the first not-passed run's reason, one line
    pages: list[str] = field(default_factory=list)  # case pages, relative to the bisect folder
    details: list[str] = field(default_factory=list)  # cases/<slug>.json, relative to the bisect folder
    out: str = ""
    #: findings a run passed against (xpassed): their version range covers this version for
    #: this cell, though the cell's behaviour passed here
    passed_against: list[str] = field(default_factory=list)

    def text(self) -> str:
        runs = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items())) or "no runs"
        why = f": {self.reason}" if self.reason else ""
        return f"{self.spec} ({self.exact or 'version unknown'}): {self.verdict} [{runs}]{why}"


@dataclass
class Bisection:
    scenario: str
    side: str  # which role the range is on: "polite" or "impolite"
    other: str
    kind: str
    candidates: list[str]
    steps: list[Step] = field(default_factory=list)
    last_like_first: Step | None = None
    first_like_last: Step | None = None
    message: str = ""

    @property
    def found(self) -> bool:
        return self.last_like_first is not None and self.first_like_last is not None

    def too_wide(self) -> list[str]:
        """One line per finding whose version range the steps show too wide for this scenario:
        a version inside it passed. It names the range to write, from the steps that failed."""
        seen: dict[str, list[Step]] = {}
        for s in self.steps:
            for f in s.passed_against:
                seen.setdefault(f, []).append(s)
        return [f"finding {f} expects {self.scenario} to fail on {', '.join(s.spec for s in steps)}, but its behaviour "
                f"passed there: its range is too wide for {self.scenario}. {self.narrowing(f, steps)}"
                for f, steps in seen.items()]

    def narrowing(self, finding: str, passed: list[Step]) -> str:
        """How to narrow ``finding``'s range for this scenario: the range to write in rig/findings.py."""
        f = BY_ID.get(finding)
        ranges = f.seen_for(self.scenario).get(self.kind, ()) if f else ()
        if len(ranges) != 1:
            return (f"Narrow its {self.kind} range for {self.scenario} in rig/findings.py (seen_in) to the versions "
                    f"that failed here")
        old = ranges[0]
        key = lambda s: version_key(s.exact or s.version)  # noqa: E731
        failed = sorted((s for s in self.steps if s.verdict == "fail" and s.exact and old.covers(self.kind, s.exact)),
                        key=key)
        high, low = max(map(key, passed)), min(map(key, passed))
        above = [s for s in failed if key(s) > high]
        below = [s for s in failed if key(s) < low]
        if above and not below:
            new = Seen(above[0].exact, old.last)
        elif below and not above:
            new = Seen(old.first, below[-1].exact)
        else:
            return (f"Its passes and failures interleave in {old}: rerun with a higher --repeat before narrowing it "
                    f"(an intermittent pass), or split the range in rig/findings.py (seen_in)")
        return (f"Narrow it in rig/findings.py, finding {finding}: seen_in={{\"{self.scenario}\": "
                f"{{\"{self.kind}\": (Seen(\"{new.first}\", \"{new.last}\"),)}}}} (was {old}), after a --repeat "
                f"run rules out an intermittent pass")


def verdict_of(cases: list[dict]) -> tuple[str, str]:
    """(verdict, reason) of a step's runs of one cell (results.json case dicts)."""
    if not cases:
        return "skip", "the run wrote no case for the cell"
    judged = [c for c in cases if not _unjudgeable(c)]
    if not judged:
        return "skip", f"not judged ({cases[0].get('outcome')}): {_line(cases[0].get('reason', ''))}"
    left = (f" ({len(cases) - len(judged)} of {len(cases)} runs not judged: "
            f"{_line(next(c for c in cases if _unjudgeable(c)).get('reason', ''))})") if len(judged) < len(cases) else ""
    bad = [c for c in judged if c.get("outcome") not in BEHAVED]
    if bad:
        return "fail", _line(bad[0].get("reason", "") or bad[0].get("outcome", "")) + left
    return "pass", left.strip(" ()")


def _unjudgeable(case: dict) -> bool:
    """A run that says nothing about the version's behaviour: not attempted (unsupported, or
    not run because the run ended first), or an error (set-up failed, or the rig's own fault:
    rig.verdict's ``error`` outcome is never the cell's behaviour)."""
    return case.get("outcome") in ("unsupported", "not-run", "error")


def _line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0][:300]


def candidates(kind: str, first: str, last: str, listing: list[str]) -> list[str]:
    """The versions of ``listing`` (exact versions or release lines) whose line lies between
    ``first``'s and ``last``'s, one per line (the newest build of it), oldest first."""
    lines: dict[str, str] = {}
    for v in sorted(listing, key=version_key):
        if version_key(v) and in_range(v, first, last, kind):
            lines[line(kind, v)] = v
    return [lines[k] for k in sorted(lines, key=version_key)]


def bisect(versions: list[str], evaluate: Callable[[str], Step], on_step: Callable[[Step], None] | None = None,
           ) -> tuple[list[Step], Step | None, Step | None, str]:
    """Binary search over ``versions`` (oldest first) for where ``evaluate``'s verdict changes.

    Returns (steps, last step agreeing with the first end, first step agreeing with the last
    end, message). Versions that evaluate to ``skip`` are dropped from the interval."""
    steps: list[Step] = []

    def run(v: str) -> Step:
        s = evaluate(v)
        steps.append(s)
        if on_step:
            on_step(s)
        return s

    todo = list(versions)
    ends: list[Step] = []
    for which in ("first", "last"):  # the ends, skipping inward past versions that cannot be judged
        while todo:
            v = todo.pop(0) if which == "first" else todo.pop()
            s = run(v)
            if s.verdict != "skip":
                ends.append(s)
                break
    if len(ends) < 2:
        return steps, None, None, "fewer than two versions in the range could be judged"
    lo, hi = ends
    if lo.verdict == hi.verdict:
        return steps, None, None, (f"both ends {lo.verdict}: {lo.spec} and {hi.spec} agree, so no boundary "
                                   f"lies between them (or it changed and changed back)")
    middle = todo  # the versions strictly between the two ends, oldest first
    while middle:
        m = len(middle) // 2
        s = run(middle[m])
        if s.verdict == "skip":
            middle.pop(m)
        elif s.verdict == lo.verdict:
            lo, middle = s, middle[m + 1:]
        else:
            hi, middle = s, middle[:m]
    return steps, lo, hi, f"{lo.verdict} up to {lo.spec} ({lo.exact}), {hi.verdict} from {hi.spec} ({hi.exact})"


# --- running one step -------------------------------------------------------------------


def step_spec(kind: str, version: str, source: str = "installable") -> PeerSpec:
    """The spec a step runs: a release line from what is installable, the exact build from the
    official source (Chrome for Testing's for Chromium, Mozilla's archive for Firefox), or a
    commit position's build from Chromium's snapshots (``source="snapshot"``)."""
    if source == "snapshot":
        return PeerSpec(kind, f"{SNAPSHOT}{version}")
    if source == "official" and kind == "chromium":
        return PeerSpec(kind, f"{CFT}{version}")
    return PeerSpec(kind, version)


def matrix_step(scenario: str, side: str, range_spec: PeerSpec, other: PeerSpec, repeat: int, out: Path,
                base: Any, source: str = "installable") -> Callable[[str], Step]:
    """An ``evaluate`` for :func:`bisect` that runs the cell's request (``base``, a
    rig.request.MatrixRequest, on the step's pair) with ``python -m rig.matrix`` in a subprocess."""

    def evaluate(version: str) -> Step:
        spec = step_spec(range_spec.kind, version, source)
        polite, impolite = (spec, other) if side == "polite" else (other, spec)
        folder = out / f"step-{range_spec.kind}-{version}"
        folder.mkdir(parents=True, exist_ok=True)
        request = replace(base, peers=tuple(dict.fromkeys([str(polite), str(impolite)])),
                          pairs=((str(polite), str(impolite)),), out=str(folder),
                          command=f"rig matrix --peers {','.join(dict.fromkeys([str(polite), str(impolite)]))} "
                                  f"--pairs {polite}:{impolite} --scenarios {scenario} --repeat {repeat} "
                                  f"--out {folder} --workers 1 --keep all")
        # a process of its own per step: a hard bound on the step (a hung install or browser is
        # ended with it), and its run's processes swept at its end, whatever the step did
        fd, name = tempfile.mkstemp(prefix="glare-rig-request-", suffix=".json")
        os.close(fd)
        cmd = [sys.executable, "-m", "rig.matrix", str(request.dump(Path(name)))]
        step = Step(version=version, spec=str(spec), out=str(folder.relative_to(out)))
        timeout = repeat * (config.LAUNCH_TIMEOUT + config.CASE_TIMEOUT) + 600  # installs included
        env = dict(os.environ)
        try:
            if runs.Run.current is None:
                proc = subprocess.run(cmd, cwd=config.ROOT, capture_output=True, text=True, timeout=timeout, env=env)
            else:  # a signal to rig bisect reaches the step's rig matrix, which ends its run in order
                child = runs.Run.current.popen(cmd, cwd=config.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                               text=True, env=env)
                out_text, err_text = runs.Run.current.communicate(child, timeout=timeout)
                proc = subprocess.CompletedProcess(cmd, child.returncode, out_text, err_text)
        except subprocess.TimeoutExpired:
            step.reason = f"rig matrix did not finish within {timeout:.0f} s"
            return step
        finally:
            Path(name).unlink(missing_ok=True)
        try:
            raw = json.loads((folder / RESULTS_FILE).read_text())
        except (OSError, ValueError):
            tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
            step.reason = f"no results (rig matrix exit {proc.returncode}): {tail}"
            return step
        cases = [c for c in raw.get("cases", []) if c.get("scenario") == scenario
                 and c["polite"].get("spec") == str(polite) and c["impolite"].get("spec") == str(impolite)]
        step.verdict, step.reason = verdict_of(cases)
        for c in cases:
            step.outcomes[c["outcome"]] = step.outcomes.get(c["outcome"], 0) + 1
            if c["outcome"] == "xpassed":
                step.passed_against += [f for f in c.get("findings") or [] if f not in step.passed_against]
            step.exact = step.exact or (c[side].get("version") or "")
            step.pages.append(f"{step.out}/cases/{results.slug(c['slug'])}.html")
            step.details.append(f"{step.out}/cases/{results.slug(c['slug'])}.json")
        return step

    return evaluate


# --- the two sides of the boundary --------------------------------------------------------

#: SDP lines that differ between any two runs (addresses, keys, ids): left out of the diff.
_VOLATILE = re.compile(r"^(o=|c=|a=candidate|a=ice-ufrag|a=ice-pwd|a=fingerprint|a=ssrc|a=msid|a=rtcp:|"
                       r"a=end-of-candidates|m=\S+ \d+)")


def _sdps(detail: Path, role: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(detail.read_text())
    except (OSError, ValueError):
        return []
    return [(f"{s.get('op')} {s.get('type')}", s.get("sdp") or "") for s in data.get("sdps") or []
            if s.get("role") == role and s.get("op") == "local"]


def _stable(sdp: str) -> list[str]:
    return [ln for ln in sdp.replace("\r\n", "\n").split("\n") if ln and not _VOLATILE.match(ln)]


def sdp_differences(before: Path, after: Path, role: str, limit: int = 80) -> str:
    """A unified diff of the descriptions the bisected peer wrote (local offers and answers,
    in order) in the two cases, without the lines that differ in every run."""
    a, b = _sdps(before, role), _sdps(after, role)
    out: list[str] = []
    for i in range(max(len(a), len(b))):
        (la, sa), (lb, sb) = (a[i] if i < len(a) else ("-", "")), (b[i] if i < len(b) else ("-", ""))
        diff = list(difflib.unified_diff(_stable(sa), _stable(sb), f"before #{i + 1} {la}", f"after #{i + 1} {lb}",
                                         lineterm="", n=1))
        out += diff
    if not out:
        return "(the bisected peer's descriptions are the same, volatile lines aside)"
    return "\n".join(out[:limit] + ([f"... {len(out) - limit} more lines"] if len(out) > limit else []))


def write_html(out: Path, b: Bisection) -> Path:
    def page(s: Step | None) -> str:
        if s is None or not s.pages:
            return "<p>no case page</p>"
        return (f'<h3>{html.escape(s.text())}</h3><p><a href="{html.escape(s.pages[0])}">case page</a></p>'
                f'<iframe src="{html.escape(s.pages[0])}" title="{html.escape(s.spec)}"></iframe>')

    rows = "".join(f"<tr class='{s.verdict}'><td>{html.escape(s.spec)}</td><td>{html.escape(s.exact)}</td>"
                   f"<td>{s.verdict}</td><td>{html.escape(', '.join(f'{n} {o}' for o, n in s.outcomes.items()))}</td>"
                   f"<td>{html.escape(s.reason)}</td></tr>" for s in sorted(b.steps, key=lambda s: version_key(s.exact or s.version)))
    diff = ""
    if b.found and b.last_like_first.details and b.first_like_last.details:
        diff = sdp_differences(out / b.last_like_first.details[0], out / b.first_like_last.details[0], b.side)
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>rig bisect {html.escape(b.scenario)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:1em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:.2em .5em}}
tr.pass td{{background:#e6f4e6}} tr.fail td{{background:#fbe3e3}} tr.skip td{{color:#777}}
.sides{{display:flex;gap:1em}} .sides>div{{flex:1;min-width:0}} iframe{{width:100%;height:70vh;border:1px solid #ccc}}
pre{{background:#f6f6f6;padding:.5em;overflow:auto}}</style></head><body>
<h1>rig bisect: {html.escape(b.scenario)}, {b.side} {html.escape(b.kind)} against {html.escape(b.other)}</h1>
<p><b>{html.escape(b.message)}</b></p>
{"".join(f"<p class='wide'>{html.escape(w)}</p>" for w in b.too_wide())}
<table><thead><tr><th>spec</th><th>exact version</th><th>verdict</th><th>runs</th><th>first failure</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>The boundary, side by side</h2>
<div class="sides"><div>{page(b.last_like_first)}</div><div>{page(b.first_like_last)}</div></div>
<h2>SDP differences (the {b.side} peer's local descriptions)</h2><pre>{html.escape(diff or "(no boundary)")}</pre>
</body></html>"""
    path = out / "bisect.html"
    path.write_text(doc, encoding="utf-8")
    return path


def write_json(out: Path, b: Bisection) -> Path:
    path = out / "bisect.json"
    data = {"scenario": b.scenario, "side": b.side, "other": b.other, "kind": b.kind, "candidates": b.candidates,
            "found": b.found, "message": b.message, "too_wide": b.too_wide(), "steps": [asdict(s) for s in b.steps],
            "last_like_first": asdict(b.last_like_first) if b.last_like_first else None,
            "first_like_last": asdict(b.first_like_last) if b.first_like_last else None}
    path.write_text(json.dumps(data, indent=1))
    return path


def installable(kind: str, source: str = "installable") -> list[str]:
    """Exact versions (or release lines) of ``kind`` that are installed or installable here; with
    ``source="official"``, the builds of its official feed (Chrome for Testing's known-good list,
    Mozilla's archive's releases); with ``source="snapshot"``, the commit positions Chromium's
    snapshot bucket has a build of (the whole listing: a bisect reads its range only, _walk)."""
    if source == "snapshot":
        return snapshots.positions()
    if source == "official":
        if kind == "chromium":
            return cft.known_versions()
        if kind == "firefox":
            return mozilla.releases()
        raise RigError(f"{kind} has no official feed to bisect over (its versions come from PyPI: "
                       f"leave out --source official)")
    found = {i.version for i in install.installed(kind)}
    found |= {a.version for a in install.available(kind)}
    return sorted(found, key=version_key)


def parse_sides(polite: str, impolite: str) -> tuple[str, PeerSpec, PeerSpec]:
    """(the role the range is on, the range spec, the other spec); one-line errors."""
    p, i = PeerSpec.parse(polite), PeerSpec.parse(impolite)
    if bool(p.range) == bool(i.range):
        raise RigError("give a range (kind@first..last, e.g. chromium@110..156) on exactly one side: "
                       f"--polite {p} --impolite {i}")
    return ("polite", p, i) if p.range else ("impolite", i, p)


def by_positions(b: Bisection, versions: list[str], revisions: dict[str, str], repeat: int) -> str:
    """For a Chromium bisect over Chrome for Testing's builds that ended between two adjacent
    ones: their commit positions and the ``rig bisect`` over Chromium's snapshots between them
    that narrows the boundary further; "" when there is none to run (no boundary, builds not
    adjacent, a position unknown, or none between)."""
    lo, hi = b.last_like_first, b.first_like_last
    if lo is None or hi is None or lo.version not in versions or hi.version not in versions:
        return ""
    if versions.index(hi.version) != versions.index(lo.version) + 1:
        return ""
    r0, r1 = revisions.get(lo.version, ""), revisions.get(hi.version, "")
    if not (r0 and r1 and int(r0) < int(r1)):
        return ""
    rng = f"{b.kind}@{SNAPSHOT}{r0}..{r1}"
    polite, impolite = (rng, b.other) if b.side == "polite" else (b.other, rng)
    return (f"rig bisect: {lo.spec} and {hi.spec} are adjacent builds, revisions {r0} and {r1}; narrow by commit "
            f"position: rig bisect {b.scenario} --polite {polite} --impolite {impolite} --repeat {repeat}")


# --- rig bisect ------------------------------------------------------------------------

def _error(msg: str) -> None:
    print(f"rig: error: {msg}", file=sys.stderr)


def _walk(rng: Any, source: str) -> tuple[list[str], dict[str, Any]]:
    """The versions a bisect of ``rng`` walks over ``source`` (at least two), and the official
    feed's revisions by version (Chromium over Chrome for Testing only); a RigError naming what
    there is when the range holds fewer than two."""
    first, last = rng.range
    listing = snapshots.positions(int(first), int(last)) if source == "snapshot" else installable(rng.kind, source)
    revisions = cft.revisions() if source == "official" and rng.kind == "chromium" else {}
    versions = candidates(rng.kind, first, last, listing)
    if len(versions) >= 2:
        return versions, revisions
    if source == "snapshot":
        raise RigError(f"{len(versions)} commit position(s) with a build in that range ({', '.join(versions) or 'none'}); "
                       f"{snapshots.NAME} has a {snapshots.PLATFORM} build at some positions only: widen the range")
    raise RigError(f"{len(versions)} installable version(s) in that range ({', '.join(versions) or 'none'}); "
                   f"installable {rng.kind} versions: "
                   f"{', '.join(sorted({line(rng.kind, v) for v in listing}, key=version_key))}")


def run_bisect(args: argparse.Namespace, base: Any) -> int:
    """``rig bisect``: the steps, their pages, and the boundary said in a few lines. ``base``: the
    rig.request.MatrixRequest each step runs on its own pair."""
    try:
        side, rng, other = parse_sides(args.polite, args.impolite)
        scenarios.get(args.scenario)
    except RigError as exc:
        _error(str(exc))
        return 2
    source = "snapshot" if rng.source == snapshots.SOURCE else getattr(args, "source", "installable")
    try:
        versions, revisions = _walk(rng, source)
    except RigError as exc:
        _error(f"{rng}: {exc}")
        return 2
    out = Path(args.out or config.ROOT / "reports" / "bisect" / f"{args.scenario}_{rng.label}_{other.label}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    walked = (f"{len(versions)} snapshot positions ({versions[0]} to {versions[-1]})" if source == "snapshot" else
              f"{len(versions)} {'official builds' if source == 'official' else 'versions'} "
              f"({', '.join(line(rng.kind, v) for v in versions)})")
    print(f"rig bisect: {args.scenario}, {side} {rng.kind} over {walked} against {other}, {args.repeat} run(s) each "
          f"-> {out}", flush=True)
    evaluate = matrix_step(args.scenario, side, rng, other, args.repeat, out, base, source)
    # each step asks for one release line (the newest installable build of it), or over the
    # official feeds for the newest build of the line the feed lists, or one commit position
    lines = versions if source in ("official", "snapshot") else [line(rng.kind, v) for v in versions]
    steps, lo, hi, message = bisect(lines, evaluate, on_step=lambda s: print(f"  {s.text()}", flush=True))
    b = Bisection(args.scenario, side, str(other), rng.kind, versions, steps, lo, hi, message)
    write_json(out, b)
    page = write_html(out, b)
    skipped = [st for st in steps if st.verdict == "skip"]
    if skipped:
        print("rig bisect: not judged, so left out of the search: "
              + "; ".join(f"{st.spec}: {st.reason or 'no reason recorded'}" for st in skipped))
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
        for ln in sdp_differences(out / lo.details[0], out / hi.details[0], side, limit=30).splitlines():
            print(f"    {ln}")
    print(f"  side by side: {page}")
    narrower = by_positions(b, versions, revisions, args.repeat)
    if narrower:
        print(narrower)
    return 0
