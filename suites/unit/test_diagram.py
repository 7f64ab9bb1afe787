"""The case page's sequence diagram (rig/diagram.py): no browser, no network.

Hand-made detail dicts pin each thing the diagram promises to show; two real detail
files (SDP stripped) in data/ check it copes with what the rig actually writes.
"""

from __future__ import annotations

import copy
import json
import pathlib
import time
import xml.etree.ElementTree as ET

import pytest

from rig import diagram, model
from rig.report import write_report

DATA = pathlib.Path(__file__).with_name("data")
SVG = "{http://www.w3.org/2000/svg}"
RED = diagram.ERROR_RED


def _ev(t, type_, **detail):
    return {"t": t, "type": type_, "detail": detail}


def _msg(seq, t, sender, kind, delivered, *, held=False, released=None, note="", sdp_type=None):
    to = "impolite" if sender == "polite" else "polite"
    data = {"description": {"type": sdp_type or kind, "sdp": "v=0"}} if kind in ("offer", "answer") else {}
    return {"seq": seq, "t": t, "from": sender, "to": to, "kind": kind, "size": 100, "held": held,
            "released_t": released, "delivered_t": delivered, "note": note, "data": data}


def _glare_detail(*, failed_check=None):
    """A forced collision resolved the perfect-negotiation way, with a few candidates."""
    messages = [
        _msg(1, 1.000, "impolite", "offer", 1.101, held=True, released=1.100, note="held by collision 1: impolite's offer"),
        _msg(2, 1.002, "polite", "offer", 1.102, held=True, released=1.100, note="held by collision 1: polite's offer"),
        _msg(3, 1.003, "polite", "candidate", 1.104),
        _msg(4, 1.004, "polite", "candidate", 1.105),
        _msg(5, 1.005, "polite", "candidate", 1.106),
        _msg(6, 1.150, "polite", "answer", 1.152),
        _msg(7, 1.160, "polite", "offer", 1.162),
        _msg(8, 1.170, "impolite", "answer", 1.172),
    ]
    events = {
        "polite": [
            _ev(0.5, "attached", polite=True),
            _ev(0.99, "change", action="add-audio"),
            _ev(0.995, "negotiationneeded", state="stable"),
            _ev(0.998, "signalingstatechange", state="have-local-offer", **{"from": "stable"}),
            _ev(0.999, "offer-made", state_before="stable"),
            _ev(1.002, "signal-sent", kind="offer"),
            _ev(1.102, "signal-received", seq=1, kind="offer"),
            _ev(1.103, "signalingstatechange", state="stable", **{"from": "have-local-offer"}),
            _ev(1.1035, "rollback", how="implicit"),
            _ev(1.104, "signalingstatechange", state="have-remote-offer", **{"from": "stable"}),
            _ev(1.149, "signalingstatechange", state="stable", **{"from": "have-remote-offer"}),
            _ev(1.150, "signal-sent", kind="answer"),
            _ev(1.155, "negotiationneeded", state="stable"),
            _ev(1.160, "signal-sent", kind="offer"),
            _ev(1.40, "connectionstatechange", state="connected"),
        ],
        "impolite": [
            _ev(0.5, "attached", polite=False),
            _ev(0.99, "negotiationneeded", state="stable"),
            _ev(0.995, "signalingstatechange", state="have-local-offer", **{"from": "stable"}),
            _ev(1.000, "signal-sent", kind="offer"),
            _ev(1.103, "signal-received", seq=2, kind="offer"),
            _ev(1.1032, "offer-ignored", seq=2, state="have-local-offer"),
            _ev(1.153, "signal-received", seq=6, kind="answer"),
            _ev(1.154, "signalingstatechange", state="stable", **{"from": "have-local-offer"}),
            _ev(1.30, "api-error", method="addIceCandidate", name="InvalidStateError",
                message="No remoteDescription."),
            _ev(1.35, "error", source="pageerror", text="TypeError: boom <b>&amp;</b>"),
            _ev(1.40, "connectionstatechange", state="connected"),
        ],
    }
    checks = [{"name": "polite ends stable", "ok": True, "detail": "signalingState=stable"}]
    if failed_check:
        checks += [{"name": failed_check, "ok": False, "detail": "connectionState=<connecting>"},
                   {"name": "impolite reported no error", "ok": False, "detail": "later failure"}]
    return {
        "case": {"id": "glare-add-media[firefox-polite--aiortc-impolite]", "scenario": "glare-add-media",
                 "polite": {"spec": "firefox", "kind": "firefox", "version": "153.7.0", "user_id": 2},
                 "impolite": {"spec": "aiortc", "kind": "aiortc", "version": "1.16.0", "user_id": 1},
                 "outcome": "failed" if failed_check else "passed", "glare": {"forced": True, "observed": True}},
        "plan": ["collide"], "messages": messages, "events": events, "checks": checks,
    }


