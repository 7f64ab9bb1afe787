"""Every version pin, browser flag and preference the rig depends on, in one place.

Each fact here was measured on the project's Debian 12 machines (the figures are in
docs/measurements.md and docs/design.md); change them here and nowhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REFERENCE_NEGOTIATOR_JS = FIXTURES / "negotiators" / "perfect.js"
REFERENCE_NEGOTIATOR_PY = FIXTURES / "negotiators" / "perfect.py"

#: Playwright 1.65 cannot open a page in firefox-esr 153 (emulation.setMediaFeaturesOverride).
PLAYWRIGHT_PIN = ">=1.57,<1.65"

#: Older Playwrights tried, newest first, for a browser the pinned one cannot drive; each runs
#: in its own virtual environment, in a peer host process (rig.drivers, rig.peers.host).
#: Firefox ESR 140 fails with every Playwright from 1.56 on (network.addDataCollector); 1.55.0
#: drives it over BiDi, through a private attribute only (FIELD-NOTES, "Browsers").
OLDER_PLAYWRIGHTS = ["1.55.0"]
#: Playwright releases whose public ``firefox`` does not route ``channel="moz-firefox"`` to a
#: stock Firefox: below this, the peer host takes the driver's private BiDi Firefox type.
PLAYWRIGHT_PUBLIC_BIDI = (1, 56)

#: Where Debian puts the browsers, and the package that provides each.
BINARIES = {
    "chromium": (os.environ.get("RIG_CHROMIUM", "/usr/bin/chromium"), "chromium"),
    "firefox": (os.environ.get("RIG_FIREFOX", "/usr/bin/firefox-esr"), "firefox-esr"),
}

#: Browser versions beside the system ones (rig.install). Debian's archive: the packages to
#: unpack into one directory (Chromium dies at launch without chromium-common of the same
#: version) and the executable inside it.
DEBIAN_BROWSERS = {
    "chromium": (("chromium", "chromium-common"), "usr/lib/chromium/chromium"),
    "firefox": (("firefox-esr",), "usr/lib/firefox-esr/firefox-esr"),
}
#: npm packages that ship a whole Chromium as package/bin/chromium.br (brotli). An empty
#: mapping: every release, the package major is the Chromium major (the newest release of each
#: major is offered). Otherwise only the releases listed, with their Chromium major
#: (chrome-aws-lambda 2.1.1, Chromium 80, fails: Browser.setDownloadBehavior wasn't found).
NPM_CHROMIUM = {
    "@sparticuz/chromium": {},
    "chrome-aws-lambda": {"5.5.0": "88"},
}
NPM_REGISTRY = os.environ.get("RIG_NPM_REGISTRY", "https://registry.npmjs.org")

#: Chromium honours only the last --disable-features switch, so the rig passes one
#: merged list: Playwright 1.64's own list plus what WebRTC tests need.
PLAYWRIGHT_DISABLED_FEATURES = [
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose",
    "DialMediaRouteProvider", "GlobalMediaControls", "HttpsUpgrades", "LensOverlay",
    "MediaRouter", "PaintHolding", "ThirdPartyStoragePartitioning",
    "BlockOriginHeaderModificationOnRedirect", "AvoidCorsURLLoaderRestartOnRedirect",
    "Translate", "AutoDeElevate", "OptimizationHints", "NetworkTimeServiceQuerying",
    "AimEnabled",
]
#: Host candidates with real addresses instead of .local mDNS names (aioice would need
#: multicast to resolve those).
RIG_DISABLED_FEATURES = ["WebRtcHideLocalIpsWithMdns"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=" + ",".join(PLAYWRIGHT_DISABLED_FEATURES + RIG_DISABLED_FEATURES),
]

FIREFOX_PREFS = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    "network.captive-portal-service.enabled": False,
    "app.update.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
}

#: Bounds (seconds). Every wait in the rig uses one of these.
LAUNCH_TIMEOUT = float(os.environ.get("RIG_LAUNCH_TIMEOUT", 30))
STEP_TIMEOUT = float(os.environ.get("RIG_STEP_TIMEOUT", 10))
CASE_TIMEOUT = float(os.environ.get("RIG_CASE_TIMEOUT", 45))
CLOSE_TIMEOUT = 5.0
#: rig.install: registry metadata (then the registry counts as unreachable), one archive
#: download (45-70 MB), apt-get/dpkg steps, and the wait for another installer's lock.
REGISTRY_TIMEOUT = float(os.environ.get("RIG_REGISTRY_TIMEOUT", 10))
DOWNLOAD_TIMEOUT = float(os.environ.get("RIG_DOWNLOAD_TIMEOUT", 600))
APT_TIMEOUT = 120.0
INSTALL_LOCK_TIMEOUT = DOWNLOAD_TIMEOUT + 300
#: Building a driver environment (python -m venv, then pip install: about 10 s here for aiortc,
#: more on a slow mirror), and asking the package index which releases exist.
ENV_BUILD_TIMEOUT = float(os.environ.get("RIG_ENV_BUILD_TIMEOUT", 600))
PIP_INDEX_TIMEOUT = 120.0
#: A data-channel message after an ICE restart (SCTP retransmission backoff, see rig.case).
RESTART_EXCHANGE_TIMEOUT = 30.0

#: The signaling stub refuses frames larger than this (a real SDP is a few kB).
MAX_FRAME_BYTES = 256 * 1024

#: Environment variable that marks every process a run starts, so a sweep can find
#: (and kill) any browser that survived its run.
RUN_MARKER_ENV = "GLARE_RIG_RUN"
#: Set by each pytest process that runs cases to its own pid, so it finds (and waits for, when it
#: closes them) every process it started, a daemon re-parented to init included (Chromium's
#: chrome_crashpad_handler, which outlives its browser for a moment).
OWNER_ENV = "GLARE_RIG_OWNER"
#: The pid of the rig (or pytest controller) that started this process: a process whose parent
#: is that pid asks the kernel for SIGTERM when it dies (rig.processes.die_with_parent).
PARENT_ENV = "GLARE_RIG_PARENT"
#: Where the registry of runs lives (rig.runs; default $XDG_RUNTIME_DIR/glare-rig/runs, else
#: runs/ in the per-user cache).
RUNS_ENV = "GLARE_RIG_RUNS"
#: After forwarding a signal, how long rig waits for pytest to end its workers' cases, close
#: their browsers and write the partial report before it ends what is left (xdist itself waits
#: 10 s for a worker before killing it; typically all of it takes 2-4 s here).
INTERRUPT_GRACE = 30.0

#: JSON {spec: one-line reason} of the peer specs ``rig matrix`` could not resolve (or
#: install) before the workers started; their cells are errors with that reason.
UNRESOLVED_ENV = "GLARE_RIG_UNRESOLVED"
#: JSON {spec: exact version} of the remote browsers (rig.remote) ``rig matrix`` checked before
#: the workers started, so that each worker does not check them again (a few seconds each).
REMOTE_RESOLVED_ENV = "GLARE_RIG_REMOTE"
