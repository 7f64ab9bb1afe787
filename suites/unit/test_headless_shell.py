"""Which binary a headless Chromium run launches (rig.peers.browser.headless_shell)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rig.peers import browser

VERSION = "156.0.8078.114"


class Build:
    """A Chromium build folder: a binary and maybe a headless shell (copies of /bin/true),
    each with the ``--version`` the test gives it."""

    def __init__(self, root: Path) -> None:
        self.root, self.versions = root, {}
        self.exe = root / "chromium"
        shutil.copy("/bin/true", self.exe)
        self.versions[str(self.exe)] = VERSION

    def shell(self, version: str, name: str = "chromium-headless-shell") -> str:
        path = self.root / name
        shutil.copy("/bin/true", path)
        self.versions[str(path)] = version
        return str(path)


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Build:
    b = Build(tmp_path)
    monkeypatch.setattr(browser, "_SHELLS", {})
    monkeypatch.setattr(browser, "_version_line", lambda exe: b.versions.get(str(exe), ""))
    return b


def test_the_same_builds_shell_beside_the_binary_is_used(build):
    shell = build.shell(VERSION)
    assert browser.headless_shell(str(build.exe)) == shell


def test_a_shell_of_another_version_is_not_used(build):
    build.shell("155.0.7000.1")
    assert browser.headless_shell(str(build.exe)) is None


def test_no_shell_means_the_full_browser(build):
    assert browser.headless_shell(str(build.exe)) is None


def test_a_launcher_script_is_followed_to_the_folder_it_runs_from(build):
    shell = build.shell(VERSION)
    launcher = build.root / "bin" / "chromium"
    launcher.parent.mkdir()
    launcher.write_text(f'#!/bin/sh\nexec {build.exe} "$@"\n')
    launcher.chmod(0o755)
    build.versions[str(launcher)] = VERSION
    assert browser.headless_shell(str(launcher)) == shell
