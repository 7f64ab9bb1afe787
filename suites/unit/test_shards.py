"""``--shard I/N``: every cell in exactly one slice, the same slices every time, and slices of
about equal cost on the measured cost table (rig/costs.json). No browser."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from rig import cli, config, scenarios, shards
from rig.errors import RigError

DEFAULT = shards.catalogue(list(scenarios.CATALOGUE), ["chromium", "firefox", "aiortc"])
VERSIONS = shards.catalogue(list(scenarios.CATALOGUE), ["chromium@147", "chromium", "firefox@140", "firefox",
                                                         "aiortc@1.14", "aiortc"])
COSTS = shards.Costs.load()


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "", "2-3", "1/2/3"])
def test_a_bad_shard_is_a_one_line_error_naming_it_and_the_form(text):
    with pytest.raises(RigError) as exc:
        shards.Shard.parse(text)
    assert str(exc.value).count("\n") == 0 and repr(text) in str(exc.value) and "I/N" in str(exc.value)


def test_a_shard_reads_as_written():
    assert str(shards.Shard.parse(" 2 / 3 ")) == "2/3" and shards.Shard.parse("1/1") == shards.Shard(1, 1)


def test_the_catalogue_is_scenarios_by_ordered_pairs_and_pairs_narrow_it():
    assert len(DEFAULT) == len(scenarios.CATALOGUE) * 9
    few = shards.catalogue(["a", "b"], ["firefox", "aiortc"], {("firefox", "aiortc")})
    assert few == [shards.Cell("a", "firefox", "aiortc"), shards.Cell("b", "firefox", "aiortc")]


@pytest.mark.parametrize("cells", [DEFAULT, VERSIONS], ids=["default", "versions"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 16])
def test_every_cell_is_in_exactly_one_shard(cells, n):
    slices = shards.assign(cells, n, COSTS)
    assert len(slices) == n and all(slices)
    flat = [c for s in slices for c in s]
    assert sorted(flat) == sorted(cells) and len(set(flat)) == len(flat)
    assert [c for c in cells if c in set(slices[0])] == slices[0], "a slice keeps the catalogue's order"


def test_the_same_catalogue_gives_the_same_slices_in_any_order():
    shuffled = list(VERSIONS)
    random.Random(7).shuffle(shuffled)
    a, b = shards.assign(VERSIONS, 4, COSTS), shards.assign(shuffled, 4, COSTS)
    assert [sorted(s) for s in a] == [sorted(s) for s in b]
    assert shards.select(VERSIONS, shards.Shard(3, 4), COSTS) == a[2]


def test_equal_costs_still_give_stable_slices():
    flat = shards.Costs(pairs={"aiortc:aiortc": 100})
    cells = shards.catalogue([f"s{i}" for i in range(10)], ["aiortc"])
    assert [len(s) for s in shards.assign(cells, 3, flat)] == [4, 3, 3]
    assert [sorted(s) for s in shards.assign(cells, 3, flat)] == \
        [sorted(s) for s in shards.assign(list(reversed(cells)), 3, flat)]


@pytest.mark.parametrize("cells", [DEFAULT, VERSIONS], ids=["default", "versions"])
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_shards_are_balanced_within_two_percent_on_the_measured_costs(cells, n):
    loads = shards.loads(cells, n, COSTS)
    mean = sum(loads) / n
    assert max(loads) <= 1.02 * mean and min(loads) >= 0.98 * mean, loads


def test_balance_is_by_cost_not_by_count():
    """Firefox x Firefox cells cost fifty times aiortc x aiortc ones: equal shares of time are
    unequal shares of cells."""
    # three Firefox pairs and thirty aiortc pairs, with the measured shape of costs (the live
    # rig/costs.json is regenerated after every speed change, so it is not used here)
    cells = ([shards.Cell(f"f{i}", "firefox", "firefox") for i in range(3)]
             + [shards.Cell(f"a{i}", "aiortc", "aiortc") for i in range(30)])
    costs = shards.Costs({}, {"firefox:firefox": 3000, "aiortc:aiortc": 60})
    counts = sorted(len(s) for s in shards.assign(cells, 2, costs))
    assert counts == [2, 31], "the shard with two Firefox cells takes no aiortc cell: equal time, not equal count"
    loads = sorted(shards.loads(cells, 2, costs))
    assert loads == [4800, 6000], loads
    ff = COSTS.of(shards.Cell("glare-initial", "firefox", "firefox"))
    assert ff > 5 * COSTS.of(shards.Cell("glare-initial", "aiortc", "aiortc")), "the live table has that shape"


def test_costs_fall_back_from_the_cell_to_the_pair_to_the_kinds():
    costs = shards.Costs({"s": {"firefox:aiortc": 2500}}, {"firefox:aiortc": 2000})
    assert costs.of(shards.Cell("s", "firefox", "aiortc")) == 2500
    assert costs.of(shards.Cell("new-scenario", "firefox@140", "aiortc@1.14")) == 2000, "a version costs as its kind"
    assert costs.of(shards.Cell("s", "chromium", "firefox")) == shards.BROWSER_PAIR_MS
    assert costs.of(shards.Cell("s", "chromium", "aiortc")) == shards.MIXED_PAIR_MS
    assert shards.Costs({"s": {"aiortc:aiortc": 0}}).of(shards.Cell("s", "aiortc", "aiortc")) == shards.MIN_COST_MS


def test_more_shards_than_cells_is_a_one_line_error():
    cells = shards.catalogue(["glare-initial"], ["aiortc"])
    with pytest.raises(RigError, match=r"--shard 2/3: the catalogue has 1 cell\(s\), fewer than 3 shards; use at most"):
        shards.select(cells, shards.Shard(2, 3), COSTS)


def test_the_digest_names_the_catalogue_not_its_order():
    assert shards.digest(DEFAULT) == shards.digest(list(reversed(DEFAULT)))
    assert shards.digest(DEFAULT) != shards.digest(DEFAULT[1:]) != shards.digest(DEFAULT, repeat=3)


def test_the_committed_cost_table_was_measured_on_every_pair_of_kinds():
    data = json.loads(shards.COSTS_FILE.read_text())
    assert set(data["pairs"]) == {f"{a}:{b}" for a in ("chromium", "firefox", "aiortc")
                                  for b in ("chromium", "firefox", "aiortc")}
    assert set(scenarios.CATALOGUE) <= set(data["cells"]) or len(set(data["cells"]) & set(scenarios.CATALOGUE)) > 20


def test_rig_costs_measures_medians_per_cell_and_pair(tmp_path, capsys):
    def case(scenario, pol, imp, d):
        return {"id": f"{scenario}-{pol}-{imp}-{d}", "slug": "x", "scenario": scenario, "outcome": "passed",
                "duration_s": d, "polite": {"spec": pol, "kind": pol}, "impolite": {"spec": imp, "kind": imp}}
    run = {"schema_version": 2, "started": "2026-11-30T00:00:00+00:00", "versions": {"firefox": "153.8.0"},
           "cases": [case("a", "firefox", "aiortc", 1.0), case("a", "firefox", "aiortc", 3.0),
                     case("a", "firefox", "aiortc", 2.0), case("b", "firefox", "aiortc", 5.0)]}
    (tmp_path / "results.json").write_text(json.dumps(run))
    assert cli.main(["costs", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["cells"] == {"a": {"firefox:aiortc": 2000}, "b": {"firefox:aiortc": 5000}}
    assert printed["pairs"] == {"firefox:aiortc": 2500}
    (tmp_path / "costs.json").write_text(json.dumps(printed))
    assert shards.Costs.load(tmp_path / "costs.json").of(shards.Cell("a", "firefox", "aiortc")) == 2000
    assert cli.main(["costs", str(tmp_path / "none.json")]) == 2


def _collect(*args: str) -> subprocess.CompletedProcess:
    # without Hypothesis's plugin, as rig matrix runs it: its end-of-session import costs 1.5 CPU s
    return subprocess.run([sys.executable, "-m", "pytest", "suites/interop", "--collect-only", "-q", "-p", "no:xdist",
                           "-p", "no:hypothesispytest",
                           "--rig-peers", "firefox,aiortc", "--rig-scenarios", "glare-initial,add-video,ice-restart",
                           *args], cwd=config.ROOT, capture_output=True, text=True, timeout=120)


def _ids(got: subprocess.CompletedProcess) -> list[str]:
    assert got.returncode == 0, got.stdout + got.stderr
    return [line.split("::test_interop[", 1)[1][:-1] for line in got.stdout.splitlines() if "::test_interop[" in line]


def test_pytest_rig_shard_selects_in_the_parametrization_with_every_repeat_together():
    whole = _ids(_collect("--rig-repeat", "2"))
    parts = [_ids(_collect("--rig-repeat", "2", "--rig-shard", f"{i}/2")) for i in (1, 2)]
    assert len(whole) == 24 and sorted(parts[0] + parts[1]) == sorted(whole) and not set(parts[0]) & set(parts[1])
    for part in parts:  # both repeats of a cell land in the same shard
        assert {i.replace("-r1]", "-r0]") for i in part} == {i for i in part if i.endswith("-r0]")}


def test_pytest_rig_shard_refuses_a_bad_slice_in_one_line():
    got = _collect("--rig-shard", "3/2")
    assert got.returncode == 4 and got.stderr.strip() == "ERROR: --shard '3/2': expected I/N with 1 <= I <= N, e.g. " \
        "--shard 2/3", got.stderr


@pytest.mark.parametrize("args, message", [
    (["--shard", "0/2"], "--shard '0/2': expected I/N with 1 <= I <= N, e.g. --shard 2/3"),
    (["--scenarios", "glare-initial", "--peers", "aiortc", "--shard", "1/2"],
     "--shard 1/2: the catalogue has 1 cell(s), fewer than 2 shards; use at most --shard I/1"),
])
def test_rig_matrix_refuses_a_bad_shard_before_running_anything(capsys, args, message):
    assert cli.main(["matrix", *args]) == 2
    assert capsys.readouterr().err == f"rig: error: {message}\n"
