"""The layering of the packages: pipeline/ at the bottom, detectors/ and generators/ above it,
benchmark/ on top. Nothing imports upward (at module level or inside a function)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEVEL = {"pipeline": 0, "detectors": 1, "generators": 1, "benchmark": 2}
# Known upward imports still to mend (file -> imported package), each with its reason.
KNOWN: set[tuple[str, str]] = set()
# Known pairs of modules that import each other (at module level or inside a function), each with its reason.
KNOWN_CYCLES: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    modules = {}
    for package in LEVEL:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def mutual_imports() -> set[tuple[str, str]]:
    """Pairs of our modules that import each other (anywhere in the file): an import cycle."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps |= {n for n in names if n in modules and n != name}
        graph[name] = deps
    return {tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph[b]}


def upward_imports() -> set[tuple[str, str]]:
    found = set()
    for package, level in LEVEL.items():
        for path in (REPO / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in LEVEL and top != package and LEVEL[top] >= level:
                        found.add((path.relative_to(REPO).as_posix(), top))
    return found


def test_nothing_imports_upward_or_sideways():
    assert upward_imports() <= KNOWN, sorted(upward_imports() - KNOWN)


def test_the_known_exceptions_still_exist():
    """An exception that was mended leaves the list."""
    assert KNOWN <= upward_imports()


def test_no_two_modules_import_each_other():
    assert mutual_imports() <= KNOWN_CYCLES, sorted(mutual_imports() - KNOWN_CYCLES)
    assert KNOWN_CYCLES <= mutual_imports(), "a mended cycle leaves KNOWN_CYCLES"