def _render(detail: dict) -> str:
    """The diagram of a hand-made detail, read as the typed record a case page reads (the case
    and check fields the diagram does not show filled in)."""
    case = {"id": "", "slug": "", "scenario": "", "polite": {"spec": "", "kind": "", "version": ""},
            "impolite": {"spec": "", "kind": "", "version": ""}, "outcome": "passed", **(detail.get("case") or {})}
    checks = [{"id": c.get("name", ""), **c} for c in detail.get("checks") or []]
    return diagram.render(model.CaseDetail.model_validate({**detail, "case": case, "checks": checks}))


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    return root


def _classes(el: ET.Element) -> set[str]:
    return set(el.get("class", "").split())


def _with_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [el for el in root.iter() if cls in _classes(el)]


def _texts(el: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in el.iter(SVG + "text")]


def _title(el: ET.Element) -> str:
    t = el.find(SVG + "title")
    return "" if t is None else (t.text or "")


def _seqs_drawn(root: ET.Element) -> list[str]:
    return [s for g in _with_class(root, "msg") for s in g.get("data-seq", "").split()]


def test_valid_svg_with_two_labelled_lifelines():
    root = _parse(_render(_glare_detail()))
    assert "seq-diagram" in _classes(root)
    heads = {g.get("data-role"): " ".join(_texts(g)) for g in _with_class(root, "lifeline-head")}
    assert set(heads) == {"polite", "impolite"}
    assert "polite" in heads["polite"] and "firefox 153.7.0" in heads["polite"]
    assert "impolite" in heads["impolite"] and "aiortc 1.16.0" in heads["impolite"]
    # polite on the left
    xs = {g.get("data-role"): float(g.find(SVG + "rect").get("x")) for g in _with_class(root, "lifeline-head")}
    assert xs["polite"] < xs["impolite"]


def test_one_arrow_per_message_and_candidates_folded():
    detail = _glare_detail()
    root = _parse(_render(detail))
    arrows = _with_class(root, "msg")
    folded = [g for g in arrows if "fold" in _classes(g)]
    # every message is drawn exactly once
    assert sorted(_seqs_drawn(root), key=int) == [str(m["seq"]) for m in detail["messages"]]
    # non-folded arrows carry one message each; the three back-to-back candidates share one
    assert all(len(g.get("data-seq").split()) == 1 for g in arrows if g not in folded)
    assert [g.get("data-seq") for g in folded] == ["3 4 5"]
    assert "3 candidates #3–#5" in " ".join(_texts(folded[0]))
    assert len(arrows) == len(detail["messages"]) - 2
    # a tooltip with seq, kind, times and SDP type on every arrow
    offer = next(g for g in arrows if g.get("data-seq") == "7")
    assert "#7 offer polite → impolite" in _title(offer)
    assert "SDP type offer" in _title(offer) and "sent 1.1600 s" in _title(offer)
    assert "delivered 1.1620 s" in _title(offer)


def test_folding_stops_at_a_gap_and_at_special_messages():
    detail = _glare_detail()
    detail["messages"][3]["note"] = "duplicate of #3 (rule)"  # seq 4
    root = _parse(_render(detail))
    assert not [g for g in _with_class(root, "msg") if "fold" in _classes(g)]
    dup = next(g for g in _with_class(root, "msg") if g.get("data-seq") == "4")
    assert "duplicate" in " ".join(_texts(dup))

    detail = _glare_detail()
    detail["messages"][4]["t"] = 1.5  # seq 5 much later: not the same trickle burst
    detail["messages"][4]["delivered_t"] = 1.51
    root = _parse(_render(detail))
    assert [g.get("data-seq") for g in _with_class(root, "fold")] == ["3 4"]


def test_held_messages_drawn_held():
    root = _parse(_render(_glare_detail()))
    held = {g.get("data-seq"): g for g in _with_class(root, "held")}
    assert set(held) == {"1", "2"}
    for g in held.values():
        assert _with_class(g, "hold"), "a held message has its hold segment"
        assert "(held)" in " ".join(_texts(g))
        assert "held until 1.1000 s" in _title(g)


