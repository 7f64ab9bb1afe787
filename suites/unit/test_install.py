"""rig.install without a network or a browser: the sources' listings parsed from small
inline samples, newest-per-major selection, spec resolution over fake manifests, every
one-line error, and whole installs served from a local HTTP server with a stand-in
browser (a shell script) whose launch check is replaced."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import types
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from localhttp import Server, closed_port

from rig import cli, config, install
from rig.errors import RigError
from rig.peerspec import PeerSpec
from rig.versions import Installation

MADISON_CHROMIUM = """\
  chromium | 156.0.8078.114-1~deb12u1 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
  chromium | 150.0.7871.100-1~deb12u1 | http://mirror.example/debian bookworm/main amd64 Packages
  chromium | 150.0.7871.100-1~deb12u1 | http://mirror.example/debian bookworm/main Sources
"""
MADISON_COMMON = """\
chromium-common | 150.0.7871.100-1~deb12u1 | http://mirror.example/debian bookworm/main amd64 Packages
"""
APT_SHOW = """\
Package: chromium
Version: 150.0.7871.100-1~deb12u1
Filename: pool/main/c/chromium/chromium_150.0.7871.100-1~deb12u1_amd64.deb
Size: 76826468
SHA256: 9eb054fb52bbcd7a8c6407484be2337298ff8b1e19af14af2e7b497fa190ce4f
Description: web browser
 a continuation line: not a field

Package: chromium
Version: 150.0.7871.100-1~deb12u1
SHA256: ffff
"""


def _dist(n: int) -> dict:
    return {"tarball": f"https://example.invalid/c-{n}.tgz", "integrity": f"sha512-{n}", "shasum": f"{n:040x}"}


SPARTICUZ = {
    "name": "@sparticuz/chromium",
    "versions": {
        "147.0.0": {"dist": _dist(1)}, "147.0.2": {"dist": _dist(2)}, "147.0.10": {"dist": _dist(3)},
        "119.0.2": {"dist": _dist(4)}, "119.0.1-next.2": {"dist": _dist(5)},
        "92.0.0": {"dist": {"tarball": "https://example.invalid/92.tgz", "shasum": "ab" * 20}},
        "90.0.0": {"dist": {"integrity": "sha512-x"}},  # no tarball: not offered
    },
}
LAMBDA = {"name": "chrome-aws-lambda", "versions": {"5.5.0": {"dist": _dist(6)}, "2.1.1": {"dist": _dist(7)}}}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache, no system browsers, no Debian lists, the official feeds at a port nothing
    listens on: nothing real is touched."""
    root = tmp_path / "cache"
    monkeypatch.setenv("GLARE_RIG_CACHE", str(root))
    monkeypatch.setattr(install, "system_binary", lambda kind: None)
    monkeypatch.setattr(install, "debian_available", lambda kind, notes=None: [])
    closed = f"http://127.0.0.1:{closed_port()}"
    for name in ("CFT_URL", "MOZILLA_ARCHIVE_URL", "MOZILLA_PRODUCT_DETAILS_URL"):
        monkeypatch.setattr(config, name, closed)
    return root


def fake_manifest(root: Path, kind: str, version: str, source: str = "npm", driver: str = "") -> Path:
    folder = root / "browsers" / kind / version
    folder.mkdir(parents=True)
    (folder / "chromium").write_text("#!/bin/sh\n")
    inst = Installation(kind, version, "/elsewhere/chromium", source, driver, "playwright 1.55.0" if driver else "")
    (folder / "manifest.json").write_text(json.dumps(dict(inst.as_dict(), executable="chromium")))
    return folder


# -- the sources' listings ------------------------------------------------------------------

def test_madison_lists_binary_packages_once_in_order() -> None:
    assert install.parse_madison(MADISON_CHROMIUM) == ["156.0.8078.114-1~deb12u1", "150.0.7871.100-1~deb12u1"]
    assert install.parse_madison("") == []


def test_upstream_version_drops_epoch_and_debian_revision() -> None:
    assert install.upstream("150.0.7871.100-1~deb12u1") == "150.0.7871.100"
    assert install.upstream("1:140.12.0esr-1~deb12u1") == "140.12.0esr"
    assert install.upstream("153.8.0esr") == "153.8.0esr"


