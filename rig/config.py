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
#: The official feeds (rig.install.cft, rig.install.mozilla), each overridable with a mirror's
#: address: Chrome for Testing's JSON feeds (the archives are where the feeds say), Mozilla's
#: archive (``/pub``: firefox/releases, devedition/releases, firefox/nightly) and its
#: product-details (``firefox_versions.json``, the channels' versions).
CFT_URL = os.environ.get("RIG_CFT_URL", "https://googlechromelabs.github.io/chrome-for-testing")
#: Chromium's snapshot bucket (rig.install.snapshots): a build per commit position,
#: ``Linux_x64/POSITION/chrome-linux.zip``, and the bucket's XML listing of the positions.
CHROMIUM_SNAPSHOTS_URL = os.environ.get("RIG_CHROMIUM_SNAPSHOTS_URL",
                                        "https://commondatastorage.googleapis.com/chromium-browser-snapshots")
MOZILLA_ARCHIVE_URL = os.environ.get("RIG_MOZILLA_ARCHIVE_URL", "https://archive.mozilla.org/pub")
MOZILLA_PRODUCT_DETAILS_URL = os.environ.get("RIG_MOZILLA_PRODUCT_DETAILS_URL", "https://product-details.mozilla.org/1.0")

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

#: Headless Chromium runs use the headless shell of the same build when one is installed beside
#: it (Debian's chromium-headless-shell: the same Chromium source and WebRTC stack without the
#: browser's UI layer; what Playwright itself runs for headless Chromium). It costs a third of
#: the CPU per case (docs/design.md, "Peers"). RIG_HEADLESS_SHELL=0 keeps the full
#: browser; a headed run always uses it.
HEADLESS_SHELL = os.environ.get("RIG_HEADLESS_SHELL", "1") != "0"
HEADLESS_SHELL_NAMES = ("chromium-headless-shell", "chrome-headless-shell", "headless_shell")

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
    # the refresh driver at 5 Hz instead of 60: the peer page shows nothing, and a headless
    # Firefox's parent process spent a fifth of its CPU painting it (docs/measurements.md);
    # 1 Hz was slower (loads wait for a paint)
    "layout.frame_rate": 5,
}

#: glibc malloc arenas of a pytest process that runs cases (mallopt M_ARENA_MAX at start, that
#: process only: browsers keep glibc's default). aiortc starts codec threads for every track of
#: every case, and with up to 8 arenas per core each new thread's memory stayed in an arena of
#: its own: a worker grew by tens of MB per 100 cases (docs/reliability.md). 0: glibc's default;
#: an explicit MALLOC_ARENA_MAX in the environment wins.
MALLOC_ARENAS = int(os.environ.get("RIG_MALLOC_ARENAS", 2))

#: Bounds (seconds). Every wait in the rig uses one of these.
LAUNCH_TIMEOUT = float(os.environ.get("RIG_LAUNCH_TIMEOUT", 30))
#: rig.slots: how many browsers (of this user) may start at once on this machine, how long a
#: launch waits for a slot (beyond LAUNCH_TIMEOUT, which bounds the launch itself), and how often
#: a waiting launch tries the slots again
LAUNCH_SLOTS = max(1, int(os.environ.get("RIG_LAUNCH_SLOTS", os.cpu_count() or 2)))
LAUNCH_SLOT_TIMEOUT = float(os.environ.get("RIG_LAUNCH_SLOT_TIMEOUT", 60))
LAUNCH_SLOT_POLL = 0.05
#: rig.slots: how many cases (of this user) may run at once on this machine, across every run
#: and worker, and how long a case waits for a slot before it is an error. A case's bounds
#: (STEP_TIMEOUT above all) measure its peers' progress; on a machine running more cases than it
#: has cores for, every case slows until those bounds pass for no fault of its peers.
CASE_SLOTS = max(1, int(os.environ.get("RIG_CASE_SLOTS", os.cpu_count() or 2)))
CASE_SLOT_TIMEOUT = float(os.environ.get("RIG_CASE_SLOT_TIMEOUT", 90))
STEP_TIMEOUT = float(os.environ.get("RIG_STEP_TIMEOUT", 10))
CASE_TIMEOUT = float(os.environ.get("RIG_CASE_TIMEOUT", 45))
CLOSE_TIMEOUT = 5.0


def case_limit() -> float:
    """The last bound over one case, set-up and teardown included: the sum of the bounds its
    steps wait in, in order, so that it passes only when one of them failed to hold. A case slot;
    Playwright's start (a worker's first case); for each of the two peers a launch slot, the
    browser's launch, its page's preparation and its opening; the case itself; its peers' closes
    (6 x CLOSE_TIMEOUT) and one step more. pytest-timeout's bound for an interop cell is derived
    from it (rig.pytest_plugin), so the case's own one-line error always comes first."""
    per_peer = LAUNCH_SLOT_TIMEOUT + 3 * LAUNCH_TIMEOUT
    return (CASE_SLOT_TIMEOUT + LAUNCH_TIMEOUT + 2 * per_peer + CASE_TIMEOUT + 6 * CLOSE_TIMEOUT
            + STEP_TIMEOUT)
