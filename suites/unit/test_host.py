"""Peer hosts and driver environments, without a browser.

The host runs the rig's own aiortc in a subprocess (``python -m rig.peers.host`` with this
interpreter), so the protocol, the event stream, the bounds and the host's lifetime are tested
on a real process; the environment builder is tested with pip replaced (its lock, its marker).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from rig import config, drivers, scenarios
from rig.case import run_case
from rig.errors import RigError
from rig.peers.aiortc_peer import AiortcPeer, probe_aiortc
from rig.peers.base import Peer, PeerTimeout
from rig.peers.host import HostPeer, PeerHost
from rig.peerspec import PeerSpec
from rig.signaling import SignalingStub
from rig.versions import Installation

#: The rig's own aiortc, but in a peer host: the protocol without another environment.
OWN = Installation(kind="aiortc", version=drivers.own_aiortc().version, path=sys.executable, source="rig",
                   driver=sys.executable, driver_label="aiortc (rig's own, hosted)")
BOUND = 60.0


def run(coro) -> object:
    return asyncio.run(asyncio.wait_for(coro, BOUND))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)  # polling for another process's exit, bounded by within
    return False


def test_record_keeps_a_time_taken_elsewhere() -> None:
    p = Peer(PeerSpec("aiortc"), "polite", 1, t0=time.monotonic())
    evt = p.record("signalingstatechange", {"state": "have-local-offer"}, t=1.25)
    assert evt.t == 1.25 and p.signaling_state == "have-local-offer"
    assert 0 <= p.record("x").t < 1


def test_a_case_through_a_host_keeps_the_hosts_times_and_states(tmp_path: Path) -> None:
    """add-video between a hosted aiortc (polite) and an in-process one: it passes, the polite
    peer's events carry the host's times (ordered, inside the case), its states are mirrored,
    and a negotiator that prints to stdout does not break the protocol."""
    noisy = tmp_path / "noisy.py"
    noisy.write_text(textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("perfect_ref", {str(config.REFERENCE_NEGOTIATOR_PY)!r})
        ref = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ref)

        def attach(pc, signaler, *, polite):
            print("{{not json}}" * 20, flush=True)
            return ref.attach(pc, signaler, polite=polite)
    """))

    async def scenario():
        stub, host = SignalingStub(), PeerHost()
        await stub.start()
        made: list[Peer] = []
        try:
            await host.start(OWN)

            async def make_peer(spec, name, user_id, t0):
                peer = (await host.make_peer(spec, name, user_id, t0) if name == "polite"
                        else AiortcPeer(spec, name, user_id, t0))
                made.append(peer)
                return peer
            started = time.monotonic()
            result = await run_case(stub, scenarios.get("add-video"), PeerSpec("aiortc"), PeerSpec("aiortc"),
                                    make_peer, {"py": str(noisy), "js": ("", "")})
            return result, made, time.monotonic() - started
        finally:
            await host.close()
            await stub.stop()

    result, made, took = run(scenario())
    assert result.case.outcome == "passed", result.case.reason
    hosted = next(p for p in made if p.name == "polite")  # the peers are made at once, in any order
    assert isinstance(hosted, HostPeer) and hosted.version == OWN.version and hosted.polite is True
    times = [e.t for e in hosted.events]
    assert times == sorted(times) and 0 < times[0] and times[-1] < took
    assert {"attached", "answer-made", "connectionstatechange", "channel-open"} <= {e.type for e in hosted.events}
    assert result.snapshots["polite"].signalingState == "stable"  # the snapshot, taken through the host
    assert (hosted.signaling_state, hosted.connection_state) == ("closed", "closed")  # mirrored from its close
    assert hosted.capabilities == run(probe_aiortc())


