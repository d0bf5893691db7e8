"""Saving and loading dynamics models without pickle.

A model folder holds ``model.json`` (the hyperparameters needed to rebuild the model's structure
from code, plus the time step and coordinates it was trained for) and ``model.eqx`` (the arrays,
via ``equinox.tree_serialise_leaves``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from .._io import atomic_write_bytes, atomic_write_text
from ..systems import DistanceConstraints
from .constrained import ConstrainedHamiltonianNN, ConstrainedLagrangianNN
from .models import DeepLagrangianNN, HamiltonianNN, LagrangianNN, NeuralODE, SecondOrderNODE

MODELS = {
    "node": NeuralODE,
    "node2": SecondOrderNODE,
    "hnn": HamiltonianNN,
    "lnn": LagrangianNN,
    "delan": DeepLagrangianNN,
    "chnn": ConstrainedHamiltonianNN,
    "clnn": ConstrainedLagrangianNN,
}
"""Model names of the command line and of ``model.json``."""

CONSTRAINED = ("chnn", "clnn")


def constraints_spec(constraints: DistanceConstraints) -> dict[str, Any]:
    """The JSON description of a :class:`~physbias.systems.DistanceConstraints` (for ``spec``)."""
    return {
        "n_bodies": constraints.n_bodies,
        "dim": constraints.dim,
        "edges": [list(e) for e in constraints.edges],
        "anchors": [[i, list(point), length] for i, point, length in constraints.anchors],
    }


def _constraints(spec: dict[str, Any]) -> DistanceConstraints:
    c = spec.get("constraints")
    if not isinstance(c, dict):
        raise ValueError(f"model {spec.get('model')!r} needs `constraints` (n_bodies, dim, edges, anchors)")
    return DistanceConstraints(
        int(c["n_bodies"]),
        tuple((int(i), int(j), float(length)) for i, j, length in c.get("edges", ())),
        tuple(
            (int(i), tuple(float(v) for v in point), float(length))
            for i, point, length in c.get("anchors", ())
        ),
        int(c.get("dim", 2)),
    )


def build_model(spec: dict[str, Any], key=None):
    """A fresh model from ``spec`` = ``{"model": name, "state_size": d, "width": w, "depth": k, ...}``.

    Optional entries: ``damping`` (node2), ``regularization`` (lnn), ``eps`` (delan) and, for
    ``chnn``/``clnn``, ``constraints`` (:func:`constraints_spec`).
    """
    name = spec.get("model")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    kwargs = {"width": int(spec.get("width", 128)), "depth": int(spec.get("depth", 2))}
    if name == "node2" and spec.get("damping"):
        kwargs["damping"] = True
    if name == "lnn" and spec.get("regularization"):
        kwargs["regularization"] = float(spec["regularization"])
    if name == "delan" and "eps" in spec:
        kwargs["eps"] = float(spec["eps"])
    key = jax.random.key(0) if key is None else key
    if name in CONSTRAINED:
        model = MODELS[name](_constraints(spec), key=key, **kwargs)
        if "state_size" in spec and int(spec["state_size"]) != model.state_size:
            raise ValueError(
                f"spec `state_size` {spec['state_size']} disagrees with its constraints ({model.state_size})"
            )
        return model
    return MODELS[name](int(spec["state_size"]), key=key, **kwargs)


def save_model(model, spec: dict[str, Any], folder) -> Path:
    """Write ``model.json`` and ``model.eqx`` into ``folder`` (atomically, each).

    Raises:
        ValueError: if ``spec`` does not describe ``model`` (the model it builds has another
            class, structure, static settings or array shapes), before anything is written.
    """
    skeleton = build_model(spec)
    same = type(skeleton) is type(model) and jax.tree_util.tree_structure(
        skeleton
    ) == jax.tree_util.tree_structure(model)
    same = same and all(
        getattr(a, "shape", None) == getattr(b, "shape", None)
        for a, b in zip(jax.tree_util.tree_leaves(skeleton), jax.tree_util.tree_leaves(model), strict=True)
    )
    if not same:
        raise ValueError(
            f"save_model: the spec {spec} does not describe this {type(model).__name__} (another class, "
            "structure, static setting such as regularization/eps, or array shapes)"
        )
    folder = Path(folder)
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, model)
    atomic_write_bytes(folder / "model.eqx", buf.getvalue())
    atomic_write_text(folder / "model.json", json.dumps(spec, indent=1))
    return folder


def load_model(folder):
    """``(model, spec)`` from a folder written by :func:`save_model`."""
    folder = Path(folder)
    for name in ("model.json", "model.eqx"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a saved model: {name} is missing")
    spec = json.loads((folder / "model.json").read_text())
    skeleton = build_model(spec)
    with open(folder / "model.eqx", "rb") as f:
        model = eqx.tree_deserialise_leaves(f, skeleton)
    return model, spec
