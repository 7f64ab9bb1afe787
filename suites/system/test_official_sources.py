"""The official sources end to end, without the internet: real browsers from this machine
re-packed in the official layouts (Debian's Chromium as Chrome for Testing's
``chrome-linux64.zip`` with ``chrome-linux64/chrome``; Debian's firefox-esr as Mozilla's
``firefox-VERSION.tar.xz`` with ``firefox/firefox``), served with the documented feeds
(Chrome for Testing's three JSON feeds, Mozilla's SHA256SUMS and product-details'
firefox_versions.json) from a local HTTP server, installed by ``rig browsers install
chromium@stable firefox@esr`` into a private cache (a second install downloads nothing), and
run in a small version matrix that mixes the sources: the re-packed builds, Debian's own
Chromium, an npm Chromium (147) and aiortc. The same Chromium re-packed as a snapshot
(``Linux_x64/POSITION/chrome-linux.zip`` with ``chrome-linux/chrome``, beside the bucket's XML
listing) installs and launches as ``chromium@snapshot:POSITION``. Packing is most of the work (about 300 MB through
xz), so the packed archives are kept in the per-user cache, keyed by the two browsers' versions
and binaries, as the bare Debian root of test_debian_root is: only a machine's first run, or one
after a browser update, packs them. The test is marked long."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig import config, runs, versions

pytestmark = [pytest.mark.long, pytest.mark.timeout(900)]  # packing and unpacking 800 MB: more than the default bound
RIG = [sys.executable, "-m", "rig"]
CHROMIUM = Path("/usr/lib/chromium")  # Debian's chromium package: the binary is chromium
FIREFOX = Path("/usr/lib/firefox-esr")  # Debian's firefox-esr package: the binary is firefox-esr
#: The commit position the re-packed Chromium is served as, in Chromium's snapshot bucket's layout.
POSITION = "1500000"


def _version(exe: Path) -> str:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"\d+\.\d+[\w.]*", out)
    if not m:
        pytest.skip(f"{exe} --version printed no version: {out!r}")
    return m.group(0)


def _pack_chrome(version: str, dest: Path) -> Path:
    """/usr/lib/chromium as Chrome for Testing's chrome-linux64.zip."""
    archive = dest / "dl" / version / "linux64" / "chrome-linux64.zip"
    archive.parent.mkdir(parents=True)
    _zip_chromium(archive, "chrome-linux64")
    return archive


