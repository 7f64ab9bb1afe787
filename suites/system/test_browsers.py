"""rig browsers for real: versions installed from npm and from Debian's archive into the
per-user cache (so a rerun downloads nothing), each launched with the rig's own Playwright.
Needs the npm registry and Debian's archive the first time; where they cannot be reached
and nothing is installed yet, the test is skipped with the reason."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest

from rig import config, install, runs
from rig.errors import RigError
from rig.peerspec import PeerSpec
from rig.versions import matches

pytestmark = pytest.mark.network
RIG = [sys.executable, "-m", "rig"]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(install.cache, "DOWNLOAD_HOOKS", [seen.append])
    return seen


def _need_npm(spec: PeerSpec) -> None:
    if any(matches(spec.version, i.version) for i in install.cached(spec.kind)):
        return
    try:
        install.npm_metadata("@sparticuz/chromium")
    except RigError as exc:
        pytest.skip(f"{spec} is not installed and the npm registry is unreachable: {exc}")


def _need_debian(spec: PeerSpec, package: str, version: str) -> None:
    if any(matches(spec.version, i.version) for i in install.cached(spec.kind)):
        return
    listed = [a for a in install.debian_available(spec.kind) if a.package_version == version]
    if not listed:
        pytest.skip(f"{spec}: the apt lists have no {package} {version} (apt-get update as root, once)")
    uris = subprocess.run(["apt-get", "download", "--print-uris", f"{package}={version}"],
                          capture_output=True, text=True, timeout=60).stdout.split()
    url = next((u.strip("'") for u in uris if u.startswith("'http")), "")
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=config.REGISTRY_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        pytest.skip(f"{spec}: Debian's archive is unreachable ({url or 'no URI'}: {exc})")


def _installed_twice(spec: PeerSpec, downloads: list[str]) -> install.Outcome:
    first = install.install(spec)
    fetched = len(downloads)
    again = install.install(spec)
    assert again.already and again.installation == first.installation
    assert len(downloads) == fetched, f"a second install downloaded again: {downloads[fetched:]}"
    return first


def test_chromium_from_npm(downloads: list[str]) -> None:
    spec = PeerSpec.parse("chromium@147")
    _need_npm(spec)
    inst = _installed_twice(spec, downloads).installation
    assert inst.source == "npm" and inst.version.startswith("147.") and inst.in_process
    assert inst.path.startswith(str(install.browsers_dir("chromium")))
    # launched again here, whether it was installed now or by an earlier run
    assert install.verify("chromium", inst.path).version == inst.version
    assert install.resolve(spec) == inst


def test_chromium_from_debian(downloads: list[str]) -> None:
    spec = PeerSpec.parse("chromium@150")
    _need_debian(spec, "chromium", "150.0.7871.100-1~deb12u1")
    inst = _installed_twice(spec, downloads).installation
    assert (inst.source, inst.version) == ("debian", "150.0.7871.100")
    assert inst.path.endswith("/usr/lib/chromium/chromium")
    assert install.verify("chromium", inst.path).version == "150.0.7871.100"


def test_firefox_140_from_debian(downloads: list[str]) -> None:
    """Playwright 1.56 and later cannot drive Firefox ESR 140: with rig.drivers it is installed
    with a driver environment, without it the install fails in one line naming why."""
    spec = PeerSpec.parse("firefox@140")
    _need_debian(spec, "firefox-esr", "140.12.0esr-1~deb12u1")
    if install.launch.rig_drivers() is not None or [i for i in install.cached("firefox") if i.version.startswith("140.")]:
        inst = _installed_twice(spec, downloads).installation
        assert inst.version.startswith("140.") and inst.driver and inst.driver_label
        return
    # a rerun finds the archive kept by the first failure, so the second attempt happens only
    # when this one downloaded (each attempt unpacks 270 MB and launches: about 7 s)
    for attempt in (1, 2):
        with pytest.raises(RigError) as err:
            install.install(spec)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("firefox@140: debian firefox-esr 140.12.0esr-1~deb12u1 unpacks but "
                                                  "cannot be driven (Playwright "), msg
        assert "network.addDataCollector" in msg and "rig.drivers is not in this checkout" in msg
        if attempt == 1:
            fetched = len(downloads)
            if not fetched:
                break
    assert len(downloads) == fetched, f"the kept archive was downloaded again: {downloads}"
    assert not [i for i in install.cached("firefox") if i.version.startswith("140.")]


def test_cli_lists_and_finds_what_is_installed() -> None:
    have = [i for i in install.cached("chromium") if i.version.startswith(("147.", "150."))]
    if not have:
        pytest.skip("neither chromium@147 nor chromium@150 is installed (their tests were skipped)")
    r = runs.run_bounded(RIG + ["browsers", "list"], timeout=120)
    assert r.returncode == 0, r.stderr
    for inst in have:
        assert any(row.split()[:3] == ["chromium", inst.version, inst.source] and row.endswith(inst.path)
                   for row in r.stdout.splitlines()), r.stdout
    r = runs.run_bounded(RIG + ["browsers", "path", f"chromium@{have[0].line}"], timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, have[0].path), r.stderr
    r = runs.run_bounded(RIG + ["browsers", "install", f"chromium@{have[0].line}"], timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"chromium@{have[0].line}: already installed: "), r.stderr
