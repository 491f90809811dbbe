"""The layering the project is built on, checked on the source: the ground floor (core/) imports
nothing of the project, every package imports only packages below it, and no module imports
itself back through others (function-level imports count too: a lazy import is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Lower layers first; a package may import its own layer's package and anything below. The
# leaderboard reads run records through core alone (what methods and attacks add to a run file is
# recorded in it: core.runcolumns, core.attackrecords), so it sits right above core and can
# import no task, model, method or attack.
LAYERS: list[set[str]] = [{"core"}, {"leaderboard"}, {"tasks"}, {"models"}, {"methods"}, {"attacks"},
                          {"harness", "analysis", "hydra_plugins"}, {"studies"}]
# studies/: commands built on the runner (fidelity check, spectrum analysis, mining); nothing
# below imports them.
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for top in LAYER_OF:
        for path in sorted((REPO / top).rglob("*.py")) if (REPO / top).is_dir() else []:
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def runtime_nodes(tree: ast.AST):
    """Every node, less the bodies of `if TYPE_CHECKING:` blocks (imports for type hints only
    never run, so they make no circle)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `path` imports anywhere in it (top level or inside functions)."""
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `from pkg.mod import func`: the module is pkg.mod
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_every_project_package_has_a_layer() -> None:
    tops = {p.name for p in REPO.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"}
    tops |= {p.name for p in REPO.iterdir() if p.is_dir() and p.name == "hydra_plugins"}
    assert tops <= set(LAYER_OF), f"place the new package(s) {sorted(tops - set(LAYER_OF))} in LAYERS"


def test_packages_import_only_their_own_layer_or_below() -> None:
    modules = project_modules()
    wrong = []
    for name, path in modules.items():
        layer = LAYER_OF[name.split(".")[0]]
        for target in imports_of(path, modules):
            if LAYER_OF[target.split(".")[0]] > layer:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_core_imports_nothing_of_the_project() -> None:
    modules = project_modules()
    outside = [f"{n} imports {t}" for n, p in modules.items() if n.split(".")[0] == "core"
               for t in imports_of(p, modules) if t.split(".")[0] != "core"]
    assert not outside, "\n".join(outside)


def test_no_import_circles() -> None:
    modules = project_modules()
    graph = {name: imports_of(path, modules) - {name} for name, path in modules.items()}
    # A package's __init__ is imported by each of its submodules anyway: an edge to one's own
    # parent package is not a circle unless the parent imports the child back.
    circles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not circles, "\n".join(circles)


def test_the_checker_sees_a_circle(tmp_path: Path) -> None:
    """The circle check can fail: two modules importing each other inside functions are found."""
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("def f():\n    from b import g\n")
    b.write_text("def g():\n    import a\n")
    c.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n")
    modules = {"a": a, "b": b, "c": c}
    assert imports_of(a, modules) == {"b"} and imports_of(b, modules) == {"a"}
    assert imports_of(c, modules) == {"b"}  # the type-only import is not a runtime one


def test_the_readme_layout_table_is_these_layers() -> None:
    """README.md's layout table lists every layered package at its layer, and no other numbered row."""
    import re

    rows = re.findall(r"^\| (\d+) \| `(\w+)/` \|", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.M)
    assert {pkg: int(layer) for layer, pkg in rows} == LAYER_OF
