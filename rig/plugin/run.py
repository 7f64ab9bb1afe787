"""The run's request as this pytest session has it (rig.request): the file ``rig matrix``
wrote (``--rig-request``), or one made from the session's own ``--rig-*`` options."""

from __future__ import annotations

from pathlib import Path

import pytest

from .. import config, options, variants
from ..request import MatrixRequest


def request_of(config_: pytest.Config) -> MatrixRequest:
    """The run's request: the file ``rig`` wrote, or one made from this pytest's own options."""
    got = getattr(config_, "_rig_request", None)
    if got is None:
        path = config_.getoption("rig_request")
        if path:
            got = MatrixRequest.load(path)
        else:
            values = {o.dest: config_.getoption(f"rig_{o.dest}") for o in options.MATRIX}
            got = MatrixRequest.from_options(values, command="pytest " + " ".join(config_.invocation_params.args))
        config_._rig_request = got  # type: ignore[attr-defined]
    return got


def out_of(config_: pytest.Config) -> Path:
    return Path(request_of(config_).out or Path(config_.rootpath) / "reports")


def negotiators_of(config_: pytest.Config, var: variants.Variant | None) -> dict[str, str]:
    """The negotiators a case ran with, as the results record them."""
    req = request_of(config_)
    return {"js": (var and var.js) or req.negotiator_js or str(config.REFERENCE_NEGOTIATOR_JS),
            "py": (var and var.py) or req.negotiator_py or str(config.REFERENCE_NEGOTIATOR_PY)}