def test_debian_offers_only_versions_whose_companion_package_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real debian_available, over canned apt-cache output
    outputs = {"chromium": MADISON_CHROMIUM, "chromium-common": MADISON_COMMON}
    monkeypatch.setattr(install.debian, "_run", lambda cmd, **kw: types.SimpleNamespace(stdout=outputs[cmd[-1]]))
    got = install.debian_available("chromium")
    assert [(a.version, a.package_version, a.exact) for a in got] == [
        ("150.0.7871.100", "150.0.7871.100-1~deb12u1", True)]


def test_apt_show_first_record() -> None:
    rec = install.parse_apt_show(APT_SHOW)
    assert rec["Filename"].endswith("chromium_150.0.7871.100-1~deb12u1_amd64.deb")
    assert rec["SHA256"].startswith("9eb054fb")


def test_npm_newest_release_per_major_without_prereleases() -> None:
    got = {a.version: a for a in install.parse_npm(SPARTICUZ)}
    assert sorted(got) == ["119", "147", "92"]
    assert got["147"].package_version == "147.0.10"  # numerically newest, not 147.0.2
    assert got["119"].package_version == "119.0.2"
    assert got["147"].integrity == "sha512-3"
    assert got["92"].integrity == "sha1-" + "ab" * 20  # no sha512 in the registry: its sha1
    assert not got["147"].exact and got["147"].matches("147") and got["147"].matches("147.0.7727.0")
    assert not got["147"].matches("14")


def test_npm_fixed_releases_carry_their_chromium_major() -> None:
    got = install.parse_npm(LAMBDA, majors=config.NPM_CHROMIUM["chrome-aws-lambda"])
    assert [(a.version, a.package_version) for a in got] == [("88", "5.5.0")]


def test_available_is_newest_first_and_offline_npm_is_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    deb = [install.Available("chromium", "150.0.7871.100", "debian", "chromium", "150.0.7871.100-1~deb12u1")]
    monkeypatch.setattr(install, "debian_available", lambda kind, notes=None: list(deb))
    monkeypatch.setattr(install.npm, "npm_metadata", lambda p: SPARTICUZ if p == "@sparticuz/chromium" else LAMBDA)
    assert [a.version for a in install.available("chromium")] == ["150.0.7871.100", "147", "119", "92", "88"]
    calls = []

    def offline(package: str) -> dict:
        calls.append(package)
        raise RigError("cannot reach registry.example (timed out)")
    monkeypatch.setattr(install.npm, "npm_metadata", offline)
    notes: list[str] = []
    assert [a.version for a in install.available("chromium", notes)] == ["150.0.7871.100"]
    assert notes == ["npm versions not listed: cannot reach registry.example (timed out)"]
    assert calls == ["@sparticuz/chromium"]  # the registry is not waited for twice
    with pytest.raises(RigError, match="only browsers"):
        install.available("aiortc")


# -- resolving specs over the cache ---------------------------------------------------------

def test_prefix_resolves_to_the_newest_installed_match(cache: Path) -> None:
    fake_manifest(cache, "chromium", "147.0.7727.0")
    fake_manifest(cache, "chromium", "147.0.7600.1")
    fake_manifest(cache, "chromium", "150.0.7871.100", source="debian")
    got = install.resolve(PeerSpec.parse("chromium@147"))
    assert got.version == "147.0.7727.0" and got.source == "npm"
    assert got.path == str(cache / "browsers/chromium/147.0.7727.0/chromium")  # found where the cache is now
    assert install.resolve(PeerSpec.parse("chromium@147.0.7600")).version == "147.0.7600.1"
    assert [i.version for i in install.installed("chromium")] == ["150.0.7871.100", "147.0.7727.0", "147.0.7600.1"]
    with pytest.raises(RigError) as err:
        install.resolve(PeerSpec.parse("chromium@14"))
    assert str(err.value) == "chromium@14 is not installed here; run: rig browsers install chromium@14"


def test_damaged_and_temporary_directories_are_not_installations(cache: Path) -> None:
    fake_manifest(cache, "chromium", "147.0.7727.0")
    (cache / "browsers/chromium/.tmp-abc").mkdir()
    (cache / "browsers/chromium/148.0.1.0").mkdir()  # no manifest
    gone = fake_manifest(cache, "chromium", "149.0.1.0")
    (gone / "chromium").unlink()  # executable removed by hand
    assert [i.version for i in install.cached()] == ["147.0.7727.0"]


