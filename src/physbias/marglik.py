"""Marginal-likelihood training of a network (Immer et al. 2021, "Scalable marginal likelihood
estimation for model selection in deep learning", Algorithm 1; laplace-torch's ``marglik_training``).

MAP steps on ``-(log p(D | theta) + log p(theta))`` (:func:`physbias.evidence.map_loss`) with the
current prior precision and noise; every ``frequency`` epochs after ``burn_in`` a Laplace refit
(:func:`physbias.evidence.laplace`) and Adam steps on the hyperparameters through the evidence. The
model with the best evidence seen is returned.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from .evidence.laplace import (
    Curvature,
    Laplace,
    Likelihood,
    _check_data,
    _laplace_arrays,
    laplace,
    map_loss,
    optimize_hyperparameters,
    parameter_groups,
    parameters_filter,
)
from .train import _all_finite, fit


@dataclasses.dataclass
class MargLikResult:
    """What :func:`marglik_fit` returns: the best-evidence model and its hyperparameters."""

    model: object
    prior_precision: np.ndarray
    noise_std: float
    log_evidence: float
    evidence_history: list[tuple[int, float]]  # (epoch, log evidence) at every refit
    losses: np.ndarray


def marglik_fit(
    model,
    data: tuple[Array, Array],
    *,
    key: PRNGKeyArray,
    likelihood: Likelihood = "regression",
    curvature: Curvature = "kfac",
    epochs: int = 1000,
    learning_rate: float = 1e-2,
    batch_size: int | None = None,
    frequency: int = 50,
    burn_in: int = 50,
    hyper_steps: int = 100,
    hyper_learning_rate: float = 0.1,
    per_group: bool = False,
    progress: bool = False,
) -> MargLikResult:
    """Marginal-likelihood training: MAP steps, and every ``frequency`` epochs after ``burn_in`` a
    Laplace refit followed by ``hyper_steps`` Adam steps on the hyperparameters through the
    evidence; returns the model with the best evidence seen (Immer et al. 2021, Algorithm 1)."""
    for name, v in (("epochs", epochs), ("frequency", frequency), ("hyper_steps", hyper_steps)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {v!r}")
    if not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"`burn_in` must be a non-negative integer, got {burn_in!r}")
    x, y, _ = _check_data(model, data, likelihood)
    n = int(x.shape[0])
    delta, sigma = 1.0, 1.0
    best = (-np.inf, model, np.asarray(delta), sigma)
    history, losses, done = [], [], 0
    while done < epochs:
        span = min(burn_in - done if done < burn_in else frequency, epochs - done)
        result = fit(
            model,
            map_loss(likelihood, jnp.asarray(delta), sigma, n),
            (x, y),
            key=jax.random.fold_in(key, done),
            epochs=span,
            learning_rate=learning_rate,
            batch_size=batch_size,
            progress=progress,
        )
        model, done = result.model, done + span
        losses.append(result.losses)
        if result.diverged:
            break
        if done >= burn_in:
            lap = laplace(model, (x, y), likelihood=likelihood, curvature=curvature)
            hyper = optimize_hyperparameters(
                lap,
                steps=hyper_steps,
                learning_rate=hyper_learning_rate,
                prior_precision=delta if np.ndim(delta) == 0 or per_group else float(np.mean(delta)),
                noise_std=sigma,
                per_group=per_group,
            )
            delta, sigma = hyper.prior_precision, hyper.noise_std
            history.append((done, hyper.log_evidence))
            if hyper.log_evidence > best[0]:
                best = (hyper.log_evidence, model, np.asarray(delta), sigma)
    return MargLikResult(best[1], best[2], best[3], float(best[0]), history, np.concatenate(losses))


@dataclasses.dataclass
class InvarianceFitResult:
    """What :func:`invariance_fit` returns (``extents`` and ``log_evidence`` per epoch)."""

    model: object
    prior_precision: float
    noise_std: float
    log_evidence: np.ndarray  # (epochs,), at the start of each epoch's hyper step
    extents: np.ndarray  # (epochs + 1, K)
    losses: np.ndarray  # (epochs,) MAP loss
    seconds: float


def invariance_fit(
    model,
    data: tuple[Array, Array],
    *,
    hyperparameters=lambda m: m.extent,
    likelihood: Likelihood = "classification",
    curvature: Curvature = "full",
    epochs: int = 500,
    learning_rate: float = 0.1,
    hyper_learning_rate: float = 0.1,
    extent_learning_rate: float = 0.01 * math.pi,
    extent_learning_rate_final: float = 2e-5 * math.pi,
    burn_in: int = 0,
    prior_precision: float = 1.0,
    noise_std: float = 1.0,
    chunk: int = 64,
) -> InvarianceFitResult:
    """Learn a model's invariance extent (and prior precision, and noise for regression) by its
    Laplace evidence while its weights are trained to the MAP (Immer, van der Ouderaa et al. 2022).

    Every epoch (full batch, fused into one ``lax.scan``): one Adam step on the weights for
    ``-(log p(D | theta) + log p(theta))`` at the current prior, then, after ``burn_in`` epochs,
    one Adam step on ``log delta`` (and ``log sigma``) and on the selected ``hyperparameters``
    (e.g. a :class:`~physbias.bias.LearnedInvariance`'s ``extent``, Adam with a cosine-decayed
    step from ``extent_learning_rate`` to ``extent_learning_rate_final``) up the gradient of the
    Laplace evidence, whose curvature is recomputed at every step and differentiated through.
    No validation data are used. With ``hyperparameters=None`` only the prior (and noise) are
    learned: the same procedure for a plain model, as a baseline.
    """
    import time

    import equinox as eqx
    import optax

    from .evidence.laplace import Laplace, _laplace_arrays, parameter_groups, parameters_filter

    for name, v in (("epochs", epochs),):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {v!r}")
    for name, v in (
        ("learning_rate", learning_rate),
        ("hyper_learning_rate", hyper_learning_rate),
        ("extent_learning_rate", extent_learning_rate),
        ("prior_precision", prior_precision),
        ("noise_std", noise_std),
    ):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be positive and finite, got {v!r}")
    x, y, k = _check_data(model, data, likelihood)
    n = int(x.shape[0])
    spec = parameters_filter(model, hyperparameters)
    sizes = tuple(s for _, s in parameter_groups(model, spec))
    no = jax.tree_util.tree_map(lambda _: False, spec)
    eta_spec = no if hyperparameters is None else eqx.tree_at(hyperparameters, no, replace_fn=lambda _: True)
    theta, eta = eqx.filter(model, spec), eqx.filter(model, eta_spec)
    static = eqx.filter(model, jax.tree_util.tree_map(lambda a, b: not (a or b), spec, eta_spec))
    combine = lambda th, et: eqx.combine(th, et, static)  # noqa: E731
    dtype = jax.tree_util.tree_leaves(theta)[0].dtype
    hyper = (jnp.log(jnp.asarray(prior_precision, dtype)), jnp.log(jnp.asarray(noise_std, dtype)))
    learn_noise = likelihood == "regression"

    opt_theta = optax.adam(learning_rate)
    opt_hyper = optax.adam(hyper_learning_rate)
    opt_eta = optax.adam(
        optax.cosine_decay_schedule(
            extent_learning_rate, epochs, extent_learning_rate_final / extent_learning_rate
        )
    )

    def log_evidence(theta, eta, hyper):
        m = combine(jax.lax.stop_gradient(theta), eta)
        fit_term, squared, curv = _laplace_arrays(m, x, y, likelihood, curvature, chunk, sizes, spec)
        lap = Laplace(fit_term, squared, curv, likelihood, curvature, n, k, sizes)
        return lap.log_evidence(jnp.exp(hyper[0]), jnp.exp(hyper[1]))

    def epoch(carry, i):
        theta, eta, hyper, s_theta, s_eta, s_hyper = carry
        loss_fn = map_loss(likelihood, jnp.exp(hyper[0]), jnp.exp(hyper[1]), n, hyperparameters)
        loss, g = jax.value_and_grad(lambda th: loss_fn(combine(th, eta), (x, y)))(theta)
        with jax.numpy_dtype_promotion("standard"):
            updates, s_theta = opt_theta.update(g, s_theta, theta)
        theta = eqx.apply_updates(theta, updates)
        evidence, (g_eta, g_hyper) = jax.value_and_grad(log_evidence, argnums=(1, 2))(theta, eta, hyper)
        g_eta = jax.tree_util.tree_map(lambda v: -v, g_eta)
        g_hyper = (-g_hyper[0], -g_hyper[1] if learn_noise else jnp.zeros_like(g_hyper[1]))
        with jax.numpy_dtype_promotion("standard"):
            u_eta, new_s_eta = opt_eta.update(g_eta, s_eta, eta)
            u_hyper, new_s_hyper = opt_hyper.update(g_hyper, s_hyper, hyper)
        on = i >= burn_in
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(on, a, b), new, old)  # noqa: E731
        eta = keep(eqx.apply_updates(eta, u_eta), eta)
        hyper = keep(optax.apply_updates(hyper, u_hyper), hyper)
        s_eta, s_hyper = keep(new_s_eta, s_eta), keep(new_s_hyper, s_hyper)
        extent = jnp.concatenate(
            [jnp.ravel(a) for a in jax.tree_util.tree_leaves(eta)] + [jnp.zeros(0, dtype)]
        )
        return (theta, eta, hyper, s_theta, s_eta, s_hyper), (loss, evidence, extent)

    start = time.perf_counter()
    carry = (theta, eta, hyper, opt_theta.init(theta), opt_eta.init(eta), opt_hyper.init(hyper))
    run = eqx.filter_jit(lambda c: jax.lax.scan(epoch, c, jnp.arange(epochs)))
    carry, (losses, evidence, extents) = run(carry)
    jax.block_until_ready(losses)
    seconds = time.perf_counter() - start
    theta, eta, hyper = carry[:3]
    first = np.concatenate(
        [np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(eqx.filter(model, eta_spec))]
        + [np.zeros(0)]
    )
    return InvarianceFitResult(
        combine(theta, eta),
        float(jnp.exp(hyper[0])),
        float(jnp.exp(hyper[1])),
        np.asarray(evidence),
        np.concatenate([first[None], np.asarray(extents)]),
        np.asarray(losses),
        seconds,
    )


@dataclasses.dataclass
class NoetherFitResult:
    """What :func:`noether_fit` returns."""

    posterior: object  # MatrixNormalPosterior over the FlowMap
    losses: np.ndarray  # -ELBO / N per step (minibatch estimate)
    seconds: float
    diverged: bool
    message: str

    @property
    def model(self):
        """The one-step map at the posterior-mean weights."""
        return self.posterior.mean_model()

    @property
    def conserved(self):
        """The learned (or fixed) conserved quantities; None for a plain Hamiltonian network."""
        return getattr(self.posterior.model.dynamics, "conserved", None)


def noether_fit(
    model,
    data: tuple[Array, Array],
    *,
    key: PRNGKeyArray,
    epochs: int,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    symmetry_learning_rate: float = 1e-2,
    noise_std: float = math.sqrt(1e-3),
    n_mc: int = 1,
    prior_variance: float | str = 1.0,
    init_std: float = 1e-2,
    progress: bool = True,
) -> NoetherFitResult:
    """Noether's razor: learn a Hamiltonian network and its conserved quantities (its symmetries) by
    the matrix-normal variational lower bound on the evidence (van der Ouderaa et al. 2024).

    ``model`` is a :class:`~physbias.dynamics.FlowMap` over a
    :class:`~physbias.dynamics.SymmetrizedHamiltonianNN` (or a plain
    :class:`~physbias.dynamics.HamiltonianNN`, the baseline); ``data = (x_t, x_{t+1})``. The
    weights of ``dynamics.net`` get a matrix-normal posterior (:class:`MatrixNormalPosterior`, prior
    ``N(0, v I)``; ``prior_variance="optimal"`` learns ``v`` per layer in closed form, the default
    ``1.0`` is what the seed's harmonic-oscillator and U(n) runs used — with the closed form the
    harmonic oscillator's rotation was not found in our runs, see BENCHMARKS.md); the conserved
    quantities are point estimates learned by the same bound (type-II maximum likelihood). Loss per
    step: ``-E_q[log p(batch | W)] / B + KL / N`` (Gaussian likelihood with ``noise_std``), Adam with
    cosine decay to 0 at ``learning_rate`` for the posterior and ``symmetry_learning_rate`` for
    the conserved quantities (0 keeps them fixed, e.g. a known symmetry); fresh flow times every
    step. Training runs through :func:`physbias.fit` (``lax.scan``, divergence guard).
    """
    import equinox as eqx
    import optax

    from .dynamics import FlowMap
    from .evidence.vi import MatrixNormalPosterior, expected_log_likelihood

    if not isinstance(model, FlowMap) or not hasattr(model.dynamics, "net"):
        raise TypeError(
            "noether_fit: `model` must be a FlowMap over a SymmetrizedHamiltonianNN or HamiltonianNN, "
            f"got {type(model).__name__}"
        )
    for name, v in (("learning_rate", learning_rate), ("noise_std", noise_std), ("init_std", init_std)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be positive and finite, got {v!r}")
    if not (np.isfinite(symmetry_learning_rate) and symmetry_learning_rate >= 0):
        raise ValueError(f"`symmetry_learning_rate` must be >= 0, got {symmetry_learning_rate!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
    if not (prior_variance == "optimal" or (np.isfinite(prior_variance) and prior_variance > 0)):
        raise ValueError(f"`prior_variance` must be positive or 'optimal', got {prior_variance!r}")
    x, y = (jnp.asarray(a) for a in data)
    if not (bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(jnp.isfinite(y)))):
        raise ValueError("`data` must be finite (no NaN or inf in the trajectories)")
    d = model.dynamics.state_size
    if x.ndim != 2 or x.shape[1] != d or y.shape != x.shape:
        raise ValueError(f"`data` must be (x_t, x_t+1), both of shape (N, {d}); got {x.shape} and {y.shape}")
    n = int(x.shape[0])
    steps = epochs * (1 if batch_size is None or batch_size >= n else n // batch_size)

    posterior = MatrixNormalPosterior(model, init_std, where=lambda m: m.dynamics.net)
    symmetric = hasattr(model.dynamics, "conserved")
    params = eqx.filter(posterior, eqx.is_inexact_array)
    labels = jax.tree_util.tree_map(lambda _: "net", params)
    if symmetric:
        labels = eqx.tree_at(
            lambda p: p.model.dynamics.conserved,
            labels,
            replace_fn=lambda t: jax.tree_util.tree_map(lambda _: "symmetry", t),
        )
        labels = eqx.tree_at(lambda p: p.model.dynamics.flow_times, labels, "frozen")
    symmetry_opt = (
        optax.adam(optax.cosine_decay_schedule(symmetry_learning_rate, steps))
        if symmetry_learning_rate > 0
        else optax.set_to_zero()
    )
    optimizer = optax.multi_transform(
        {
            "net": optax.adam(optax.cosine_decay_schedule(learning_rate, steps)),
            "symmetry": symmetry_opt,
            "frozen": optax.set_to_zero(),
        },
        lambda _: labels,  # a function: the label tree is itself a (callable) Module
    )

    def loss(post, batch, key):
        k_tau, k_lik = jax.random.split(key)
        if symmetric:
            dyn = post.model.dynamics.with_flow_times(k_tau)
            post = eqx.tree_at(lambda p: p.model.dynamics, post, dyn)
        ell = expected_log_likelihood(post, batch, k_lik, noise_std=noise_std, n_samples=n_mc)
        return -ell / batch[0].shape[0] + post.kl(prior_variance) / n

    result = fit(
        posterior,
        loss,
        (x, y),
        key=key,
        epochs=epochs,
        optimizer=optimizer,
        batch_size=batch_size,
        progress=progress,
        description="noether's razor" if symmetric else "hnn (vi)",
    )
    return NoetherFitResult(result.model, result.losses, result.seconds, result.diverged, result.message)


def elbo_terms(
    posterior,
    data: tuple[Array, Array],
    key: PRNGKeyArray,
    *,
    noise_std: float = math.sqrt(1e-3),
    n_samples: int = 16,
    prior_variance: float | str = 1.0,
) -> dict[str, float]:
    """``NLL/N``, ``KL/N`` and ``-ELBO/N`` of a matrix-normal posterior on ``data`` (``N`` pairs),
    the expected log-likelihood by ``n_samples`` reparameterised samples (Noether's razor's tables)."""
    from .evidence.vi import expected_log_likelihood

    n = data[0].shape[0]
    nll = -float(expected_log_likelihood(posterior, data, key, noise_std=noise_std, n_samples=n_samples)) / n
    kl = float(posterior.kl(prior_variance)) / n
    return {"nll_per_n": nll, "kl_per_n": kl, "neg_elbo_per_n": nll + kl}


@dataclasses.dataclass
class FusedMargLikResult:
    """What :func:`marglik_scan` returns: the best-evidence model and its hyperparameters."""

    model: object
    prior_precision: float
    noise_std: float
    log_evidence: float
    evidence_history: np.ndarray  # (rounds,) log evidence after each round's hyperparameter steps
    losses: np.ndarray  # (burn_in + rounds * epochs_per_round,) MAP loss per step
    diverged: bool


def marglik_scan(
    model,
    data: tuple[Array, Array],
    *,
    rounds: int = 5,
    epochs_per_round: int = 200,
    learning_rate: float = 1e-2,
    hyper_steps: int = 100,
    hyper_learning_rate: float = 0.1,
    prior_precision: float = 1.0,
    noise_std: float = 1.0,
    burn_in: int = 0,
    hyperparameters: Callable[[Any], Any] | None = None,
) -> FusedMargLikResult:
    """Marginal-likelihood training for regression in one compiled program (Immer et al. 2021,
    Algorithm 1, full batch): ``rounds`` times, ``epochs_per_round`` Adam steps on
    ``-(log p(D | theta) + log p(theta))`` at the current ``(delta, sigma)``, then a Laplace refit
    with the full generalised Gauss-Newton curvature (its spectrum, :meth:`Laplace.spectrum`) and
    ``hyper_steps`` Adam steps on ``(log delta, log sigma)`` up the evidence, after ``burn_in``
    MAP epochs at the initial hyperparameters (a model refitted before it fits anything gets a
    large noise and a strong prior that can pin it at the trivial solution),

    .. math:: \\log p(D) \\approx -\\frac{SSE}{2\\sigma^2} - NK\\log(\\sigma\\sqrt{2\\pi})
              - \\frac{\\delta}{2}\\|\\theta_*\\|^2 + \\frac{P}{2}\\log\\delta
              - \\frac12\\sum_i \\log(\\lambda_i/\\sigma^2 + \\delta).

    Unlike :func:`marglik_fit` (a Python loop of :func:`physbias.fit` calls, minibatches, any
    curvature) the hyperparameters are arguments, not constants, so the whole procedure compiles
    once per model structure and data shape: a second seed or candidate of the same shape reuses it.
    A step with a non-finite loss or gradient leaves the parameters where they were (the run is
    reported as ``diverged``); the parameters of the round with the best evidence are returned.
    For small networks (``P`` up to a few thousand: the curvature is a dense ``P x P``).
    ``hyperparameters(model)`` selects arrays that are held fixed and kept out of the prior and the
    curvature (e.g. learned conserved quantities and the flow times of a
    :class:`~physbias.dynamics.SymmetrizedHamiltonianNN`); they are traced, so other values of them
    reuse the compilation.
    """
    for name, v in (("rounds", rounds), ("epochs_per_round", epochs_per_round), ("hyper_steps", hyper_steps)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {v!r}")
    if not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"`burn_in` must be a non-negative integer, got {burn_in!r}")
    for name, v in (
        ("learning_rate", learning_rate),
        ("hyper_learning_rate", hyper_learning_rate),
        ("prior_precision", prior_precision),
        ("noise_std", noise_std),
    ):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be a positive number, got {v!r}")
    x, y, _ = _check_data(model, data, "regression")
    spec = parameters_filter(model, hyperparameters)
    params, static = eqx.partition(model, spec)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    hyper0 = jnp.log(jnp.asarray([prior_precision, noise_std], dtype))
    out = _marglik_scan(
        params,
        static,
        spec if hyperparameters is not None else None,
        x,
        y,
        hyper0,
        rounds,
        epochs_per_round,
        learning_rate,
        hyper_steps,
        hyper_learning_rate,
        burn_in,
    )
    best_params, best_hyper, best_evidence, history, losses, ok = out
    return FusedMargLikResult(
        eqx.combine(best_params, static),
        float(jnp.exp(best_hyper[0])),
        float(jnp.exp(best_hyper[1])),
        float(best_evidence),
        np.asarray(history),
        np.asarray(losses).reshape(-1),
        not bool(ok),
    )


@eqx.filter_jit
def _marglik_scan(params, static, spec, x, y, hyper0, rounds, epochs, lr, hyper_steps, hyper_lr, burn_in):
    n = x.shape[0]
    model0 = eqx.combine(params, static)
    trainable = eqx.is_inexact_array if spec is None else spec
    sizes = tuple(s for _, s in parameter_groups(model0, trainable))
    k = int(np.prod(eqx.filter_eval_shape(model0, x[0]).shape))
    weights_opt, hyper_opt = optax.adam(lr), optax.adam(hyper_lr)

    def map_objective(p, hyper):
        delta, sigma = jnp.exp(hyper[0]), jnp.exp(hyper[1])
        model = eqx.combine(p, static)
        if spec is None:
            return map_loss("regression", delta, sigma, n)(model, (x, y))
        # Fixed arrays are outside the prior: the prior is over the trained leaves `p` alone.
        prior = sum(jnp.sum(a**2) for a in jax.tree_util.tree_leaves(p))
        return map_loss("regression", 0.0, sigma, n)(model, (x, y)) + 0.5 * delta * prior / n

    def weight_step(carry, _):
        p, state, ok, hyper = carry
        value, grad = jax.value_and_grad(map_objective)(p, hyper)
        with jax.numpy_dtype_promotion("standard"):
            updates, new_state = weights_opt.update(grad, state, p)
        good = jnp.isfinite(value) & _all_finite(grad)
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(good, a, b), new, old)  # noqa: E731
        return (keep(eqx.apply_updates(p, updates), p), keep(new_state, state), ok & good, hyper), value

    def round_(carry, _):
        p, state, ok, hyper, best = carry
        (p, state, ok, _), losses = jax.lax.scan(weight_step, (p, state, ok, hyper), None, length=epochs)
        fit_term, squared, ggn = _laplace_arrays(
            eqx.combine(p, static), x, y, "regression", "full", 64, sizes, trainable
        )
        # One prior precision for all parameters (one group); the spectrum makes each evidence
        # evaluation O(P).
        lap = Laplace(fit_term, jnp.sum(squared)[None], ggn, "regression", "full", n, k, (sum(sizes),))
        lap = lap.spectrum()

        def hyper_step(c, _):
            h, s = c
            value, grad = jax.value_and_grad(lambda h: -lap.log_evidence(jnp.exp(h[0]), jnp.exp(h[1])))(h)
            with jax.numpy_dtype_promotion("standard"):
                updates, s = hyper_opt.update(grad, s, h)
            return (optax.apply_updates(h, updates), s), value

        (hyper, _), _ = jax.lax.scan(hyper_step, (hyper, hyper_opt.init(hyper)), None, length=hyper_steps)
        evidence = lap.log_evidence(jnp.exp(hyper[0]), jnp.exp(hyper[1]))
        evidence = jnp.where(jnp.isfinite(evidence) & ok, evidence, -jnp.inf)
        better = evidence > best[2]
        best = jax.tree_util.tree_map(lambda a, b: jnp.where(better, a, b), (p, hyper, evidence), best)
        return (p, state, ok, hyper, best), (evidence, losses)

    state, ok = weights_opt.init(params), jnp.asarray(True)
    burn_losses = jnp.zeros((0,), hyper0.dtype)
    if burn_in:
        (params, state, ok, _), burn_losses = jax.lax.scan(
            weight_step, (params, state, ok, hyper0), None, length=burn_in
        )
    best0 = (params, hyper0, jnp.asarray(-jnp.inf, hyper0.dtype))
    carry = (params, state, ok, hyper0, best0)
    (_, _, ok, _, best), (history, losses) = jax.lax.scan(round_, carry, None, length=rounds)
    return best[0], best[1], best[2], history, jnp.concatenate([burn_losses, losses.reshape(-1)]), ok
