"""``physbias run diffusion-events``: sampling rare events of a chaotic system with a diffusion model,
and their probabilities from likelihoods (M22; Finzi et al., ICML 2023, seed 004).

A VE diffusion is trained on windows of Lorenz-63 trajectories (state / 20, ``dt = 0.1``, burn-in 3
from the reference's start, standard normal in the divided units: mostly the attractor, with the
slow spirals out of the fixed points ``C±`` that such starts leave, which are the quiet windows).
Events are thresholds on a statistic of a window (:data:`physbias.systems.WINDOW_STATISTICS`), set
to Monte-Carlo probabilities ``P(E)`` from 1e-1 down to 1e-3.

What is diffused (config ``diffuse``), the strength of the physical bias:

- ``"start"`` (default): the windows' first states. Each window is the simulator's flow map of its
  start (:class:`physbias.systems.FlowMap`), a hard constraint that every sample is a trajectory of
  the ODE; the diffusion learns only where windows start, a 3-dimensional density, and an event on
  the window is ``C(FlowMap(s))``. Errors across the attractor's sheets shrink along the window
  (the strongly contracting direction), so only the density along them counts. The quiet windows
  start within 0.07 (P = 0.01) and 0.03 (P = 0.001) of the fixed points in standardised units, a
  scale a plain MLP of 3 numbers learns slowly; 64 random Fourier features of the start (config
  ``fourier_inputs``, ``fourier_scale``) bring the model's own log P of that event within 0.5 of
  Monte Carlo at every level in 600 epochs (BENCHMARKS: -0.55 at 1e-2 without them).
- ``"window"``: whole windows, the reference's design with no knowledge of the ODE. The network has
  to learn the manifold of trajectories too and rounds its sharp features (BENCHMARKS: the cusp of
  the return map of ``z``, which makes the highest peaks, and tails 2-3 times too thin at 1e-2).
  The settings of its BENCHMARKS runs: ``--set diffuse=window --set guidance=tweedie --set
  epochs=200 --set sample_steps=500 --set corrector_steps=4 --set samples=2000 --set
  smc_particles=1024`` (the defaults before 2026-12-06's fifth stop).

What guides (config ``guidance``):

- ``"classifier"`` (default): ``grad log P(E | x_sigma)`` from a classifier of noised samples, one
  per event family with a logit per level (:class:`physbias.diffusion.NestedEventClassifier`),
  fitted to the Monte-Carlo half that sets the thresholds (never the half that counts P(E)). It
  learns ``P(E | x_sigma)`` however rough ``C(FlowMap(s))`` is in ``s`` (chaos stretches it 15-fold
  over a window), where the Tweedie guidance is rough itself (divergences of 10^3) and the
  likelihoods and twisted SMC built on it fail. With Fourier features of the start (config
  ``classifier_fourier_inputs``) it resolves the quiet windows' starts: 99 / 98 / 93% of the guided
  samples land in that event at 1e-1 / 1e-2 / 1e-3 on seed 0 (100 / 96 / 97% on seed 1; 89% at
  1e-3 without the features), and twisted SMC is within 0.45 of Monte Carlo at every level. But
  its gradient is rough at small noise, and the guided flow's density carries its Laplacian, so
  importance sampling from the flow is off by default (config ``flow_samples``): with the smooth
  classifier (``--set classifier_fourier_inputs=0 --set classifier_batch_size=512 --set
  flow_samples=512``) it is within 0.02 of Monte Carlo at every level. The peak event's thin
  strips in the start space stay beyond every classifier (11-54% in E).
- ``"tweedie"``: the reference's ``Phi(C(x̂) / sigma_C)`` around the Tweedie estimate (links and
  posteriors below), for windows.

For each event:

- **conditional samples** from the event-conditioned score (:class:`physbias.diffusion.EventConditionedScore`)
  with the reference's logistic link ``sigmoid(1.6 C / sigma_C)`` and with the probit link
  ``Phi(C / sigma_C)``: the fraction that satisfies ``E``. The samples are denoised at the end
  (config ``denoise``: the guidance aims at the Tweedie estimate, and the noise left at
  ``sigma_min`` alone adds spectral amplitude). The moments of ``C`` come from samples of the
  data's Gaussian posterior around the Tweedie estimate (config ``posterior_samples``) or, by
  default, from the reference's linearisation (``posterior_samples = 0``). Diffusing windows, 16
  posterior samples gave the better twisted-SMC estimates of the peak event (BENCHMARKS); diffusing
  starts, one Gaussian is a poor posterior over the two-lobed attractor (no conditional sample in
  ``E`` in a probe) and each sample costs a flow map;
- **log P(E) = log p(x) - log p(x | E) + log P(E | x)** from exact probability-flow likelihoods of
  conditional samples that lie in ``E`` (:func:`physbias.diffusion.event_log_probability`), against
  the Monte-Carlo truth from the simulator (thresholds from one half of the Monte-Carlo windows,
  probabilities from the other);
- **log P(E) by twisted SMC**: guided Euler-Maruyama particles reweighted step by step against the
  plain sampler, with ``P(E | x_sigma)`` as the twist, and resampled
  (:func:`physbias.diffusion.event_log_probability_smc`): no likelihood solve, and unbiased for the
  model's own ``P(E)`` however approximate the guidance;
- **log P(E) by importance sampling from the guided probability flow** (diffused starts only: exact
  divergences cost one pass per number of a sample), ``log mean 1_E(x) p(x) / q(x)`` with ``q`` the
  density of the guided flow's samples carried along their paths and ``p`` the plain model's
  likelihood (:func:`physbias.diffusion.event_log_probability_importance`): the reference's
  ``log p(x) - log p(x | E)``, unbiased for an approximate conditional;
- the unconditional model's own frequency of ``E`` (the count a plain sampler would need).

Sample statistics (per-coordinate mean and spread, lag-5 autocorrelation, the event statistic's
distribution) compare the unconditional samples with held-out data.
"""

