"""A run as compact Markdown, for a CI system's job summary (``rig report DIR --markdown``;
GitHub: appended to ``$GITHUB_STEP_SUMMARY``).

The same reading as the index, in text: a row per scenario, a column per ordered pair, each
cell its worst outcome (and passed/runs with repeats). A version matrix has too many pairs for
a table that wide, so past ``MAX_COLUMNS`` pairs it lists each pair's outcome counts instead.
Then every case that fails the run (failed, error, xpassed, not-run), with the first line of its reason.
"""

from __future__ import annotations

from collections import Counter

from .model import OUTCOMES, RunRecord

#: Worst first: the symbol of a cell is its worst run's.
WORST = ("error", "failed", "xpassed", "not-run", "xfailed", "unsupported", "passed")
SYMBOL = {"passed": "✅", "xfailed": "🟡", "failed": "❌", "error": "❗", "xpassed": "🟣", "unsupported": "➖",
          "not-run": "⏹"}
MAX_COLUMNS = 10
MAX_PROBLEMS = 30
BAD = ("failed", "error", "xpassed", "not-run")


def _cell(outcomes: list[str]) -> str:
    worst = min(outcomes, key=WORST.index)
    if len(outcomes) == 1:
        return SYMBOL[worst]
    return f"{SYMBOL[worst]} {outcomes.count('passed')}/{len(outcomes)}"


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(run: RunRecord, title: str = "glare-rig") -> str:
    n = Counter(c.outcome for c in run.cases)
    lines = [f"### {title}: {len(run.cases)} cases, " + ", ".join(f"{n[o]} {o}" for o in OUTCOMES if n[o]), ""]
    versions = ", ".join(f"{k} {v}" for k, v in run.versions.items() if v)
    if versions:
        lines += [f"Versions: {_esc(versions)}", ""]
    if run.interrupted:
        lines += [f"⚠ **Interrupted** by {_esc(run.interrupted)}: a partial run; {n['not-run']} case(s) not run.", ""]
    if run.merged is not None:
        dup = f"; {len(run.merged.duplicates)} duplicate note(s)" if run.merged.duplicates else ""
        lines += [f"Merged from {len(run.merged.inputs)} report(s){dup}."]
        lines += [f"- ⚠ {_esc(m)}" for m in run.merged.missing]
        lines += [""]
    elif run.shard:
        lines += [f"Shard {run.shard} of catalogue `{run.catalogue_digest}`.", ""]
    cells: dict[tuple[str, str, str], list[str]] = {}
    for c in run.cases:
        cells.setdefault((c.scenario, c.polite.spec, c.impolite.spec), []).append(c.outcome)
    pairs = list(dict.fromkeys((k[1], k[2]) for k in cells))
    scenarios = list(dict.fromkeys([s.name for s in run.scenarios] + [k[0] for k in cells]))
    scenarios = [s for s in scenarios if any(k[0] == s for k in cells)]
    if not cells:
        lines.append("No cases.")
    elif len(pairs) <= MAX_COLUMNS:
        lines.append("| scenario | " + " | ".join(f"{p} → {i}" for p, i in pairs) + " |")
        lines.append("|---" * (len(pairs) + 1) + "|")
        for s in scenarios:
            row = [_cell(cells[(s, p, i)]) if (s, p, i) in cells else "" for p, i in pairs]
            lines.append(f"| `{s}` | " + " | ".join(row) + " |")
    else:
        lines.append("| polite → impolite | " + " | ".join(OUTCOMES) + " |")
        lines.append("|---" * (len(OUTCOMES) + 1) + "|")
        for p, i in pairs:
            counts = Counter(o for (s, pp, ii), outs in cells.items() if (pp, ii) == (p, i) for o in outs)
            lines.append(f"| {p} → {i} | " + " | ".join(str(counts[o] or "") for o in OUTCOMES) + " |")
    lines += ["", "Polite peer → impolite peer. " + ", ".join(f"{SYMBOL[o]} {o}" for o in OUTCOMES)
              + "; with repeats, passed/runs next to the worst outcome.", ""]
    bad = [c for c in run.cases if c.outcome in BAD]
    if bad:
        lines.append(f"**{len(bad)} case(s) fail the run:**")
        for c in bad[:MAX_PROBLEMS]:
            reason = (c.reason.strip().splitlines() or [""])[0]
            lines.append(f"- {SYMBOL[c.outcome]} `{c.id}` {c.outcome}: {_esc(reason[:200])}")
        if len(bad) > MAX_PROBLEMS:
            lines.append(f"- ... and {len(bad) - MAX_PROBLEMS} more (the report's index lists them all)")
        lines.append("")
    return "\n".join(lines)
