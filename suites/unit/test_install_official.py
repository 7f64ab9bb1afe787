"""The official sources (rig.install.cft, rig.install.snapshots, rig.install.mozilla) without the internet: their feeds
and archives served in the documented layouts from a local HTTP server (127.0.0.1, port 0), the
base URLs pointed at it, small fake archives whose "browser" is a shell script, and a launch
check that reads the version the script would print. Install, channel resolution, cache hit,
missing version, corrupt archive, trust on first download, and offline (nothing listening, and a
host that never answers) as one line naming the host and what to use instead."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import socket
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from localhttp import Server, bucket_listing, closed_port, serve_bucket_listing

from rig import config, install, options
from rig.errors import RigError
from rig.install import cft, mozilla, snapshots
from rig.peerspec import PeerSpec
from rig.versions import Installation


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server) -> Path:
    """A private cache, no system browsers, no Debian or npm listing, feeds read afresh, the
    official sources at the local server, and a launch check that reads the fake browser's
    version out of its script (and refuses one that says it cannot be driven)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("GLARE_RIG_CACHE", str(root))
    monkeypatch.setattr(install, "system_binary", lambda kind: None)
    monkeypatch.setattr(install, "debian_available", lambda kind, notes=None: [])
    monkeypatch.setattr(install.npm, "npm_available", lambda kind, notes=None: [])
    monkeypatch.setattr(install, "npm_available", lambda kind, notes=None: [])
    monkeypatch.setattr(install.cache, "_FEEDS", {})
    monkeypatch.setattr(install.launch, "rig_drivers", lambda: None)
    monkeypatch.setattr(config, "CFT_URL", server.url + "/cft")
    monkeypatch.setattr(config, "CHROMIUM_SNAPSHOTS_URL", server.url + "/snap")
    monkeypatch.setattr(config, "MOZILLA_ARCHIVE_URL", server.url + "/pub")
    monkeypatch.setattr(config, "MOZILLA_PRODUCT_DETAILS_URL", server.url + "/pd/1.0")

    def check(kind: str, exe: str) -> dict:
        said = Path(exe).read_text().split()[-1]
        return {"error": f"cannot drive {said}"} if said == "undrivable" else {"version": said}
    monkeypatch.setattr(install.launch, "_launch_check", check)
    return root


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(install.cache, "DOWNLOAD_HOOKS", [seen.append])
    return seen


# -- Chrome for Testing: feeds and archives as googlechromelabs.github.io serves them -----------

def chrome_zip(version: str, say: str | None = None, folder: str = "chrome-linux64") -> bytes:
    """A chrome-linux64.zip: chrome-linux64/chrome (mode 755, prints the version) beside a resource
    (a snapshot's chrome-linux.zip: the same in ``folder`` chrome-linux)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        exe = zipfile.ZipInfo(f"{folder}/chrome")
        exe.external_attr = 0o100755 << 16
        z.writestr(exe, f"#!/bin/sh\necho {say or version}\n")
        res = zipfile.ZipInfo(f"{folder}/resources.pak")
        res.external_attr = 0o100644 << 16
        z.writestr(res, b"pak" * 100, compress_type=zipfile.ZIP_STORED)  # stored: a test flips a byte of it
    return buf.getvalue()


def cft_entry(url: str, version: str) -> dict:
    """One version as the feeds list it: every platform's Chrome, chromedriver, headless shell."""
    def assets(name: str) -> list[dict]:
        return [{"platform": p, "url": f"{url}/{version}/{p}/{name}-{p}.zip"}
                for p in ("linux64", "mac-arm64", "mac-x64", "win32", "win64")]
    return {"version": version, "revision": "1300000",
            "downloads": {"chrome": assets("chrome"), "chromedriver": assets("chromedriver"),
                          "chrome-headless-shell": assets("chrome-headless-shell")}}


def publish_cft(server: Server, versions: list[str], channels: dict[str, str]) -> dict[str, bytes]:
    """The three feeds over ``versions`` (the channels' too) and each version's linux64 zip."""
    dl = server.url + "/dl"
    zips = {}
    for v in versions:
        zips[v] = chrome_zip(v)
        server.put(f"/dl/{v}/linux64/chrome-linux64.zip", zips[v])
    stamp = "2026-12-01T00:00:00.000Z"
    server.put("/cft/known-good-versions-with-downloads.json",
               {"timestamp": stamp, "versions": [cft_entry(dl, v) for v in sorted(versions, key=_key)]})
    server.put("/cft/last-known-good-versions-with-downloads.json", {"timestamp": stamp, "channels": {
        name: dict(cft_entry(dl, v), channel=name) for name, v in channels.items()}})
    newest: dict[str, str] = {}
    for v in sorted(versions, key=_key):
        newest[v.split(".")[0]] = v
    server.put("/cft/latest-versions-per-milestone-with-downloads.json", {"timestamp": stamp, "milestones": {
        m: dict(cft_entry(dl, v), milestone=m) for m, v in newest.items()}})
    return zips


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