from __future__ import annotations

import dataclasses
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..diffusion import (
    ClassifierGuidedScore,
    Denoiser,
    EventConditionedScore,
    GaussianPosterior,
    LocalPosterior,
    NestedEventClassifier,
    WindowMLP,
    WindowMLPConv,
    balanced_band_data,
    check_event,
    denoising_loss,
    event_log_probability,
    event_log_probability_importance,
    event_log_probability_smc,
    event_satisfied,
    nested_event_classifier_loss,
    sample,
)
from ..metrics import autocorrelation
from ..report import Figure, Panel, Result, series
from ..systems import WINDOW_STATISTICS, FitzHughNagumo, FlowMap, Lorenz63, trajectory_windows
from ..train import fit
from ._config import ExperimentConfig, fraction, nonnegative, one_of, positive
from ._registry import Experiment

SYSTEMS = {"lorenz": Lorenz63, "fitzhugh-nagumo": FitzHughNagumo}
# The denoiser's network: a residual MLP on the whole window, or that MLP with a convolution over
# time as its head (twice the cost of a step; its measured effect is in BENCHMARKS).
NETWORKS = {"mlp": WindowMLP, "mlp-conv": WindowMLPConv}
# Which tail of each statistic is the event: the rare side of the attractor's behaviour.
TAILS = {"lobe": "upper", "spectral": "lower", "peak": "upper"}
STIFF_OUTLIER = 20.0  # a log-ratio this far from the median is a failed (stiff) solve, not data
START_BOUND = 8.0  # standard deviations: the bound on a diffused start fed to the flow map


