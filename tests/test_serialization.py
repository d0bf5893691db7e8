"""Contract over every model class of the library: ``save`` then ``load`` gives back the same model.

Each entry of ``CASES`` builds one module from its class with non-default hyperparameters where the
class has them, plus a probe input. Every floating-point leaf is perturbed before saving, so a leaf
that is not written or not read back shows; the loaded module must have bit-identical leaves and
give bit-identical outputs on the probe, and a fresh module built with another key must not (else
the comparison proves nothing). ``test_every_model_class_is_under_contract`` fails when a class
exported by ``physbias.nn``, ``physbias.dynamics``, ``physbias.bias``, ``physbias.groups`` or
``physbias.evidence`` has
no case here.
"""

from __future__ import annotations

import inspect
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import physbias
import physbias.bias as bias
import physbias.dynamics as dynamics
import physbias.evidence as evidence
import physbias.groups as groups
import physbias.nn as nn
from physbias.groups import SO, Lorentz, O, S, Scalar, T, V, direct_product
from physbias.losses import mean_squared_error
from physbias.serialization import SerialisationError, load, load_metadata, save
from physbias.systems import DistanceConstraints

CHAIN = DistanceConstraints.chain((1.0, 1.0))


def _x(n):
    return lambda key: jax.random.normal(key, (n,))


def _image(c=1, size=9):
    return lambda key: jax.random.normal(key, (c, size, size))


def _pairs(n=4, d=3):
    return lambda key: jax.random.normal(key, (n, d))


def _emlp_input(key):
    return jax.random.normal(key, (6,))


