"""The layers of rig/ (docs/design.md, "Layers"): every import, at module level or inside a
function, goes to the importer's own layer or one below it, and no imports go round in a
cycle. Read from the source with ast, so nothing is imported."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

RIG = Path(__file__).resolve().parents[2] / "rig"

FLOOR, DATA, HOST, ENGINE, PAGES, RUN, TOOLS, CLI = range(8)
NAMES = ("floor", "data", "host", "engine", "pages", "run", "tools", "cli")

#: Every module of rig/ and its layer; a new module fails the test until it is placed here.
LAYER = {
    "rig": FLOOR, "rig.errors": FLOOR, "rig.vocab": FLOOR, "rig.config": FLOOR, "rig.waits": FLOOR,
    "rig.peerspec": DATA, "rig.events": DATA, "rig.snapshot": DATA, "rig.model": DATA, "rig.versions": DATA, "rig.evidence": DATA, "rig.roles": DATA,
    "rig.scenarios": DATA, "rig.capabilities": DATA, "rig.delivery": DATA, "rig.variants": DATA,
    "rig.steps": DATA,
    "rig.findings": DATA, "rig.shards": DATA,
    "rig.hostnet": HOST, "rig.slots": HOST, "rig.processes": HOST, "rig.runs": HOST, "rig.usage": HOST,
    "rig.signaling": ENGINE, "rig.peers": ENGINE, "rig.peers.base": ENGINE, "rig.peers.browser": ENGINE,
    "rig.peers.aiortc_peer": ENGINE, "rig.peers.aiortc_signaler": ENGINE, "rig.peers.aiortc_instrumentation": ENGINE,
    "rig.peers.aiortc_media": ENGINE, "rig.peers.page_events": ENGINE, "rig.peers.host": ENGINE, "rig.remote": ENGINE, "rig.drivers": ENGINE,
    "rig.install": ENGINE, "rig.faults": ENGINE, "rig.verdict": ENGINE, "rig.verdict._checks": ENGINE,
    "rig.signaling.messages": ENGINE, "rig.signaling.room": ENGINE, "rig.signaling.stub": ENGINE,
    "rig.signaling.stub_host": ENGINE,
    "rig.install.__main__": ENGINE, "rig.install.source": ENGINE, "rig.install.debian": ENGINE,
    "rig.install.npm": ENGINE, "rig.install.cft": ENGINE, "rig.install.snapshots": ENGINE, "rig.install.mozilla": ENGINE,
    "rig.install.cache": ENGINE, "rig.install.launch": ENGINE,
    "rig.peers.host.__main__": ENGINE, "rig.peers.host.protocol": ENGINE, "rig.peers.host.server": ENGINE,
    "rig.peers.host.client": ENGINE,
    "rig.verdict._judge": ENGINE, "rig.execute": ENGINE, "rig.case": ENGINE,
    "rig.templates": PAGES, "rig.sequence": PAGES, "rig.diagram": PAGES, "rig.report": PAGES,
    "rig.report._view": PAGES, "rig.report.index": PAGES, "rig.report.case_page": PAGES, "rig.report.reproduce": PAGES, "rig.report.pass_share": PAGES, "rig.junit": PAGES,
    "rig.summary": PAGES, "rig.findings_doc": PAGES,
    "rig.results": RUN, "rig.options": RUN, "rig.pytest_plugin": RUN, "rig.bisect": RUN,
    "rig.request": RUN, "rig.matrix": RUN, "rig.mutants_run": RUN, "rig.mutants": RUN, "rig.plugin": RUN,
    "rig.plugin.signals": RUN, "rig.plugin.run": RUN, "rig.plugin.finish": RUN, "rig.plugin.peers": RUN,
    "rig.soak": RUN, "rig.debugging": RUN, "rig.doctor": RUN,
    "rig.compare": TOOLS, "rig.merge": TOOLS, "rig.history": TOOLS,
    "rig.cli": CLI, "rig.__main__": CLI,
}


def module_name(path: Path, root: Path = RIG) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str], root: Path = RIG) -> set[str]:
    """The rig modules ``path`` imports anywhere in it (functions and ``if TYPE_CHECKING`` too):
    ``from . import x`` names module x, ``from .x import y`` names x unless y is a module."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def graph(root: Path = RIG) -> dict[str, set[str]]:
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {name: imports(path, set(paths), root) for name, path in paths.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]], layer: dict[str, int]) -> list[str]:
    return [f"{a} ({NAMES[layer[a]]}) imports {b} ({NAMES[layer[b]]})"
            for a in sorted(edges) for b in sorted(edges[a]) if layer[b] > layer[a]]


@functools.cache
def _rig() -> dict[str, set[str]]:
    return graph()


def test_every_module_has_a_layer() -> None:
    modules = set(_rig())
    assert sorted(modules - set(LAYER)) == [], "place the new module in LAYER (and in docs/design.md)"
    assert sorted(set(LAYER) - modules) == [], "a module in LAYER is gone: remove it"


def test_no_import_cycle() -> None:
    assert cycles(_rig()) == []


def test_no_import_from_a_higher_layer() -> None:
    assert upward(_rig(), LAYER) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_checks_see_function_level_imports_cycles_and_upward_imports(tmp_path: Path) -> None:
    root = _write(tmp_path / "rig", {
        "__init__.py": "", "low.py": "def f():\n    from . import high\n", "high.py": "from .low import f\n",
        "peers/__init__.py": "", "peers/base.py": "from .. import low\nfrom ..high import g\n"})
    edges = graph(root)
    assert edges == {"rig": set(), "rig.low": {"rig.high"}, "rig.high": {"rig.low"}, "rig.peers": set(),
                     "rig.peers.base": {"rig.low", "rig.high"}}
    assert cycles(edges) == [["rig.high", "rig.low"]]
    assert upward(edges, {"rig": 0, "rig.low": 0, "rig.high": 1, "rig.peers": 1, "rig.peers.base": 1}) == [
        "rig.low (floor) imports rig.high (data)"]



def test_outside_rig_peers_only_the_peer_abstraction_comes_from_peers_base() -> None:
    """The shared basics (errors, words, specs, waits) come from the floor, not from a peer layer."""
    abstraction = {"Peer", "PeerEvent", "PeerTimeout"}
    wrong = []
    for path in sorted(RIG.rglob("*.py")):
        if module_name(path).startswith("rig.peers"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("peers.base"):
                wrong += [f"{module_name(path)}: {a.name}" for a in node.names if a.name not in abstraction]
    assert wrong == []