@dataclasses.dataclass(frozen=True)
class DiffusionEventsConfig(ExperimentConfig):
    """Lorenz-63, 40 000 windows of 30 steps, events of probability 1e-1 ... 1e-3 (about 12 min)."""

    QUICK = {
        "n_train": 1000,
        "epochs": 100,
        "width": 128,
        "samples": 500,
        "conditional_samples": 64,
        "likelihood_samples": 2,
        "smc_particles": 64,
        "smc_replicates": 2,
        "likelihood_steps": 20,
        "sample_steps": 200,
        "probabilities": (0.1, 0.01),
        "mc_samples": 20_000,
        "events": ("peak",),
        "classifier_steps": 200,
        "classifier_width": 64,
        "flow_steps": 20,
    }
    # The reference's own design (whole windows, Tweedie guidance) at its sizes.
    FULL = {
        "diffuse": "window",
        "guidance": "tweedie",
        "length": 60,
        "epochs": 400,
        "sample_steps": 1000,
        "corrector_steps": 4,
        "likelihood_steps": 200,
        "samples": 2000,
        "smc_particles": 1024,
    }

    system: str = one_of("lorenz", tuple(SYSTEMS))
    diffuse: str = one_of("start", ("window", "start"))
    events: tuple[str, ...] = one_of(("peak", "spectral"), tuple(WINDOW_STATISTICS))
    probabilities: tuple[float, ...] = positive((0.1, 0.01, 0.001))
    links: tuple[str, ...] = one_of(("probit", "logistic"), ("probit", "logistic"))
    n_train: int = positive(40_000)
    length: int = positive(30)
    dt: float = positive(0.1)
    burn_in: float = positive(3.0)
    network: str = one_of("mlp", tuple(NETWORKS))
    width: int = positive(256)
    depth: int = positive(3)
    fourier_inputs: int = nonnegative(64)
    fourier_scale: float = positive(2.0)
    epochs: int = positive(600)
    batch_size: int = positive(256)
    learning_rate: float = positive(1e-3)
    ema_decay: float = nonnegative(0.0)
    sigma_min: float = positive(1e-3)
    sigma_max: float = positive(20.0)
    floor: float = positive(1e-5)
    sample_steps: int = positive(250)
    corrector_steps: int = nonnegative(2)
    posterior_samples: int = nonnegative(16)
    posterior: str = one_of("data", ("data", "local"))
    guidance: str = one_of("classifier", ("tweedie", "classifier"))
    classifier_steps: int = positive(20_000)
    classifier_width: int = positive(256)
    classifier_batch_size: int = positive(256)
    classifier_fourier_inputs: int = nonnegative(64)
    classifier_fourier_scale: float = positive(1.0)
    flow_samples: int = nonnegative(0)
    flow_steps: int = positive(100)
    denoise: bool = True
    samples: int = positive(50_000)
    conditional_samples: int = positive(256)
    likelihood_samples: int = positive(32)
    smc_particles: int = positive(512)
    smc_replicates: int = positive(4)
    twist_scale: float = positive(1.0)
    likelihood_steps: int = positive(50)
    likelihood_sigma_min: float = positive(0.1)
    mc_samples: int = positive(400_000)
    held_out: float = fraction(0.5)

    def check(self) -> None:
        if self.ema_decay >= 1:
            raise ValueError(f"config `ema_decay` must be below 1 (0: no averaging), got {self.ema_decay}")
        if self.posterior_samples % 2:
            raise ValueError(
                f"config `posterior_samples` must be even (antithetic pairs; 0: the reference's "
                f"linearisation), got {self.posterior_samples}"
            )
        if self.diffuse == "start" and self.network != "mlp":
            raise ValueError(
                f"config `network` {self.network!r} works on whole windows; with `diffuse` = 'start' "
                "(a window's first state) use 'mlp'"
            )
        if self.batch_size > self.n_train:
            raise ValueError(f"config `batch_size` ({self.batch_size}) exceeds `n_train` ({self.n_train})")
        if any(p >= 0.5 for p in self.probabilities):
            raise ValueError(
                f"config `probabilities` must be rare events, below 0.5; got {self.probabilities}"
            )
        if not self.sigma_min < self.likelihood_sigma_min < self.sigma_max:
            raise ValueError("config needs `sigma_min` < `likelihood_sigma_min` < `sigma_max`")
        half = self.mc_samples * min(self.held_out, 1 - self.held_out)
        if any(p * half < 10 for p in self.probabilities):
            raise ValueError(
                f"config `mc_samples` ({self.mc_samples}) leaves fewer than 10 Monte-Carlo hits for "
                f"probability {min(self.probabilities)}"
            )


def _event(statistic, threshold: float, spread: float, tail: str, loc, scale):
    """``C(x)`` on a standardised window ``x``: the statistic's distance past the threshold, in
    units of its spread in the data (so that the guidance floor is small against it)."""
    sign = 1.0 if tail == "upper" else -1.0

    def event(x):
        return sign * (statistic(x * scale[None] + loc[None]) - threshold) / spread

    return event