# name -> (builder taking a key, probe-input builder taking a key, or None for non-callables)
CASES = {
    # physbias.nn: equivariant networks (rebuilt from their hyperparameters)
    "EMLP": (lambda k: nn.EMLP(2 * V, V, SO(3), width=30, depth=2, key=k, max_rank=1), _emlp_input),
    "EMLP-hidden": (
        lambda k: nn.EMLP(V + Scalar, T(2), O(3), depth=1, key=k, hidden=3 * V + 2 * Scalar + V**2),
        _x(4),
    ),
    "EMLP-product": (
        lambda k: nn.EMLP(V, Scalar, direct_product(SO(2), S(3)), width=20, depth=1, key=k),
        _x(5),
    ),
    "EMLPBlock": (lambda k: nn.EMLPBlock(2 * V, 2 * V + Scalar, Lorentz(), key=k, max_rank=1), _x(8)),
    "EquivariantLinear": (lambda k: nn.EquivariantLinear(V**2, V + Scalar, O(3), key=k), _x(9)),
    "EquivariantLinear-nobias": (
        lambda k: nn.EquivariantLinear(V, Scalar + V, SO(2), key=k, use_bias=False),
        _x(2),
    ),
    "GatedNonlinearity": (lambda k: nn.GatedNonlinearity(V + Scalar, SO(3)), _x(5)),
    "TensorProductBilinear": (
        lambda k: nn.TensorProductBilinear(2 * V + Scalar, V, SO(3), key=k, max_copies=1, scale=0.3),
        _x(7),
    ),
    "InvariantScalar": (
        lambda k: nn.InvariantScalar(nn.EMLP(V, Scalar, SO(3), width=12, depth=1, key=k)),
        _x(3),
    ),
    "ResidualPathway": (lambda k: nn.ResidualPathway(nn.EquivariantLinear(V, V, SO(3), key=k), key=k), _x(3)),
    "RPPPrior": (lambda k: nn.RPPPrior(equivariant=1e-3, flexible=3.0), None),
    # physbias.nn: convolutional and set networks (stored field by field)
    "P4CNN": (lambda k: nn.P4CNN(1, 3, width=2, depth=1, key=k, pool="mean"), _image()),
    "CNN": (lambda k: nn.CNN(1, 3, width=2, depth=1, key=k), _image()),
    "LiftingConv": (lambda k: nn.LiftingConv(1, 2, key=k, group="p4m"), _image()),
    "GroupConv": (lambda k: nn.GroupConv(2, 2, key=k), lambda key: jax.random.normal(key, (2, 4, 7, 7))),
    "DeepSets": (
        lambda k: nn.DeepSets(3, 2, width=8, depth=1, aggregation="mean", activation=jax.nn.tanh, key=k),
        _pairs(),
    ),
    "InteractionNetwork": (
        lambda k: nn.InteractionNetwork(3, 2, width=8, depth=1, rounds=1, key=k),
        _pairs(),
    ),
    "Standardized": (
        lambda k: nn.Standardized(eqx.nn.MLP(2, 1, 4, 1, key=k), np.array([2.0, 0.5]), np.array([0.3]), 1.5),
        _x(2),
    ),
    "ExpMapRotation": (lambda k: nn.ExpMapRotation(eqx.nn.MLP(2, 3, 4, 1, key=k)), _x(2)),
    "GramSchmidtRotation": (lambda k: nn.GramSchmidtRotation(eqx.nn.MLP(2, 6, 4, 1, key=k)), _x(2)),
    "RawMatrix": (lambda k: nn.RawMatrix(eqx.nn.MLP(2, 9, 4, 1, key=k)), _x(2)),
    "PositiveOutput": (lambda k: nn.PositiveOutput(eqx.nn.MLP(2, 1, 4, 1, key=k), floor=0.1), _x(2)),
    "SPDMatrixOutput": (lambda k: nn.SPDMatrixOutput(eqx.nn.MLP(2, 3, 4, 1, key=k), n=2, eps=0.01), _x(2)),
    # physbias.dynamics
    "NeuralODE": (lambda k: dynamics.NeuralODE(4, 8, 1, key=k, activation=jnp.tanh), _x(4)),
    "SecondOrderNODE": (lambda k: dynamics.SecondOrderNODE(4, 8, 1, key=k, damping=True), _x(4)),
    "HamiltonianNN": (lambda k: dynamics.HamiltonianNN(4, 8, 1, key=k), _x(4)),
    "QuadraticConservedQuantities": (
        lambda k: dynamics.QuadraticConservedQuantities(4, 2, key=k, init_std=0.3, scale=2.0),
        _x(4),
    ),
    "NeuralConservedQuantities": (
        lambda k: dynamics.NeuralConservedQuantities(4, 2, 8, 1, key=k, ode_steps=4),
        _x(4),
    ),
    "SymmetrizedHamiltonianNN": (
        lambda k: dynamics.SymmetrizedHamiltonianNN(
            dynamics.QuadraticConservedQuantities(4, 2, key=k, init_std=0.3), 8, 1, 4, key=k
        ),
        _x(4),
    ),
    "OneStepPredictor": (lambda k: dynamics.OneStepPredictor(2, 0.05, 8, 1, key=k), _x(2)),
    "NeuralEmbedding": (lambda k: dynamics.NeuralEmbedding(2, 3, 8, 1, key=k), _x(2)),
    "FlowMap": (
        lambda k: dynamics.FlowMap(dynamics.HamiltonianNN(4, 8, 1, key=k), 0.1, 3, dynamics.RK4()),
        _x(4),
    ),
    "HamiltonianNN-EMLP": (lambda k: nn.hamiltonian_emlp(V, SO(2), width=12, depth=1, key=k), _x(4)),
    "LagrangianNN": (lambda k: dynamics.LagrangianNN(4, 8, 1, key=k, regularization=0.1), _x(4)),
    "DeepLagrangianNN": (lambda k: dynamics.DeepLagrangianNN(4, 8, 1, key=k, eps=0.5), _x(4)),
    "ConstrainedHamiltonianNN": (lambda k: dynamics.ConstrainedHamiltonianNN(CHAIN, 8, 1, key=k), _x(8)),
    "ConstrainedLagrangianNN": (lambda k: dynamics.ConstrainedLagrangianNN(CHAIN, 8, 1, key=k), _x(8)),
    "Euler": (lambda k: dynamics.Euler(), None),
    "RK4": (lambda k: dynamics.RK4(), None),
    "Leapfrog": (lambda k: dynamics.Leapfrog(), None),
    "Yoshida4": (lambda k: dynamics.Yoshida4(), None),
    "ImplicitMidpoint": (lambda k: dynamics.ImplicitMidpoint(iterations=5), None),
    # physbias.bias: wrappers around a model, symmetries and priors
    "Symmetrized": (
        lambda k: bias.Symmetrized(eqx.nn.MLP(3, 1, 4, 1, key=k), bias.Permutation(3)),
        _x(3),
    ),
    "RelaxedSymmetrized": (
        lambda k: bias.RelaxedSymmetrized(
            eqx.nn.MLP(3, 3, 4, 1, key=k), bias.Permutation(3, equivariant=True), 0.3
        ),
        _x(3),
    ),
    "Canonicalized": (
        lambda k: bias.Canonicalized(eqx.nn.MLP(3, 1, 4, 1, key=k), bias.Permutation(3)),
        _x(3),
    ),
    "OddFunction": (lambda k: bias.OddFunction(eqx.nn.MLP(2, 2, 4, 1, key=k)), _x(2)),
    "RotationInvariant": (
        lambda k: bias.RotationInvariant(
            eqx.nn.MLP(bias.rotation_invariant_count(2, 3), 1, 4, 1, key=k), 2, 3
        ),
        _x(6),
    ),
    "EvenFunction": (lambda k: bias.EvenFunction(eqx.nn.MLP(2, 2, 4, 1, key=k)), _x(2)),
    "PhysicsResidual": (lambda k: bias.PhysicsResidual(jnp.sin, eqx.nn.MLP(2, 2, 4, 1, key=k)), _x(2)),
    "LearnedInvariance": (
        lambda k: bias.LearnedInvariance(eqx.nn.MLP(2, 2, 4, 1, key=k), extent=0.3, n_samples=4),
        _x(2),
    ),
    "SymmetryPenalty": (
        lambda k: bias.SymmetryPenalty(bias.Scaling(0.7, 1.3, degree=2.0), 0.5, samples=3),
        None,
    ),
    "Augmentation": (
        lambda k: bias.Augmentation(bias.Parity(odd=False), bias.Permutation(2), copies=2),
        None,
    ),
    "AugmentedLoss": (lambda k: bias.AugmentedLoss(mean_squared_error, bias.Parity()), None),
    "Permutation": (lambda k: bias.Permutation(4, equivariant=True), None),
    "Parity": (lambda k: bias.Parity(odd=False), None),
    "Scaling": (lambda k: bias.Scaling(0.5, 3.0, degree=2.0, norm="l2"), None),
    "Transformations": (
        lambda k: bias.Transformations([jnp.asarray, jnp.negative], outputs=[jnp.asarray, jnp.negative]),
        None,
    ),
    "ProductSymmetry": (lambda k: bias.Parity() * bias.Permutation(2), None),
    "MatrixSymmetry": (lambda k: bias.MatrixSymmetry(SO(3), V, V, n_samples=8, seed=3), None),
    "ImageSymmetry": (lambda k: bias.ImageSymmetry("p4m"), None),
    "LatticeGroup": (lambda k: groups.LatticeGroup("p4m"), None),
    # physbias.evidence: basis-function models, variational posteriors, Laplace results
    "RandomFourierFeatures": (lambda k: evidence.RandomFourierFeatures(2, 6, 3.0, key=k), _x(2)),
    "RBFFeatures": (lambda k: evidence.RBFFeatures(jax.random.normal(k, (4, 2)), 2.0), _x(2)),
    "SymmetrizedFeatures": (
        lambda k: evidence.SymmetrizedFeatures(
            evidence.RandomFourierFeatures(2, 6, key=k), bias.Parity(odd=False)
        ),
        _x(2),
    ),
    "InterpolatedFeatures": (
        lambda k: evidence.InterpolatedFeatures(
            evidence.RandomFourierFeatures(1, 6, key=k), bias.Parity(odd=False), 0.3
        ),
        _x(1),
    ),
    "BayesianLinearRegression": (
        lambda k: evidence.BayesianLinearRegression(evidence.RandomFourierFeatures(1, 6, key=k), 2.0, 0.3),
        None,
    ),
    "MatrixNormalPosterior": (lambda k: evidence.MatrixNormalPosterior(eqx.nn.MLP(2, 1, 4, 1, key=k)), _x(2)),
    "MatrixNormalLinear": (lambda k: evidence.MatrixNormalLinear(eqx.nn.Linear(2, 3, key=k)), None),
    "Laplace": (
        lambda k: evidence.laplace(
            eqx.nn.MLP(2, 1, 3, 1, key=k), (jnp.ones((5, 2)), jnp.zeros(5)), curvature="full"
        ),
        None,
    ),
    "KroneckerFactors": (
        lambda k: evidence.laplace(eqx.nn.MLP(2, 1, 3, 1, key=k), (jnp.ones((5, 2)), jnp.zeros(5))).curvature,
        None,
    ),
}


