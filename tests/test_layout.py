"""tests/ mirrors src/physbias/: every library module has its test module.

A module ``src/physbias/PKG/NAME.py`` is tested in ``tests/PKG/test_NAME.py`` (private modules
``_NAME.py`` in ``test_NAME.py``). Where one test module covers several library modules (a family
contract, or a private helper exercised through its user), ``COVERED_BY`` says which, and that test
module must import from the library module's package.
"""

from __future__ import annotations

import re
from pathlib import Path

import physbias

SRC = Path(physbias.__file__).parent
TESTS = Path(__file__).parent

COVERED_BY = {
    "_io.py": "test_report.py",  # atomic writes of the results folder
    "_progress.py": "test_train.py",
    "_version.py": "test_cli.py",  # --version
    "_compile_cache.py": "test_compile_cache.py",
    "_ode.py": "dynamics/test_integrators.py",  # solve_adaptive, step checks
    "sweep.py": "test_sweep.py",
    # one contract over every bias mechanism (exact when hard, reducing the violation when soft)
    "bias/penalty.py": "bias/test_base.py",
    "bias/residual.py": "bias/test_base.py",
    "bias/symmetrize.py": "bias/test_base.py",
    "evidence/features.py": "evidence/test_linear.py",  # bases are tested through their evidence
    "evidence/curvature.py": "evidence/test_laplace.py",  # curvatures against the evidence references
    "bias/invariance.py": "bias/test_invariance.py",
    "marglik.py": "evidence/test_laplace.py",
    "experiments/_config.py": "experiments/test_runner.py",
    "experiments/_registry.py": "experiments/test_registry.py",
    # every registered experiment: a small run with the property its table shows
    "experiments/chain_pendulum.py": "experiments/test_registry.py",
    "experiments/emlp_synthetic.py": "experiments/test_registry.py",
    "experiments/evidence_symmetry.py": "experiments/test_registry.py",
    "experiments/laplace_regression.py": "experiments/test_registry.py",
    "experiments/noethers_razor.py": "experiments/test_registry.py",
    "experiments/noether_networks.py": "experiments/test_registry.py",
    "experiments/neural_ivp.py": "experiments/test_registry.py",
    "experiments/ising.py": "experiments/test_registry.py",
    "experiments/hopfield.py": "experiments/test_registry.py",
    "experiments/ebm.py": "experiments/test_registry.py",
    "experiments/hamiltonian_flow.py": "experiments/test_registry.py",
    "experiments/diffusion_events.py": "experiments/test_registry.py",
    "experiments/select_demo.py": "experiments/test_registry.py",
    "systems/selection_tasks.py": "selection/test_rank.py",  # the tasks are the ranking's known answers
    "pde/neural_field.py": "pde/test_neural_ivp.py",  # the ansatz: walls, fit of its class
    "statphys/exact.py": "statphys/test_ising.py",  # Onsager and the transfer matrix
    "experiments/burgers.py": "experiments/test_registry.py",
    "experiments/laplace.py": "experiments/test_registry.py",
    "dynamics/algebras.py": "dynamics/test_conserved.py",  # generators of the conserved quantities
    "dynamics/symmetrized.py": "dynamics/test_conserved.py",
    "experiments/invariance_learning.py": "experiments/test_registry.py",
    "experiments/energy.py": "experiments/test_registry.py",
    "experiments/friction.py": "experiments/test_registry.py",
    "experiments/integrators.py": "experiments/test_registry.py",
    "experiments/rotation.py": "experiments/test_registry.py",
    "experiments/rpp.py": "test_cli.py",  # the CLI's end-to-end run
    "experiments/spring.py": "experiments/test_registry.py",
    "experiments/triangle.py": "experiments/test_registry.py",
    "experiments/gcnn_digits.py": "nn/test_gcnn.py",
    "groups/basis.py": "groups/test_groups.py",
    "groups/measure.py": "groups/test_groups.py",
    "groups/representations.py": "groups/test_groups.py",
    "systems/constraints.py": "dynamics/test_constrained.py",
    "systems/gyroscope.py": "systems/test_mechanics.py",
    "systems/registry.py": "systems/test_base.py",  # the energy contract runs over the registry
    "systems/symmetric_tasks.py": "nn/test_rpp.py",
}
PROJECT_TESTS = {"test_readme.py", "test_layering.py", "test_doctests.py", "test_layout.py"}
EXTRA_TESTS = {"bias/test_image_symmetry.py"}  # ImageSymmetry (bias/symmetry.py), a test of its own


def _library_modules() -> list[str]:
    return sorted(
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "__init__.py" and "egg-info" not in str(p)
    )


def _own_test(module: str) -> str:
    path = Path(module)
    return str(path.with_name("test_" + path.name.lstrip("_")))


def test_every_library_module_has_a_test_module():
    missing = []
    for module in _library_modules():
        test = COVERED_BY.get(module, _own_test(module))
        if not (TESTS / test).is_file():
            missing.append(f"{module}: expected tests/{test}")
    assert missing == []


def test_a_covering_test_module_imports_from_the_module_s_package():
    for module, test in COVERED_BY.items():
        package = ".".join(["physbias", *Path(module).parent.parts])
        text = (TESTS / test).read_text()
        assert re.search(rf"(from|import) {re.escape(package)}\b", text), (
            f"tests/{test} never imports {package}"
        )


def test_every_test_module_has_a_library_counterpart():
    own = {_own_test(m) for m in _library_modules()}
    tests = {str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")}
    stray = tests - own - set(COVERED_BY.values()) - PROJECT_TESTS - EXTRA_TESTS
    assert stray == set()
