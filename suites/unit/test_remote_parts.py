"""Remote browsers without a browser: endpoint specs, pairs naming them, the stub's address for
remote peers (only this machine's own), Playwright's connect errors as one line, the server's
launch config and the URLs a remote page is handed."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import urllib.request
from pathlib import Path

import pytest

from rig import config, options, remote
from rig.errors import RigError
from rig.peers.browser import rebase
from rig.peerspec import PeerSpec
from rig.request import MatrixRequest
from rig.signaling import SignalingStub, check_stub_host, local_addresses
from rig.versions import Installation


@pytest.mark.parametrize("text", ["chromium@ws://10.231.0.2:3000/glare", "firefox@wss://browsers.lan:443/ff",
                                  "chromium@ws://[fd00::5]:3000/", "chromium@ws://h:3000/a..b?x=1"])
def test_an_endpoint_spec_names_the_server(text: str) -> None:
    spec = PeerSpec.parse(text)
    assert spec.endpoint == text.split("@", 1)[1]
    assert str(spec) == text and PeerSpec.parse(str(spec)) == spec
    assert spec.binary is None and spec.range is None and spec.version == ""
    assert "/" not in spec.label and ":" not in spec.label


def test_other_specs_have_no_endpoint() -> None:
    for text in ("chromium", "chromium@147", "chromium@/opt/c/chrome", "chromium@110..156", "aiortc@1.14"):
        assert PeerSpec.parse(text).endpoint is None


@pytest.mark.parametrize("text, said", [
    ("aiortc@ws://10.0.0.2:3000/x", "only a browser can be remote"),
    ("chromium@http://10.0.0.2:3000/x", "write chromium@ws://HOST:PORT/PATH"),
    ("chromium@ws://10.0.0.2/x", "names no port"),
    ("chromium@ws://:3000/x", "names no host"),
    ("chromium@ws://10.0.0.2:99999/x", "bad endpoint"),
    ("chromium@ws://10.0.0.2:3000/a b", "no spaces or commas"),
])
def test_a_bad_endpoint_is_a_one_line_error(text: str, said: str) -> None:
    with pytest.raises(RigError) as exc:
        PeerSpec.parse(text)
    assert said in str(exc.value) and "\n" not in str(exc.value)


def test_pairs_split_at_the_colon_that_starts_a_peer() -> None:
    ep = "chromium@ws://10.231.0.2:3000/glare"
    assert options.parse_pairs(f"{ep}:aiortc, firefox:{ep},{ep}:{ep}") == {
        (ep, "aiortc"), ("firefox", ep), (ep, ep)}
    assert options.parse_pairs("firefox:aiortc") == {("firefox", "aiortc")}
    with pytest.raises(RigError, match="expected POLITE:IMPOLITE"):
        options.parse_pairs(ep)


def test_the_stub_host_option_reaches_pytest() -> None:
    assert options.to_pytest({"stub-host": "10.231.0.1"}) == ["--rig-stub-host", "10.231.0.1"]
    assert options.to_pytest({"stub-host": None}) == []


def _not_mine() -> str:
    mine = set(local_addresses())
    return next(a for a in ("198.51.100.7", "203.0.113.9", "192.0.2.254") if a not in mine)


def test_the_stub_host_is_one_of_this_machines_addresses() -> None:
    assert check_stub_host("127.0.0.1") == "127.0.0.1"
    assert check_stub_host(" 127.0.0.1 ") == "127.0.0.1"
    for addr in local_addresses():
        if not ipaddress.ip_address(addr).is_link_local:
            assert check_stub_host(addr) == addr


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 here")
def test_an_ipv6_stub_host_may_be_bracketed() -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured here")
    assert check_stub_host("[::1]") == "::1"


@pytest.mark.parametrize("text, said", [
    ("0.0.0.0", "not every interface"),
    ("::", "not every interface"),
    ("224.0.0.1", "not a multicast group"),
    ("example.com", "not an IP address"),
    ("10.0.0.300", "not an IP address"),
    ("", "not an IP address"),
])
def test_a_stub_host_that_is_not_an_address_of_this_machine_is_refused(text: str, said: str) -> None:
    with pytest.raises(RigError) as exc:
        check_stub_host(text)
    assert said in str(exc.value) and "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"--rig-stub-host {text!r}:" if said == "not an IP address"
                                     else f"--rig-stub-host {text}:")


def test_another_machines_address_is_refused_and_the_message_lists_ours() -> None:
    addr = _not_mine()
    with pytest.raises(RigError) as exc:
        check_stub_host(addr, what="--stub-host")
    text = str(exc.value)
    assert text.startswith(f"--stub-host {addr}: not an address of this machine") and "127.0.0.1" in text
    assert "\n" not in text


def test_the_stub_refuses_to_start_on_another_machines_address() -> None:
    stub = SignalingStub(host=_not_mine())
    with pytest.raises(RigError, match="not an address of this machine"):
        asyncio.run(stub.start())


def test_the_stub_serves_remote_peers_over_https_and_local_ones_as_before() -> None:
    async def main() -> tuple[str, str, str, str]:
        stub = SignalingStub(host="127.0.0.2")  # loopback, but not 127.0.0.1: the remote site is made
        await stub.start()
        try:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            loop = asyncio.get_running_loop()
            fetch = lambda url, **kw: urllib.request.urlopen(url, timeout=5, **kw).read().decode()  # noqa: E731
            remote_page = await loop.run_in_executor(None, lambda: fetch(f"{stub.remote_url}/fixtures/peer.html",
                                                                         context=ctx))
            local_page = await loop.run_in_executor(None, lambda: fetch(f"{stub.http_url}/fixtures/peer.html"))
            return stub.http_url, stub.remote_url, remote_page, local_page
        finally:
            await stub.stop()
    http_url, remote_url, remote_page, local_page = asyncio.run(main())
    assert http_url.startswith("http://127.0.0.1:") and remote_url.startswith("https://127.0.0.2:")
    assert remote_page == local_page and "rig-peer.js" in remote_page


def test_without_a_stub_host_remote_peers_get_the_loopback_url() -> None:
    async def main() -> tuple[str, str, int | None]:
        stub = SignalingStub()
        await stub.start()
        await stub.stop()
        return stub.http_url, stub.remote_url, stub.remote_port
    http_url, remote_url, port = asyncio.run(main())
    assert remote_url == http_url and port is None


def test_a_remote_page_is_handed_the_stubs_remote_urls() -> None:
    base = "https://10.231.0.1:4443"
    assert rebase("ws://127.0.0.1:8000/ws", base) == "wss://10.231.0.1:4443/ws"
    assert rebase("http://127.0.0.1:8000/files/neg.js", base) == "https://10.231.0.1:4443/files/neg.js"
    assert rebase("http://127.0.0.1:8000/fixtures/negotiators/perfect.js", base).startswith("https://10.231.0.1:4443/")
    # a local page keeps the loopback URLs; URLs elsewhere are left alone
    assert rebase("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert rebase("https://example.org/x.js", base) == "https://example.org/x.js"
    assert rebase("ws://[::1]:8000/ws", "https://[fd00::2]:4443") == "wss://[fd00::2]:4443/ws"


def test_the_server_config_launches_as_a_local_run_does() -> None:
    cr = remote.server_config("chromium", "/usr/lib/chromium/chromium", host="10.231.0.2", port=3000, path="glare")
    assert cr == {"executablePath": "/usr/lib/chromium/chromium", "args": config.CHROMIUM_ARGS, "headless": True,
                  "host": "10.231.0.2", "port": 3000, "wsPath": "/glare"}
    assert any(a.startswith("--disable-features=") and "WebRtcHideLocalIpsWithMdns" in a for a in cr["args"])
    ff = remote.server_config("firefox", "/usr/bin/firefox-esr", host="10.231.0.2")
    assert ff["channel"] == "moz-firefox" and ff["firefoxUserPrefs"] == config.FIREFOX_PREFS and ff["port"] == 0
    with pytest.raises(RigError):
        remote.server_config("aiortc", "/x", host="10.231.0.2")


def test_the_config_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert remote.main(["config", "chromium", "--executable", "/c", "--host", "10.0.0.2", "--port", "3000"]) == 0
    assert json.loads(capsys.readouterr().out)["executablePath"] == "/c"
    assert remote.main(["check", "chromium"]) == 2
    assert "not a remote spec" in capsys.readouterr().err


SPEC = PeerSpec.parse("chromium@ws://10.231.0.2:3000/glare")
BOX = """BrowserType.connect: WebSocket error: ws://10.231.0.2:3000/glare 428 Precondition Required
╔════════════════════════════════════════════════════╗
║ Playwright version mismatch:                       ║
║   - server version: v1.55                          ║
║   - client version: v1.64                          ║
╚════════════════════════════════════════════════════╝
Call log:
  - <ws connecting> ws://10.231.0.2:3000/glare"""