VERSIONS = ["129.0.6668.100", "130.0.6723.58", "130.0.6723.91", "131.0.6778.85", "132.0.6834.6", "133.0.6876.0"]
CHANNELS = {"Stable": "131.0.6778.85", "Beta": "132.0.6834.6", "Dev": "133.0.6876.0", "Canary": "133.0.6876.0"}


def test_cft_feeds_parse_to_linux64_builds() -> None:
    url = "https://storage.example/cft"
    feed = {"versions": [cft_entry(url, "113.0.5672.0"), {"version": "114.0.1.0", "downloads": {
        "chrome": [{"platform": "mac-arm64", "url": "x"}]}}, cft_entry(url, "130.0.6723.58")]}
    known = cft.parse_known(feed)
    assert [a.version for a in known] == ["130.0.6723.58", "113.0.5672.0"]  # newest first; no linux64: left out
    assert known[0].url == f"{url}/130.0.6723.58/linux64/chrome-linux64.zip"
    assert known[0].exact and known[0].source == "cft" and known[0].matches("130") and not known[0].matches("13")
    chans = cft.parse_channels({"channels": {"Stable": cft_entry(url, "131.0.6778.85"), "Beta": {"version": "x"}}})
    assert list(chans) == ["stable"] and chans["stable"].channel == "stable"
    assert cft.parse_milestones({"milestones": {"130": cft_entry(url, "130.0.6723.91")}})["130"].version == "130.0.6723.91"


def test_a_channel_installs_its_exact_version_once_and_records_the_channel(
        server: Server, isolated: Path, downloads: list[str]) -> None:
    zips = publish_cft(server, VERSIONS, CHANNELS)
    done = install.install(PeerSpec.parse("chromium@beta"))
    final = isolated / "browsers/chromium/132.0.6834.6"
    assert not done.already and done.downloaded == len(zips["132.0.6834.6"]) and len(downloads) == 1
    assert done.installation == Installation("chromium", "132.0.6834.6", str(final / "chrome-linux64/chrome"),
                                             "cft, beta channel")
    exe = final / "chrome-linux64/chrome"
    assert exe.stat().st_mode & 0o777 == 0o755 and (final / "chrome-linux64/resources.pak").is_file()
    manifest = json.loads((final / "manifest.json").read_text())
    assert (manifest["source"], manifest["channel"], manifest["version"]) == ("cft", "beta", "132.0.6834.6")
    digest = hashlib.sha256(zips["132.0.6834.6"]).hexdigest()
    assert manifest["archives"][0]["sha256"] == digest
    assert manifest["archives"][0]["url"] == f"{server.url}/dl/132.0.6834.6/linux64/chrome-linux64.zip"
    seen = json.loads((isolated / "browsers/.downloads/first-seen.json").read_text())
    assert seen["chrome-for-testing-132.0.6834.6-linux64.zip"]["sha256"] == digest
    assert not (isolated / "browsers/.downloads/chrome-for-testing-132.0.6834.6-linux64.zip").exists()
    # cache hit: the feed is asked (a channel moves), nothing is downloaded
    again = install.install(PeerSpec.parse("chromium@beta"))
    assert again.already and again.installation == done.installation and len(downloads) == 1
    assert install.resolve(PeerSpec.parse("chromium@beta")) == done.installation
    assert install.resolve(PeerSpec.parse("chromium@cft:132")).source == "cft"  # the cache's own label
    # the channel moves on: the next run resolves it to the new build
    publish_cft(server, VERSIONS + ["132.0.6834.15"], dict(CHANNELS, Beta="132.0.6834.15"))
    install.cache._FEEDS.clear()
    with pytest.raises(RigError) as err:
        install.resolve(PeerSpec.parse("chromium@beta"))
    assert str(err.value) == ("chromium@beta (chromium 132.0.6834.15 from Chrome for Testing) is not installed here; "
                              "run: rig browsers install chromium@beta")
    assert install.resolve(PeerSpec.parse("chromium@beta"), install=True).version == "132.0.6834.15"


def test_milestone_and_exact_build(server: Server, isolated: Path, downloads: list[str]) -> None:
    publish_cft(server, VERSIONS, CHANNELS)
    got = install.install(PeerSpec.parse("chromium@cft:130")).installation
    assert (got.version, got.source) == ("130.0.6723.91", "cft")  # the milestone's newest
    assert server.gets.count("/cft/latest-versions-per-milestone-with-downloads.json") == 1
    exact = install.install(PeerSpec.parse("chromium@cft:130.0.6723.58")).installation
    assert exact.version == "130.0.6723.58" and len(downloads) == 2
    server.close()  # installed: resolving needs no feed
    assert install.resolve(PeerSpec.parse("chromium@cft:130")).version == "130.0.6723.91"
    assert install.resolve(PeerSpec.parse("chromium@cft:130.0.6723.58")).version == "130.0.6723.58"
    assert install.resolve(PeerSpec.parse("chromium@130")).version == "130.0.6723.91"  # any source counts


