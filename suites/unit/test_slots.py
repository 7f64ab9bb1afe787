"""rig.slots: machine-wide caps on cases running and browsers starting at once, and BrowserPool's
handling of a launch that passed its bound (not remembered, unlike a broken browser)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from rig import config, matrix, pytest_plugin, slots
from rig.errors import RigError
from rig.peers import browser
from rig.peerspec import PeerSpec
from rig.request import MatrixRequest


@pytest.fixture(autouse=True)
def private_slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own slots: holding the real ones would stall the suite's real launches."""
    monkeypatch.setattr(slots, "slots_dir", lambda kind: tmp_path / kind)
    monkeypatch.setattr(config, "LAUNCH_SLOTS", 2)
    return tmp_path


def test_a_third_launch_waits_until_one_of_two_slots_is_released() -> None:
    async def main() -> list[str]:
        order: list[str] = []
        release = asyncio.Event()

        async def holder(name: str) -> None:
            async with slots.launch_slot("chromium"):
                order.append(f"{name} in")
                await release.wait()
            order.append(f"{name} out")

        first = [asyncio.create_task(holder(n)) for n in ("a", "b")]
        while len(order) < 2:  # both hold a slot
            await asyncio.sleep(0)
        third = asyncio.create_task(holder("c"))
        for _ in range(5):  # c tries, finds none free, and waits
            await asyncio.sleep(0)
        assert "c in" not in order
        release.set()
        await asyncio.wait_for(asyncio.gather(*first, third), 5)
        return order

    order = asyncio.run(main())
    assert order.index("c in") > min(order.index("a out"), order.index("b out"))


def test_no_slot_within_the_bound_is_a_one_line_launch_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "LAUNCH_SLOTS", 1)
    monkeypatch.setattr(config, "LAUNCH_SLOT_TIMEOUT", 0.2)

    async def main() -> None:
        async with slots.launch_slot("firefox"):
            with pytest.raises(slots.LaunchBound) as got:
                async with slots.launch_slot("firefox"):
                    pass
        msg = str(got.value)
        assert "\n" not in msg
        assert msg.startswith("firefox: no launch slot freed within 0 s (1 on this machine")
        assert "RIG_LAUNCH_SLOTS" in msg

    asyncio.run(main())


def test_a_killed_holder_frees_its_slot(private_slots: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel drops a dead process's flock: a run killed mid-launch keeps no slot."""
    monkeypatch.setattr(config, "LAUNCH_SLOTS", 1)
    monkeypatch.setattr(config, "LAUNCH_SLOT_TIMEOUT", 0.2)
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()")
    (private_slots / "launch").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", code, str(private_slots / "launch" / "0.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"

        async def take() -> float:
            async with slots.launch_slot("chromium") as waited:
                return waited

        with pytest.raises(slots.LaunchBound):
            asyncio.run(take())
        holder.kill()
        holder.wait(5)
        assert asyncio.run(take()) < 0.2
    finally:
        holder.kill()
        holder.wait(5)


def test_case_slots_are_their_own_pool_with_their_own_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A case holds a case slot while its browsers take launch slots: the two never share."""
    monkeypatch.setattr(config, "LAUNCH_SLOTS", 1)
    monkeypatch.setattr(config, "CASE_SLOTS", 1)
    monkeypatch.setattr(config, "CASE_SLOT_TIMEOUT", 0.2)

    async def main() -> None:
        async with slots.case_slot("add-video aiortc-polite--aiortc-impolite"):
            async with slots.launch_slot("chromium"):  # a launch inside the case: free
                pass
            with pytest.raises(RigError) as got:
                async with slots.case_slot("glare-initial chromium-polite--aiortc-impolite"):
                    pass
        assert str(got.value).startswith("glare-initial chromium-polite--aiortc-impolite: no case slot freed within "
                                         "0 s (1 on this machine")
        assert not isinstance(got.value, slots.LaunchBound)
        async with slots.case_slot("glare-initial chromium-polite--aiortc-impolite") as waited:
            assert waited < 0.2  # released by the first

    asyncio.run(main())


class FakeBrowser(browser.Browser):  # type: ignore[misc]
    def __init__(self) -> None:  # Playwright's own needs a driver connection
        pass

    def is_connected(self) -> bool:
        return True


def test_a_launch_past_its_bound_is_not_remembered_but_a_broken_browser_is(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[BaseException | FakeBrowser] = [slots.LaunchBound("firefox: launch did not finish within 30 s"),
                                                   FakeBrowser()]
    calls: list[str] = []

    async def fake_launch(self, spec, executable=None):  # noqa: ANN001, ANN202
        calls.append(str(spec))
        got = outcomes.pop(0)
        if isinstance(got, BaseException):
            raise got
        return got

    monkeypatch.setattr(browser.BrowserPool, "_launch", fake_launch)
    pool = browser.BrowserPool(playwright=None)  # type: ignore[arg-type]
    spec = PeerSpec.parse("firefox")

    async def main() -> None:
        with pytest.raises(RigError, match=r"^firefox: launch did not finish within 30 s$"):
            await pool.get(spec, "/usr/bin/firefox-esr")
        assert isinstance(await pool.get(spec, "/usr/bin/firefox-esr"), FakeBrowser)  # launched again
        outcomes.append(RigError("firefox: /nowhere is not executable"))
        with pytest.raises(RigError, match="not executable"):
            await pool.get(spec, "/nowhere")
        with pytest.raises(RigError, match="not executable"):
            await pool.get(spec, "/nowhere")  # remembered: not launched again

    asyncio.run(main())
    assert calls == ["firefox", "firefox", "firefox"]


def test_a_run_that_asks_for_more_workers_than_case_slots_may_hold_that_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """rig mutants' third worker on 2 cores: its pytest child may hold 3 case slots; a run within
    the machine's slots, or a user's own RIG_CASE_SLOTS, is left as it is."""
    monkeypatch.setattr(config, "CASE_SLOTS", 2)
    assert matrix.child_env(MatrixRequest(peers=("aiortc",), scenarios=("glare-initial",), workers=3), {"PATH": "/bin"}) == {"PATH": "/bin", "RIG_CASE_SLOTS": "3"}
    assert "RIG_CASE_SLOTS" not in matrix.child_env(MatrixRequest(peers=("aiortc",), scenarios=("glare-initial",), workers=2), {})
    assert matrix.child_env(MatrixRequest(peers=("aiortc",), scenarios=("glare-initial",), workers=3), {"RIG_CASE_SLOTS": "1"}) == {"RIG_CASE_SLOTS": "1"}


def test_a_cells_pytest_timeout_lies_above_the_case_limit_that_covers_two_launch_slot_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The case's own bound must fire first, and it must allow each of the case's two browsers its
    launch-slot wait: a bound below that would end a case whose every step was within its bound."""
    assert config.case_limit() >= (config.CASE_SLOT_TIMEOUT + 2 * (config.LAUNCH_SLOT_TIMEOUT + config.LAUNCH_TIMEOUT)
                                   + config.CASE_TIMEOUT)
    seen: list = []
    monkeypatch.setattr(pytest_plugin, "request_of", lambda cfg: None)
    monkeypatch.setattr(pytest_plugin, "cases", lambda request: [SimpleNamespace(cell=None, id="a-cell")])
    pytest_plugin.pytest_generate_tests(SimpleNamespace(fixturenames=["rig_cell"], config=None,
                                                        parametrize=lambda name, params: seen.extend(params)))
    (timeout,) = [m.args[0] for m in seen[0].marks if m.name == "timeout"]
    assert timeout > config.case_limit()
