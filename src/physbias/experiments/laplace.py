"""``physbias run laplace``: ``u_xx + u_yy = 0`` (seeds 000/001's example of a PDE as a learning
bias) by a PINN on the unit disk and the unit square, with the boundary condition soft (a loss term)
or hard (built into the ansatz), against exact harmonic solutions (M16).

- Disk: ``u = cos(k theta)`` on the circle, exact ``u = Re (x + i y)^k``. Hard ansatz
  ``u = T_k(x) + (1 - x^2 - y^2) N(x, y)``: the Chebyshev polynomial ``T_k(x)`` equals ``cos(k theta)``
  on the circle but is not harmonic (for ``k >= 2``), so the network has work to do.
- Square ``[0, 1]^2``: ``u = sin(pi x)`` on the top, 0 on the other sides, exact
  ``sin(pi x) sinh(pi y) / sinh(pi)``. Hard ansatz ``u = y sin(pi x) + x (1 - x) y (1 - y) N``.

Adam then L-BFGS; relative L2 on 4096 fresh interior points.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..pde import (
    Box,
    Disk,
    laplace_disk_hard_field,
    laplace_disk_solution,
    laplace_residual,
    laplace_square_hard_field,
    laplace_square_solution,
    pinn_loss,
)
from ..report import Figure, Panel, Result, series
from ..train import fit_adam_then_lbfgs
from ._config import ExperimentConfig, one_of, positive
from ._registry import Experiment


@dataclasses.dataclass(frozen=True)
class LaplaceConfig(ExperimentConfig):
    """MLP 2-32x3-1 (tanh), 2000 interior and 256 boundary points, Adam 1e-3 then L-BFGS."""

    QUICK = {"collocation": 300, "adam_epochs": 200, "lbfgs_steps": 200}
    FULL = {"collocation": 5000, "lbfgs_steps": 6000}

    domains: tuple[str, ...] = one_of(("disk", "square"), ("disk", "square"))
    variants: tuple[str, ...] = one_of(("hard", "soft"), ("hard", "soft"))
    order: int = positive(3)
    collocation: int = positive(2000)
    boundary_points: int = positive(256)
    width: int = positive(32)
    depth: int = positive(3)
    adam_epochs: int = positive(2000)
    learning_rate: float = positive(1e-3)
    lbfgs_steps: int = positive(3000)


def _problem(domain: str, config: LaplaceConfig, key):
    """Interior and boundary points, boundary values, the exact solution, the hard ansatz (a function
    of the network) and test points."""
    k_in, k_bd, k_test = jax.random.split(key, 3)
    k = config.order
    if domain == "disk":
        disk = Disk((0.0, 0.0), 1.0)
        interior, boundary = (
            disk.uniform(k_in, config.collocation),
            disk.boundary(k_bd, config.boundary_points),
        )
        exact = lambda z: laplace_disk_solution(np.asarray(z[:, 0]), np.asarray(z[:, 1]), k)  # noqa: E731
        hard = lambda net: laplace_disk_hard_field(net, k)  # noqa: E731
        test = disk.uniform(k_test, 4096)
    else:
        box = Box((0.0, 0.0), (1.0, 1.0), ("x", "y"))
        interior = box.latin_hypercube(k_in, config.collocation)
        boundary = box.boundary(k_bd, config.boundary_points)
        exact = lambda z: laplace_square_solution(np.asarray(z[:, 0]), np.asarray(z[:, 1]))  # noqa: E731
        hard = laplace_square_hard_field
        test = box.uniform(k_test, 4096)
    values = jnp.asarray(exact(boundary), jnp.float32)
    return interior, boundary, values, exact, hard, test


@eqx.filter_jit
def _evaluate(model, points):
    return jax.vmap(model)(points)


def run(config: LaplaceConfig, *, seed: int = 0, progress: bool = True) -> Result:
    table, panels = [], []
    for d, domain in enumerate(config.domains):
        k_problem, k_net, k_adam = jax.random.split(jax.random.fold_in(jax.random.key(seed), d), 3)
        interior, boundary, values, exact, hard, test = _problem(domain, config, k_problem)
        exact_test = exact(test)
        net = eqx.nn.MLP(2, "scalar", config.width, config.depth, activation=jnp.tanh, key=k_net)
        curves = {}
        for variant in config.variants:
            if variant == "hard":
                model = hard(net)
                loss = pinn_loss(laplace_residual)
            else:
                model = net  # u = N
                loss = pinn_loss(laplace_residual, (boundary, values))
            adam, lbfgs = fit_adam_then_lbfgs(
                model,
                loss,
                (interior,),
                key=k_adam,
                adam_epochs=config.adam_epochs,
                lbfgs_steps=config.lbfgs_steps,
                learning_rate=config.learning_rate,
                progress=progress,
                description=f"laplace {domain} {variant}",
            )
            pred = np.asarray(_evaluate(lbfgs.model, test))
            on_boundary = np.asarray(_evaluate(lbfgs.model, boundary))
            table.append(
                {
                    "domain": domain,
                    "variant": variant,
                    "relative_l2": float(np.linalg.norm(pred - exact_test) / np.linalg.norm(exact_test)),
                    "max_abs_error": float(np.max(np.abs(pred - exact_test))),
                    "boundary_error": float(np.max(np.abs(on_boundary - np.asarray(values)))),
                    "final_loss": float(np.min(lbfgs.losses[np.isfinite(lbfgs.losses)], initial=np.inf)),
                    "seconds": round(adam.seconds + lbfgs.seconds, 1),
                    "diverged": adam.diverged or lbfgs.diverged,
                }
            )
            curves[variant] = np.concatenate([adam.losses, lbfgs.losses])
        panels.append(
            Panel(
                f"{domain}: training",
                "step",
                "loss",
                [series(v, np.arange(len(c)), c) for v, c in curves.items()],
                logy=True,
            )
        )
    notes = [
        "relative_l2 on 4096 fresh uniform interior points against the exact harmonic solution; "
        "boundary_error: the largest misfit at the boundary training points (0 up to rounding for hard).",
        f"disk: u = cos({config.order} theta) on the circle, exact Re (x + i y)^{config.order}; hard ansatz "
        f"T_{config.order}(x) + (1 - r^2) N. square: exact sin(pi x) sinh(pi y) / sinh(pi); hard ansatz "
        "y sin(pi x) + x (1 - x) y (1 - y) N.",
    ]
    return Result(
        "laplace",
        dataclasses.asdict(config),
        table,
        figures=[Figure("training", "Laplace PINNs: training loss", panels, columns=len(panels))],
        notes=notes,
    )


EXPERIMENT = Experiment(
    "laplace",
    "Laplace's equation by a PINN on the disk and the square: hard vs soft boundary conditions against "
    "exact harmonic solutions.",
    LaplaceConfig,
    run,
)
