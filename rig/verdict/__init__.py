"""The verdict of a case, as a pure function of what was recorded.

Recorded events -> checks -> first failure -> finding match -> outcome:

1. rig.case writes down what it asked for (a :class:`Ledger`); the peers and the stub
   record what happened (events, the message log, final snapshots).
2. :func:`checks` turns these into checks with stable ids, integrity first, then the role
   invariants, then the end state (_checks.py; :func:`role_checks` is also what ends a case
   early in rig.case).
3. The first failure is the one that ended the steps (an error, a timeout, a broken
   invariant), else the first failed check (:func:`first_failed_check`).
4. :func:`judge` matches it against the findings of the cell (rig.findings): explained,
   it is ``xfailed``; a first failure that is no finding's is read against the rig's own
   record of the API calls that rejected before it (:func:`run_rejections`), since a
   negotiator that drops its errors leaves the browser's error only there; with anything
   else unexplained (:func:`unexplained`), ``failed``; a pass where a strict finding
   expects a failure, ``xpassed``; a passed cell notes the findings not seen on its
   versions (_judge.py).
5. :func:`case_verdict` is the whole path for a finished case, with the outcomes no finding
   decides: ``unsupported`` before it ran, ``error`` for a case with an injected fault.

Nothing here touches a browser: every step is unit-tested on recorded data, and a kept
case file is judged again the same way (suites/unit/test_findings.py).
"""

from ..model import Glare
from ._checks import (
    ROLES,
    ErrorReport,
    Event,
    Ledger,
    Timeline,
    cause_of_error,
    checks,
    error_reports,
    final_checks,
    first_failed_check,
    glare_checks,
    negotiation_checks,
    other,
    plan_checks,
    rejections,
    role_checks,
    run_errors,
    run_rejections,
    stub_messages,
)
from ._judge import (
    API_METHODS,
    CaseVerdict,
    Judgement,
    Recorded,
    applying,
    case_verdict,
    expectation,
    judge,
    not_seen,
    unexplained,
)

__all__ = [
    "API_METHODS", "ROLES", "CaseVerdict", "ErrorReport", "Event", "Glare", "Judgement", "Ledger", "Recorded",
    "Timeline", "applying", "case_verdict", "cause_of_error", "checks", "error_reports", "expectation",
    "final_checks", "first_failed_check", "glare_checks", "judge", "negotiation_checks", "not_seen", "other",
    "plan_checks", "rejections", "role_checks", "run_errors", "run_rejections", "stub_messages", "unexplained",
]
