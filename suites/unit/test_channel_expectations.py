"""A channel cell's expectation: the channel resolves to one exact build at run time, and a
finding's range, read against that build (per scenario where it has one), decides xfail. A build
past every range the finding was seen on is judged strictly, as docs/ci.md ("Channels") says:
the same error is a failure naming the range to widen, a pass is a plain pass."""

from __future__ import annotations

from rig import verdict
from rig.model import Cause, PeerInfo

FIREFOX_ESR = PeerInfo(spec="firefox@esr", kind="firefox", version="153.8.0", source="mozilla, esr channel")
CODEC_COLLISION = Cause(kind="error", step="4. re-offer", step_index=4, peer="polite", peer_kind="chromium",
                        operation="setLocalDescription", error_name="InvalidAccessError",
                        message="Failed to set local offer sdp: A BUNDLE group contains a codec collision for "
                                "header extension id=1")


def _beta(version: str) -> PeerInfo:
    return PeerInfo(spec="chromium@beta", kind="chromium", version=version, source="cft, beta channel")


def test_a_channel_build_inside_the_findings_range_is_an_expected_failure() -> None:
    j = verdict.judge("glare-initial", _beta("156.0.8078.140"), FIREFOX_ESR, CODEC_COLLISION, [], [])
    assert (j.outcome, j.expected, j.finding) == ("xfailed", "xfail", "chromium-rollback-extmap")


def test_a_channel_build_past_every_range_is_judged_strictly() -> None:
    newer = _beta("158.0.8200.3")
    j = verdict.judge("glare-initial", newer, FIREFOX_ESR, CODEC_COLLISION, [], [])
    assert (j.outcome, j.expected, j.not_seen) == ("failed", "pass", ["chromium-rollback-extmap"])
    # the scenario's own range (seen_in), the one that judged the cell, and the build it missed
    assert ("chromium-rollback-extmap has this first failure but was seen only on chromium 149.0.7827.0 .. "
            "156.0.8078.129 in glare-initial, not on chromium 158.0.8200.3") in j.reason
    passed = verdict.judge("glare-initial", newer, FIREFOX_ESR, None, [], [])
    assert (passed.outcome, passed.expected) == ("passed", "pass")
    assert passed.reason == "finding chromium-rollback-extmap not seen on chromium 158.0.8200.3"


def test_the_range_is_read_per_scenario_for_a_channel_too() -> None:
    # 148 is inside the general range (glare-add-media) but before glare-initial's own
    on_148 = _beta("148.0.7778.5")
    assert verdict.judge("glare-add-media", on_148, FIREFOX_ESR, CODEC_COLLISION, [], []).outcome == "xfailed"
    assert verdict.judge("glare-initial", on_148, FIREFOX_ESR, CODEC_COLLISION, [], []).outcome == "failed"