#: rig matrix --fault delay-message: how long the stub holds the message (rig.faults)
FAULT_DELAY = float(os.environ.get("RIG_FAULT_DELAY", 3))
#: A browser process is closed and launched anew after it has served this many pages (each a
#: case's peer): a long run (rig soak, a big version matrix) must not carry whatever a browser
#: accumulates over thousands of contexts. Launching costs ~1-3 s; at 100 pages that is under
#: 3 % of the pages' own time.
RECYCLE_PAGES = int(os.environ.get("RIG_RECYCLE_PAGES", 100))
#: A worker's Playwright driver (node) is restarted, with its browsers, between cases once it has
#: made this many pages: a driver grew by about 60 MB per 500 pages in a soak
#: (docs/reliability.md), and a restart costs one driver start and the browsers' launches.
RECYCLE_DRIVER_PAGES = int(os.environ.get("RIG_RECYCLE_DRIVER_PAGES", 300))
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
#: after the last step, how long a peer that says "disconnected" gets to leave that state before
#: the end state is judged: a transient state by the spec (an ICE consent check lost, e.g. when
#: a loaded event loop drops aiortc's UDP packets); Firefox checks consent every 4-6 s and is
#: connected again at the first answered check, so two of its longest intervals
RECOVER_TIMEOUT = 12.0

#: The signaling stub's limits (docs/design.md, "Signaling stub limits"). A case sends a few dozen
#: frames of a few kB through one room; each limit is far above that and bounds what a client
#: that misbehaves (a broken negotiator, a test throwing garbage) can make the stub hold.
#: Largest text frame, in bytes of UTF-8 (a real SDP is a few kB). aiohttp refuses a larger one
#: from its header, before reading its payload; the stub answers with an error frame and closes
#: that socket (code 1009), since a frame that was not read leaves nothing to resynchronise on.
MAX_FRAME_BYTES = 256 * 1024
#: JSON in a frame: deepest nesting and most values (keys count as values). A signaling message
#: is 3 deep with under 10 values; deeper JSON would overflow Python's recursion when the
#: record is copied for the report. Over either: an error frame, the frame is not relayed.
MAX_JSON_DEPTH = 32
MAX_JSON_VALUES = 10_000
#: Frames waiting for one member: held by the room's DeliveryController plus queued to be sent.
#: Past either bound a new frame for that member is not relayed: its sender gets an error frame.
#: Bytes, here and below, are what a frame's parsed data holds in memory (rig.signaling.weigh:
#: about 30 times its text for an array of empty objects, 4 times for text with one emoji).
MAX_PENDING_FRAMES = 256
MAX_PENDING_BYTES = 4 * 1024 * 1024
#: A room's message record (the case's evidence): records kept and their frames' bytes. Past
#: either, frames are still relayed but not recorded; one last record says so and counts them.
MAX_RECORDS = 2000
MAX_RECORD_BYTES = 8 * 1024 * 1024
#: Members of a room: not tunable, the stub relays between the two peers of a case.
ROOM_MEMBERS = 2
#: Rooms open at once (the rig opens one per case and closes it after it; one more is a one-line
#: RigError) and WebSocket connections at once (members, and refused sockets while they close;
#: one more upgrade is refused with HTTP 503).
MAX_ROOMS = 8
MAX_CONNECTIONS = 32
#: A client that does not take a frame the stub sends within this is cut off (its connection
#: aborted), so a peer that stopped reading cannot hold the stub's writer.
STUB_SEND_TIMEOUT = 10.0
#: An idle HTTP connection (a page's, between its requests) is closed after this (aiohttp's
#: AppRunner would keep one an hour).
STUB_KEEPALIVE_TIMEOUT = 75.0
#: Joins refused before the upgrade (no or wrong token, too many connections) kept in the
#: stub's own record; all are counted.
MAX_REFUSALS_KEPT = 100

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


def build_id() -> str:
    """The CI build a run belongs to, as results.json records it (RunRecord.build): RIG_BUILD
    when set (any CI), else a GitHub Actions run's address and commit, else "" (a developer's
    machine). ``rig history`` shows it for the run where a cell turned red."""
    if os.environ.get("RIG_BUILD"):
        return os.environ["RIG_BUILD"]
    env = os.environ
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        url = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        sha = env.get("GITHUB_SHA", "")[:12]
        return f"{url}{' (' + sha + ')' if sha else ''}"
    return ""
