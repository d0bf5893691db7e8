"""Contract over every dynamics model: the command line's spec builds the model it names.

Each entry of ``CASES`` builds a model directly from its class (with non-default hyperparameters
where the class has them) together with the spec that should describe it; ``build_model(spec)``
must give a model of the same class, structure, static settings and array shapes, which, given the
same arrays, computes the same function. ``test_every_model_class_is_under_contract`` fails if a
model class exported by ``physbias.dynamics`` has no case here. (Saving and loading is
``tests/test_serialization.py``.)
"""

import inspect
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import physbias.dynamics as dynamics_module
from physbias.dynamics import (
    AbstractDynamics,
    ConstrainedHamiltonianNN,
    ConstrainedLagrangianNN,
    DeepLagrangianNN,
    HamiltonianNN,
    LagrangianNN,
    NeuralODE,
    QuadraticConservedQuantities,
    SecondOrderNODE,
    SymmetrizedHamiltonianNN,
)
from physbias.dynamics.specs import build_model, constraints_spec
from physbias.systems import DistanceConstraints

WIDTH, DEPTH = 8, 1
CHAIN = DistanceConstraints.chain((1.0, 1.0, 1.0))  # 3 bodies in the plane: states of size 12
CHAIN_SPEC = {
    "n_bodies": CHAIN.n_bodies,
    "dim": CHAIN.dim,
    "edges": [list(e) for e in CHAIN.edges],
    "anchors": [[i, list(point), length] for i, point, length in CHAIN.anchors],
}


def _spec(name, state_size, **extra):
    return {"model": name, "state_size": state_size, "width": WIDTH, "depth": DEPTH, **extra}


CASES = {
    "node": (partial(NeuralODE, 4, WIDTH, DEPTH), _spec("node", 4)),
    "node2": (partial(SecondOrderNODE, 4, WIDTH, DEPTH), _spec("node2", 4)),
    "node2-damped": (
        partial(SecondOrderNODE, 4, WIDTH, DEPTH, damping=True),
        _spec("node2", 4, damping=True),
    ),
    "hnn": (partial(HamiltonianNN, 4, WIDTH, DEPTH), _spec("hnn", 4)),
    "lnn": (partial(LagrangianNN, 4, WIDTH, DEPTH, regularization=0.1), _spec("lnn", 4, regularization=0.1)),
    "delan": (partial(DeepLagrangianNN, 4, WIDTH, DEPTH), _spec("delan", 4)),
    "chnn": (
        partial(ConstrainedHamiltonianNN, CHAIN, WIDTH, DEPTH),
        _spec("chnn", 12, constraints=CHAIN_SPEC),
    ),
    "clnn": (
        partial(ConstrainedLagrangianNN, CHAIN, WIDTH, DEPTH),
        _spec("clnn", 12, constraints=CHAIN_SPEC),
    ),
    "delan-eps": (partial(DeepLagrangianNN, 4, WIDTH, DEPTH, eps=0.5), _spec("delan", 4, eps=0.5)),
    "symmetrized-hnn": (
        partial(SymmetrizedHamiltonianNN, QuadraticConservedQuantities(4, 3), WIDTH, DEPTH, 5),
        _spec("symmetrized-hnn", 4, quantities=3, symmetry_samples=5),
    ),
}
"""name -> (the class with its hyperparameters, called with ``key=``; the spec describing it)."""


def _case_values(case):
    return case.values if hasattr(case, "values") else case


def _perturb_every_leaf(model, key):
    """Add noise to every floating-point array, so no leaf keeps its initial value."""
    arrays, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(arrays)
    keys = jax.random.split(key, len(leaves))
    leaves = [x + 0.1 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys, strict=True)]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, leaves), static)


@eqx.filter_jit
def _evaluate(model, z):  # one compilation per model structure instead of one per eager operation
    return model(z)


def test_every_model_class_is_under_contract():
    exported = {
        obj
        for obj in vars(dynamics_module).values()
        if inspect.isclass(obj) and issubclass(obj, AbstractDynamics) and not inspect.isabstract(obj)
    }
    tested = {_case_values(case)[0].func for case in CASES.values()}
    assert exported - tested == set()


@pytest.mark.parametrize("make, spec", CASES.values(), ids=list(CASES))
def test_the_spec_builds_the_model_it_describes(make, spec, getkey):
    model = _perturb_every_leaf(make(key=getkey()), getkey())
    built = build_model(spec, getkey())
    assert type(built) is type(model)
    arrays, static = eqx.partition(model, eqx.is_array)
    built_arrays, built_static = eqx.partition(built, eqx.is_array)
    assert jax.tree_util.tree_structure(built_arrays) == jax.tree_util.tree_structure(arrays)
    assert all(
        a.shape == b.shape
        for a, b in zip(
            jax.tree_util.tree_leaves(built_arrays), jax.tree_util.tree_leaves(arrays), strict=True
        )
    )
    # Same static settings (they are part of the tree's structure), hence the same function.
    assert jax.tree_util.tree_structure(built) == jax.tree_util.tree_structure(model)
    z = jax.random.normal(getkey(), (model.state_size,))
    transplanted = eqx.combine(arrays, built_static)
    np.testing.assert_array_equal(_evaluate(transplanted, z), _evaluate(model, z))
    assert bool(jnp.all(jnp.isfinite(_evaluate(model, z))))
    assert not np.allclose(_evaluate(built, z), _evaluate(model, z))  # the comparison can fail


def test_the_constraints_spec_describes_the_constraints():
    assert constraints_spec(CHAIN) == CHAIN_SPEC


@pytest.mark.parametrize(
    "model, spec",
    [
        (partial(LagrangianNN, 4, WIDTH, DEPTH, regularization=0.5), _spec("lnn", 4)),  # regularization lost
        (partial(DeepLagrangianNN, 4, WIDTH, DEPTH, eps=0.5), _spec("delan", 4)),  # eps lost
    ],
)
def test_a_spec_that_misses_a_static_setting_builds_another_model(model, spec, getkey):
    built, model = build_model(spec), model(key=getkey())
    assert jax.tree_util.tree_structure(built) != jax.tree_util.tree_structure(model)


def test_unknown_model_names_are_refused():
    with pytest.raises(ValueError, match="unknown model 'xyz'"):
        build_model({"model": "xyz", "state_size": 4})