def _zip_chromium(archive: Path, folder: str) -> None:
    """/usr/lib/chromium as ``folder``/ in a zip (stored, not deflated: the layout is what is
    tested, and deflating 500 MB costs half a minute), the executable named chrome, without
    Debian's separate headless shell (Chrome for Testing ships that in its own zip)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(CHROMIUM.rglob("*")):
            rel = path.relative_to(CHROMIUM)
            if path.is_dir() or rel.name == "chromium-headless-shell":
                continue
            name = "chrome" if str(rel) == "chromium" else str(rel)
            z.write(path, f"{folder}/{name}")


def _pack_snapshot(packed: Path) -> None:
    """/usr/lib/chromium as a snapshot's ``snap/Linux_x64/POSITION/chrome-linux.zip`` in an
    existing pack, unless it is there: packed beside it and renamed into place whole."""
    archive = packed / "snap" / "Linux_x64" / POSITION / "chrome-linux.zip"
    if archive.is_file():
        return
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(prefix=".packing-", suffix=".zip", dir=archive.parent)
    os.close(fd)
    try:
        _zip_chromium(Path(part), "chrome-linux")
        os.replace(part, archive)
    finally:
        Path(part).unlink(missing_ok=True)


def _pack_firefox(version: str, dest: Path) -> Path:
    """/usr/lib/firefox-esr as firefox/ in a .tar.xz (symlinks into /usr/share followed, so the
    tarball stands alone), the executable named firefox."""
    entry = f"linux-x86_64/en-US/firefox-{version}.tar.xz"
    release = dest / "pub" / "firefox" / "releases" / version
    archive = release / entry
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:xz", preset=0, dereference=True) as tar:
        for path in sorted(FIREFOX.iterdir()):
            name = "firefox" if path.name == "firefox-esr" else path.name
            tar.add(path, f"firefox/{name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (release / "SHA256SUMS").write_text(f"{'0' * 64}  linux-x86_64/de/firefox-{version}.tar.xz\n{digest}  {entry}\n")
    return archive


def _packed(chrome: str, firefox: str, root: Path) -> None:
    """Both archives (and Firefox's SHA256SUMS) under ``root`` as the server lays them out,
    linked from the per-user cache; packed there first when no archive of these two browsers
    (version, binary size and time) is cached. A pack goes to a folder of its own and is renamed
    into place whole, so two runs at once never see half an archive."""
    stamp = "-".join(f"{exe.stat().st_size}.{int(exe.stat().st_mtime)}"
                     for exe in (CHROMIUM / "chromium", FIREFOX / "firefox-esr"))
    cache = versions.cache_root() / "test-official-archives"
    packed = cache / f"{chrome}-{firefox}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    if not packed.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.iterdir():  # an earlier browser's pack (hundreds of MB), or a killed run's half
            packing = old.name.startswith(".packing-") and time.time() - old.stat().st_mtime < 3600
            if old.name != packed.name and not packing:
                shutil.rmtree(old, ignore_errors=True)
        fresh = Path(tempfile.mkdtemp(prefix=".packing-", dir=cache))
        _pack_chrome(chrome, fresh)
        _pack_firefox(firefox, fresh)
        try:
            fresh.rename(packed)
        except OSError:  # another run packed the same browsers first
            shutil.rmtree(fresh, ignore_errors=True)
    _pack_snapshot(packed)
    for path in packed.rglob("*"):
        if path.is_file() and not path.name.startswith(".packing-"):
            link = root / path.relative_to(packed)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)


def _cft_entry(url: str, version: str, **extra: str) -> dict:
    return dict({"version": version, "revision": "1400000", "downloads": {
        "chrome": [{"platform": p, "url": f"{url}/dl/{version}/{p}/chrome-{p}.zip"}
                   for p in ("linux64", "mac-arm64", "win64")]}}, **extra)


class Served:
    """A folder served over HTTP on 127.0.0.1 (port 0), every GET path recorded; a path with a
    query (the snapshot bucket's listings) is answered from ``queries``, exactly as asked."""

    def __init__(self, root: Path) -> None:
        self.gets: list[str] = []
        self.queries: dict[str, bytes] = {}
        gets, queries = self.gets, self.queries

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                gets.append(self.path)
                if "?" not in self.path:
                    super().do_GET()
                    return
                body = queries.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str, str]]:
    if not (CHROMIUM / "chromium").is_file() or not (FIREFOX / "firefox-esr").is_file():
        pytest.skip("needs Debian's chromium and firefox-esr (apt-get install -y chromium firefox-esr, as root)")
    root = tmp_path_factory.mktemp("official")
    chrome, firefox = _version(CHROMIUM / "chromium"), _version(FIREFOX / "firefox-esr")
    served = Served(root)
    _packed(chrome, firefox, root)
    feeds = root / "cft"
    feeds.mkdir()
    stamp = "2026-12-07T00:00:00.000Z"
    (feeds / "known-good-versions-with-downloads.json").write_text(json.dumps(
        {"timestamp": stamp, "versions": [_cft_entry(served.url, chrome)]}))
    (feeds / "last-known-good-versions-with-downloads.json").write_text(json.dumps({"timestamp": stamp, "channels": {
        c: _cft_entry(served.url, chrome, channel=c) for c in ("Stable", "Beta", "Dev", "Canary")}}))
    major = chrome.split(".")[0]
    (feeds / "latest-versions-per-milestone-with-downloads.json").write_text(json.dumps(
        {"timestamp": stamp, "milestones": {major: _cft_entry(served.url, chrome, milestone=major)}}))
    details = root / "pd" / "1.0"
    details.mkdir(parents=True)
    (details / "firefox_versions.json").write_text(json.dumps({
        "FIREFOX_ESR": firefox, "FIREFOX_DEVEDITION": "", "FIREFOX_NIGHTLY": "",
        "LATEST_FIREFOX_DEVEL_VERSION": "", "LATEST_FIREFOX_VERSION": ""}))
    bucket = "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'>"
    served.queries[f"/snap/?delimiter=/&prefix=Linux_x64/{POSITION}/"] = (
        f"{bucket}<Prefix>Linux_x64/{POSITION}/</Prefix><IsTruncated>false</IsTruncated><Contents><Key>Linux_x64/"
        f"{POSITION}/chrome-linux.zip</Key></Contents></ListBucketResult>").encode()
    yield served, chrome, firefox
    served.close()


@pytest.fixture
def env(official: tuple[Served, str, str], tmp_path: Path) -> dict:
    served = official[0]
    return dict(os.environ, GLARE_RIG_CACHE=str(tmp_path / "cache"), RIG_CFT_URL=f"{served.url}/cft",
                RIG_CHROMIUM_SNAPSHOTS_URL=f"{served.url}/snap",
                RIG_MOZILLA_ARCHIVE_URL=f"{served.url}/pub", RIG_MOZILLA_PRODUCT_DETAILS_URL=f"{served.url}/pd/1.0")