def test_system_browser_counts_when_it_matches(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    fake_manifest(cache, "chromium", "150.0.7871.100", source="debian")
    monkeypatch.setattr(install, "system_binary", lambda kind: "/usr/bin/chromium" if kind == "chromium" else None)
    monkeypatch.setattr(install, "probe", lambda kind, exe: Installation(kind, "156.0.8078.114", exe, "path"))
    assert install.resolve(PeerSpec.parse("chromium")) == Installation(
        "chromium", "156.0.8078.114", "/usr/bin/chromium", "system")
    assert install.resolve(PeerSpec.parse("chromium@156")).source == "system"
    assert install.resolve(PeerSpec.parse("chromium@150")).source == "debian"
    done = install.install(PeerSpec.parse("chromium@156"))
    assert done.already and done.installation.source == "system"


def test_a_missing_system_browser_names_the_fixes() -> None:
    with pytest.raises(RigError, match=r"^firefox: no system browser at .*apt-get install -y firefox-esr.*"
                                       r"rig browsers install firefox@VERSION$"):
        install.resolve(PeerSpec.parse("firefox"))


def test_range_and_missing_binary_are_one_line_errors() -> None:
    with pytest.raises(RigError, match=r"^chromium@110\.\.156: a range is for rig bisect only; .*chromium@156\)$"):
        install.resolve(PeerSpec.parse("chromium@110..156"))
    with pytest.raises(RigError, match=r"^chromium@/nope/chrome: no such file /nope/chrome; "):
        install.resolve(PeerSpec.parse("chromium@/nope/chrome"))


def test_binary_spec_is_probed_once_per_mtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "chrome"
    exe.write_text("#!/bin/sh\n")
    calls = []

    def check(kind: str, path: str) -> dict:
        calls.append(path)
        return {"version": "121.0.6167.0"}
    monkeypatch.setattr(install.launch, "_launch_check", check)
    spec = PeerSpec.parse(f"chromium@{exe}")
    assert install.resolve(spec) == Installation("chromium", "121.0.6167.0", str(exe), "path")
    assert install.resolve(spec).version == "121.0.6167.0"
    assert len(calls) == 1
    os.utime(exe, ns=(1, 1))  # a changed binary is probed again
    install.resolve(spec)
    assert len(calls) == 2


def test_aiortc_without_rig_drivers_is_the_rigs_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install.launch, "rig_drivers", lambda: None)
    own = install.resolve(PeerSpec.parse("aiortc"))
    assert own.kind == "aiortc" and own.source == "rig" and own.in_process
    with pytest.raises(RigError, match=r"^aiortc@1\.14: only the rig's own aiortc .* is here"):
        install.resolve(PeerSpec.parse("aiortc@1.14"))


