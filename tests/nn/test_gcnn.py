"""Group convolutions p4 / p4m: exact equivariance of every layer, invariance of the classifier.

Group maps have shape (C, |H|, H, W); element 4 m + r = "mirror m times, then r quarter turns".
The expected actions are written out here independently of the library:
  rotation by s on p4 or p4m maps:  rot90 every map, roll the rotation index r by s (per mirror coset);
  mirror on p4m maps:               flip every map, (m, r) <- (1 - m, -r mod 4).
Tolerances: float32, |values| ~ 1, sums of ~100 terms in a different order -> 1e-5.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.nn.gcnn import (
    CNN,
    P4CNN,
    GroupConv,
    LiftingConv,
    correlate2d,
    group_pool,
    transform_group_maps,
    transform_image,
)

ATOL = 1e-5


def rotate_image(x, s):
    return jnp.rot90(x, s, axes=(-2, -1))


def mirror_image(x):
    return jnp.flip(x, axis=-1)


def rotate_maps(f, s, order):
    """Action of the rotation by s quarter turns on group maps (C, order, H, W)."""
    c, _, h, w = f.shape
    cosets = f.reshape(c, order // 4, 4, h, w)
    return rotate_image(jnp.roll(cosets, s, axis=2), s).reshape(f.shape)


def mirror_maps(f):
    """Action of the mirror on p4m maps (C, 8, H, W): (m, r) <- (1 - m, -r mod 4), maps flipped."""
    c, _, h, w = f.shape
    cosets = f.reshape(c, 2, 4, h, w)[:, ::-1][:, :, (0, 3, 2, 1)]
    return mirror_image(cosets).reshape(f.shape)


def normal(rng, *shape):
    return jnp.asarray(rng.standard_normal(shape), dtype=jnp.float32)


def random_biases(model, rng):
    """Biases start at zero; random ones check that they are shared correctly over the group axis."""
    return jax.tree_util.tree_map(
        lambda a: normal(rng, *a.shape) * 0.3 if eqx.is_inexact_array(a) and not np.any(np.asarray(a)) else a,
        model,
    )


def test_correlate2d_matches_lax_convolution():
    rng = np.random.default_rng(0)
    x = normal(rng, 3, 7, 6)
    for k in (1, 3, 5):
        kernel = normal(rng, 4, 3, k, k)
        ref = jax.lax.conv_general_dilated(x[None], kernel, (1, 1), "SAME")[0]
        np.testing.assert_allclose(jax.jit(correlate2d)(x, kernel), ref, atol=ATOL)


def test_group_actions_match_the_written_out_formulas():
    rng = np.random.default_rng(1)
    x, f4, f8 = normal(rng, 2, 5, 5), normal(rng, 2, 4, 5, 5), normal(rng, 2, 8, 5, 5)

    @jax.jit
    def differences(x, f4, f8):
        out = []
        for s in range(4):
            out.append(transform_image(x, s, "p4") - rotate_image(x, s))
            out.append(transform_group_maps(f4, s, "p4") - rotate_maps(f4, s, 4))
            out.append(transform_group_maps(f8, s, "p4m") - rotate_maps(f8, s, 8))
            # element 4 + s = mirror, then turn s times
            out.append(transform_image(x, 4 + s, "p4m") - rotate_image(mirror_image(x), s))
            out.append(transform_group_maps(f8, 4 + s, "p4m") - rotate_maps(mirror_maps(f8), s, 8))
        return jnp.stack([jnp.max(jnp.abs(d)) for d in out])

    np.testing.assert_array_equal(differences(x, f4, f8), 0.0)  # pure data movement: exact


@pytest.fixture(scope="module")
def models():
    """One small model per kind, built once: on CPU every new array shape costs a compilation."""
    rng = np.random.default_rng(2)
    keys = jax.random.split(jax.random.key(0), 3)
    return {
        "p4": random_biases(P4CNN(2, 5, width=3, depth=1, group="p4", key=keys[0]), rng),
        "p4m": random_biases(P4CNN(2, 5, width=3, depth=1, group="p4m", key=keys[1]), rng),
        "cnn": random_biases(CNN(2, 5, width=6, depth=1, key=keys[2]), rng),
    }


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_lifting_and_group_conv_are_equivariant(group, models):
    rng = np.random.default_rng(3)
    order = 4 if group == "p4" else 8
    lift, conv = models[group].lift, models[group].convs[0]
    x = normal(rng, 2, 7, 7)
    f = normal(rng, 3, order, 6, 6)  # even size: no centre pixel, still exact
    assert jax.eval_shape(lift, x).shape == (3, order, 7, 7)
    assert jax.eval_shape(conv, f).shape == (3, order, 6, 6)

    @jax.jit
    def errors(x, f):
        lifted, conv_f = lift(x), conv(f)
        err = [jnp.max(jnp.abs(lift(rotate_image(x, s)) - rotate_maps(lifted, s, order))) for s in (1, 2, 3)]
        err += [
            jnp.max(jnp.abs(conv(rotate_maps(f, s, order)) - rotate_maps(conv_f, s, order)))
            for s in (1, 2, 3)
        ]
        if group == "p4m":
            err.append(jnp.max(jnp.abs(lift(mirror_image(x)) - mirror_maps(lifted))))
            err.append(jnp.max(jnp.abs(conv(mirror_maps(f)) - mirror_maps(conv_f))))
        # Not the action: rotating the maps without moving them along the group axis.
        wrong = jnp.max(jnp.abs(lift(rotate_image(x, 1)) - rotate_image(lifted, 1)))
        return jnp.stack(err), wrong

    err, wrong = errors(x, f)
    assert float(jnp.max(err)) < ATOL
    assert float(wrong) > 1e-3  # so the check above can fail


def test_group_pool_gives_maps_that_rotate_with_the_input():
    f = normal(np.random.default_rng(4), 2, 4, 5, 5)
    for mode in ("max", "mean"):
        rotated = group_pool(rotate_maps(f, 1, 4), mode)
        np.testing.assert_allclose(rotated, rotate_image(group_pool(f, mode), 1), atol=1e-6)
    np.testing.assert_allclose(group_pool(f, "max"), np.max(np.asarray(f), axis=1))


@jax.jit
def logits_of_views(model, x):
    """Logits of the 4 rotations of ``x``, then of the 4 rotations of its mirror image: (8, n_classes)."""
    views = [rotate_image(x, s) for s in range(4)] + [rotate_image(mirror_image(x), s) for s in range(4)]
    return jax.vmap(model)(jnp.stack(views))


@pytest.mark.parametrize("kind", ["p4", "p4m", "cnn"])
def test_g_cnn_logits_are_invariant_and_the_plain_cnn_is_not(kind, models):
    x = normal(np.random.default_rng(5), 2, 8, 8)
    logits = logits_of_views(models[kind], x)
    assert logits.shape == (8, 5)
    assert float(jnp.std(logits[0])) > 1e-2  # not trivially constant
    rotations, mirrors = max_error(logits[:4], logits[:1]), max_error(logits[4:], logits[:1])
    if kind == "p4":
        assert rotations < ATOL
        assert mirrors > 1e-3  # p4 is not invariant to mirrors
    elif kind == "p4m":
        assert max(rotations, mirrors) < ATOL
    else:
        assert rotations > 1e-3 and mirrors > 1e-3


def max_error(a, b):
    return float(jnp.max(jnp.abs(a - b)))


def test_bad_groups_shapes_and_sizes_raise(models):
    key = jax.random.key(0)
    for make in (
        lambda: LiftingConv(1, 2, group="p6", key=key),
        lambda: GroupConv(1, 2, group="P4", key=key),
        lambda: P4CNN(1, 10, width=2, depth=0, group="so2", key=key),
    ):
        with pytest.raises(ValueError, match="`group` must be one of"):
            make()
    with pytest.raises(ValueError, match="odd"):
        LiftingConv(1, 2, 4, key=key)
    lift = models["p4"].lift
    with pytest.raises(ValueError, match=r"LiftingConv: input must have shape \(2, H, W\)"):
        lift(jnp.zeros((8, 8)))
    with pytest.raises(ValueError, match="LiftingConv"):
        lift(jnp.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"GroupConv: input must have shape \(3, 8, H, W\)"):
        models["p4m"].convs[0](jnp.zeros((3, 4, 8, 8)))
    with pytest.raises(ValueError, match="LiftingConv"):
        models["p4m"](jnp.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match="Conv2d"):
        models["cnn"](jnp.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="width"):
        P4CNN(1, 10, width=0, key=key)
    with pytest.raises(ValueError, match="group_pool"):
        group_pool(jnp.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="mode"):
        group_pool(jnp.zeros((2, 4, 8, 8)), "sum")
    with pytest.raises(ValueError, match="element"):
        transform_image(jnp.zeros((8, 8)), 4, "p4")


def test_gcnn_digits_p4_accuracy_is_unchanged_by_rotations():
    from physbias.experiments import gcnn_digits

    config = gcnn_digits.GCNNDigitsConfig(
        n_train=64, n_test=64, width=3, depth=1, epochs=3, batch_size=64, models=("CNN", "p4-CNN")
    )
    result = gcnn_digits.run(config, seed=0, progress=False)
    rows = {r["model"]: r for r in result.table}
    assert set(rows) == {"CNN", "p4-CNN"}
    p4 = rows["p4-CNN"]
    assert p4["equivariance_error_p4"] < 1e-5
    # Exactly invariant logits: the rotated test set is classified exactly like the upright one.
    assert p4["acc_rotated"] == p4["acc_upright"]
    assert rows["CNN"]["equivariance_error_p4"] > 1e-3
    assert rows["p4-CNN"]["equivariance_error_p4m"] > 1e-3
    assert [f.name for f in result.figures] == ["gcnn_digits"]


def test_gcnn_digits_config_is_validated():
    from physbias.experiments import gcnn_digits

    with pytest.raises(ValueError, match="models"):
        gcnn_digits.GCNNDigitsConfig(models=("ResNet",))
    with pytest.raises(ValueError, match="at most 1797"):
        gcnn_digits.GCNNDigitsConfig(n_train=1500, n_test=500)
    with pytest.raises(ValueError, match="batch_size"):
        gcnn_digits.GCNNDigitsConfig(batch_size=0)
    quick = gcnn_digits.GCNNDigitsConfig.quick()
    # Copies are validated too (--set overrides go through dataclasses.replace).
    with pytest.raises(ValueError, match="batch_size"):
        dataclasses.replace(quick, batch_size=0)
    with pytest.raises(ValueError, match="at most 1797"):
        dataclasses.replace(quick, n_train=1797 - quick.n_test + 1)
    # The bound is inclusive: the whole data set (1797 images) may be used.
    everything = dataclasses.replace(quick, n_train=1797 - quick.n_test)
    assert everything.n_train + everything.n_test == 1797
