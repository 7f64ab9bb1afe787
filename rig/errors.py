"""The rig's one error type for failures it explains in one line.

Kinds of failure of one part derive from it (rig.peers.base.PeerTimeout, rig.case.CaseFailure),
so the CLI prints any of them as one line. The readers of finished runs raise their own types
(rig.model.SchemaError, rig.compare.CompareError, rig.merge.MergeError), which their commands
catch where they can name the file that was wrong.
"""

from __future__ import annotations


class RigError(Exception):
    """A failure the rig explains in one line (bad input, missing browser, ...)."""
