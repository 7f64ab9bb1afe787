"""The launch check's child process (rig.install.launch): ``python -m rig.install check KIND
EXECUTABLE`` launches the browser, opens a page, finds RTCPeerConnection and prints one JSON line,
``{"version": ...}`` or ``{"error": first line}``."""

import asyncio
import json
import sys

from .. import config
from .launch import page_check
from .source import first_line

if sys.argv[1:2] != ["check"] or len(sys.argv) != 4:
    raise SystemExit("usage: python -m rig.install check KIND EXECUTABLE")
try:
    result = asyncio.run(page_check(sys.argv[2], sys.argv[3]))
except TimeoutError:
    result = {"error": f"launch did not finish within {config.LAUNCH_TIMEOUT:.0f} s"}
except Exception as exc:  # Playwright's errors are long: its first line says it
    result = {"error": first_line(exc)}
print(json.dumps(result), flush=True)
