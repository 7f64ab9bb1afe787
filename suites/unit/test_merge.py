"""``rig merge``: shards put together, duplicates kept or renumbered, missing shards named,
mixed schemas refused in one line, every link of the merged report working. Hand-made report
folders, no browser."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig import cli, model, results, shards

PEERS = ["firefox", "aiortc"]
SCENARIOS = ["glare-initial", "add-video"]
VERSION = {"firefox": "153.8.0", "aiortc": "1.16.0"}


def _case(scenario: str, pol: str, imp: str, outcome: str = "passed", *, repeat: int = 0, repeats: int = 1,
          versions: dict | None = None) -> dict:
    v = versions or VERSION
    cid = results.case_id(scenario, pol, imp, repeat, repeats)
    s = results.slug(cid)
    return {"id": cid, "slug": s, "scenario": scenario, "repeat": repeat, "outcome": outcome,
            "expected": "xfail" if outcome == "xfailed" else "pass", "finding": "aiortc-no-rollback"
            if outcome == "xfailed" else None, "reason": f"{outcome} because\nsecond line",
            "duration_s": 1.5, "details": f"cases/{s}.json",
            "polite": {"spec": pol, "kind": pol.split("@")[0], "version": v[pol.split("@")[0]]},
            "impolite": {"spec": imp, "kind": imp.split("@")[0], "version": v[imp.split("@")[0]]}}


def _report(folder: Path, cases: list[dict], *, shard: str = "", started: str = "2026-11-30T10:00:00+00:00",
            catalogue: list[shards.Cell] | None = None, schema: int = 2, evidence: bool = True) -> Path:
    """A report folder as rig matrix writes it: results.json, cases/<slug>.json, evidence files."""
    cat = catalogue if catalogue is not None else shards.catalogue(SCENARIOS, PEERS)
    (folder / "cases").mkdir(parents=True)
    for c in cases:
        ev = {"kept": False, "dir": "", "files": []}
        if evidence and c["outcome"] != "passed":
            (folder / "cases" / c["slug"]).mkdir()
            (folder / "cases" / c["slug"] / "aiortc.log").write_text(f"log of {c['id']} in {folder.name}\n")
            ev = {"kept": True, "dir": f"cases/{c['slug']}/",
                  "files": [{"name": "aiortc.log", "kind": "aiortc-log", "role": "", "bytes": 30}]}
        detail = {"schema_version": 2, "case": c, "plan": ["1. join"], "evidence": ev}
        (folder / c["details"]).write_text(json.dumps(detail))
    run = {"schema_version": schema, "started": started, "finished": started[:14] + "05:00+00:00",
           "command": f"rig matrix --shard {shard}" if shard else "rig matrix", "peers": PEERS,
           "versions": {**VERSION, "playwright": "1.64.1"},
           "scenarios": [{"name": s} for s in SCENARIOS], "shard": shard,
           "catalogue": [c.as_list() for c in cat], "catalogue_digest": shards.digest(cat), "cases": cases}
    if schema == 1:
        for key in ("shard", "catalogue", "catalogue_digest"):
            run.pop(key)
    (folder / "results.json").write_text(json.dumps(run))
    return folder


def _sharded(tmp_path: Path, n: int, outcome=lambda cell: "xfailed" if cell.polite == "aiortc" else "passed",
             started: str = "2026-11-30T10:00:00+00:00", prefix: str = "shard") -> list[Path]:
    every = shards.catalogue(SCENARIOS, PEERS)
    out = []
    for i, part in enumerate(shards.assign(every, n, shards.Costs.load()), start=1):
        cases = [_case(c.scenario, c.polite, c.impolite, outcome(c)) for c in part]
        out.append(_report(tmp_path / f"{prefix}-{i}", cases, shard=f"{i}/{n}", started=started))
    return out


def _merge(capsys, *args) -> tuple[int, str, str]:
    rc = cli.main(["merge", *map(str, args)])
    got = capsys.readouterr()
    return rc, got.out, got.err


def _links_work(out: Path) -> None:
    """Every relative link of the index and of each case page opens a file that is there."""
    pages = [out / "index.html", *sorted((out / "cases").glob("*.html"))]
    for page in pages:
        for href in re.findall(r'href="([^"#:]+)"', page.read_text()):
            assert (page.parent / href).resolve().is_file(), f"{page.name}: {href}"


def test_shards_merge_into_the_whole_catalogue(tmp_path, capsys):
    parts = _sharded(tmp_path, 3)
    rc, out, err = _merge(capsys, *parts, "--out", tmp_path / "merged")
    assert rc == 0 and err == "", err
    run = model.load_run(tmp_path / "merged")
    assert {(c.scenario, c.polite.spec, c.impolite.spec) for c in run.cases} == \
        {(c.scenario, c.polite, c.impolite) for c in shards.catalogue(SCENARIOS, PEERS)}
    # in the order rig matrix writes results.json: scenario (as the run lists them), polite, impolite spec
    assert [c.id for c in run.cases] == [results.case_id(s, p, i, 0, 1) for s in SCENARIOS
                                         for p in sorted(PEERS) for i in sorted(PEERS)]
    assert run.summary["passed"] == 4 and run.summary["xfailed"] == 4 and run.merged.missing == []
    assert [i.shard for i in run.merged.inputs] == ["1/3", "2/3", "3/3"]
    assert run.catalogue_digest == shards.digest(shards.catalogue(SCENARIOS, PEERS)) and run.shard == ""
    assert "8 case(s) from 3 input(s): 4 passed, 4 xfailed" in out
    _links_work(tmp_path / "merged")
    page = (tmp_path / "merged" / "cases" / "glare-initial_aiortc-polite--firefox-impolite.html").read_text()
    assert 'href="glare-initial_aiortc-polite--firefox-impolite/aiortc.log"' in page and "log of" in page
    suites = ET.parse(tmp_path / "merged" / "junit.xml").getroot()
    assert suites.get("tests") == "8" and suites.get("skipped") == "4"


def test_a_missing_shard_is_named_and_the_rest_is_still_merged(tmp_path, capsys):
    one, _two, three = _sharded(tmp_path, 3)
    rc, out, err = _merge(capsys, one, three, "--out", tmp_path / "merged")
    assert rc == 1
    assert re.search(r"^rig merge: warning: shard 2/3 missing: \d+ of its 8 cells have no case, e.g. ", err, re.M), err
    run = model.load_run(tmp_path / "merged")
    assert run.merged.missing[0].startswith("shard 2/3 missing") and 0 < len(run.cases) < 8
    assert "shard 2/3 missing" in (tmp_path / "merged" / "index.html").read_text()
    assert "shard 2/3 missing" in rig_report_markdown(tmp_path / "merged", capsys)


def rig_report_markdown(folder: Path, capsys) -> str:
    assert cli.main(["report", str(folder), "--markdown"]) == 0
    return capsys.readouterr().out


def test_cells_without_a_case_are_named_when_every_shard_is_there(tmp_path, capsys):
    every = shards.catalogue(SCENARIOS, PEERS)
    cases = [_case(c.scenario, c.polite, c.impolite) for c in every[:-1]]  # a run that lost its last cell
    rc, _, err = _merge(capsys, _report(tmp_path / "a", cases), "--out", tmp_path / "merged")
    assert rc == 1 and "1 of its 8 cells have no case, e.g. add-video [aiortc polite x aiortc impolite]" in err


def test_the_same_run_given_twice_is_kept_once_and_said(tmp_path, capsys):
    parts = _sharded(tmp_path, 2)
    rc, _, err = _merge(capsys, parts[0], parts[1], parts[0] / "results.json", "--out", tmp_path / "merged")
    assert rc == 0
    run = model.load_run(tmp_path / "merged")
    assert len(run.cases) == 8 and len({c.id for c in run.cases}) == 8
    assert "(one run read twice): kept once" in err and all("kept once" in d for d in run.merged.duplicates)


def test_distinct_runs_of_a_cell_are_kept_as_repeats_with_their_own_files(tmp_path, capsys):
    first = _sharded(tmp_path, 2, prefix="monday")
    second = _sharded(tmp_path, 2, started="2026-12-01T10:00:00+00:00", prefix="tuesday",
                      outcome=lambda c: "failed" if c.polite == "aiortc" else "passed")
    rc, _, err = _merge(capsys, *first, *second, "--out", tmp_path / "merged")
    assert rc == 0
    run = model.load_run(tmp_path / "merged")
    assert len(run.cases) == 16 and len({c.slug for c in run.cases}) == 16 and run.repeat == 2
    cell = [c for c in run.cases if (c.scenario, c.polite.spec, c.impolite.spec) == ("glare-initial", "aiortc", "firefox")]
    assert [(c.id, c.repeat, c.outcome) for c in cell] == [
        ("glare-initial[aiortc-polite--firefox-impolite-r0]", 0, "xfailed"),
        ("glare-initial[aiortc-polite--firefox-impolite-r1]", 1, "failed")], "in the order of the inputs"
    assert "(distinct runs): kept as repeats r0..r1" in err and len(run.merged.duplicates) == 8
    merged = tmp_path / "merged"
    for c in cell:  # the detail file and the evidence folder follow the new name
        detail = json.loads((merged / c.details).read_text())
        assert detail["case"]["id"] == c.id and detail["evidence"]["dir"] == f"cases/{c.slug}/"
        log = (merged / "cases" / c.slug / "aiortc.log").read_text()
        assert ("monday" if c.repeat == 0 else "tuesday") in log
    _links_work(merged)
    index = (merged / "index.html").read_text()
    assert "kept as repeats" in index and ">r0</a>" in index and ">r1</a>" in index
    names = [tc.get("name") for tc in ET.parse(merged / "junit.xml").getroot().iter("testcase")]
    assert "aiortc polite x firefox impolite r1" in names


def test_exact_versions_stay_per_case_and_the_run_lists_them_all(tmp_path, capsys):
    old = {"firefox": "153.7.0", "aiortc": "1.16.0"}
    a = _report(tmp_path / "a", [_case("glare-initial", "firefox", "firefox", versions=old)])
    b = _report(tmp_path / "b", [_case("add-video", "firefox", "firefox")], started="2026-11-30T11:00:00+00:00")
    assert _merge(capsys, a, b, "--out", tmp_path / "m")[0] == 1  # each lost the other's cells
    run = model.load_run(tmp_path / "m")
    assert {c.scenario: c.polite.version for c in run.cases} == {"glare-initial": "153.7.0", "add-video": "153.8.0"}
    assert run.versions["firefox"] == "153.7.0, 153.8.0"
    assert run.started == "2026-11-30T10:00:00+00:00" and run.finished == "2026-11-30T11:05:00+00:00"


def test_mixed_schema_versions_are_refused_in_one_line_and_nothing_is_written(tmp_path, capsys):
    v2 = _report(tmp_path / "new", [_case("glare-initial", "firefox", "aiortc")])
    v1 = _report(tmp_path / "old", [_case("add-video", "firefox", "aiortc")], schema=1)
    rc, out, err = _merge(capsys, v2, v1, "--out", tmp_path / "merged")
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("rig: error: mixed results schema versions (") and "is 1, " in err and "is 2)" in err
    assert not (tmp_path / "merged").exists()


@pytest.mark.parametrize("bad, message", [
    ("missing", "no such file or folder"),
    ("empty-dir", "the folder holds no results.json"),
    ("not-json", "not a results.json (not JSON"),
    ("newer", "results schema version 3, this glare-rig reads up to 2: upgrade glare-rig"),
])
def test_bad_input_is_one_line_naming_it(tmp_path, capsys, bad, message):
    path = tmp_path / bad
    if bad == "empty-dir":
        path.mkdir()
    elif bad == "not-json":
        path.write_text("{nope")
    elif bad == "newer":
        path.write_text(json.dumps({"schema_version": 3, "cases": []}))
    rc, _, err = _merge(capsys, path, "--out", tmp_path / "merged")
    assert rc == 2 and err.count("\n") == 1 and message in err and bad in err, err


def test_out_must_be_new_empty_or_an_earlier_report(tmp_path, capsys):
    a = _sharded(tmp_path, 1)[0]
    rc, _, err = _merge(capsys, a, "--out", a)
    assert rc == 2 and "that is an input's folder" in err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me")
    rc, _, err = _merge(capsys, a, "--out", tmp_path / "busy")
    assert rc == 2 and "not empty and holds no report" in err and (tmp_path / "busy" / "thesis.tex").exists()
    assert _merge(capsys, a, "--out", tmp_path / "again")[0] == 0
    (tmp_path / "again" / "cases" / "stale.json").write_text("{}")
    assert _merge(capsys, a, "--out", tmp_path / "again")[0] == 0, "an earlier report is replaced"
    assert not (tmp_path / "again" / "cases" / "stale.json").exists()


def test_a_merged_report_merges_again(tmp_path, capsys):
    one, two, three = _sharded(tmp_path, 3)
    assert _merge(capsys, one, two, "--out", tmp_path / "m12")[0] == 1
    rc, _, err = _merge(capsys, tmp_path / "m12", three, "--out", tmp_path / "all")
    assert rc == 0, err
    assert len(model.load_run(tmp_path / "all").cases) == 8


def test_paths_from_an_input_cannot_reach_outside_it_or_out(tmp_path, capsys):
    (tmp_path / "secret.txt").write_text("not for the report")
    case = _case("glare-initial", "firefox", "aiortc", "failed")
    case.update(slug="../../escaped", details="../secret.txt")
    a = _report(tmp_path / "a", [], catalogue=[])
    run = json.loads((a / "results.json").read_text())
    run["cases"] = [case]
    (a / "results.json").write_text(json.dumps(run))
    assert _merge(capsys, a, "--out", tmp_path / "out" / "merged")[0] == 0
    merged = tmp_path / "out" / "merged"
    assert not (tmp_path / "out" / "escaped.json").exists() and not (tmp_path / "escaped").exists()
    files = list((merged / "cases").iterdir())
    assert [f.suffix for f in files] == [".html"], files  # the page says its detail file was not recorded
    assert "not for the report" not in files[0].read_text()
    assert model.load_run(merged).cases[0].details == f"cases/{files[0].stem}.json"


def test_a_shard_a_signal_ended_makes_the_merge_incomplete(tmp_path, capsys):
    one, two = _sharded(tmp_path, 2, outcome=lambda cell: "not-run" if cell.scenario == "add-video" else "passed")
    raw = json.loads((two / "results.json").read_text())
    raw["interrupted"] = "SIGTERM"
    (two / "results.json").write_text(json.dumps(raw))
    rc, _out, err = _merge(capsys, one, two, "--out", tmp_path / "merged")
    n = sum(c["outcome"] == "not-run" for c in raw["cases"])
    assert rc == 1 and f"{two / 'results.json'}: interrupted by SIGTERM; {n} case(s) not run" in err, err
    run = model.load_run(tmp_path / "merged")
    assert run.interrupted == "2/2: SIGTERM" and run.summary["not-run"] == 4