def _exported_classes():
    found = set()
    for module in (nn, dynamics, bias, groups, evidence):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, eqx.Module) and not inspect.isabstract(obj):
                if not name.startswith("Abstract"):
                    found.add(obj)
    return found


def _class_of(model):
    return type(model)


def _perturb_every_leaf(model, key):
    arrays, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(arrays)
    keys = jax.random.split(key, max(len(leaves), 1))
    leaves = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys, strict=False)]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)


def _array_leaves(model):
    return jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))


def test_every_model_class_is_under_contract():
    tested = {_class_of(make(jax.random.key(0))) for make, _ in CASES.values()}
    assert _exported_classes() - tested == set()


@pytest.mark.parametrize("make, probe", CASES.values(), ids=list(CASES))
def test_model_round_trips_through_save_and_load(make, probe, tmp_path, getkey):
    model = _perturb_every_leaf(make(getkey()), getkey())
    path = save(model, tmp_path / "model.eqx", metadata={"note": "x", "dt": 0.1})
    loaded = load(path)
    assert type(loaded) is type(model)
    assert load_metadata(path) == {"note": "x", "dt": 0.1}
    before, after = _array_leaves(model), _array_leaves(loaded)
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    # Static settings survive: everything but the arrays is described by the header alike.
    assert (
        json.loads(path.read_bytes().partition(b"\n")[0])["model"]
        == json.loads(save(loaded, tmp_path / "again.eqx").read_bytes().partition(b"\n")[0])["model"]
    )
    if probe is not None:
        x = probe(getkey())
        out = eqx.filter_jit(lambda m, x: m(x))
        np.testing.assert_array_equal(out(loaded, x), out(model, x))
        if before:  # the comparison can fail: another key gives another output
            fresh = make(jax.random.key(12345))
            assert not np.allclose(out(fresh, x), out(model, x))