def test_aiortc_goes_to_rig_drivers_when_there(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    fake = types.SimpleNamespace(resolve_aiortc=lambda spec, install: seen.append((str(spec), install)) or
                                 Installation("aiortc", "1.14.0", "/venv/bin/python", "pypi", "/venv/bin/python"))
    monkeypatch.setattr(install.launch, "rig_drivers", lambda: fake)
    assert install.resolve(PeerSpec.parse("aiortc@1.14"), install=True).version == "1.14.0"
    assert seen == [("aiortc@1.14", True)]


# -- installing, from a local server ----------------------------------------------------------

def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


GOOD = _tgz({"package/package.json": b"{}", "package/bin/chromium.br": brotli.compress(b"#!/bin/sh\necho 147\n")})


class Registry(Server):
    """Files served over HTTP on 127.0.0.1, and the registry metadata that points at them."""

    def publish(self, version: str, tarball: bytes, integrity: str | None = None) -> None:
        path = f"/chromium-{version}.tgz"
        self.files[path] = tarball
        meta = json.loads(self.files.get("/@sparticuz%2Fchromium", b'{"name": "@sparticuz/chromium", "versions": {}}'))
        meta["versions"][version] = {"dist": {"tarball": self.url + path, "integrity": integrity or _sri(tarball)}}
        self.files["/@sparticuz%2Fchromium"] = json.dumps(meta).encode()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    reg = Registry()
    monkeypatch.setattr(config, "NPM_REGISTRY", reg.url)
    monkeypatch.setattr(config, "NPM_CHROMIUM", {"@sparticuz/chromium": {}})
    monkeypatch.setattr(install.launch, "rig_drivers", lambda: None)
    yield reg
    reg.close()


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(install.cache, "DOWNLOAD_HOOKS", [seen.append])
    return seen


def _leftovers(cache: Path) -> list[str]:
    base = cache / "browsers"
    found = sorted(str(p.relative_to(base)) for p in base.rglob("*"))
    return [f for f in found if f not in (".lock", "probed.json", ".downloads", "chromium")]


def test_install_unpacks_checks_and_installs_once(registry: Registry, downloads: list[str], cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish("147.0.2", GOOD)
    checked = []
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: checked.append(exe) or {"version": "147.0.7727.0"})
    done = install.install(PeerSpec.parse("chromium@147"))
    final = cache / "browsers/chromium/147.0.7727.0"
    assert not done.already and done.downloaded == len(GOOD) and len(downloads) == 1
    assert done.installation == Installation("chromium", "147.0.7727.0", str(final / "chromium"), "npm")
    assert (final / "chromium").read_bytes() == b"#!/bin/sh\necho 147\n" and os.access(final / "chromium", os.X_OK)
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["package_version"] == "147.0.2" and manifest["archives"][0]["integrity"] == _sri(GOOD)
    assert manifest["driver"] == "" and manifest["verified_at"]
    assert ".tmp-" in checked[0]  # checked before it was moved into place
    assert _leftovers(cache) == ["chromium/147.0.7727.0", "chromium/147.0.7727.0/chromium",
                                 "chromium/147.0.7727.0/manifest.json"]
    again = install.install(PeerSpec.parse("chromium@147"))
    assert again.already and again.installation == done.installation and len(downloads) == 1
    assert install.resolve(PeerSpec.parse("chromium@147")).path == str(final / "chromium")


def test_corrupt_download_is_deleted_and_says_run_again(registry: Registry, cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish("147.0.2", GOOD, integrity=_sri(b"something else"))
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: pytest.fail("a corrupt download was launched"))
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@147"))
    msg = str(err.value)
    assert msg.startswith("chromium@147: the download is corrupt (sparticuz-chromium-147.0.2.tgz does not match "
                          "the registry's integrity sha512-")
    assert msg.endswith("; the partial files were deleted; run rig browsers install chromium@147 again")
    assert "\n" not in msg and _leftovers(cache) == []


def test_broken_archive_is_corrupt_too(registry: Registry, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = b"\x1f\x8b not really gzip"
    registry.publish("147.0.2", junk)
    registry.publish("148.0.0", _tgz({"package/bin/chromium.br": brotli.compress(b"x" * 1000)[:-4]}))
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: pytest.fail("a corrupt download was launched"))
    with pytest.raises(RigError, match=r"^chromium@147: the download is corrupt \(.*is not a readable package"):
        install.install(PeerSpec.parse("chromium@147"))
    with pytest.raises(RigError, match=r"^chromium@148: the download is corrupt \(.*chromium.br is truncated\)"):
        install.install(PeerSpec.parse("chromium@148"))
    assert _leftovers(cache) == []


def test_unknown_version_lists_the_installable_lines(registry: Registry) -> None:
    registry.publish("147.0.2", GOOD)
    registry.publish("92.0.0", GOOD)
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@999"))
    assert str(err.value) == "chromium@999: no installable version matches; installable: 92, 147"


def test_unreachable_registry_names_host_and_fix(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setattr(config, "NPM_REGISTRY", "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@147"))
    assert str(err.value) == (f"chromium@147: cannot reach 127.0.0.1:9 ([Errno 111] Connection refused); install it "
                              f"on a machine that can, or copy {cache / 'browsers' / 'chromium'} here")


def test_undrivable_version_names_the_playwright_and_its_error(registry: Registry, cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish("147.0.2", GOOD)
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: {
        "error": "BrowserType.launch: Protocol error (network.addDataCollector): unknown command"})
    monkeypatch.setattr(install.launch, "playwright_version", lambda: "1.64.1")
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@147"))
    assert str(err.value) == (
        "chromium@147: npm @sparticuz/chromium 147.0.2 unpacks but cannot be driven (Playwright 1.64.1: "
        "BrowserType.launch: Protocol error (network.addDataCollector): unknown command; no other driver: "
        f"rig.drivers is not in this checkout); its archive stays in {cache / 'browsers/.downloads'} for the next try")
    assert _leftovers(cache) == [".downloads/sparticuz-chromium-147.0.2.tgz"]  # kept in .downloads: a retry fetches nothing

    def refuse(kind: str, exe: str) -> Installation:
        raise RigError("Playwright 1.55.0: Target closed\nmore")
    monkeypatch.setattr(install.launch, "rig_drivers", lambda: types.SimpleNamespace(verify_browser=refuse))
    with pytest.raises(RigError, match=r"\(Playwright 1\.64\.1: .*unknown command; then Playwright 1\.55\.0: "
                                       r"Target closed\); its archive"):
        install.install(PeerSpec.parse("chromium@147"))


def test_a_driver_environment_is_recorded(registry: Registry, downloads: list[str], cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish("147.0.2", GOOD)
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: {"error": "unknown command"})
    fake = types.SimpleNamespace(verify_browser=lambda kind, exe: Installation(
        kind, "147.0.7727.0", exe, "path", "/drivers/pw155/bin/python", "playwright 1.55.0"))
    monkeypatch.setattr(install.launch, "rig_drivers", lambda: fake)
    inst = install.install(PeerSpec.parse("chromium@147")).installation
    assert (inst.driver, inst.driver_label, inst.source) == ("/drivers/pw155/bin/python", "playwright 1.55.0", "npm")
    assert install.cached() == [inst]


def test_exact_version_that_turns_out_different_is_refused(registry: Registry, cache: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    registry.publish("147.0.2", GOOD)
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: {"version": "147.0.7727.0"})
    with pytest.raises(RigError, match=r"^chromium@147\.0\.1: npm @sparticuz/chromium 147\.0\.2 is chromium "
                                       r"147\.0\.7727\.0, which does not match; installable: 147$"):
        install.install(PeerSpec.parse("chromium@147.0.1"))
    assert _leftovers(cache) == []


def test_cli_install_reports_each_spec_and_fails_if_any_did(registry: Registry, cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    registry.publish("147.0.2", GOOD)
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: {"version": "147.0.7727.0"})
    # a spec that is not one is a usage error: nothing is installed
    assert cli.main(["browsers", "install", "chromium@147", "netscape"]) == 2
    assert capsys.readouterr() == ("", "rig: error: unknown peer kind 'netscape' (known: chromium, firefox, aiortc)\n")
    assert not (cache / "browsers/chromium").exists()
    assert cli.main(["browsers", "install", "chromium@999", "chromium@147"]) == 1
    out, err = capsys.readouterr()
    exe = cache / "browsers/chromium/147.0.7727.0/chromium"
    assert out.splitlines() == [f"chromium@147: installed chromium 147.0.7727.0 (npm, 0 MB downloaded) at {exe}"]
    assert [e for e in err.splitlines() if e.startswith("rig: error:")] == [
        "rig: error: chromium@999: no installable version matches; installable: 147"]
    assert cli.main(["browsers", "install", "chromium@147"]) == 0
    assert capsys.readouterr().out == f"chromium@147: already installed: chromium 147.0.7727.0 (npm) at {exe}\n"
    assert cli.main(["browsers", "path", "chromium@147"]) == 0
    assert capsys.readouterr().out == f"{exe}\n"
    assert cli.main(["browsers", "path", "chromium@148"]) == 1
    assert capsys.readouterr().err == "rig: error: chromium@148 is not installed here; run: rig browsers install chromium@148\n"
    assert cli.main(["browsers", "list", "--available"]) == 0
    got = capsys.readouterr()
    listing = got.out.splitlines()
    assert any(row.split()[:3] == ["chromium", "147.0.7727.0", "npm"] for row in listing)
    assert any(row.split()[:5] == ["chromium", "147", "npm", "@sparticuz/chromium", "147.0.2"]
               and row.endswith("147.0.7727.0") for row in listing)
    # the official feeds did not answer: a note each, and the rest of the listing stands
    notes = [n for n in got.err.splitlines() if "channels not listed" in n]
    assert len(notes) == 2 and "set RIG_CFT_URL to a mirror" in notes[0], notes


def test_a_held_lock_is_waited_for_within_its_bound(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    import fcntl
    monkeypatch.setattr(config, "INSTALL_LOCK_TIMEOUT", 0.3)
    (cache / "browsers").mkdir(parents=True)
    with open(cache / "browsers/.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RigError, match=r"^chromium@147: another rig install held .*\.lock for 0 s; wait for it"):
            install.install(PeerSpec.parse("chromium@147"))
