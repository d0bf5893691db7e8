"""fit: converges to the least-squares solution, handles minibatches, stops on divergence."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias import Dataset, fit, supervised_loss


class Scalar(eqx.Module):
    w: jax.Array

    def __call__(self, x):
        return self.w * x[0]


def _linear_data(key, n=256):
    kx, kn = jax.random.split(key)
    x = jax.random.normal(kx, (n, 3))
    y = x @ jnp.array([1.5, -2.0, 0.5]) + 0.3 + 0.01 * jax.random.normal(kn, (n,))
    return Dataset(x, y)


def _lstsq(data):
    a = np.c_[np.asarray(data.inputs), np.ones(len(data))]
    return np.linalg.lstsq(a, np.asarray(data.targets), rcond=None)[0]


@pytest.mark.parametrize("batch_size", [None, 64])
def test_fit_reaches_least_squares_solution(batch_size, getkey):
    data = _linear_data(getkey())
    model = eqx.nn.Linear(3, "scalar", key=getkey())
    result = fit(
        model,
        supervised_loss(),
        data,
        key=getkey(),
        epochs=600,
        learning_rate=2e-2,
        batch_size=batch_size,
        progress=False,
    )
    coef = _lstsq(data)
    np.testing.assert_allclose(result.model.weight.ravel(), coef[:3], atol=5e-3)
    np.testing.assert_allclose(result.model.bias, coef[3], atol=5e-3)
    steps = 600 if batch_size is None else 600 * (256 // 64)
    assert result.losses.shape == (steps,)
    assert result.epochs == 600 and not result.diverged
    assert result.losses[-1] < 1e-2 * result.losses[0]


def test_fit_is_deterministic(getkey):
    data, model, key = _linear_data(getkey()), eqx.nn.Linear(3, "scalar", key=getkey()), getkey()
    a = fit(model, supervised_loss(), data, key=key, epochs=20, batch_size=32, progress=False)
    b = fit(model, supervised_loss(), data, key=key, epochs=20, batch_size=32, progress=False)
    np.testing.assert_array_equal(a.losses, b.losses)


def test_fit_accepts_a_tuple_of_arrays_and_an_optax_optimizer(getkey):
    data = _linear_data(getkey())
    model = eqx.nn.Linear(3, "scalar", key=getkey())
    result = fit(
        model,
        supervised_loss(),
        data.as_tuple(),
        key=getkey(),
        epochs=300,
        optimizer=optax.sgd(0.1),
        progress=False,
    )
    np.testing.assert_allclose(result.model.weight.ravel(), _lstsq(data)[:3], atol=5e-3)


def test_fit_stops_on_non_finite_loss_and_keeps_last_finite_parameters():
    # loss = log(w) with SGD(0.5): w = 1 -> 0.5 -> -0.5, where the loss is NaN (step 3).
    loss = lambda model, batch, key: jnp.log(model.w)
    data = (jnp.zeros((4, 1)),)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = fit(
            Scalar(jnp.array(1.0)),
            loss,
            data,
            key=jax.random.key(0),
            epochs=50,
            optimizer=optax.sgd(0.5),
            progress=False,
        )
    assert result.diverged
    assert len(result.losses) == 3
    np.testing.assert_allclose(result.losses[:2], [0.0, np.log(0.5)], rtol=1e-6)
    assert np.isnan(result.losses[2])
    assert float(result.model.w) == pytest.approx(-0.5)
    assert np.isfinite(float(result.model.w))
    assert "step 3" in result.message


def test_the_moving_average_follows_its_recursion_and_skips_bad_steps():
    # SGD(0.1) on (w - 3)^2 / 2 from w = 0: w_t = 3 (1 - 0.9^t), and the average obeys
    # bar_t = d_t bar_{t-1} + (1 - d_t) w_t with d_t = min(0.9, (1 + t) / (10 + t)), bar_0 = w_0.
    loss = lambda model, batch, key: 0.5 * (model.w - 3.0) ** 2
    kwargs = dict(key=jax.random.key(0), epochs=30, optimizer=optax.sgd(0.1), progress=False)
    result = fit(Scalar(jnp.array(0.0)), loss, (jnp.zeros((4, 1)),), ema_decay=0.9, **kwargs)
    average = 0.0
    for t in range(30):
        decay = min(0.9, (1 + t) / (10 + t))
        average = decay * average + (1 - decay) * 3.0 * (1 - 0.9 ** (t + 1))
    assert float(result.model.w) == pytest.approx(average, rel=1e-5)
    assert float(result.last_model.w) == pytest.approx(3.0 * (1 - 0.9**30), rel=1e-5)
    assert abs(average - float(result.last_model.w)) > 0.05  # the two differ: the test can fail
    assert fit(Scalar(jnp.array(0.0)), loss, (jnp.zeros((4, 1)),), **kwargs).last_model is None
    # log(w) with SGD(0.5) goes NaN at step 3: the average holds steps 1 and 2 only.
    with pytest.warns(RuntimeWarning, match="non-finite"):
        bad = fit(
            Scalar(jnp.array(1.0)),
            lambda model, batch, key: jnp.log(model.w),
            (jnp.zeros((4, 1)),),
            key=jax.random.key(0),
            epochs=50,
            optimizer=optax.sgd(0.5),
            progress=False,
            ema_decay=0.9,
        )
    expected = 0.1 * 1.0 + 0.9 * 0.5  # d_0 = 0.1 on w_1 = 0.5
    expected = (2 / 11) * expected + (9 / 11) * -0.5  # d_1 = 2/11 on w_2 = -0.5
    assert float(bad.model.w) == pytest.approx(expected, rel=1e-5)


def test_fit_carries_a_state_and_keeps_it_with_the_last_good_step():
    # The state counts the steps and remembers the last w the loss saw; log(w) goes NaN at step 3.
    def loss(model, batch, key, state):
        count, seen = state
        return jnp.log(model.w), (count + 1, jax.lax.stop_gradient(model.w))

    start = (jnp.array(0), jnp.array(0.0))
    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = fit(
            Scalar(jnp.array(1.0)),
            loss,
            (jnp.zeros((4, 1)),),
            key=jax.random.key(0),
            epochs=50,
            optimizer=optax.sgd(0.5),
            progress=False,
            state=start,
        )
    count, seen = result.state
    assert int(count) == 2 and float(seen) == pytest.approx(0.5)  # step 3's state was not kept
    healthy = fit(
        Scalar(jnp.array(1.0)),
        lambda m, b, k, st: ((m.w - 2.0) ** 2, (st[0] + 1, st[1])),
        (jnp.zeros((4, 1)),),
        key=jax.random.key(0),
        epochs=7,
        optimizer=optax.sgd(0.1),
        progress=False,
        state=start,
    )
    assert int(healthy.state[0]) == 7
    assert (
        fit(
            Scalar(jnp.array(1.0)),
            lambda m, b, k: m.w**2,
            (jnp.zeros((4, 1)),),
            key=jax.random.key(0),
            epochs=2,
            progress=False,
        ).state
        is None
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -3}, "epochs"),
        ({"epochs": 10, "learning_rate": 0.0}, "learning_rate"),
        ({"epochs": 10, "learning_rate": -1e-3}, "learning_rate"),
        ({"epochs": 10, "learning_rate": float("nan")}, "learning_rate"),
        ({"epochs": 10, "batch_size": 0}, "batch_size"),
        ({"epochs": 10, "ema_decay": 1.0}, "ema_decay"),
        ({"epochs": 10, "ema_decay": -0.1}, "ema_decay"),
    ],
)
def test_fit_rejects_bad_settings(kwargs, match, getkey):
    data = _linear_data(getkey())
    with pytest.raises(ValueError, match=match):
        fit(eqx.nn.Linear(3, "scalar", key=getkey()), supervised_loss(), data, key=getkey(), **kwargs)


@pytest.mark.parametrize(
    "data, match",
    [
        ((np.zeros((0, 3)), np.zeros(0)), "empty"),
        ((np.full((4, 3), np.nan), np.zeros(4)), "NaN or inf"),
        ((np.zeros((4, 3)), np.array([0, 1, np.inf, 0.0])), "NaN or inf"),
        ((np.zeros((4, 3)), np.zeros(5)), "same number of samples"),
        ((np.array(["a", "b"]), np.zeros(2)), "numbers"),
        ((), "non-empty tuple"),
    ],
)
def test_fit_rejects_bad_data(data, match, getkey):
    with pytest.raises(ValueError, match=match):
        fit(eqx.nn.Linear(3, "scalar", key=getkey()), supervised_loss(), data, key=getkey(), epochs=1)


@pytest.mark.parametrize(
    "inputs, targets, match",
    [
        (np.zeros((3, 2)), np.zeros(4), "same number of samples"),
        (np.zeros((0, 2)), np.zeros(0), "inputs` is empty"),
        (np.array([[1.0, np.nan]]), np.zeros(1), "`inputs` contains 1 NaN"),
        (np.zeros(3), np.zeros(()), "at least 1 dimension"),
    ],
)
def test_dataset_validation(inputs, targets, match):
    with pytest.raises(ValueError, match=match):
        Dataset(inputs, targets)


def test_a_finite_blow_up_stops_training_and_keeps_the_best_parameters():
    # Plain gradient descent with far too large a step: each step multiplies the error by ~5.7,
    # so the loss grows without ever becoming non-finite within the run.
    x = jnp.linspace(-1.0, 1.0, 64)[:, None]
    data = (x, 2.0 * x)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    with pytest.warns(RuntimeWarning, match="blew up"):
        result = fit(
            model, supervised_loss(), data, key=jax.random.key(1), epochs=200, optimizer=optax.sgd(10.0)
        )
    assert result.diverged and "best" in result.message
    assert len(result.losses) < 200 and np.all(np.isfinite(result.losses))
    assert result.losses[-1] > 1e4 * np.min(result.losses)
    # The returned model is the one with the best loss seen (here: the initial one).
    best = float(supervised_loss()(result.model, data, jax.random.key(2)))
    assert best == pytest.approx(float(np.min(result.losses)), rel=1e-5)


def test_a_noisy_but_healthy_run_is_not_called_diverged():
    x = jax.random.normal(jax.random.key(0), (256, 1))
    data = (x, jnp.sin(3 * x[:, 0]))
    model = eqx.nn.MLP(1, "scalar", 16, 2, key=jax.random.key(1))
    result = fit(
        model, supervised_loss(), data, key=jax.random.key(2), epochs=30, batch_size=8, learning_rate=3e-2
    )
    assert not result.diverged


def test_a_loss_that_goes_negative_is_not_called_a_blow_up():
    # A negative log evidence may start below zero and fall further; a step that improves on
    # it is not "1e4 times the best" (before the fix, loss > 1e4 * best and loss > 100 * first
    # held for negative best and first, and the run stopped at its second step).
    data = (jnp.zeros((4, 1)), jnp.zeros(4))
    model = jnp.array([3.0])

    def loss(m, batch, key):
        return (m[0] ** 2 - 10.0) * 10.0 + 0.0 * jnp.sum(batch[0])  # from -10 down to -100

    result = fit(model, loss, data, key=jax.random.key(0), epochs=300, learning_rate=0.05)
    assert not result.diverged and result.final_loss < -60


def test_adam_then_lbfgs_refines_the_data_between_the_phases():
    from physbias.train import fit_adam_then_lbfgs

    class Scalar(eqx.Module):
        w: jax.Array

    loss = lambda m, batch, key: jnp.mean((m.w - batch[0]) ** 2)  # noqa: E731  (optimum: mean of data)
    data = (jnp.array([1.0, 2.0, 3.0]),)
    seen = []

    def refine(model, d):
        seen.append(float(model.w))
        return (d[0] + 10.0,)

    adam, lbfgs = fit_adam_then_lbfgs(
        Scalar(jnp.array(0.0)),
        loss,
        data,
        key=jax.random.key(0),
        adam_epochs=300,
        lbfgs_steps=20,
        learning_rate=0.1,
        progress=False,
        refine=refine,
    )
    assert len(seen) == 1 and abs(seen[0] - 2.0) < 0.1  # Adam fitted the original data
    assert abs(float(lbfgs.model.w) - 12.0) < 1e-4  # L-BFGS the refined data


class _CompileCounter:
    """Counts the training loops (``fit``'s ``run_chunk``) lowered for compilation while active,
    from JAX's own monitoring event: one per compile request, whether XLA then compiles it or
    finds it in a persistent cache. Eager slicing of the keys is not counted."""

    EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"

    def __init__(self):
        self.count = 0
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, fun_name="", **kwargs):
        if self.active and event == self.EVENT and "run_chunk" in fun_name:
            self.count += 1

    def __enter__(self):
        self.count, self.active = 0, True
        return self

    def __exit__(self, *exc):
        self.active = False


_COUNTER = _CompileCounter()


def test_training_compiles_once_however_many_chunks():
    x = jnp.linspace(-1.0, 1.0, 64)[:, None]
    data = Dataset(x, 3.0 * x)
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    loss = supervised_loss()

    def train(chunks):
        return fit(
            model,
            loss,
            data,
            key=jax.random.key(1),
            epochs=40,
            batch_size=16,
            chunks=chunks,
            progress=False,
        )

    reference = train(2)  # also compiles the eager helpers (key splits) once for all
    counts = {}
    for chunks in (1, 3, 4, 8):
        with _COUNTER as counter:
            result = train(chunks)
        counts[chunks] = counter.count
        np.testing.assert_allclose(result.losses, reference.losses, rtol=1e-6)
    # One compiled chunk, called 1, 2 (3 asks for 40/3: it takes 20, a divisor), 4 or 8 times.
    assert counts == {1: 1, 3: 1, 4: 1, 8: 1}, counts


def test_fit_times_each_chunk_and_the_compiled_epoch():
    x = jnp.linspace(-1.0, 1.0, 64)[:, None]

    def train(epochs, chunks, batch_size=None):
        model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
        data = Dataset(x, 3.0 * x)
        return fit(
            model,
            supervised_loss(),
            data,
            key=jax.random.key(1),
            epochs=epochs,
            batch_size=batch_size,
            chunks=chunks,
            progress=False,
        )

    result = train(40, 4, batch_size=16)
    assert result.chunk_epochs == (10, 10, 10, 10)
    assert len(result.chunk_seconds) == 4 and all(t > 0 for t in result.chunk_seconds)
    assert sum(result.chunk_seconds) <= result.seconds
    # The first chunk pays the compilation; the per-epoch time is the later chunks' median.
    later = sorted(t / 10 for t in result.chunk_seconds[1:])
    assert result.seconds_per_epoch == later[1]
    assert result.chunk_seconds[0] > result.seconds_per_epoch * 10
    one = train(5, 1)
    assert one.chunk_epochs == (5,) and np.isnan(one.seconds_per_epoch)
