"""Dynamics models by name: the ``spec`` dicts of the command line (``physbias fit --model hnn``).

A spec (``{"model": "hnn", "state_size": 4, "width": 128, "depth": 2, ...}``) is what ``physbias
fit`` builds a model from and what it stores, with the time step and coordinates, as the metadata
of the saved model (:func:`physbias.save`).
"""

from __future__ import annotations

from typing import Any

import jax

from ..systems import DistanceConstraints
from .conserved import QuadraticConservedQuantities
from .constrained import ConstrainedHamiltonianNN, ConstrainedLagrangianNN
from .models import DeepLagrangianNN, HamiltonianNN, LagrangianNN, NeuralODE, SecondOrderNODE
from .symmetrized import SymmetrizedHamiltonianNN

MODELS = {
    "node": NeuralODE,
    "node2": SecondOrderNODE,
    "hnn": HamiltonianNN,
    "lnn": LagrangianNN,
    "delan": DeepLagrangianNN,
    "chnn": ConstrainedHamiltonianNN,
    "clnn": ConstrainedLagrangianNN,
    "symmetrized-hnn": SymmetrizedHamiltonianNN,  # physbias fit --learn-symmetry
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

    Optional entries: ``damping`` (node2), ``regularization`` (lnn), ``eps`` (delan), for
    ``chnn``/``clnn`` ``constraints`` (:func:`constraints_spec`), and for ``symmetrized-hnn``
    ``quantities`` (K learned quadratic conserved quantities) and ``symmetry_samples`` (S).
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
    if name == "symmetrized-hnn":
        k_sym, k_net = jax.random.split(key)
        d, k = int(spec["state_size"]), int(spec.get("quantities", 4))
        conserved = QuadraticConservedQuantities(d, k, key=k_sym, init_std=0.01)
        return SymmetrizedHamiltonianNN(
            conserved, n_samples=int(spec.get("symmetry_samples", 16)), key=k_net, **kwargs
        )
    if name in CONSTRAINED:
        model = MODELS[name](_constraints(spec), key=key, **kwargs)
        if "state_size" in spec and int(spec["state_size"]) != model.state_size:
            raise ValueError(
                f"spec `state_size` {spec['state_size']} disagrees with its constraints ({model.state_size})"
            )
        return model
    return MODELS[name](int(spec["state_size"]), key=key, **kwargs)
