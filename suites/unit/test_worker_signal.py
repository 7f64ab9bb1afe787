"""A worker that gets a signal tells its controller at once (rig.pytest_plugin, docs/design.md
"Ending a run"): a note naming the signal and the worker, then SIGUSR1 to the controller, which
forwards the signal to its other workers and ends its session naming that worker; a note that
comes while the run is already ending is an echo and changes nothing. Each check runs in a
fresh interpreter: the plugin's signal state is per process, and this one is a pytest session
(a worker, under xdist) that must not think itself interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

from rig import config

PRELUDE = textwrap.dedent("""
    import json, os, signal, sys, tempfile
    from pathlib import Path
    from rig import runs
    from rig.plugin import signals as pp
    got = []
    forwarded = []
    pp.forward_to_workers = lambda signum, but=None: forwarded.append((signum, but))
""")


def _run(body: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], cwd=config.ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_signalled_worker_leaves_a_note_and_wakes_its_controller() -> None:
    out = _run("""
        signal.pthread_sigmask(signal.SIG_BLOCK, {pp.WORKER_SIGNALLED})  # kept pending, then taken below
        pp.SIG.parent = os.getpid()  # this process plays the controller as well
        pp.tell_controller(signal.SIGTERM, "gw3")
        info = signal.sigtimedwait({pp.WORKER_SIGNALLED}, 5)
        got.append(info.si_signo if info else None)
        note = pp.note_path(os.getpid(), os.getpid())
        print(json.dumps({"got": got, "note": note.read_text(), "tmp_left": note.with_name(note.name + ".tmp").exists()}))
        note.unlink()
    """)
    assert out == {"got": [int(signal.SIGUSR1)], "note": f"{int(signal.SIGTERM)} gw3", "tmp_left": False}


def test_the_controller_ends_the_run_naming_the_worker_and_spares_it_the_echo() -> None:
    out = _run("""
        pp.note_path(os.getpid(), 4242).write_text("15 gw1")
        try:
            pp.on_worker_signalled(pp.WORKER_SIGNALLED, None)
            raised = None
        except runs.Interrupted as exc:
            raised = exc.what()
        print(json.dumps({"raised": raised, "forwarded": forwarded, "status": pp.SIG.interrupted.status,
                          "notes_left": [p.name for p in Path(tempfile.gettempdir()).glob(f"glare-rig-signal-{os.getpid()}-*")]}))
    """)
    assert out == {"raised": "SIGTERM (to worker gw1)", "forwarded": [[15, 4242]], "status": 143, "notes_left": []}


def test_a_note_while_the_run_already_ends_is_an_echo() -> None:
    out = _run("""
        pp.SIG.signum = signal.SIGINT  # the controller had the signal itself and forwarded it
        pp.note_path(os.getpid(), 4243).write_text("2 gw0")
        pp.on_worker_signalled(pp.WORKER_SIGNALLED, None)
        print(json.dumps({"forwarded": forwarded, "origin": pp.SIG.origin,
                          "notes_left": [p.name for p in Path(tempfile.gettempdir()).glob(f"glare-rig-signal-{os.getpid()}-*")]}))
    """)
    assert out == {"forwarded": [], "origin": "", "notes_left": []}


def test_no_note_no_interruption() -> None:
    """A SIGUSR1 from anyone else, with no worker's note: nothing happens."""
    out = _run("""
        pp.on_worker_signalled(pp.WORKER_SIGNALLED, None)
        print(json.dumps({"forwarded": forwarded, "signum": pp.SIG.signum}))
    """)
    assert out == {"forwarded": [], "signum": None}
