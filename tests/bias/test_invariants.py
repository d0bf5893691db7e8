"""RotationInvariant: exactly SO(d)-invariant, O(d) only with reflections, and it fits its class."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.bias import RotationInvariant, rotation_invariant_count
from physbias.train import fit


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]  # det +1: a rotation
    return jnp.asarray(q, jnp.float32)


def test_counts():
    assert rotation_invariant_count(3, 3) == 6 + 1
    assert rotation_invariant_count(2, 2) == 3 + 1
    assert rotation_invariant_count(4, 2, reflections=True) == 10
    assert rotation_invariant_count(1, 3) == 1  # no triple of vectors: no determinant


@pytest.mark.parametrize("n,d", [(2, 2), (3, 3), (4, 3)])
def test_invariant_under_rotations_and_not_reflections(n, d):
    net = eqx.nn.MLP(rotation_invariant_count(n, d), "scalar", 16, 2, key=jax.random.key(0))
    model = RotationInvariant(net, n, d)
    x = jax.random.normal(jax.random.key(1), (n, d))
    for seed in range(3):
        r = _rotation(d, seed)
        assert abs(float(model(x @ r.T)) - float(model(x))) < 1e-5 * (1 + abs(float(model(x))))
    flip = jnp.diag(jnp.asarray([-1.0] + [1.0] * (d - 1)))
    assert abs(float(model(x @ flip)) - float(model(x))) > 1e-4  # det changes sign
    o = RotationInvariant(
        eqx.nn.MLP(rotation_invariant_count(n, d, True), "scalar", 16, 2, key=jax.random.key(0)), n, d, True
    )
    assert abs(float(o(x @ flip)) - float(o(x))) < 1e-5
    assert model(x.reshape(-1)).shape == ()


def test_it_learns_a_pseudoscalar_of_its_class():
    # y = <x1, x2> + det[x1, x2] in 2-D: invariant under SO(2) but odd under reflections.
    x = jax.random.normal(jax.random.key(0), (256, 4))
    y = jnp.sum(x[:, :2] * x[:, 2:], axis=1) + x[:, 0] * x[:, 3] - x[:, 1] * x[:, 2]
    net = eqx.nn.MLP(4, "scalar", 32, 2, activation=jnp.tanh, key=jax.random.key(1))
    model = RotationInvariant(net, 2, 2)
    loss = lambda m, b, k: jnp.mean((jax.vmap(m)(b[0]) - b[1]) ** 2)  # noqa: E731
    r = fit(model, loss, (x, y), key=jax.random.key(2), epochs=800, learning_rate=3e-3, progress=False)
    assert r.final_loss < 1e-2 * float(jnp.var(y))


def test_bad_inputs():
    net = eqx.nn.MLP(4, "scalar", 4, 1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="dim"):
        RotationInvariant(net, 2, 1)
    with pytest.raises(ValueError, match="n_vectors"):
        RotationInvariant(net, 0, 2)
    with pytest.raises(ValueError, match="shape"):
        RotationInvariant(net, 2, 2)(jnp.zeros(5))
