"""Which library code a rule runs, so that Snakemake reruns a rule when that code changes.

A rule script imports one library function (a report rule also runs a notebook, whose code
cells count too); `library_modules` follows the `behaviorflow` imports of those sources transitively (every import statement in a module, including those inside
functions, is read from its syntax tree) and `code_version` hashes the contents of those module
files. A rule declares `params: code=...` with that hash, so Snakemake's params trigger reruns
exactly the rules whose code changed, and their dependants, and nothing else.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path

PACKAGE = "behaviorflow"
SRC = Path(__file__).resolve().parent  # src/behaviorflow


def module_file(name: str) -> Path | None:
    """The file of module `behaviorflow.x.y` (a module or a package's __init__), or None."""
    parts = name.split(".")[1:]
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _source(path: Path) -> str:
    """Python source of a file; for a notebook, its code cells (IPython magics left out)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text)["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))


def _imported(path: Path) -> set[str]:
    """`behaviorflow` modules imported anywhere in a file (packages on the way included)."""
    return {m for m in _imports_in(_source(path), str(path)) if module_file(m) is not None}


@functools.lru_cache(maxsize=None)
def _imports_in(source: str, filename: str) -> frozenset[str]:
    """The `behaviorflow` names one file's source imports, modules or not. Cached on the source
    text: the workflow asks for every rule's modules when it parses, which read the same modules'
    syntax trees some 900 times (4 of the 7 s of every Snakemake start, and of every cluster
    job's). An edited file misses the cache."""
    found = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")
                found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return frozenset(found)


def library_modules(*sources: str | Path) -> list[str]:
    """Every `behaviorflow` module the sources (scripts, notebooks) run: their imports, their
    imports' imports, and so on."""
    todo, seen = [m for src in sources for m in _imported(Path(src))], set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _imported(module_file(name)) - seen
    return sorted(seen)


def code_version(*sources: str | Path) -> str:
    """sha256 over the names and contents of the library modules the sources run (not their paths
    or times, so the same code gives the same version on any machine)."""
    h = hashlib.sha256()
    for name in library_modules(*sources):
        h.update(name.encode() + b"\0" + module_file(name).read_bytes() + b"\0")
    return h.hexdigest()[:16]