def run(config: DiffusionEventsConfig, *, seed: int = 0, progress: bool = True) -> Result:
    key = jax.random.key(seed)
    k_train, k_test, k_mc, k_net, k_fit, k_sample, k_cond = jax.random.split(key, 7)
    system = SYSTEMS[config.system]()
    window_shape = (config.length, system.state_size)
    windows = dict(dt=config.dt, burn_in=config.burn_in)
    start = time.perf_counter()
    train = trajectory_windows(system, k_train, config.n_train, config.length, **windows)
    test = trajectory_windows(system, k_test, config.samples, config.length, **windows)
    mc = trajectory_windows(system, k_mc, config.mc_samples, config.length, **windows)
    simulate_seconds = time.perf_counter() - start
    loc, scale = train.mean(axis=(0, 1)), train.std(axis=(0, 1))
    loc_j, scale_j = jnp.asarray(loc), jnp.asarray(scale)
    standardised = jnp.asarray((train - loc) / scale)
    # The window a (standardised) first state starts: the simulator's own map, so that the windows of
    # diffused starts are trajectories of the system by construction.
    flow = FlowMap(system, config.length, dt=config.dt, loc=loc, scale=scale)
    if config.diffuse == "start":
        shape, data = (system.state_size,), standardised[:, 0]
        decode = jax.jit(jax.vmap(flow))
    else:
        shape, data = window_shape, standardised
        decode = jnp.asarray

    sizes = dict(width=config.width, depth=config.depth)
    if config.diffuse == "start":
        # A start is 3 numbers: Fourier features give the MLP the fine scale of the density near
        # the fixed points, where the quiet windows start (BENCHMARKS).
        sizes.update(fourier_inputs=config.fourier_inputs, fourier_scale=config.fourier_scale)
    denoiser = Denoiser(NETWORKS[config.network](shape, k_net, **sizes))
    steps = config.epochs * (config.n_train // config.batch_size)
    optimizer = optax.adam(optax.cosine_decay_schedule(config.learning_rate, steps, 0.05))
    start = time.perf_counter()
    trained = fit(
        denoiser,
        lambda m, batch, k: denoising_loss(m, batch[0], k, sigma_range=(config.sigma_min, config.sigma_max)),
        (data,),
        key=k_fit,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=optimizer,
        progress=progress,
        description="diffusion (denoising score matching)",
        ema_decay=config.ema_decay or None,  # 0: the last iterate
    )
    train_seconds = time.perf_counter() - start
    denoiser = trained.model
    noise = dict(sigma_min=config.sigma_min, sigma_max=config.sigma_max, steps=config.sample_steps)
    # n and corrector_steps are Python ints: static under filter_jit.
    draw = eqx.filter_jit(
        lambda score, k, n, corrector: sample(
            score, k, n, shape, corrector_steps=corrector, denoise=config.denoise, **noise
        )
    )
    start = time.perf_counter()
    model_samples = np.asarray(decode(draw(denoiser.score, k_sample, config.samples, 0))) * scale + loc
    sample_seconds = time.perf_counter() - start

    rows = [
        {
            "kind": "statistics",
            "coordinate": c,
            "data_mean": float(test[..., c].mean()),
            "model_mean": float(model_samples[..., c].mean()),
            "data_std": float(test[..., c].std()),
            "model_std": float(model_samples[..., c].std()),
            "data_autocorrelation_lag5": float(autocorrelation(test, 5)[c]),
            "model_autocorrelation_lag5": float(autocorrelation(model_samples, 5)[c]),
        }
        for c in range(system.state_size)
    ]
    timing = {
        "kind": "timing",
        "simulate_seconds": round(simulate_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "train_steps": steps,
        "final_loss": float(np.asarray(trained.losses)[-1]),
        "sample_seconds_per_1000": round(1000 * sample_seconds / config.samples, 2),
    }
    rows.append(timing)

    # log P(E) from one sample: both likelihoods at likelihood_sigma_min, plus log P(E | x) there
    # (or without it, the reference's form: the column log_p_reference).
    estimate_log_p = eqx.filter_jit(
        jax.vmap(
            lambda score, x: event_log_probability(
                score,
                x,
                sigma_min=config.likelihood_sigma_min,
                sigma_max=config.sigma_max,
                steps=config.likelihood_steps,
                posterior=False,  # added below, kept as its own column
            ),
            in_axes=(None, 0),
        )
    )
    sigma_lik = jnp.asarray(config.likelihood_sigma_min, jnp.float32)
    split = int(config.held_out * config.mc_samples)
    panels_hist, trajectories = [], []
    smc_estimates = ([], [])
    # Twisted SMC on the first link only: every twist estimates the same P(E), the better one
    # with the smaller error bar. No correctors: the weights need the same steps in both chains.
    smc = eqx.filter_jit(
        lambda score, k: event_log_probability_smc(
            score,
            k,
            config.smc_particles,
            shape,
            replicates=config.smc_replicates,
            sigma_min=config.sigma_min,
            sigma_max=config.sigma_max,
            steps=config.sample_steps,
            # A learned twist is already flat where the data's scale is far below sigma.
            twist_scale=config.twist_scale if config.guidance == "tweedie" else None,
            denoise=config.denoise,
        )
    )
    # Moments of C over samples of the data's Gaussian posterior, or the model's own at each point
    # (0 samples: the reference's linearisation).
    if not config.posterior_samples:
        posterior = None
    elif config.posterior == "local":
        posterior = LocalPosterior()
    else:
        posterior = GaussianPosterior.from_samples(data)
    guidance = dict(posterior=posterior, posterior_samples=max(config.posterior_samples, 2))
    links = config.links if config.guidance == "tweedie" else ("classifier",)
    estimates = {link: ([], []) for link in links}
    flow_estimates = ([], [])
    # The flow's importance weights need exact divergences, one pass per number of a sample: cheap for
    # a start (3 numbers), 90 passes a step for a whole window.
    flow_is = config.flow_samples > 0 and config.diffuse == "start"
    flow_is_run = eqx.filter_jit(
        lambda score, k: event_log_probability_importance(
            score,
            k,
            config.flow_samples,
            shape,
            sigma_min=config.sigma_min,
            sigma_max=config.sigma_max,
            steps=config.flow_steps,
        )
    )
    # The classifier learns from the Monte-Carlo half that sets the thresholds (never the held-out
    # half that counts P(E)), in the units the diffusion sees.
    if config.guidance == "classifier":
        reference_inputs = (mc[:split, 0] if config.diffuse == "start" else mc[:split]) - loc
        reference_inputs = reference_inputs / scale
    classifier_seconds, classifier_steps = 0.0, 0
    # Nested events: the rarest last, so that level k of a family's classifier is the k-th here.
    probabilities = sorted(config.probabilities, reverse=True)
    for name in config.events:
        statistic, tail = WINDOW_STATISTICS[name], TAILS[name]
        stat = jax.jit(jax.vmap(statistic))
        mc_stat = np.asarray(stat(jnp.asarray(mc)))
        reference, held = mc_stat[:split], mc_stat[split:]
        spread = float(np.asarray(stat(jnp.asarray(train))).std())
        model_stat = np.asarray(stat(jnp.asarray(model_samples)))
        hist_series = [
            _histogram("data (Monte Carlo)", held, reference),
            _histogram("diffusion samples", model_stat, reference),
        ]
        thresholds = [float(np.quantile(reference, 1 - p if tail == "upper" else p)) for p in probabilities]
        if config.guidance == "classifier":
            # One classifier for every level of the family (physbias.diffusion.NestedEventClassifier).
            start = time.perf_counter()
            k_classifier = jax.random.fold_in(k_cond, 7 + config.events.index(name))
            sign = 1.0 if tail == "upper" else -1.0
            labels = np.stack([sign * (reference - t) > 0 for t in thresholds], axis=1)
            family, steps_run = _train_classifier(config, shape, reference_inputs, labels, k_classifier)
            classifier_seconds += time.perf_counter() - start
            classifier_steps += steps_run
        for level, (p, threshold) in enumerate(zip(probabilities, thresholds, strict=True), start=1):
            inside = (lambda s, t=threshold: s > t) if tail == "upper" else (lambda s, t=threshold: s < t)
            mc_p = float(np.mean(inside(held)))
            event = _event(statistic, threshold, spread, tail, loc_j, scale_j)
            if config.diffuse == "start":
                # C of the start's window. Starts are clipped far outside the data (|s| < 3.1 there) so
                # that a wild Tweedie estimate at large noise cannot make the integrator overflow.
                event = lambda s, on_window=event: on_window(flow(jnp.clip(s, -START_BOUND, START_BOUND)))  # noqa: E731
            check_event(event, data[0])
            for link in links:
                if link == "classifier":
                    conditional = ClassifierGuidedScore(denoiser, family.level(level), event)
                else:
                    conditional = EventConditionedScore(
                        denoiser, event, floor=config.floor, link=link, **guidance
                    )
                start = time.perf_counter()
                k = jax.random.fold_in(k_cond, round(1e6 * p))
                xs = draw(conditional, k, config.conditional_samples, config.corrector_steps)
                hits = np.asarray(event_satisfied(event, xs))
                cond_seconds = time.perf_counter() - start
                start = time.perf_counter()
                chosen = xs[np.flatnonzero(hits)[: config.likelihood_samples]]
                if len(chosen):
                    reference_ratio = np.asarray(estimate_log_p(conditional, chosen))
                    posterior = np.asarray(
                        jax.vmap(lambda x, c=conditional: c.log_event_probability(x, sigma_lik))(chosen)
                    )
                    log_ratio = reference_ratio + posterior
                    median = float(np.median(log_ratio))
                    # A stiff conditional solve (the guidance's Jacobian is large near the event's
                    # boundary at small sigma) returns a log-ratio off by orders of magnitude.
                    solved = np.isfinite(log_ratio) & (np.abs(log_ratio - median) < STIFF_OUTLIER)
                    estimate = float(np.mean(log_ratio[solved]))
                    spread_estimate = float(np.std(log_ratio[solved]))
                    reference_median = float(np.median(reference_ratio))
                    posterior_mean = float(np.mean(posterior))
                    stiff = int(np.sum(~solved))
                else:
                    estimate = median = spread_estimate = reference_median = posterior_mean = float("nan")
                    stiff = 0
                likelihood_seconds = time.perf_counter() - start
                log_mc = math.log(mc_p) if mc_p > 0 else float("nan")
                estimates[link][0].append(log_mc)
                estimates[link][1].append(median)  # robust to the rare stiff likelihood solve
                start = time.perf_counter()
                if link == links[0]:
                    result = smc(conditional, jax.random.fold_in(k, 1))
                    smc_log_p, smc_se = float(result.log_probability), float(result.standard_error)
                    smc_fraction = float(result.fraction_in_event)
                    smc_resamples = float(np.mean(np.asarray(result.smc.resamples)))
                    smc_ess = float(np.min(np.asarray(result.smc.min_effective_sample_size)))
                    smc_estimates[0].append(log_mc)
                    smc_estimates[1].append(smc_log_p)
                else:
                    smc_log_p = smc_se = smc_fraction = smc_resamples = smc_ess = float("nan")
                smc_seconds = time.perf_counter() - start
                start = time.perf_counter()
                if flow_is and link == links[0]:
                    flow_result = flow_is_run(conditional, jax.random.fold_in(k, 2))
                    flow_log_p = float(flow_result.log_probability)
                    flow_se = float(flow_result.standard_error)
                    flow_ess = float(flow_result.effective_sample_size)
                    flow_fraction = float(np.mean(np.asarray(flow_result.in_event)))
                    flow_estimates[0].append(log_mc)
                    flow_estimates[1].append(flow_log_p)
                else:
                    flow_log_p = flow_se = flow_ess = flow_fraction = float("nan")
                flow_seconds = time.perf_counter() - start
                rows.append(
                    {
                        "kind": "event",
                        "event": name,
                        "tail": tail,
                        "link": link,
                        "target_probability": p,
                        "threshold": threshold,
                        "mc_probability": mc_p,
                        "mc_hits": int(np.sum(inside(held))),
                        "model_probability": float(np.mean(inside(model_stat))),
                        "conditional_fraction": float(np.mean(hits)),
                        "log_p_mc": math.log(mc_p) if mc_p > 0 else float("nan"),
                        "log_p_estimate": estimate,
                        "log_p_error": estimate - math.log(mc_p) if mc_p > 0 else float("nan"),
                        "log_p_estimate_median": median,
                        "log_p_median_error": median - math.log(mc_p) if mc_p > 0 else float("nan"),
                        "log_p_estimate_std": spread_estimate,
                        "log_p_reference_median": reference_median,
                        "log_posterior_mean": posterior_mean,
                        "likelihood_samples": len(chosen),
                        "stiff_solves": stiff,
                        "log_p_smc": smc_log_p,
                        "log_p_smc_error": smc_log_p - log_mc,
                        "log_p_smc_standard_error": smc_se,
                        "smc_fraction": smc_fraction,
                        "smc_resamples": smc_resamples,
                        "smc_min_effective_samples": smc_ess,
                        "log_p_flow": flow_log_p,
                        "log_p_flow_error": flow_log_p - log_mc,
                        "log_p_flow_standard_error": flow_se,
                        "flow_effective_samples": flow_ess,
                        "flow_fraction": flow_fraction,
                        "conditional_seconds": round(cond_seconds, 2),
                        "likelihood_seconds": round(likelihood_seconds, 2),
                        "smc_seconds": round(smc_seconds, 2),
                        "flow_seconds": round(flow_seconds, 2),
                    }
                )
                if link == links[0]:
                    cond_windows = np.asarray(decode(xs)) * scale + loc
                    cond_stat = np.asarray(stat(jnp.asarray(cond_windows)))
                    if p == min(config.probabilities):
                        hist_series.append(_histogram(f"conditional, P(E) = {p:g}", cond_stat, reference))
                    example = cond_windows[int(np.argmax(hits))]
                    t = np.arange(config.length) * config.dt
                    trajectories.append(series(f"{name}, P(E) = {p:g}", t, example[:, 0]))
            if progress:
                last = rows[-len(links) :]
                summary = ", ".join(
                    f"{r['link']}: {r['conditional_fraction']:.0%} in E, log P {r['log_p_estimate']:.2f} "
                    "(likelihoods)"
                    + (
                        f", {r['log_p_smc']:.2f} ± {r['log_p_smc_standard_error']:.2f} (twisted SMC)"
                        if r["link"] == links[0]
                        else ""
                    )
                    + (
                        f", {r['log_p_flow']:.2f} ± {r['log_p_flow_standard_error']:.2f} (flow importance)"
                        if r["link"] == links[0] and flow_is
                        else ""
                    )
                    for r in last
                )
                print(
                    f"{name} P(E) = {p:g} (MC {mc_p:.2e}, log {math.log(max(mc_p, 1e-300)):.2f}): {summary}"
                )
        panels_hist.append(Panel(f"event statistic '{name}'", name, "density", hist_series, logy=True))

    timing["classifier_seconds"] = round(classifier_seconds, 2)
    timing["classifier_steps"] = classifier_steps
    t = np.arange(config.length) * config.dt
    trajectories.insert(0, series("data window", t, test[0, :, 0]))
    panels = [
        *panels_hist,
        Panel(
            "log P(E): estimates vs Monte Carlo",
            "log P(E), Monte Carlo",
            "log P(E), estimated",
            [
                *(
                    series(f"{link}, likelihoods (median)", *estimates[link], style="scatter")
                    for link in links
                ),
                series(f"{links[0]}, twisted SMC", *smc_estimates, style="scatter"),
                *(
                    [series(f"{links[0]}, flow importance sampling", *flow_estimates, style="scatter")]
                    if flow_is
                    else []
                ),
            ],
            diagonal=True,
        ),
        Panel("conditional samples (first coordinate)", "t", "x / 20", trajectories),
    ]
    notes = [
        f"{config.system}: {config.n_train} training windows of {config.length} steps (dt = {config.dt}, "
        f"burn-in {config.burn_in} from the reference's start, N(0, I) in the divided units); "
        + (
            "diffused: the windows' first states, each window the simulator's flow map of its start "
            "(RK4, dt / 10; every sample a trajectory of the ODE); "
            if config.diffuse == "start"
            else "diffused: whole windows (the reference's design, no knowledge of the ODE); "
        )
        + f"denoiser network {config.network} (width {config.width}, depth {config.depth}"
        + (
            f", {config.fourier_inputs} random Fourier features of the start (scale {config.fourier_scale:g})"
            if config.diffuse == "start" and config.fourier_inputs
            else ""
        )
        + "); "
        f"VE diffusion sigma in [{config.sigma_min}, {config.sigma_max}], "
        f"log-uniform training noise, {steps} Adam steps"
        + (f", the parameters' moving average (decay {config.ema_decay:g})" if config.ema_decay else "")
        + f"; {config.sample_steps} Euler-Maruyama steps "
        f"with {config.corrector_steps} Langevin corrector steps each for the conditional samples"
        + (", then the Tweedie estimate at sigma_min (denoise)" if config.denoise else "")
        + ". "
        + _guidance_note(config),
        f"Events: a threshold on the statistic set at its Monte-Carlo quantile on {split} windows; "
        f"mc_probability counts the other {config.mc_samples - split}. C is in units of the statistic's "
        f"spread in the training data; the guidance floor is {config.floor}.",
        f"log P(E) = mean (and median) over up to {config.likelihood_samples} conditional samples in E of "
        f"log p(x) - log p(x|E) + log P(E|x), the likelihoods exact-divergence probability flows at "
        f"sigma = {config.likelihood_sigma_min} ({config.likelihood_steps} Heun steps in log sigma) and "
        "log P(E|x) = log Phi(C(x̂)/sigma_C) there (log_posterior_mean); log_p_reference_median leaves "
        f"that term out, as the reference does. The mean leaves out the stiff_solves: log-ratios more "
        f"than {STIFF_OUTLIER:g} from the median (or non-finite).",
        f"log_p_smc (link {links[0]} only): twisted SMC with {config.smc_replicates} independent "
        f"systems of {config.smc_particles} particles, {config.sample_steps} guided Euler-Maruyama steps "
        "(no correctors), each step reweighted by the plain sampler's transition density over the "
        "guided one's times the change of the twist log P(E | x_sigma)"
        + (
            f" (tempered by 1 / (1 + (sigma / {config.twist_scale:g})^2))"
            if config.guidance == "tweedie"
            else ""
        )
        + ", systematic resampling below half the particles' "
        "effective size, and 1_E(x)/twist at the end: an unbiased estimate of the model's own P(E) "
        "(physbias.diffusion.event_log_probability_smc). log_p_smc_standard_error is from the spread "
        "over the systems; smc_fraction the share of final particles in E before the last reweighting.",
        *(
            [
                f"log_p_flow: importance sampling from the guided probability flow, {config.flow_samples} "
                f"samples ({config.flow_steps} Heun steps in log sigma), each with the density of the "
                "sampler that drew it carried along its path, weighted by the plain model's "
                "probability-flow likelihood over it: log mean 1_E(x) p(x) / q(x), the reference's "
                "log p(x) - log p(x|E) made unbiased for an approximate conditional "
                "(physbias.diffusion.event_log_probability_importance); flow_fraction the share of "
                "those samples in E, flow_effective_samples Kish's size of the weights."
            ]
            if flow_is
            else []
        ),
        "model_probability: the fraction of unconditional diffusion samples in E (what a plain sampler "
        "gives, and the model's own P(E)).",
    ]
    return Result(
        "diffusion-events",
        dataclasses.asdict(config),
        rows,
        figures=[Figure("events", "Event sampling with a diffusion model", panels, columns=2)],
        notes=notes,
    )


def _guidance_note(config) -> str:
    """What guided the conditional samples, for the results' notes."""
    if config.guidance == "classifier":
        return (
            "The guidance is grad log P(E | x_sigma) from a classifier of noised samples, one per "
            f"event family with a logit per level (physbias.diffusion.NestedEventClassifier, width "
            f"{config.classifier_width}), fitted for about {config.classifier_steps} Adam steps "
            "(classifier_steps in the timing row) to the Monte-Carlo half that sets the thresholds "
            "(the bands between the levels balanced, each level weighted back to its own balanced "
            "regression, the prior's log-odds added back), noise log-uniform over the sampler's "
            "range; the reference's Tweedie-Gaussian guidance is rough for an event through a "
            "chaotic flow map (BENCHMARKS)."
        )
    moments = "The guidance's P(E | x_sigma) = Phi(m / s) takes the mean m and spread s of C "
    if not config.posterior_samples:
        return moments + "from its linearisation at x̂ (the reference's)."
    if config.posterior == "local":
        return moments + (
            f"over {config.posterior_samples} samples x̂ + δ of the model's own local posterior "
            "Cov[x_0 | x_sigma] = sigma^2 dD/dx (physbias.diffusion.LocalPosterior)."
        )
    return moments + (
        f"over {config.posterior_samples} samples x̂ + δ of the data's Gaussian posterior "
        "Cov[x_0 | x_sigma] (physbias.diffusion.GaussianPosterior)."
    )


def _train_classifier(config, shape, inputs, labels, key) -> tuple[NestedEventClassifier, int]:
    """A :class:`NestedEventClassifier` of ``P(E_k | x_sigma)`` fitted to ``inputs`` with nested
    ``labels`` (``(n, K)``), on batches with the bands between the levels balanced, noise log-uniform
    over the sampler's range, for about ``config.classifier_steps`` Adam steps; and the steps run."""
    x, bands, priors = balanced_band_data(inputs, labels)
    k_net, k_fit = jax.random.split(key)
    sizes = dict(width=config.classifier_width)
    if config.diffuse == "start":  # fine detail of the start space (quiet windows start near C±)
        sizes.update(
            fourier_inputs=config.classifier_fourier_inputs, fourier_scale=config.classifier_fourier_scale
        )
    classifier = NestedEventClassifier(shape, k_net, priors=priors, **sizes)
    batch = min(config.classifier_batch_size, len(bands))
    per_epoch = len(bands) // batch
    epochs = max(1, round(config.classifier_steps / per_epoch))
    noise = (config.sigma_min, config.sigma_max)
    trained = fit(
        classifier,
        lambda m, b, k: nested_event_classifier_loss(m, b[0], b[1], k, sigma_range=noise),
        (jnp.asarray(x, jnp.float32), jnp.asarray(bands, jnp.float32)),
        key=k_fit,
        epochs=epochs,
        batch_size=batch,
        optimizer=optax.adam(optax.cosine_decay_schedule(2e-3, epochs * per_epoch, 0.05)),
        progress=False,
    )
    return trained.model, epochs * per_epoch


def _histogram(label: str, values: np.ndarray, reference: np.ndarray):
    edges = np.linspace(*np.quantile(reference, [0.0005, 0.9995]), 41)
    counts, _ = np.histogram(values, bins=edges, density=True)
    return series(label, 0.5 * (edges[1:] + edges[:-1]), np.maximum(counts, 1e-6))


EXPERIMENT = Experiment(
    "diffusion-events",
    "Event sampling with a diffusion model of Lorenz-63 windows (diffused first states, windows by the "
    "ODE's flow map, guided by a learned classifier): fraction of conditional samples in the event and "
    "log P(E) by twisted SMC and likelihoods vs Monte Carlo, for events of probability 1e-1 ... 1e-3.",
    DiffusionEventsConfig,
    run,
)