def test_what_a_host_imports_is_stdlib_and_the_engine() -> None:
    """A host's environment has Playwright or aiortc (and aiohttp), nothing else of the rig's."""
    code = ("import sys, rig.peers.host, rig.peers.browser, rig.peers.aiortc_peer, rig.evidence; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(config.ROOT)), check=True).stdout.split()
    assert not {"pydantic", "jinja2", "markupsafe", "pytest"} & set(out)


def test_bad_requests_get_one_line_errors_and_the_host_goes_on() -> None:
    async def scenario():
        host = PeerHost()
        await host.start(OWN)
        try:
            peer = await host.make_peer(PeerSpec("aiortc"), "polite", 5, time.monotonic())
            unknown = await host.request("reboot", {}, timeout=5)
            bad_args = await host.request("arm", {"peer": peer.key, "seq": 1, "trigger": "sld", "bogus": 1}, timeout=5)
            no_peer = await host.request("snapshot", {"peer": "p99"}, timeout=5)
            await peer.arm(1, "sld")  # still serving
            assert await peer.receive_detail("video") == ""  # through the host: no track, nothing to add
            return unknown, bad_args, no_peer
        finally:
            await host.close()
    unknown, bad_args, no_peer = run(scenario())
    assert unknown["error"] == "peer host: bad request: unknown operation 'reboot'"
    assert bad_args["error"].startswith("peer host: bad request:") and "bogus" in bad_args["error"]
    assert no_peer["error"] == "peer host: no peer 'p99' here"


def test_a_host_that_does_not_answer_times_out_naming_peer_step_and_states(monkeypatch) -> None:
    async def scenario():
        host = PeerHost()
        await host.start(OWN)  # with the usual bounds: a loaded machine starts a host slowly
        try:
            peer = await host.make_peer(PeerSpec("aiortc", "1.16"), "impolite", 7, time.monotonic())
            monkeypatch.setattr(config, "STEP_TIMEOUT", 0.5)  # the wait under test: the rig's, for a stopped host
            host.proc.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(PeerTimeout) as err:
                    await peer.arm(3, "sld")
                return str(err.value), time.monotonic() - started
            finally:
                host.proc.send_signal(signal.SIGCONT)
        finally:
            await host.close()

    text, took = run(scenario())
    assert "impolite peer (aiortc@1.16" in text and "step 'arm #3 at sld'" in text
    assert "signalingState=new, connectionState=new" in text and "did not answer" in text
    assert "\n" not in text and took < 0.5 + 1 + 2 + 1


def test_a_host_that_dies_fails_the_pending_call_at_once() -> None:
    async def scenario():
        host = PeerHost()
        await host.start(OWN)
        try:
            peer = await host.make_peer(PeerSpec("aiortc"), "polite", 9, time.monotonic())
            host.proc.send_signal(signal.SIGSTOP)  # the call is pending when it dies
            call = asyncio.ensure_future(peer.snapshot())
            for _ in range(1000):  # until the request is written and pending (scheduler passes, bounded)
                if host._pending:
                    break
                await asyncio.sleep(0)
            assert host._pending, "the call never became pending"
            started = time.monotonic()
            host.proc.kill()
            with pytest.raises(RigError) as err:
                await call
            took = time.monotonic() - started
            with pytest.raises(RigError) as again:  # and so does every later one
                await peer.send("x", "y")
            await peer.close()  # never raises
            return str(err.value), str(again.value), took
        finally:
            await host.close()

    text, again, took = run(scenario())
    assert took < 2, took
    assert "polite peer (aiortc" in text and "step 'snapshot'" in text and "was killed by SIGKILL" in text
    assert "\n" not in text and "was killed by SIGKILL" in again


def test_the_host_exits_when_its_input_closes() -> None:
    async def scenario():
        host = PeerHost()
        await host.start(OWN)
        pid = host.proc.pid
        host.proc.stdin.close()
        await asyncio.wait_for(host.proc.wait(), 10)
        await host.close()
        return pid
    assert not alive(run(scenario()))


def test_the_host_dies_with_its_parent(tmp_path: Path) -> None:
    """The rig's process is killed (no cleanup at all): its host goes too, even while another
    process keeps the host's stdin open (so it is the kernel's PR_SET_PDEATHSIG, not EOF)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, subprocess
        from rig.peers.host import PeerHost
        from rig.versions import Installation
        async def main():
            host = PeerHost()
            await host.start(Installation(**{OWN.as_dict()!r}))
            fd = host.proc.stdin.transport.get_extra_info("pipe").fileno()
            holder = subprocess.Popen(["sleep", "30"], pass_fds=(fd,))
            print(host.proc.pid, holder.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(config.ROOT)))
    holder_pid = None
    try:
        host_pid, holder_pid = map(int, parent.stdout.readline().split())
        assert alive(host_pid)
        parent.kill()
        parent.wait(10)
        assert wait_gone(host_pid, 10), f"host {host_pid} outlived its parent"
    finally:
        parent.kill()
        parent.wait(10)
        if holder_pid:
            os.kill(holder_pid, signal.SIGKILL)


def test_a_host_that_cannot_start_says_why_in_one_line() -> None:
    async def start(inst: Installation) -> str:
        host = PeerHost()
        with pytest.raises(RigError) as err:
            await host.start(inst)
        await host.close()
        return str(err.value)

    missing = run(start(replace(OWN, driver="/nonexistent/bin/python", driver_label="aiortc 0.0")))
    assert "peer host (aiortc 0.0" in missing and "No such file or directory" in missing and "\n" not in missing
    no_browser = run(start(Installation(kind="chromium", version="", path="/nonexistent/chromium", source="path",
                                        driver=sys.executable, driver_label="playwright here")))
    assert "could not start" in no_browser and "/nonexistent/chromium" in no_browser and "\n" not in no_browser
    crashed = run(start(replace(OWN, driver="/bin/false", driver_label="broken env")))
    assert "could not start: it exited with status 1" in crashed, crashed


# -- driver environments ------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("GLARE_RIG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_env(cache: Path, name: str, version: str, python: str | None = None) -> Path:
    env = cache / "envs" / name
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    (env / "ready").write_text(json.dumps({"python": python or f"{sys.version_info[0]}.{sys.version_info[1]}",
                                           "packages": {"aiortc": version}}))
    return env


def test_resolve_aiortc(cache: Path) -> None:
    own = drivers.own_aiortc().version
    line = ".".join(own.split(".")[:2])
    for text in ("aiortc", f"aiortc@{line}", f"aiortc@{own}"):
        inst = drivers.resolve_aiortc(PeerSpec.parse(text))
        assert inst.in_process and inst.source == "rig" and inst.path == sys.executable and inst.version == own
    with pytest.raises(RigError, match=r"^aiortc@1\.14 is not installed here; run: rig browsers install aiortc@1\.14$"):
        drivers.resolve_aiortc(PeerSpec.parse("aiortc@1.14"))
    env = fake_env(cache, "aiortc-1.14.0", "1.14.0")
    fake_env(cache, "aiortc-1.13.0", "1.13.0", python="2.7")  # built for another Python: not usable
    (cache / "envs" / "aiortc-1.12.0" / "bin").mkdir(parents=True)  # never finished: no marker
    inst = drivers.resolve_aiortc(PeerSpec.parse("aiortc@1.14"))
    assert inst == Installation(kind="aiortc", version="1.14.0", path=str(env / "bin" / "python"), source="pypi",
                                driver=str(env / "bin" / "python"), driver_label="aiortc 1.14.0")
    for text in ("aiortc@1.13", "aiortc@1.12"):
        with pytest.raises(RigError, match="is not installed here"):
            drivers.resolve_aiortc(PeerSpec.parse(text))
    with pytest.raises(RigError, match="range is for rig bisect"):
        drivers.resolve_aiortc(PeerSpec.parse("aiortc@1.10..1.14"))


def test_no_package_index_is_one_line_with_the_fix(cache: Path, monkeypatch) -> None:
    for k, v in {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "",
                 "PIP_RETRIES": "1", "PIP_DEFAULT_TIMEOUT": "3"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(RigError) as err:
        drivers.resolve_aiortc(PeerSpec.parse("aiortc@1.13"), install=True)
    text = str(err.value)
    assert "cannot be reached" in text and "PIP_INDEX_URL" in text and "\n" not in text


def test_an_environment_is_built_once_under_a_lock_and_ready_last(cache: Path, monkeypatch) -> None:
    calls: list[list[str]] = []
    lock = threading.Lock()

    def fake_run(cmd: list[str], what: str, timeout: float) -> str:
        with lock:
            calls.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            assert not (Path(cmd[3]) / "ready").exists()
            (Path(cmd[3]) / "bin").mkdir(parents=True)
            (Path(cmd[3]) / "bin" / "python").write_text("")
            time.sleep(0.3)  # a slow build: the other thread must wait on the lock
        return '{"aiortc": "1.14.0"}\n' if cmd[-1].startswith("import json") else ""
    monkeypatch.setattr(drivers, "_run", fake_run)
    half = cache / "envs" / "aiortc-1.14.0"
    (half / "lib").mkdir(parents=True)
    (half / "lib" / "leftover").write_text("an interrupted build")
    out: list[Path] = []
    threads = [threading.Thread(target=lambda: out.append(drivers.ensure_env(
        "aiortc-1.14.0", ["aiortc==1.14.0"], imports=["aiortc"]))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == [half / "bin" / "python"] * 2
    assert sum(c[1:3] == ["-m", "venv"] for c in calls) == 1  # built once
    assert not (half / "lib" / "leftover").exists()  # the interrupted build was thrown away
    ready = json.loads((half / "ready").read_text())
    assert ready["packages"] == {"aiortc": "1.14.0"} and ready["requirements"] == ["aiortc==1.14.0"]
