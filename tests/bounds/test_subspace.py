"""Subspace models theta = theta_0 + P w: exactness at w = 0, gradients, projectors, training."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias.bounds import DenseProjector, KroneckerProjector, Subspace, kronecker_shape


def _flat(model):
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return np.concatenate([np.ravel(x) for x in leaves])


@eqx.filter_jit
def _outputs(model, x):
    return jax.vmap(model)(x)


def test_at_w_zero_the_model_is_the_original_exactly(getkey):
    net = eqx.nn.MLP(3, 2, 8, 2, key=getkey())
    x = jax.random.normal(getkey(), (3, 3))
    expected = np.asarray(_outputs(net, x))
    for projector in ("kronecker", "dense"):
        sub = Subspace(net, 20, key=getkey(), projector=projector)
        assert np.array_equal(np.asarray(_outputs(sub, x)), expected)
        assert np.array_equal(_flat(sub.materialize()), _flat(net))
        assert sub.num_params == _flat(net).size and sub.dim == 20


def _unflatten_like(model, theta):
    params, rest = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    offsets = np.cumsum([0] + [x.size for x in leaves])
    new = [theta[a:b].reshape(x.shape) for a, b, x in zip(offsets[:-1], offsets[1:], leaves, strict=True)]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, new), rest)


@eqx.filter_jit
def _gradients(sub, net, x, y):
    def loss(m):
        return jnp.mean((jax.vmap(m)(x) - y) ** 2)

    grads = eqx.filter_grad(loss)(sub)
    theta = sub.theta()
    g_theta = jax.grad(lambda t: loss(_unflatten_like(net, t)))(theta)  # of the wrapped model itself
    eps, e2 = 1e-6, jnp.zeros(sub.dim, x.dtype).at[2].set(1.0)
    shifted = [loss(eqx.tree_at(lambda m: m.w, sub, sub.w + s * e2)) for s in (eps, -eps)]
    return grads, g_theta, (shifted[0] - shifted[1]) / (2 * eps)


def test_gradient_in_w_is_projected_gradient_in_theta(getkey):
    with jax.enable_x64(True):
        net = eqx.nn.MLP(4, 3, 6, 1, key=getkey())
        net = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, net)
        x = jax.random.normal(getkey(), (7, 4), jnp.float64)
        y = jax.random.normal(getkey(), (7, 3), jnp.float64)
        sub = Subspace(net, 9, key=getkey())  # a Kronecker projector with a correction (54 = 8 x 7 - 2)
        sub = eqx.tree_at(lambda s: s.w, sub, 0.3 * jax.random.normal(getkey(), (9,), jnp.float64))
        grads, g_theta, finite_difference = _gradients(sub, net, x, y)
        p = np.asarray(sub.projector.as_matrix(jnp.float64))
        assert np.allclose(grads.w, p.T @ np.asarray(g_theta), rtol=1e-10, atol=1e-12)
        assert float(finite_difference) == pytest.approx(float(grads.w[2]), rel=1e-6)
        # theta_0 and the projector get no gradient: only w is trained
        projector_grads = jax.tree_util.tree_leaves(eqx.filter(grads.projector, eqx.is_inexact_array))
        assert np.all(grads.theta0 == 0) and all(np.all(g == 0) for g in projector_grads)


@eqx.filter_jit
def _apply(p, w, v):
    return p(w), p.transpose(v), p.as_matrix(w.dtype)


@pytest.mark.parametrize("num_params, dim", [(100, 9), (50, 40)])
def test_kronecker_projector_equals_its_dense_form_with_orthonormal_columns(getkey, num_params, dim):
    with jax.enable_x64(True):
        p = KroneckerProjector(num_params, dim, key=getkey(), dtype=jnp.float64)
        ra, rb, ca, cb = kronecker_shape(num_params, dim)
        assert p.left.shape == (ra, ca) and p.right.shape == (rb, cb) and ra * rb >= num_params
        assert p.correction_scale.shape == (ra * rb - num_params,)  # 100 = 10 x 10: no correction
        # P = S (A kron B) E C, formed explicitly in NumPy
        v_basis, scale = np.asarray(p.correction_basis), np.asarray(p.correction_scale)
        c = np.eye(dim) + v_basis @ np.diag(scale) @ v_basis.T
        dense = np.kron(np.asarray(p.left), np.asarray(p.right))[np.asarray(p.rows)][:, :dim] @ c
        w = jax.random.normal(getkey(), (dim,), jnp.float64)
        v = jax.random.normal(getkey(), (num_params,), jnp.float64)
        pw, ptv, matrix = _apply(p, w, v)
        assert np.allclose(pw, dense @ np.asarray(w), atol=1e-12)
        assert np.allclose(ptv, dense.T @ np.asarray(v), atol=1e-12)
        assert np.allclose(matrix, dense, atol=1e-12)
        assert np.allclose(dense.T @ dense, np.eye(dim), atol=1e-10)  # orthonormal columns
        assert len(set(np.asarray(p.rows).tolist())) == num_params  # distinct rows
        # without the orthonormalisation: Gaussian factors, no correction
        g = KroneckerProjector(num_params, dim, key=getkey(), orthonormal=False, dtype=jnp.float64)
        assert g.correction_scale.size == 0
        gw, _, g_matrix = _apply(g, w, v)
        assert np.allclose(gw, np.asarray(g_matrix) @ np.asarray(w), atol=1e-12)


def test_kronecker_rejects_a_dim_that_cannot_stay_orthonormal(getkey):
    # 50 = 8 x 7 - 6: keeping 50 of 56 Kronecker rows leaves 50 columns (nearly) rank deficient
    with pytest.raises(ValueError, match="too close"):
        KroneckerProjector(50, 50, key=getkey())
    assert KroneckerProjector(49, 49, key=getkey()).correction_scale.size == 0  # 49 = 7 x 7 fits


def test_dense_projector_columns(getkey):
    with jax.enable_x64(True):
        q = np.asarray(DenseProjector(300, 40, key=getkey(), orthonormal=True, dtype=jnp.float64).matrix)
        assert np.allclose(q.T @ q, np.eye(40), atol=1e-12)
        g = DenseProjector(4000, 40, key=getkey(), dtype=jnp.float64)
        sv = np.linalg.svd(np.asarray(g.matrix), compute_uv=False)  # within about 1 +- sqrt(d/D) = 1 +- 0.1
        assert 0.8 < sv.min() and sv.max() < 1.2
        v = jax.random.normal(getkey(), (4000,), jnp.float64)
        # the generic transpose (linear_transpose of the call) agrees with the explicit one
        generic = super(DenseProjector, g).transpose(v)
        assert np.allclose(generic, np.asarray(g.matrix).T @ np.asarray(v), atol=1e-12)
    # the same key gives the same projector
    key = getkey()
    assert np.array_equal(DenseProjector(30, 3, key=key).matrix, DenseProjector(30, 3, key=key).matrix)


def test_training_in_the_subspace_reduces_the_loss_and_moves_only_w(getkey):
    net = eqx.nn.MLP(2, 1, 16, 1, key=getkey())
    x = jax.random.normal(getkey(), (64, 2))
    y = jnp.sin(2.0 * x[:, :1]) * x[:, 1:]
    sub = Subspace(net, 15, key=getkey())
    # A plain optimiser on every array: theta_0 and P still stay where they were (zero gradients).
    optimizer = optax.adam(0.05)
    params, static = eqx.partition(sub, eqx.is_inexact_array)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((jax.vmap(eqx.combine(p, static))(x) - y) ** 2))(
            params
        )
        with jax.numpy_dtype_promotion("standard"):  # optax mixes a Python float with its int32 count
            updates, state = optimizer.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, loss

    state, losses = optimizer.init(params), []
    for _ in range(100):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    trained = eqx.combine(params, static)
    assert losses[-1] < 0.5 * losses[0]
    assert np.array_equal(trained.theta0, sub.theta0)
    assert np.array_equal(trained.projector.left, sub.projector.left)
    assert np.array_equal(trained.projector.rows, sub.projector.rows)
    assert not np.array_equal(trained.w, sub.w)
    theta = np.asarray(sub.theta0) + np.asarray(trained.projector.as_matrix()) @ np.asarray(trained.w)
    assert np.allclose(_flat(trained.materialize()), theta, atol=1e-5)


def test_bad_input(getkey):
    net = eqx.nn.Linear(3, 2, key=getkey())  # 8 parameters
    for dim in (0, -1, 2.5):
        with pytest.raises(ValueError, match="dim"):
            Subspace(net, dim, key=getkey())
    for projector in ("kronecker", "dense"):
        with pytest.raises(ValueError, match="exceeds the number of parameters"):
            Subspace(net, 9, key=getkey(), projector=projector)
    assert Subspace(net, 9, key=getkey(), projector="dense", orthonormal=False).dim == 9  # allowed
    with pytest.raises(ValueError, match="projector"):
        Subspace(net, 4, key=getkey(), projector="fastfood")
    with pytest.raises(ValueError, match="projector"):
        Subspace(net, 4, key=getkey(), projector=DenseProjector(7, 4, key=getkey()))
    with pytest.raises(ValueError, match="no floating-point"):
        Subspace(jnp.arange(3), 2, key=getkey())
    mixed = eqx.tree_at(lambda m: m.bias, net, net.bias.astype(jnp.float16))
    with pytest.raises(TypeError, match="dtype"):
        Subspace(mixed, 2, key=getkey())
    with pytest.raises(ValueError, match="num_params"):
        KroneckerProjector(0, 3, key=getkey())
    with pytest.raises(ValueError, match="exceeds"):
        DenseProjector(5, 6, key=getkey(), orthonormal=True)