def test_the_public_api_exports_save_and_load(tmp_path, getkey):
    model = dynamics.HamiltonianNN(2, 4, 1, key=getkey())
    physbias.save(model, tmp_path / "m.eqx")
    assert type(physbias.load(tmp_path / "m.eqx")) is dynamics.HamiltonianNN
    assert physbias.load_metadata(tmp_path / "m.eqx") == {}


def test_a_folder_with_model_eqx_loads(tmp_path, getkey):
    model = dynamics.NeuralODE(2, 4, 1, key=getkey())
    save(model, tmp_path / "run" / "model.eqx")
    assert type(load(tmp_path / "run")) is dynamics.NeuralODE


def test_a_lambda_is_refused_before_anything_is_written(tmp_path, getkey):
    model = dynamics.NeuralODE(2, 4, 1, key=getkey(), activation=lambda x: x)
    with pytest.raises(SerialisationError, match="lambda"):
        save(model, tmp_path / "m.eqx")
    assert not (tmp_path / "m.eqx").exists()


def test_a_module_outside_the_trusted_packages_needs_allow(tmp_path, getkey):
    header = {
        "format": "physbias.model",
        "format_version": 1,
        "model": {"class": "os:system", "init": {}},
        "metadata": {},
    }
    (tmp_path / "evil.eqx").write_bytes((json.dumps(header) + "\n").encode())
    with pytest.raises(SerialisationError, match="outside the trusted packages"):
        load(tmp_path / "evil.eqx")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a model\n", "not a physbias model file"),
        (b'{"format": "physbias.model", "format_version": 99}\n', "upgrade"),
    ],
)
def test_a_file_that_is_not_a_model_is_refused(content, message, tmp_path):
    (tmp_path / "m.eqx").write_bytes(content)
    with pytest.raises(SerialisationError, match=message):
        load(tmp_path / "m.eqx")


def test_a_truncated_file_is_refused_naming_it(tmp_path, getkey):
    path = save(dynamics.NeuralODE(2, 4, 1, key=getkey()), tmp_path / "m.eqx")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(SerialisationError, match="m.eqx"):
        load(path)


def test_missing_file_and_bad_arguments(tmp_path, getkey):
    with pytest.raises(FileNotFoundError, match="not a saved model"):
        load(tmp_path / "none.eqx")
    with pytest.raises(TypeError, match="`model` must be an equinox.Module"):
        save({"w": 1}, tmp_path / "m.eqx")
    with pytest.raises(TypeError, match="`metadata`"):
        save(dynamics.NeuralODE(2, 4, 1, key=getkey()), tmp_path / "m.eqx", metadata={"x": object()})
    assert not (tmp_path / "m.eqx").exists()