@pytest.mark.parametrize("error, said", [
    (BOX, "the Playwright server runs Playwright 1.55, the rig {mine}: install playwright=={mine} on the browser's "
          "host and restart the server (docs/remote.md)"),
    ("BrowserType.connect: WebSocket error: connect ECONNREFUSED 10.231.0.2:3000\nCall log:\n  - <ws connecting>",
     "cannot reach the Playwright server at 10.231.0.2:3000 (ECONNREFUSED 10.231.0.2:3000); start it on the "
     "browser's host with the rig's launch config (docs/remote.md), or fix the address"),
    ("BrowserType.connect: WebSocket error: connect EHOSTUNREACH 10.231.0.2:3000", "(EHOSTUNREACH 10.231.0.2:3000)"),
    ("BrowserType.connect: WebSocket error: ws://10.231.0.2:3000/glare 400 Bad Request\nCall log:",
     "the Playwright server at 10.231.0.2:3000 has no endpoint /glare (400 Bad Request); use the ws:// address "
     "the server printed"),
    (TimeoutError(), "no answer from a Playwright server at 10.231.0.2:3000 within"),
    ("BrowserType.connect: something new\nmore", "cannot connect to the Playwright server at 10.231.0.2:3000: "
                                                 "something new"),
])
def test_connect_errors_are_one_line_naming_the_endpoint_and_the_fix(error: object, said: str) -> None:
    text = str(remote.explain(SPEC, error if isinstance(error, BaseException) else str(error)))
    assert text.startswith(f"{SPEC}: ") and "\n" not in text
    assert said.format(mine=remote.playwright_version()) in text


def test_a_remote_spec_checked_by_rig_matrix_is_not_checked_again(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    checked = Installation(SPEC.kind, "156.0.8078.114", SPEC.endpoint or "", "remote")
    req = MatrixRequest(peers=(str(SPEC),), scenarios=("glare-initial",), installs={str(SPEC): checked.as_dict()})
    req = MatrixRequest.load(req.dump(tmp_path / "request.json"))  # as a worker reads it

    def check_again(spec: PeerSpec) -> None:
        raise AssertionError(f"{spec} was checked again")
    monkeypatch.setattr(remote, "resolve", check_again)
    inst = req.installation(SPEC)
    assert (inst.kind, inst.version, inst.path, inst.source, inst.in_process) == (
        "chromium", "156.0.8078.114", SPEC.endpoint, "remote", True)
