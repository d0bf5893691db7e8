"""The data decide: rank candidate biases on a data set by their evidence (``physbias select``).

- :func:`select_regression`: symmetries of a regression table (parities, permutations of input
  groups, rotations of 2-D/3-D input vectors, scalings), hard and soft;
- :func:`select_dynamics`: dynamics models of trajectories (Neural ODE, second-order NODE,
  Hamiltonian and Lagrangian networks, and Noether's razor: a Hamiltonian network symmetrised
  over a learned conserved quantity);
- :mod:`~physbias.selection.candidates`: the candidates by name, and the models they build.

Ranking uses the Laplace evidence of networks trained by marginal likelihood, averaged over
seeds, and needs no validation data (seed 003's "automatic inductive bias").
"""

from .candidates import (
    CONSERVATIVE,
    DYNAMICS_NAMES,
    NOETHER_SAMPLES,
    REGRESSION_NAMES,
    Candidate,
    Layout,
    build_dynamics_model,
    build_regression_model,
    parse_candidate,
    propose_dynamics,
    propose_regression,
    rotation_generators,
)
from .rank import Selection, SelectionSettings, select_dynamics, select_regression

__all__ = [
    "CONSERVATIVE",
    "Candidate",
    "DYNAMICS_NAMES",
    "Layout",
    "NOETHER_SAMPLES",
    "REGRESSION_NAMES",
    "Selection",
    "SelectionSettings",
    "build_dynamics_model",
    "build_regression_model",
    "parse_candidate",
    "propose_dynamics",
    "propose_regression",
    "rotation_generators",
    "select_dynamics",
    "select_regression",
]
