"""The package's shape: no import cycle anywhere in ``adcore`` (lazy imports inside functions included), the
library never imports the chapters, and the runner knows no config kind."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "adcore"


def _module(path: Path) -> str:
    parts = ("adcore", *path.relative_to(PKG).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the adcore modules it imports, from every import statement in its source."""
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[mod] |= {t for t in targets if t in modules and t != mod}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_adcore():
    graph = import_graph()
    assert "adcore.chapters.rethinking" in graph and graph["adcore.chapters"] >= {"adcore.chapters.rethinking"}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_library_knows_no_chapter():
    graph = import_graph()
    users = {m for m, deps in graph.items() if any(d.startswith("adcore.chapters") for d in deps)}
    assert users <= {"adcore.__main__"} | {m for m in graph if m.startswith("adcore.chapters")}, users
    kinds = {"adcore.experiment", "adcore.deepsad", "adcore.clad"}
    assert not graph["adcore.runner"] & kinds and not graph["adcore.config"] & kinds


def _private_imports(source: str) -> list[str]:
    """Private names (one leading underscore) that a module imports from another module."""
    return [a.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) for a in node.names
            if a.name.startswith("_") and not a.name.startswith("__")]


def test_no_module_imports_another_modules_private_names():
    assert _private_imports("from .data import _N_CLASSES, DATASETS\nfrom ._version import __version__") == \
        ["_N_CLASSES"]  # the checker sees one
    found = {str(p.relative_to(PKG)): names for p in PKG.rglob("*.py") if (names := _private_imports(p.read_text()))}
    assert found == {}


def test_one_function_reads_the_environment():
    """environment.env alone reads os.environ (others only set it for child processes, or restore what they set);
    every variable adcore reads is listed in environment.ENV, and the data root is asked of environment.data_env."""
    from adcore.environment import ENV
    reads, names = {}, set()
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get",
                    "__getitem__") and ast.unparse(node.func.value) == "os.environ":
                reads.setdefault(str(p.relative_to(PKG)), []).append(ast.unparse(node.args[0]))
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" and isinstance(
                    node.ctx, ast.Load):
                reads.setdefault(str(p.relative_to(PKG)), []).append(ast.unparse(node.slice))
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "env" and node.args and isinstance(
                    node.args[0], ast.Constant):
                names.add(node.args[0].value)
    # the Ray shim's PYTHONPATH: saved and restored around starting Ray, not a setting of adcore's
    assert reads == {"environment.py": ["name"], "runner.py": ["'PYTHONPATH'"]}
    assert names <= set(ENV) and {"ADCORE_DATA", "ADCORE_CACHE", "ADCORE_PROGRESS", "RAY_ADDRESS"} <= names
    readers = {str(p.relative_to(PKG)) for p in PKG.rglob("*.py") for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.Call) and ast.unparse(node) == "env('ADCORE_DATA')"}
    assert readers == {"environment.py"}
