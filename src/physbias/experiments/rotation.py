"""``physbias run rotation``: outputs valid by construction (seed 001, M4).

Learn the rotation ``R`` that maps a fixed reference point cloud onto a noisy rotated copy,
with three output layers: a raw 3x3 matrix, the exponential map of so(3) (Rodrigues) and the
6-D Gram-Schmidt representation. Reported: fit error, angle error, orthogonality ``||R^T R - I||``
and ``|det R - 1|``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..losses import supervised_loss
from ..metrics import orthogonality_error, project_to_rotation, rotation_angle_error
from ..nn import ExpMapRotation, GramSchmidtRotation, RawMatrix
from ..report import Figure, Panel, Result
from ..systems import random_rotations, rotated_clouds
from ._config import ExperimentConfig, nonnegative, positive
from ._registry import Experiment
from ._runner import Variant, compare


@dataclasses.dataclass(frozen=True)
class RotationConfig(ExperimentConfig):
    QUICK = {"n_train": 500, "n_test": 300, "epochs": 300, "width": 64}
    FULL = {"n_train": 5000, "epochs": 4000}

    n_train: int = positive(2000)
    n_test: int = positive(1000)
    n_points: int = positive(5)
    noise: float = nonnegative(0.01)
    max_angle_deg: float = positive(120.0)
    width: int = positive(128)
    depth: int = positive(2)
    epochs: int = positive(2000)
    learning_rate: float = positive(1e-3)

    def check(self):
        if not 0 < self.max_angle_deg <= 180:
            raise ValueError(f"config `max_angle_deg` must be in (0, 180], got {self.max_angle_deg}")


def run(config: RotationConfig, *, seed: int = 0, progress: bool = True) -> Result:
    k_ref, k_rot, k_noise, k_test, k_model, k_fit = jax.random.split(jax.random.key(seed), 6)
    reference = jax.random.normal(k_ref, (config.n_points, 3))
    max_angle = float(np.deg2rad(config.max_angle_deg))

    def make(key, n):
        kr, kn = jax.random.split(key)
        rot = random_rotations(kr, n, max_angle)
        clouds = rotated_clouds(kn, reference, rot, config.noise)
        return Dataset(clouds.reshape(n, -1), rot)

    train, test = make(k_rot, config.n_train), make(k_test, config.n_test)
    d_in = 3 * config.n_points

    def mlp(out):
        return eqx.nn.MLP(d_in, out, config.width, config.depth, activation=jax.nn.silu, key=k_model)

    models = {
        "raw 3x3": RawMatrix(mlp(9)),
        "exp map so(3)": ExpMapRotation(mlp(3)),
        "6D Gram-Schmidt": GramSchmidtRotation(mlp(6)),
    }

    def evaluate(variant: Variant, fit) -> dict:
        pred = jax.jit(jax.vmap(fit.model))(test.inputs)
        frob = jnp.linalg.norm(pred - test.targets, axis=(-2, -1))
        ortho = orthogonality_error(pred)
        det_err = jnp.abs(jnp.linalg.det(pred) - 1.0)
        # Raw outputs are not rotations: measure their angle after projecting onto SO(3).
        angle = jnp.rad2deg(rotation_angle_error(project_to_rotation(pred), test.targets))
        return {
            "fit_error_frobenius": float(jnp.mean(frob)),
            "angle_error_deg_mean": float(jnp.mean(angle)),
            "angle_error_deg_p95": float(jnp.percentile(angle, 95)),
            "orthogonality_error_mean": float(jnp.mean(ortho)),
            "orthogonality_error_max": float(jnp.max(ortho)),
            "det_error_mean": float(jnp.mean(det_err)),
            "det_error_max": float(jnp.max(det_err)),
        }

    variants = [
        Variant(name, model, supervised_loss(), train, {"output": name}, learning_rate=config.learning_rate)
        for name, model in models.items()
    ]
    comparison = compare(variants, evaluate, key=k_fit, epochs=config.epochs, progress=progress)
    curves = comparison.loss_series()
    fig = Figure(
        "training_loss",
        "Rotation alignment: training loss (mean ||R_hat - R||_F^2)",
        [Panel("loss", "step", "loss", curves, logy=True)],
        1,
    )
    notes = [
        f"input: {config.n_points} reference points rotated by R (angle <= {config.max_angle_deg} deg) "
        f"plus noise {config.noise}; target R; metrics on {config.n_test} test clouds.",
        "orthogonality_error = ||R^T R - I||_F; det_error = |det R - 1|; angle error is the geodesic "
        "angle between R and R_hat projected onto SO(3) by SVD (a no-op for the valid outputs).",
    ]
    return Result("rotation", dataclasses.asdict(config), comparison.rows, figures=[fig], notes=notes)


EXPERIMENT = Experiment(
    "rotation",
    "Outputs valid by construction: learn a rotation with a raw 3x3, exp-map so(3) or 6D output.",
    RotationConfig,
    run,
)
