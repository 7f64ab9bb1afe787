"""Negotiator variants in one run (rig.variants): the file, case ids, and the cases a run expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rig import config, variants
from rig.errors import RigError
from rig.request import MatrixRequest, cases

MUTANT = str(config.FIXTURES / "negotiators" / "mutants" / "both-polite.js")


def test_a_variant_prefixes_its_case_ids_and_the_plain_one_does_not() -> None:
    cid = "glare-initial[firefox-polite--firefox-impolite]"
    assert variants.Variant("both-polite.js").case_id(cid) == f"both-polite.js/{cid}"
    assert variants.Variant("").case_id(cid) == cid
    assert variants.plain_id(f"both-polite.js/{cid}") == ("both-polite.js", cid)
    assert variants.plain_id(cid) == ("", cid)
    remote = "add-video[chromium@ws://10.0.0.2:3000/x-polite--aiortc-impolite]"  # a '/' inside the cell
    assert variants.plain_id(remote) == ("", remote)


def test_a_variants_file_round_trips(tmp_path: Path) -> None:
    vs = [variants.Variant("", pairs=("firefox:firefox",), cells=("glare-initial firefox:firefox",)),
          variants.Variant("both-polite.js", js=MUTANT, pairs=("firefox:firefox",), scenarios=("glare-initial",),
                           capture=False)]
    assert variants.load(variants.dump(vs, tmp_path / "v.json")) == vs


@pytest.mark.parametrize(("content", "says"), [
    ("not json", "cannot read it"),
    ("[]", "non-empty JSON list"),
    ('[{"js": null}]', "string 'name'"),
    ('[{"name": "a/b"}]', "may not contain"),
    ('[{"name": "a", "js": "/nonexistent.js"}]', "not found"),
    ('[{"name": "a", "pairs": "firefox:firefox"}]', "'pairs' must be a list"),
    ('[{"name": "a"}, {"name": "a"}]', "names repeat: a"),
    ('[{"name": "a", "cells": ["firefox:firefox"]}]', "is not 'SCENARIO POLITE:IMPOLITE'"),
])
def test_a_bad_variants_file_is_one_line(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "v.json"
    path.write_text(content)
    with pytest.raises(RigError, match=says) as info:
        variants.load(path)
    assert "\n" not in str(info.value)


def _ids(scens: list[str], peers: list[str], **kw) -> set[str]:
    return {c.id for c in cases(MatrixRequest(peers=tuple(peers), scenarios=tuple(scens), **kw))}


def test_the_run_expects_each_variants_cases_on_its_own_pairs_and_scenarios(tmp_path: Path) -> None:
    path = variants.dump([variants.Variant("", pairs=("firefox:aiortc",)),
                          variants.Variant("m.js", js=MUTANT, pairs=("firefox:firefox",),
                                           scenarios=("glare-initial",))], tmp_path / "v.json")
    got = _ids(["add-video"], ["firefox", "aiortc"], variants=str(path))
    assert got == {"add-video[firefox-polite--aiortc-impolite]",
                   "m.js/glare-initial[firefox-polite--firefox-impolite]"}
    with pytest.raises(RigError, match="--shard"):
        _ids(["add-video"], ["firefox"], shard="1/2", variants=str(path))
    assert json.loads(path.read_text())[1]["scenarios"] == ["glare-initial"]


def test_a_variants_cells_narrow_its_scenarios_and_pairs(tmp_path: Path) -> None:
    path = variants.dump([variants.Variant("", cells=("add-video firefox:aiortc", "glare-initial aiortc:aiortc")),
                          variants.Variant("m.js", js=MUTANT, pairs=("firefox:firefox",),
                                           scenarios=("glare-initial",))], tmp_path / "v.json")
    got = _ids(["add-video", "glare-initial"], ["firefox", "aiortc"], variants=str(path))
    assert got == {"add-video[firefox-polite--aiortc-impolite]", "glare-initial[aiortc-polite--aiortc-impolite]",
                   "m.js/glare-initial[firefox-polite--firefox-impolite]"}