def test_a_version_the_feeds_lack_is_one_line(server: Server) -> None:
    publish_cft(server, VERSIONS, CHANNELS)
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@cft:112"))
    assert str(err.value) == ("chromium@cft:112: Chrome for Testing has no linux64 build matching 112 (its builds: "
                              "129.0.6668.100 to 133.0.6876.0); for older Chromium use chromium@112 (npm or Debian)")
    with pytest.raises(RigError, match=r"^chromium@cft:130\.0\.9999: Chrome for Testing has no linux64 build "
                                       r"matching 130\.0\.9999 \(its builds: [^)]*\)$"):
        install.install(PeerSpec.parse("chromium@cft:130.0.9999"))
    del server.files["/cft/last-known-good-versions-with-downloads.json"]
    with pytest.raises(RigError, match=r"^chromium@canary: 127\.0\.0\.1:\d+ has no http://.*/cft/last-known-good-"
                                       r"versions-with-downloads\.json \(HTTP 404\)$"):
        install.install(PeerSpec.parse("chromium@canary"))


def test_a_corrupt_zip_is_one_line_and_not_installed(server: Server, isolated: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    publish_cft(server, VERSIONS, CHANNELS)
    cut_short_is_corrupt(server, "/dl/131.0.6778.85/linux64/chrome-linux64.zip", "chromium@stable",
                         "chrome-for-testing-131.0.6778.85-linux64.zip", isolated, monkeypatch)
    # a bad CRC inside a whole zip is corrupt too
    data = bytearray(chrome_zip("131.0.6778.85"))
    at = data.index(b"pak" * 20) + 30  # inside the data, past the name that ends in .pak
    data[at] ^= 0xFF
    server.put("/dl/131.0.6778.85/linux64/chrome-linux64.zip", bytes(data))
    with pytest.raises(RigError, match=r"is not a readable zip \(Bad CRC-32"):
        install.install(PeerSpec.parse("chromium@stable"))


def cut_short_is_corrupt(server: Server, path: str, spec: str, name: str, isolated: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The zip at ``path`` served cut short: one line saying the download ``name`` is corrupt,
    and nothing launched, installed, kept or remembered."""
    good = server.files[path]
    server.put(path, good[: len(good) // 2])
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: pytest.fail("a corrupt zip was launched"))
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse(spec))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{spec}: the download is corrupt ({name} is not a readable zip (")
    assert msg.endswith(f"; the partial files were deleted; run rig browsers install {spec} again")
    base = isolated / "browsers"
    assert not list(base.glob("chromium/1*")) and not list(base.glob("chromium/.tmp-*"))
    assert not list(base.glob(".downloads/*.zip")) and not (base / ".downloads/first-seen.json").exists()


def test_trust_on_first_download(server: Server, isolated: Path, downloads: list[str]) -> None:
    """The feeds carry no hashes: the first good download's SHA-256 is the reference for a kept
    archive and for any later download of the same build."""
    publish_cft(server, VERSIONS, CHANNELS)
    # the first download cannot be driven: its archive is kept, and its hash remembered
    server.put("/dl/131.0.6778.85/linux64/chrome-linux64.zip", chrome_zip("131.0.6778.85", say="undrivable"))
    with pytest.raises(RigError, match=r"unpacks but cannot be driven .*its archive stays in"):
        install.install(PeerSpec.parse("chromium@stable"))
    kept = isolated / "browsers/.downloads/chrome-for-testing-131.0.6778.85-linux64.zip"
    assert kept.is_file() and len(downloads) == 1
    # the server now serves another archive for the same build; the kept one still checks out and is used
    server.put("/dl/131.0.6778.85/linux64/chrome-linux64.zip", chrome_zip("131.0.6778.85"))
    with pytest.raises(RigError, match="cannot be driven"):
        install.install(PeerSpec.parse("chromium@stable"))
    assert len(downloads) == 1
    # a kept archive changed on disk is fetched again, and the new one differs from the first: refused
    kept.write_bytes(b"tampered")
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@stable"))
    msg = str(err.value)
    assert len(downloads) == 2 and "\n" not in msg
    assert msg.startswith("chromium@stable: the download is corrupt (chrome-for-testing-131.0.6778.85-linux64.zip "
                          f"from {server.url.removeprefix('http://')} has SHA-256 ")
    assert "not the" in msg and "of its first download" in msg and "publishes no hashes" in msg
    assert not kept.exists() and not list((isolated / "browsers").glob("chromium/1*"))


@pytest.mark.parametrize(("spec", "other", "base", "name", "env"), [
    ("chromium@beta", "chromium@cft:130", "CFT_URL", "Chrome for Testing", "RIG_CFT_URL"),
    ("chromium@snapshot:1121455", "chromium@snapshot:1121460", "CHROMIUM_SNAPSHOTS_URL", "Chromium's snapshot bucket",
     "RIG_CHROMIUM_SNAPSHOTS_URL"),
])
def test_offline_is_one_line_naming_the_host_and_what_to_use(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                             spec: str, other: str, base: str, name: str,
                                                             env: str) -> None:
    port = closed_port()  # nothing listens there
    monkeypatch.setattr(config, base, f"http://127.0.0.1:{port}/feeds")
    with pytest.raises(RigError) as err:
        install.resolve(PeerSpec.parse(spec), install=True)
    assert str(err.value) == (f"{spec}: cannot reach 127.0.0.1:{port} ({name}: [Errno 111] "
                              "Connection refused); use a chromium version from Debian or npm (rig browsers list "
                              f"--available) or set {env} to a mirror")
    folder = isolated / "browsers/chromium/147.0.7727.0"  # an npm build installed here: named instead
    folder.mkdir(parents=True)
    (folder / "chromium").write_text("#!/bin/sh\n")
    (folder / "manifest.json").write_text(json.dumps(dict(
        Installation("chromium", "147.0.7727.0", "x", "npm").as_dict(), executable="chromium")))
    install.cache._FEEDS.clear()
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse(other))
    assert str(err.value).startswith(f"{other}: cannot reach 127.0.0.1:{port} ({name}: ")
    assert str(err.value).endswith(f"); use chromium@147 (npm) or set {env} to a mirror")


def test_the_listing_shows_each_channels_build_today(server: Server, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from rig import cli, drivers
    monkeypatch.setattr(drivers, "available_aiortc", lambda: ["1.16.0"])  # PyPI is not under test here
    publish_cft(server, VERSIONS, CHANNELS)
    server.put("/pd/1.0/firefox_versions.json", PRODUCT_DETAILS)
    assert cli.main(["browsers", "list", "--available"]) == 0
    rows = capsys.readouterr().out.splitlines()
    chromium = next(r for r in rows if r.startswith("chromium ") and "Chrome for Testing" in r)
    assert "stable 131.0.6778.85, beta 132.0.6834.6, dev 133.0.6876.0, canary 133.0.6876.0" in chromium
    assert "chromium@cft:VERSION" in chromium
    firefox = next(r for r in rows if r.startswith("firefox ") and mozilla.NAME in r)
    for channel in ("release", "beta", "esr", "nightly"):
        assert f"{channel} {PRODUCT_DETAILS[mozilla.CHANNEL_KEYS[channel]]}" in firefox, firefox


def test_a_host_that_never_answers_costs_its_bound_once(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        monkeypatch.setattr(config, "REGISTRY_TIMEOUT", 0.5)
        monkeypatch.setattr(config, "CFT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        t0 = time.monotonic()
        for _ in range(2):  # rig matrix asks twice: installed? then install; the second costs nothing
            with pytest.raises(RigError, match=r"^chromium@dev: cannot reach 127\.0\.0\.1:\d+ \(Chrome for Testing: "
                                               r".*\) or set RIG_CFT_URL to a mirror$"):
                install.resolve(PeerSpec.parse("chromium@dev"), install=True)
        assert time.monotonic() - t0 < 1.5
    finally:
        silent.close()


# -- Chromium's snapshot bucket: its XML listing and a zip per commit position ---------------------

#: Commit positions and the version each build reports (neighbouring positions share one).
SNAPSHOTS = {"999990": "119.0.6045.0", "1121455": "120.0.6099.0", "1121460": "120.0.6099.0",
             "1121500": "120.0.6100.0", "1130000": "121.0.6110.0"}


def publish_snapshots(server: Server, builds: dict[str, str], page: int = 2) -> dict[str, bytes]:
    """The bucket as commondatastorage.googleapis.com serves it: ``Linux_x64/``'s listing in pages
    of ``page`` positions, in the bucket's (lexical) order, each truncated page naming its
    NextMarker; each position's own listing; and its chrome-linux.zip."""
    zips = {}
    for pos, version in builds.items():
        zips[pos] = chrome_zip(version, folder="chrome-linux")
        server.put(f"/snap/Linux_x64/{pos}/chrome-linux.zip", zips[pos])
        server.put(f"/snap/?delimiter=/&prefix=Linux_x64/{pos}/", bucket_listing(
            f"Linux_x64/{pos}/", keys=(f"Linux_x64/{pos}/REVISIONS", f"Linux_x64/{pos}/chrome-linux.zip")))
    serve_bucket_listing(server, "/snap", "Linux_x64/", [f"Linux_x64/{p}/" for p in builds], page)
    return zips


def test_the_bucket_listing_is_read_page_by_page_into_positions(server: Server) -> None:
    publish_snapshots(server, SNAPSHOTS)
    assert snapshots.positions() == ["999990", "1121455", "1121460", "1121500", "1130000"]  # by number
    assert [g for g in server.gets if "prefix=Linux_x64/&" in g or g.endswith("prefix=Linux_x64/")] == [
        "/snap/?delimiter=/&prefix=Linux_x64/", "/snap/?delimiter=/&prefix=Linux_x64/&marker=Linux_x64/1121460/",
        "/snap/?delimiter=/&prefix=Linux_x64/&marker=Linux_x64/1130000/"]
    page = snapshots.parse_listing(bucket_listing("Linux_x64/", ("Linux_x64/1/", "Linux_x64/LAST_CHANGE/"),
                                                  ("Linux_x64/x",), next_marker="Linux_x64/LAST_CHANGE/").encode())
    assert (page.prefixes, page.keys, page.truncated, page.next_marker) == (
        ["Linux_x64/1/", "Linux_x64/LAST_CHANGE/"], ["Linux_x64/x"], True, "Linux_x64/LAST_CHANGE/")
    with pytest.raises(RigError, match=r"^the listing is not the bucket's XML listing \("):
        snapshots.parse_listing(b"<html>")


def test_a_range_of_positions_reads_the_listing_from_its_first_to_just_past_its_last(server: Server) -> None:
    """The listing is lexical: positions of one digit count keep their order, so a range is read
    from a marker at its first position up to the page past its last, once per digit count."""
    every = [str(p) for p in range(999_900, 1_000_100, 5)] + ["7", "15000", "1121455", "1130000", "2000000"]
    serve_bucket_listing(server, "/snap", "Linux_x64/", [f"Linux_x64/{p}/" for p in every], page=4)
    listings = lambda: [g for g in server.gets if "prefix=Linux_x64/&" in g or g.endswith("prefix=Linux_x64/")]  # noqa: E731
    assert snapshots.positions() == sorted(every, key=int)
    whole = len(listings())
    server.gets.clear()
    assert snapshots.positions(999_990, 1_000_010) == ["999990", "999995", "1000000", "1000005", "1000010"]
    asked = listings()
    assert [g.split("&marker=")[1] for g in asked if g.endswith(("marker=Linux_x64/999990", "marker=Linux_x64/1000000"))] \
        == ["Linux_x64/999990", "Linux_x64/1000000"], asked
    assert len(asked) <= 6 < whole, asked
    assert snapshots.positions(1_121_456, 1_129_999) == []
    assert snapshots.positions(7, 15000) == ["7", "15000"]


def test_a_commit_position_installs_once_in_its_own_directory(server: Server, isolated: Path,
                                                              downloads: list[str]) -> None:
    zips = publish_snapshots(server, SNAPSHOTS)
    done = install.install(PeerSpec.parse("chromium@snapshot:1121455"))
    final = isolated / "browsers/chromium/120.0.6099.0+r1121455"
    assert not done.already and done.downloaded == len(zips["1121455"]) and len(downloads) == 1
    assert done.installation == Installation("chromium", "120.0.6099.0", str(final / "chrome-linux/chrome"),
                                             "snapshot r1121455")
    assert (final / "chrome-linux/chrome").stat().st_mode & 0o777 == 0o755
    manifest = json.loads((final / "manifest.json").read_text())
    assert (manifest["source"], manifest["package_version"]) == ("snapshot r1121455", "1121455")
    assert manifest["archives"][0]["url"] == f"{server.url}/snap/Linux_x64/1121455/chrome-linux.zip"
    seen = json.loads((isolated / "browsers/.downloads/first-seen.json").read_text())
    assert seen["chromium-snapshot-Linux_x64-1121455.zip"]["sha256"] == hashlib.sha256(zips["1121455"]).hexdigest()
    # the next position reports the same version: another build, in a directory of its own
    other = install.install(PeerSpec.parse("chromium@snapshot:1121460")).installation
    assert (other.version, other.source) == ("120.0.6099.0", "snapshot r1121460") and len(downloads) == 2
    assert other.path == str(isolated / "browsers/chromium/120.0.6099.0+r1121460/chrome-linux/chrome")
    # a cache hit needs no bucket at all
    server.close()
    again = install.install(PeerSpec.parse("chromium@snapshot:1121455"))
    assert again.already and again.installation == done.installation and len(downloads) == 2
    assert install.resolve(PeerSpec.parse("chromium@snapshot:1121460")) == other
    assert install.resolve(PeerSpec.parse("chromium@120")).source.startswith("snapshot r")  # any source counts


def test_a_position_without_a_build_is_one_line(server: Server) -> None:
    publish_snapshots(server, SNAPSHOTS)
    server.put("/snap/?delimiter=/&prefix=Linux_x64/1121456/", bucket_listing("Linux_x64/1121456/"))
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("chromium@snapshot:1121456"))
    assert str(err.value) == ("chromium@snapshot:1121456: Chromium's snapshot bucket has no Linux_x64 build at "
                              "commit position 1121456 (not every position has one; rig bisect over a range, "
                              "chromium@snapshot:FIRST..LAST, walks those that do)")
    with pytest.raises(RigError) as err:
        install.resolve(PeerSpec.parse("chromium@snapshot:1121455"))
    assert str(err.value) == ("chromium@snapshot:1121455 (chromium r1121455 from Chromium's snapshot bucket) is not "
                              "installed here; run: rig browsers install chromium@snapshot:1121455")


def test_a_corrupt_snapshot_zip_is_one_line_and_not_installed(server: Server, isolated: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    publish_snapshots(server, SNAPSHOTS)
    cut_short_is_corrupt(server, "/snap/Linux_x64/1121500/chrome-linux.zip", "chromium@snapshot:1121500",
                         "chromium-snapshot-Linux_x64-1121500.zip", isolated, monkeypatch)
    # a zip in Chrome for Testing's layout is not a snapshot's
    server.put("/snap/Linux_x64/1121500/chrome-linux.zip", chrome_zip("120.0.6100.0"))
    with pytest.raises(RigError, match=r"^chromium@snapshot:1121500: chromium-snapshot-Linux_x64-1121500\.zip has no "
                                       r"chrome-linux/chrome; Chromium's snapshot bucket's layout changed"):
        install.install(PeerSpec.parse("chromium@snapshot:1121500"))


# -- Mozilla's archive and product-details -----------------------------------------------------

def firefox_tarball(version: str, ext: str) -> bytes:
    """A Mozilla tarball: firefox/firefox (mode 755, prints the version) and firefox/omni.ja."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{ext}") as tar:
        for name, data, mode in (("firefox/firefox", f"#!/bin/sh\necho {version}\n".encode(), 0o755),
                                 ("firefox/omni.ja", b"omni" * 100, 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def publish_release(server: Server, version: str, product: str = "firefox", body: bytes | None = None) -> bytes:
    ext = "xz" if int(version.split(".")[0]) >= 135 else "bz2"
    data = firefox_tarball(version, ext) if body is None else body
    entry = f"linux-x86_64/en-US/firefox-{version}.tar.{ext}"
    server.put(f"/pub/{product}/releases/{version}/{entry}", data)
    server.put(f"/pub/{product}/releases/{version}/SHA256SUMS",
               f"{'0' * 64}  linux-x86_64/de/firefox-{version}.tar.{ext}\n"
               f"{hashlib.sha256(data).hexdigest()}  {entry}\n")
    return data


def publish_nightly(server: Server, version: str) -> bytes:
    data = firefox_tarball(version, "xz")
    stem = f"/pub/firefox/nightly/latest-mozilla-central/firefox-{version}.en-US.linux-x86_64"
    server.put(f"{stem}.tar.xz", data)
    name = stem.rsplit("/", 1)[1]
    server.put(f"{stem}.checksums", f"{hashlib.sha512(data).hexdigest()} sha512 {len(data)} {name}.tar.xz\n"
                                    f"{hashlib.sha256(data).hexdigest()} sha256 {len(data)} {name}.tar.xz\n")
    return data


PRODUCT_DETAILS = {"FIREFOX_AURORA": "", "FIREFOX_DEVEDITION": "137.0b3", "FIREFOX_ESR": "128.8.0esr",
                   "FIREFOX_ESR_NEXT": "", "FIREFOX_NIGHTLY": "138.0a1", "LATEST_FIREFOX_DEVEL_VERSION": "137.0b4",
                   "LATEST_FIREFOX_RELEASED_DEVEL_VERSION": "137.0b4", "LATEST_FIREFOX_VERSION": "136.0.1"}


def test_archive_layout_and_checksums() -> None:
    archive = config.MOZILLA_ARCHIVE_URL
    assert mozilla.locations("128.0.3") == (
        f"{archive}/firefox/releases/128.0.3/linux-x86_64/en-US/firefox-128.0.3.tar.bz2",
        f"{archive}/firefox/releases/128.0.3/SHA256SUMS", "linux-x86_64/en-US/firefox-128.0.3.tar.bz2")
    assert mozilla.locations("135.0")[0].endswith("/firefox/releases/135.0/linux-x86_64/en-US/firefox-135.0.tar.xz")
    assert mozilla.locations("137.0b3", "devedition")[0].endswith("/devedition/releases/137.0b3/linux-x86_64/en-US/"
                                                                  "firefox-137.0b3.tar.xz")
    assert mozilla.locations("138.0a1", "nightly") == (
        f"{archive}/firefox/nightly/latest-mozilla-central/firefox-138.0a1.en-US.linux-x86_64.tar.xz",
        f"{archive}/firefox/nightly/latest-mozilla-central/firefox-138.0a1.en-US.linux-x86_64.checksums",
        "firefox-138.0a1.en-US.linux-x86_64.tar.xz")
    entry = "linux-x86_64/en-US/firefox-128.0.3.tar.bz2"
    assert mozilla.parse_sums(f"{'a' * 64}  linux-x86_64/de/firefox-128.0.3.tar.bz2\n{'b' * 64}  {entry}\n",
                              entry) == "sha256-" + "b" * 64
    assert mozilla.parse_sums(f"{'c' * 128} sha512 9 x.tar.xz\n", "x.tar.xz") == "sha512-" + "c" * 128
    assert mozilla.parse_sums("", entry) == ""
    assert [v for v in ("128.0", "128.0.3", "128.3.1esr", "134.0b5", "128", "latest") if mozilla.is_release(v)] == [
        "128.0", "128.0.3", "128.3.1esr", "134.0b5"]


def test_an_exact_release_installs_from_the_archive_once(server: Server, isolated: Path, downloads: list[str]) -> None:
    data = publish_release(server, "128.0.3")
    done = install.install(PeerSpec.parse("firefox@128.0.3"))
    final = isolated / "browsers/firefox/128.0.3"
    assert done.installation == Installation("firefox", "128.0.3", str(final / "firefox/firefox"), "mozilla")
    assert not done.already and done.downloaded == len(data) and len(downloads) == 1
    assert (final / "firefox/firefox").stat().st_mode & 0o777 == 0o755
    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["archives"][0]["integrity"] == "sha256-" + hashlib.sha256(data).hexdigest()
    assert "channel" not in manifest
    again = install.install(PeerSpec.parse("firefox@128.0.3"))
    assert again.already and len(downloads) == 1
    assert install.resolve(PeerSpec.parse("firefox@128")).version == "128.0.3"


@pytest.mark.parametrize(("channel", "version", "where"), [
    ("release", "136.0.1", "/pub/firefox/releases/"),
    ("beta", "137.0b4", "/pub/firefox/releases/"),
    ("devedition", "137.0b3", "/pub/devedition/releases/"),
    ("esr", "128.8.0esr", "/pub/firefox/releases/"),
    ("nightly", "138.0a1", "/pub/firefox/nightly/latest-mozilla-central/"),
])
def test_each_channel_resolves_from_product_details(server: Server, isolated: Path, downloads: list[str],
                                                    channel: str, version: str, where: str) -> None:
    server.put("/pd/1.0/firefox_versions.json", PRODUCT_DETAILS)
    if channel == "nightly":
        publish_nightly(server, version)
    else:
        publish_release(server, version, "devedition" if channel == "devedition" else "firefox")
    done = install.install(PeerSpec.parse(f"firefox@{channel}"))
    assert (done.installation.version, done.installation.source) == (version, f"mozilla, {channel} channel")
    assert [g for g in downloads if where in g] == downloads and len(downloads) == 1
    manifest = json.loads((isolated / "browsers/firefox" / version / "manifest.json").read_text())
    assert (manifest["source"], manifest["channel"]) == ("mozilla", channel)
    assert install.install(PeerSpec.parse(f"firefox@{channel}")).already and len(downloads) == 1


def test_a_release_the_archive_lacks_is_one_line(server: Server) -> None:
    publish_release(server, "128.0.3")
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("firefox@128.0.99"))
    assert str(err.value) == (f"firefox@128.0.99: Mozilla's archive has no Firefox 128.0.99 for linux-x86_64 "
                              f"({server.url}/pub/firefox/releases/128.0.99/SHA256SUMS is not there; releases are "
                              "named like 128.0.3, 128.3.1esr or 134.0b5)")
    with pytest.raises(RigError, match=r"^firefox@128: no installable version here \(no source listed any\); Mozilla's "
                                       r"archive has every Firefox release by its exact number \(firefox@128\.0\.3\)"):
        install.install(PeerSpec.parse("firefox@128"))
    server.put("/pd/1.0/firefox_versions.json", dict(PRODUCT_DETAILS, FIREFOX_NIGHTLY=""))
    with pytest.raises(RigError, match=r"^firefox@nightly: http://.*/firefox_versions\.json gives no FIREFOX_NIGHTLY"):
        install.install(PeerSpec.parse("firefox@nightly"))


def test_a_corrupt_tarball_is_one_line_and_not_installed(server: Server, isolated: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install.launch, "_launch_check", lambda kind, exe: pytest.fail("a corrupt tarball was launched"))
    publish_release(server, "128.0.3")
    server.files["/pub/firefox/releases/128.0.3/linux-x86_64/en-US/firefox-128.0.3.tar.bz2"] += b"tampered"
    with pytest.raises(RigError) as err:
        install.install(PeerSpec.parse("firefox@128.0.3"))
    assert str(err.value) == ("firefox@128.0.3: the download is corrupt (mozilla-firefox-firefox-128.0.3.tar.bz2 "
                              "does not match the SHA256 in Mozilla's archive's checksums); the partial files were "
                              "deleted; run rig browsers install firefox@128.0.3 again")
    publish_release(server, "136.0", body=b"\xfd7zXZ\x00 not really xz")  # its SHA256SUMS agrees: unpacking fails
    with pytest.raises(RigError, match=r"^firefox@136\.0: the download is corrupt \(mozilla-firefox-firefox-136\.0\."
                                       r"tar\.xz is not a readable tarball \("):
        install.install(PeerSpec.parse("firefox@136.0"))
    base = isolated / "browsers"
    assert not list(base.glob("firefox/1*")) and not list(base.glob("firefox/.tmp-*"))
    assert not [p for p in base.glob(".downloads/*") if p.name.startswith("mozilla-")]


def test_mozilla_offline_names_the_host_and_its_variable(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()  # nothing listens there
    monkeypatch.setattr(config, "MOZILLA_PRODUCT_DETAILS_URL", f"http://127.0.0.1:{port}/1.0")
    with pytest.raises(RigError) as err:
        install.resolve(PeerSpec.parse("firefox@nightly"), install=True)
    assert str(err.value) == (f"firefox@nightly: cannot reach 127.0.0.1:{port} (Mozilla's archive: [Errno 111] "
                              "Connection refused); use a firefox version from Debian or npm (rig browsers list "
                              "--available) or set RIG_MOZILLA_PRODUCT_DETAILS_URL to a mirror")
    monkeypatch.setattr(config, "MOZILLA_ARCHIVE_URL", f"http://127.0.0.1:{port}/pub")
    with pytest.raises(RigError, match=rf"^firefox@128\.0\.3: cannot reach 127\.0\.0\.1:{port} \(Mozilla's archive: "
                                       r".*\) or set RIG_MOZILLA_ARCHIVE_URL to a mirror$"):
        install.install(PeerSpec.parse("firefox@128.0.3"))


# -- the specs ----------------------------------------------------------------------------------

def test_the_new_specs_parse_and_bad_ones_are_usage_errors() -> None:
    for text, version, channel, source in [("chromium@beta", "", "beta", ""), ("chromium@canary", "", "canary", ""),
                                           ("chromium@cft:130", "130", "", "cft"),
                                           ("chromium@cft:130.0.6723.58", "130.0.6723.58", "", "cft"),
                                           ("firefox@nightly", "", "nightly", ""), ("firefox@esr", "", "esr", ""),
                                           ("firefox@128.0.3", "128.0.3", "", ""), ("firefox@134.0b5", "134.0b5", "", ""),
                                           ("chromium@snapshot:1121455", "", "", "snapshot")]:
        spec = PeerSpec.parse(text)
        assert (spec.version, spec.channel, spec.source, str(spec)) == (version, channel, source, text)
    options.check(argparse.Namespace(peers="chromium@beta,chromium@cft:130,firefox@nightly,firefox@128.0.3,aiortc",
                                     pairs="chromium@cft:130:firefox@nightly"))
    for bad, line in [
        ("chromium@cft:", "--peers: chromium@cft:: no version after cft: (write chromium@cft:130 for the newest build "
                          "of milestone 130, or chromium@cft:130.0.6723.58 for that build)"),
        ("firefox@nightlyy", "--peers: firefox@nightlyy: 'nightlyy' is not a version or a channel; did you mean "
                             "firefox@nightly? (write firefox@153, firefox@128.0.3, firefox@140..153, "
                             "firefox@release|beta|devedition|esr|nightly or firefox@/path/to/binary)"),
        ("firefox@cft:130", "--peers: firefox@cft:130: Chrome for Testing has Chromium only; write chromium@cft:130"),
        ("firefox@canary", "--peers: firefox@canary: 'canary' is not a version (write firefox@153, firefox@128.0.3, "
                           "firefox@140..153, firefox@release|beta|devedition|esr|nightly or firefox@/path/to/binary)"),
        ("aiortc@beta", "--peers: aiortc@beta: 'beta' is not a version (write aiortc@1.14 or aiortc@1.16.0)"),
        ("chromium@snapshot:", "--peers: chromium@snapshot:: no commit position after snapshot: (write "
                               "chromium@snapshot:1121455 for the build of that position, or "
                               "chromium@snapshot:1121455..1121500 for rig bisect)"),
        ("chromium@snapshot:r1121455", "--peers: chromium@snapshot:r1121455: 'r1121455' is not a commit position "
                                       "(write chromium@snapshot:1121455 for the build of that position, or "
                                       "chromium@snapshot:1121455..1121500 for rig bisect)"),
        ("chromium@snapshot:1121455..1121500", "--peers: chromium@snapshot:1121455..1121500: a range is for rig "
                                               "bisect only; name one version (e.g. chromium@snapshot:1121500)"),
        ("firefox@snapshot:1121455", "--peers: firefox@snapshot:1121455: Chromium's snapshot bucket has Chromium "
                                     "only; write chromium@snapshot:1121455"),
    ]:
        with pytest.raises(RigError) as err:
            options.check(argparse.Namespace(peers=bad))
        assert str(err.value) == line