def test_repacked_browsers_install_from_the_official_layouts_and_run(
        official: tuple[Served, str, str], env: dict, tmp_path: Path) -> None:
    served, chrome, firefox_esr = official
    firefox = firefox_esr.removesuffix("esr")  # Mozilla's name for an ESR; the browser reports 153.8.0
    cache = Path(env["GLARE_RIG_CACHE"]) / "browsers"
    r = runs.run_bounded(RIG + ["browsers", "install", "chromium@stable", "firefox@esr"], cwd=config.ROOT, env=env,
                         timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"chromium@stable: installed chromium {chrome} (cft, stable channel, "), r.stdout
    assert lines[0].endswith(f"at {cache}/chromium/{chrome}/chrome-linux64/chrome"), r.stdout
    assert lines[1].startswith(f"firefox@esr: installed firefox {firefox} (mozilla, esr channel"), r.stdout
    assert lines[1].endswith(f"at {cache}/firefox/{firefox}/firefox/firefox"), r.stdout
    manifest = json.loads((cache / "chromium" / chrome / "manifest.json").read_text())
    assert (manifest["source"], manifest["channel"], len(manifest["archives"][0]["sha256"])) == ("cft", "stable", 64)
    archives = [g for g in served.gets if g.endswith((".zip", ".tar.xz"))]
    assert len(archives) == 2

    # a cache hit: the feeds are read again (channels move), no archive is downloaded
    r = runs.run_bounded(RIG + ["browsers", "install", "chromium@stable", "firefox@esr", f"chromium@cft:{chrome}"],
                         cwd=config.ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = r.stdout.splitlines()
    assert len(rows) == 3 and all(": already installed: " in row for row in rows), r.stdout
    assert [g for g in served.gets if g.endswith((".zip", ".tar.xz"))] == archives

    # a version matrix mixing the sources: the re-packed Chrome for Testing build, Debian's own
    # chromium and an npm build (@sparticuz/chromium 147, from the registry; the user's cache
    # keeps it), and the re-packed Mozilla Firefox
    out = tmp_path / "out"
    r = runs.run_bounded(RIG + ["browsers", "install", "chromium@147"], cwd=config.ROOT, timeout=600)  # user's cache
    if r.returncode == 2 and "cannot reach" in r.stderr:
        pytest.skip(r.stderr.strip().splitlines()[-1])
    assert r.returncode == 0, r.stdout + r.stderr
    [npm] = [d for d in (versions.cache_root() / "browsers" / "chromium").glob("147.*")
             if json.loads((d / "manifest.json").read_text())["source"] == "npm"]
    (cache / "chromium" / npm.name).symlink_to(npm)  # into this test's cache, as installed there
    r = runs.run_bounded(RIG + ["matrix", "--peers", "chromium@stable,chromium@147,chromium,firefox@esr,aiortc",
                                "--pairs", "chromium@stable:aiortc,aiortc:firefox@esr,chromium@147:chromium@stable,"
                                "chromium:chromium@147", "--scenarios", "initial-datachannel",
                                "--workers", "1", "--out", str(out)], cwd=config.ROOT, env=env, timeout=600)
    assert f"rig: chromium@stable is chromium {chrome} (cft, stable channel)" in r.stdout + r.stderr
    assert f"rig: firefox@esr is firefox {firefox} (mozilla, esr channel" in r.stdout + r.stderr
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    cases = json.loads((out / "results.json").read_text())["cases"]
    assert sorted((c["polite"]["spec"], c["impolite"]["spec"], c["outcome"]) for c in cases) == [
        ("aiortc", "firefox@esr", "passed"), ("chromium", "chromium@147", "passed"),
        ("chromium@147", "chromium@stable", "passed"), ("chromium@stable", "aiortc", "passed")]
    peers = {p["spec"]: p for c in cases for p in (c["polite"], c["impolite"])}
    assert peers["chromium@stable"]["version"] == chrome
    assert peers["chromium@stable"]["source"].startswith("cft, stable channel")
    assert peers["chromium@147"]["version"].startswith("147.") and "npm" in peers["chromium@147"]["source"]
    assert peers["chromium"]["version"] == chrome and "npm" not in peers["chromium"]["source"]
    assert peers["firefox@esr"]["version"] == firefox and peers["firefox@esr"]["source"] == "mozilla, esr channel"


def test_a_repacked_chromium_installs_and_launches_by_commit_position(
        official: tuple[Served, str, str], env: dict) -> None:
    served, chrome, _ = official
    spec = f"chromium@snapshot:{POSITION}"
    where = Path(env["GLARE_RIG_CACHE"]) / "browsers" / "chromium" / f"{chrome}+r{POSITION}" / "chrome-linux" / "chrome"
    r = runs.run_bounded(RIG + ["browsers", "install", spec], cwd=config.ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"{spec}: installed chromium {chrome} (snapshot r{POSITION}, "), r.stdout
    assert r.stdout.strip().endswith(f"at {where}"), r.stdout
    zips = [g for g in served.gets if g.endswith("/chrome-linux.zip")]
    assert zips == [f"/snap/Linux_x64/{POSITION}/chrome-linux.zip"]
    # installed: its position finds it with no listing read and nothing downloaded
    asked = len(served.gets)
    r = runs.run_bounded(RIG + ["browsers", "path", spec], cwd=config.ROOT, env=env, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, str(where)), r.stdout + r.stderr
    assert len(served.gets) == asked