def test_dropped_message_marked():
    detail = _glare_detail()
    detail["messages"].append({**_msg(9, 1.3, "polite", "candidate", None), "note": "receiver gone, dropped"})
    root = _parse(_render(detail))
    dropped = _with_class(root, "dropped")
    assert [g.get("data-seq") for g in dropped] == ["9"]
    assert "dropped" in " ".join(_texts(dropped[0]))


def test_collision_rollback_and_ignored_offer_marked():
    root = _parse(_render(_glare_detail()))
    collisions = _with_class(root, "ev-collision")
    assert len([g for g in collisions if g.tag == SVG + "g"]) == 2  # each side got the other's offer mid-offer
    rollbacks = [g for g in _with_class(root, "ev-rollback") if g.tag == SVG + "g"]
    assert len(rollbacks) == 1 and "rollback" in " ".join(_texts(rollbacks[0]))
    ignored = [g for g in _with_class(root, "ev-ignored") if g.tag == SVG + "g"]
    assert len(ignored) == 1 and "offer #2 ignored" in " ".join(_texts(ignored[0]))
    # the ignored offer's arrow says so too
    assert [g.get("data-seq") for g in _with_class(root, "ignored") if "msg" in _classes(g)] == ["2"]


def test_no_glare_marks_without_glare_events():
    detail = _glare_detail()
    for role in ("polite", "impolite"):
        detail["events"][role] = [e for e in detail["events"][role]
                                  if e["type"] not in ("rollback", "offer-ignored", "signal-received")]
    root = _parse(_render(detail))
    for cls in ("ev-collision", "ev-rollback", "ev-ignored"):
        assert not [g for g in _with_class(root, cls) if g.tag == SVG + "g"], cls


def test_making_offer_intervals_and_signaling_states():
    root = _parse(_render(_glare_detail()))
    making = _with_class(root, "making-offer")
    titles = sorted(_title(r) for r in making)
    # polite: two negotiationneeded, each until its offer was sent; impolite: one
    assert len(making) == 3
    assert any("polite makingOffer = true from 0.9950 s to 1.0020 s (offer sent)" in t for t in titles)
    states = {r.get("data-state") for r in _with_class(root, "state")}
    assert {"stable", "have-local-offer", "have-remote-offer"} <= states


def test_errors_drawn_red():
    root = _parse(_render(_glare_detail()))
    lines = [g for g in _with_class(root, "ev-error") if g.tag == SVG + "g"]
    assert all(g.find(SVG + "text").get("fill") == RED for g in lines)  # wrapped lines too
    errors = [g for g in lines if g.find(SVG + "circle") is not None]  # one mark per error
    assert len(errors) == 2
    assert all(g.find(SVG + "circle").get("fill") == RED for g in errors)
    assert any("addIceCandidate: InvalidStateError" in " ".join(_texts(g)) for g in errors)
    # hostile text is escaped, not interpreted
    assert any("TypeError: boom <b>&amp;</b>" in " ".join(_texts(g)) for g in errors)


def test_unmet_marker_only_when_a_check_failed_and_names_the_first():
    root = _parse(_render(_glare_detail()))
    assert not _with_class(root, "unmet")

    root = _parse(_render(_glare_detail(failed_check="polite ends connected")))
    unmet = _with_class(root, "unmet")
    assert len(unmet) == 1
    assert unmet[0].get("data-check") == "polite ends connected"
    assert "first unmet invariant: polite ends connected" in " ".join(_texts(unmet[0]))
    assert "impolite reported no error" not in " ".join(_texts(unmet[0]))


def test_odd_input_still_renders():
    for detail in ({}, {"events": {"polite": [{"type": "mystery", "t": "nan"}, {"t": 1, "type": "new-kind",
                                                                                "detail": {"a": "\x00\x07<"}}]},
                        "messages": [{"seq": 1, "t": 1, "from": "polite", "to": "stub", "kind": "error"}]}):
        root = _parse(_render(detail))
        assert "seq-diagram" in _classes(root)
    # a record that is not one never reaches the diagram: the case page says why in one line
    with pytest.raises(model.SchemaError, match="not a valid case detail"):
        model.parse_detail({"schema_version": model.SCHEMA_VERSION, "messages": None, "events": [], "checks": "x"})


