"""The import contract of DESIGN.md: modules import downward only, with no cycles.

Layers, lowest first (a module may import its own component and any lower layer):

    0  _io, _version, _progress, _ode, _linalg, _activations, _mlp, _compile_cache   ground-floor helpers
    1  data, groups                            plain arrays, groups as data
    2  systems                                 simulated systems and tasks
    3  bias, nn, dynamics, evidence, pde, ...  models and mechanisms (siblings, but acyclic)
    4  train, losses, metrics, report, ...     fitting, evaluating, writing, selecting
    5  experiments                             composition of the public API
    6  sweep, cli                              many runs; the command line

Experiments import other components only through their public surface (``..dynamics``, not
``..dynamics.models`` or a private ``_module``).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import physbias

LAYERS = {
    "_io": 0,
    "_version": 0,
    "_progress": 0,
    "_compile_cache": 0,
    "_ode": 0,
    "_linalg": 0,
    "_activations": 0,
    "_mlp": 0,
    "data": 1,
    "groups": 1,
    "systems": 2,
    "bias": 3,
    "nn": 3,
    "dynamics": 3,
    "evidence": 3,
    "pde": 3,
    "statphys": 3,
    "flows": 3,
    "gp": 3,
    "bounds": 3,
    "diffusion": 3,
    "train": 4,
    "losses": 4,
    "metrics": 4,
    "report": 4,
    "experiments": 5,
    "serialization": 4,
    "marglik": 4,
    "selection": 4,
    "sweep": 6,
    "cli": 6,
}
PUBLIC_ONLY = {"experiments"}  # components that may use only the public surface of the others


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path, root: Path, package: str):
    """``(line, imported module parts relative to the package)`` for every import in ``path``."""
    here = _module_name(path, root)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == package:
                target = node.module.split(".")[1:]
            else:
                continue
            if node.module is None or not target:  # `from . import a, b`: each name is a module
                for alias in node.names:
                    yield node.lineno, [*target, alias.name]
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package:
                    yield node.lineno, alias.name.split(".")[1:]


def layering_violations(root: Path, layers=LAYERS, public_only=PUBLIC_ONLY) -> list[str]:
    """Every upward import, unknown component, private/deep import from an experiment, and
    import cycle between components under the package folder ``root``."""
    package = root.name
    problems, edges = [], {}
    for path in sorted(root.rglob("*.py")):
        here = _module_name(path, root)
        if not here:  # the package's __init__ re-exports the public API
            continue
        src = here[0]
        for line, target in _imports(path, root, package):
            if not target:
                continue
            dst = target[0]
            where = f"{path.relative_to(root)}:{line} imports {'.'.join([package, *target])}"
            if dst == src:
                continue
            if src not in layers or dst not in layers:
                problems.append(f"{where}: component not in the layer map")
                continue
            if layers[dst] > layers[src]:
                problems.append(f"{where}: upward ({src} is layer {layers[src]}, {dst} is {layers[dst]})")
            if src in public_only and (len(target) > 1 or dst.startswith("_")):
                if (root / dst).is_dir() or dst.startswith("_"):
                    problems.append(f"{where}: not the public surface (import from {package}.{dst})")
            edges.setdefault(src, set()).add(dst)
    # Cycles between components (siblings of one layer may import each other, but not both ways).
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                problems.append("import cycle: " + " -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return problems


def test_physbias_imports_downward_only():
    root = Path(physbias.__file__).parent
    assert layering_violations(root) == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize(
    "files, expected",
    [
        # systems (layer 2) reaching up into dynamics (layer 3), as mechanics.py once did
        ({"systems/mechanics.py": "from ..dynamics.integrators import rollout\n"}, "upward"),
        # a function-level import is still an import
        ({"groups/x.py": "def f():\n    from physbias.train import fit\n"}, "upward"),
        # an experiment reaching past the public surface
        ({"experiments/spring.py": "from ..dynamics.models import HNN\n"}, "public surface"),
        ({"experiments/spring.py": "from .._io import atomic_write_text\n"}, "public surface"),
        # two siblings importing each other
        ({"nn/a.py": "from ..bias import X\n", "bias/b.py": "from ..nn import Y\n"}, "import cycle"),
        ({"newthing/a.py": "from ..data import X\n"}, "layer map"),
    ],
)
def test_the_contract_catches_a_violation(tmp_path, files, expected):
    base = {
        "__init__.py": "",
        "systems/__init__.py": "",
        "dynamics/__init__.py": "",
        "groups/__init__.py": "",
        "experiments/__init__.py": "",
        "nn/__init__.py": "",
        "bias/__init__.py": "",
        "data.py": "",
        "train.py": "",
        "_io.py": "",
    }
    root = _write(tmp_path / "physbias", {**base, **files})
    problems = layering_violations(root)
    assert any(expected in p for p in problems), problems


def test_the_contract_allows_downward_imports(tmp_path):
    files = {
        "__init__.py": "from .train import fit\n",
        "train.py": "from .data import Dataset\nfrom . import _io\n",
        "data.py": "import numpy\n",
        "_io.py": "",
        "dynamics/__init__.py": "from .models import HNN\n",
        "dynamics/models.py": "from ..systems.mechanics import split_state\n",
        "systems/__init__.py": "",
        "systems/mechanics.py": "from .._io import atomic_write_text\n",
        "experiments/__init__.py": "",
        "experiments/spring.py": (
            "from ..dynamics import HNN\nfrom ..train import fit\nfrom ._config import x\n"
        ),
        "experiments/_config.py": "",
    }
    assert layering_violations(_write(tmp_path / "physbias", files)) == []
