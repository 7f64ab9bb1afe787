"""The run's findings list (results.json ``findings``) records a scenario's own range where the
finding has one, looked up exactly as the verdict looks it up (Finding.seen_for)."""

from __future__ import annotations

import dataclasses

import pytest

from rig import findings, results
from rig.findings import Seen
from rig.model import FindingInfo

ROLLBACK = findings.BY_ID["chromium-rollback-extmap"]


def _ranges(r: dict[str, tuple[Seen, ...]]) -> dict[str, list[str]]:
    return {k: [str(s) for s in v] for k, v in r.items()}


def test_a_scenario_with_its_own_range_is_recorded_with_it() -> None:
    (info,) = results.finding_infos({ROLLBACK.id})
    assert info.seen == _ranges(ROLLBACK.seen)
    # the range that judges glare-initial's cells, not the general one
    assert info.seen_in == {"glare-initial": _ranges(ROLLBACK.seen_for("glare-initial"))}
    assert info.seen_in["glare-initial"] != info.seen
    # and it survives results.json
    again = FindingInfo.model_validate_json(info.model_dump_json())
    assert again.seen_in == info.seen_in


def test_a_finding_without_scenario_ranges_records_none() -> None:
    plain = next(f for f in findings.FINDINGS if not f.seen_in)
    (info,) = results.finding_infos({plain.id})
    assert info.seen_in == {}


def test_an_engine_the_scenario_range_does_not_name_keeps_the_general_one(monkeypatch: pytest.MonkeyPatch) -> None:
    both = dataclasses.replace(ROLLBACK, seen={**ROLLBACK.seen, "firefox": (Seen("153.8.0"),)})
    monkeypatch.setattr(findings, "FINDINGS", (both,))
    (info,) = results.finding_infos({both.id})
    assert info.seen_in["glare-initial"] == {"chromium": ["149.0.7827.0 .. 156.0.8078.129"],
                                             "firefox": ["153.8.0"]}


def test_an_old_results_file_without_scenario_ranges_still_reads() -> None:
    info = FindingInfo.model_validate({"id": "x", "title": "t", "seen": {"chromium": ["148"]}})
    assert info.seen_in == {}
