"""The architecture of docs/architecture.md, checked: one-way layers, no import
cycle, small modules. A back-edge fails ``make test`` with the offending
import chain (import-linter's report), not a reviewer's memory.

The checks run in a subprocess whose path starts with this checkout (and its
operator/ directory), so they judge these sources, whatever copy of podsup
an editable install points at.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"podsup": ROOT / "podsup", "podsup_operator": ROOT / "operator" / "podsup_operator"}
#: A module longer than this does more than one thing: split it by concern.
MAX_MODULE_LINES = 400


def _run(code: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "operator")]))
    return subprocess.run([sys.executable, *code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_import_linter_contracts_hold():
    """The contracts in pyproject.toml: layers (cli > loop | plugins > host >
    core > names, every podsup module in one), plug-ins never import the
    loop, the core does no I/O, pure operator builders, metrics API and
    reconcile independent."""
    proc = _run(["-c", "import sys; from importlinter.cli import lint_imports_command; "
                       "sys.argv = ['lint-imports', '--no-cache']; lint_imports_command()"])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


CYCLES = """
import sys
import grimp

graph = grimp.build_graph("podsup", "podsup_operator", cache_dir=None)
index, low, stack, on_stack, found = {}, {}, [], set(), []

def visit(start):
    # iterative Tarjan: strongly connected components of the module graph
    work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
    index[start] = low[start] = len(index)
    stack.append(start); on_stack.add(start)
    while work:
        node, edges = work[-1]
        for nxt in edges:
            if nxt not in index:
                index[nxt] = low[nxt] = len(index)
                stack.append(nxt); on_stack.add(nxt)
                work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                break
            if nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        else:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop(); on_stack.discard(member); component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

for module in sorted(graph.modules):
    if module not in index:
        visit(module)
for component in found:
    print("import cycle among:", ", ".join(component))
sys.exit(1 if found else 0)
"""


def test_no_import_cycle_anywhere():
    """Not even one a lazy (function-level) import hides: each is a cycle the
    layers would have to be bent around."""
    proc = _run(["-c", CYCLES])
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_no_module_over_400_lines():
    long = []
    for package, path in PACKAGES.items():
        for module in sorted(path.rglob("*.py")):
            lines = len(module.read_text(encoding="utf-8").splitlines())
            if lines > MAX_MODULE_LINES:
                long.append(f"{module.relative_to(ROOT)}: {lines} lines")
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split by concern): " + "; ".join(long)
