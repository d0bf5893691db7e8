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
from .models import DeepLagrangianNN, HamiltonianNN, LagrangianNN, NeuralODE, SecondOrderNODE

MODELS = {
    "node": NeuralODE,
    "node2": SecondOrderNODE,
    "hnn": HamiltonianNN,
    "lnn": LagrangianNN,
    "delan": DeepLagrangianNN,
}
"""Model names of the command line."""


def build_model(spec: dict[str, Any], key=None):
    """A fresh model from ``spec`` = ``{"model": name, "state_size": d, "width": w, "depth": k, ...}``."""
    name = spec.get("model")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    kwargs = {"width": int(spec.get("width", 128)), "depth": int(spec.get("depth", 2))}
    if name == "node2" and spec.get("damping"):
        kwargs["damping"] = True
    if name == "lnn" and spec.get("regularization"):
        kwargs["regularization"] = float(spec["regularization"])
    key = jax.random.key(0) if key is None else key
    return MODELS[name](int(spec["state_size"]), key=key, **kwargs)


def save_model(model, spec: dict[str, Any], folder) -> Path:
    """Write ``model.json`` and ``model.eqx`` into ``folder`` (atomically, each)."""
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