def _real(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def test_real_stress_sample():
    detail = _real("diagram-stress-both-sides.json")
    t0 = time.perf_counter()
    svg = _render(detail)
    elapsed = time.perf_counter() - t0
    root = _parse(svg)
    assert elapsed < 1.0
    assert len(svg.encode()) < 1_500_000
    assert sorted(_seqs_drawn(root), key=int) == sorted((str(m["seq"]) for m in detail["messages"]), key=int)
    rollbacks = sum(1 for e in detail["events"]["polite"] if e["type"] == "rollback")
    ignored = sum(1 for e in detail["events"]["impolite"] if e["type"] == "offer-ignored")
    assert len([g for g in _with_class(root, "ev-rollback") if g.tag == SVG + "g"]) == rollbacks
    assert len([g for g in _with_class(root, "ev-ignored") if g.tag == SVG + "g"]) == ignored
    assert not _with_class(root, "unmet")


def test_real_failing_sample_names_its_first_unmet_check():
    detail = _real("diagram-glare-initial-mutant.json")
    first = next(c for c in detail["checks"] if not c["ok"])
    root = _parse(_render(detail))
    unmet = _with_class(root, "unmet")
    assert [u.get("data-check") for u in unmet] == [first["name"]]
    assert [g for g in _with_class(root, "ev-error") if g.tag == SVG + "g"]


def test_large_synthetic_stress_stays_small_and_fast():
    """~300 messages and ~400 events, the size of a ten-round stress case with many candidates."""
    base = _real("diagram-stress-both-sides.json")
    detail = copy.deepcopy(base)
    span = max(m["t"] for m in base["messages"]) - min(m["t"] for m in base["messages"]) + 0.1
    seq = max(m["seq"] for m in base["messages"])
    for k in range(1, 7):
        for m in base["messages"]:
            seq += 1
            m2 = dict(m, seq=seq, t=m["t"] + k * span)
            for key in ("released_t", "delivered_t"):
                if m2.get(key) is not None:
                    m2[key] += k * span
            detail["messages"].append(m2)
    for role in ("polite", "impolite"):
        evs = detail["events"][role]
        for e in list(evs[:120]):
            evs.append(dict(e, t=e["t"] + 7 * span, detail={k: v for k, v in e["detail"].items() if k != "pt"}))
    assert len(detail["messages"]) >= 300
    t0 = time.perf_counter()
    svg = _render(detail)
    assert time.perf_counter() - t0 < 1.0
    assert len(svg.encode()) < 1_500_000
    _parse(svg)


@pytest.mark.parametrize("broken", [False, True])
def test_case_page_shows_the_diagram_or_a_one_line_error(tmp_path, monkeypatch, broken):
    detail = _glare_detail(failed_check="polite ends connected")
    case = dict(detail["case"], slug="glare", details="cases/glare.json", outcome="failed", expected="pass",
                duration_s=1.0, repeat=0, reason="")
    (tmp_path / "cases").mkdir()
    detail["checks"] = [{"id": c["name"], **c} for c in detail["checks"]]
    (tmp_path / "cases" / "glare.json").write_text(json.dumps({**detail, "schema_version": model.SCHEMA_VERSION,
                                                               "case": case}), encoding="utf-8")
    if broken:
        def boom(_detail):
            raise ValueError("drawing <broke>")
        monkeypatch.setattr(diagram, "render", boom)
    write_report(tmp_path, {"cases": [case]})
    page = (tmp_path / "cases").glob("*.html").__next__().read_text(encoding="utf-8")
    assert "Sequence diagram" in page
    assert "Checks (" in page  # the rest of the page is still there
    if broken:
        assert '<svg' not in page
        assert "The sequence diagram could not be drawn: ValueError: drawing &lt;broke&gt;" in page
    else:
        assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="seq-diagram"') == 1
        assert page.index("Sequence diagram") < page.index("Checks (")


def test_an_injected_failure_ends_making_offer_so_the_next_offer_is_no_collision():
    detail = {"case": {}, "checks": [], "messages": [_msg(5, 1.0, "polite", "offer", 1.001, sdp_type="offer")],
              "events": {"polite": [], "impolite": [
                  _ev(0.5, "negotiationneeded", state="stable"),
                  _ev(0.501, "fault-injected", method="setLocalDescription", state="stable"),
                  _ev(1.002, "signal-received", seq=5, kind="offer")]}}
    root = _parse(_render(detail))
    assert not [g for g in _with_class(root, "ev-collision") if g.tag == SVG + "g"]
    assert any("fault injected" in _title(r) for r in _with_class(root, "making-offer"))
