"""The shape of the package, read from its source: import graph, sizes, deferred imports, the CLI's import cost.

Every check walks the AST of every module under ``planner/`` (function bodies included), so a new
module is covered without touching this file. Imports under ``if TYPE_CHECKING:`` never run and
are left out. A module that does ``import planner`` and reads ``planner.pipeline`` (the CLI: the
package loads its submodules on first use) depends on ``planner.pipeline`` as if it imported it.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import planner

PACKAGE = Path(planner.__file__).resolve().parent
MAX_MODULE_LINES = 900
MAX_FUNCTION_LINES = 100  # lines of code, the docstring left out
# heavy third-party packages: never loaded by `import planner.cli` or `planner --help` (each costs 0.1-1 s to import)
HEAVY = ("osmnx", "matplotlib", "sklearn", "dask", "distributed", "folium", "rasterio", "geopandas", "pandas",
         "shapely", "scipy", "pyproj", "networkx", "openpyxl", "highspy", "numpy")
# imports allowed inside functions: heavy or optional third-party packages, and platform-only modules
DEFERRED_OK = frozenset({
    *HEAVY, "mpl_toolkits", "mplfonts", "branca", "playwright", "osmium", "tqdm",
    "fcntl", "msvcrt", "ctypes", "winreg",  # one operating system only
})


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, str | None]]:
    """Every import that runs, with the name of the function it sits in (None at module or class level)."""
    found: list[tuple[ast.Import | ast.ImportFrom, str | None]] = []

    def visit(node: ast.AST, func: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit(other, func)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, func))
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            visit(child, inner)

    visit(tree, None)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Return the modules of `planner` an import statement loads (relative imports and packages resolved).

    ``from pkg import x`` loads the submodule ``pkg.x`` when there is one, else it reads ``x`` from ``pkg``.
    """
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    if node.level == 0:
        base = node.module or ""
    else:
        package = module if _is_package(module) else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    reads_base = len(subs) < len(node.names) and base in MODULES
    return [*subs, *([base] if reads_base else [])]


def _lazy_targets(tree: ast.AST, imports: list[tuple[ast.Import | ast.ImportFrom, str | None]]) -> set[str]:
    """Return the submodules read as ``planner.<name>`` by a module that does ``import planner`` (loaded on first use)."""
    if not any(isinstance(node, ast.Import) and any(a.name == "planner" and a.asname is None for a in node.names)
               for node, _ in imports):
        return set()
    return {f"planner.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "planner" and f"planner.{n.attr}" in MODULES}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = _imports(tree)
        targets = {t for node, _ in imports for t in _targets(name, node)} | _lazy_targets(tree, imports)
        graph[name] = targets - {name}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import circle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = dfs(start)
            if found:
                return found
    return None


# ---------------------------------------------------------------------------------------------- the checker itself


def test_cycle_finder_and_import_resolution():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("from . import settings\nfrom .io import read_vector\nimport planner.network\n"
                     "def f():\n    from ._errors import PlannerError\n"
                     "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import maps\n")
    found = [(sorted(_targets("planner.coverage", node)), func) for node, func in _imports(tree)]
    assert found == [(["planner.settings"], None), (["planner.io"], None), (["planner.network"], None),
                     (["planner._errors"], "f"), ([], None)]
    lazy = ast.parse("import planner\ndef f():\n    return planner.pipeline.run_case, planner.__version__\n")
    assert _lazy_targets(lazy, _imports(lazy)) == {"planner.pipeline"}
    unbound = ast.parse("from . import settings\nplanner = None\nplanner.pipeline\n")
    assert _lazy_targets(unbound, _imports(unbound)) == set()


def test_the_cli_reads_the_analysis_modules_through_the_lazy_package():
    """The CLI imports `planner` and uses ``planner.pipeline`` etc., so its commands depend on them in the graph."""
    assert {"planner.pipeline", "planner.exports", "planner.scenarios", "planner.batch", "planner.io",
            "planner.maps"} <= _graph()["planner.cli"]
    importers = {name for name, deps in _graph().items() if "planner.cli" in deps}
    assert importers == {"planner.__main__"}, "only `python -m planner` imports the CLI (the top of the flow)"


# ---------------------------------------------------------------------------------------------- the package


def test_no_import_circle():
    """No module imports itself through others, counting imports inside functions."""
    cycle = _find_cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_module_over_900_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = (node.end_lineno or node.lineno) - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= (first.end_lineno or first.lineno) - first.lineno + 1
    return lines


def test_no_function_over_100_lines():
    long = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > MAX_FUNCTION_LINES:
                long[f"{name}.{node.name} (line {node.lineno})"] = _code_lines(node)
    assert not long, f"functions over {MAX_FUNCTION_LINES} code lines: {long}"


def test_imports_inside_functions_only_for_optional_heavy_packages():
    """`planner` modules are imported at the top; a function imports only an optional or heavy third-party package."""
    offenders = []
    for name, path in MODULES.items():
        for node, func in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if func is None:
                continue
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                roots = {"planner"}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = {a.name.split(".")[0] for a in node.names}
            if not roots <= DEFERRED_OK:
                offenders.append(f"{name}.{func} (line {node.lineno}): {ast.unparse(node)}")
    assert not offenders, "imports inside functions:\n" + "\n".join(offenders)


def test_every_public_exception_is_exported():
    from planner import _errors

    classes = {n for n, obj in vars(_errors).items()
               if inspect.isclass(obj) and issubclass(obj, planner.PlannerError) and not n.startswith("_")}
    assert classes, "no exception found"
    missing = {n for n in classes if getattr(planner, n, None) is not getattr(_errors, n)}
    assert not missing, f"not re-exported by planner/__init__.py: {sorted(missing)}"
    assert classes <= set(planner.__all__)


def test_submodules_load_on_first_use():
    code = ("import sys, planner; before = sorted(m for m in sys.modules if m.startswith('planner.'));"
            "from planner import datasets; import planner.settings as s;"
            "ok = planner.pipeline.__name__ == 'planner.pipeline' and 'network' in dir(planner);"
            "import json; print(json.dumps([before, ok, planner.__version__]))")
    before, ok, version = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                                    text=True).stdout)
    assert before == ["planner._errors"]  # even the version (importlib.metadata) is read on first use
    assert ok and version == planner.__version__
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        planner.nonesuch  # noqa: B018


def test_help_imports_no_heavy_package():
    """``import planner.cli``, ``planner --help``, ``planner version`` and each command's ``--help`` import no HEAVY package."""
    code = (
        "import json, sys\n"
        f"def heavy(): return sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "from planner.cli import app\n"
        "on_import = heavy()\n"
        "from typer.testing import CliRunner\n"
        "runs = [CliRunner().invoke(app, args) for args in (['--help'], *([c, '--help'] for c in\n"
        "        ('coverage', 'run', 'compare', 'site', 'grid', 'batch', 'version')))]\n"
        "runs.append(CliRunner().invoke(app, ['version']))\n"
        "pydantic = 'pydantic' in sys.modules\n"
        "print(json.dumps([[r.exit_code for r in runs], runs[1].output, on_import, heavy(), pydantic]))\n"
    )
    codes, coverage_help, on_import, heavy, pydantic = json.loads(subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert codes == [0] * 9
    assert "coverage [OPTIONS]" in coverage_help and "--institutions" in coverage_help
    assert on_import == [], f"`import planner.cli` imports {on_import}"
    assert heavy == [], f"`planner --help` imports {heavy}"
    assert not pydantic, "`planner <command> --help` or `planner version` imports pydantic (an absent --help; see cli.app)"
