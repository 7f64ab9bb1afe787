"""``python -m rig.peers.host``: run the host process (rig.peers.host.server) until its stdin
closes or it is told to stop."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
