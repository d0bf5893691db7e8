"""The original designs in plain PyTorch eager, for a same-run comparison with physbias's fused JAX
steps (`benchmarks/dynamics_step.py`). Optional: used only when `import torch` works
(`pip install torch==2.13.0`, the CPU build; physbias itself never imports PyTorch).

- Neural ODE: an MLP field ``f(z)``.
- HNN as in Greydanus et al. (2019): ``H = MLP(q, p)``, the field ``(dH/dp, -dH/dq)`` from
  ``torch.autograd.grad(..., create_graph=True)``.
- LNN as in Cranmer et al. (2020): ``L = MLP(q, qdot)``, per-example Hessian and gradient with
  ``torch.func`` (``vmap`` of ``hessian`` and ``grad``), ``qddot = (d2L/dqdot2)^-1 (dL/dq -
  (d2L/dq dqdot) qdot)`` by ``torch.linalg.solve``.

Each is trained one Adam step at a time on the same batch as the JAX models (mean squared error
of the time derivative), the way those repositories train.
"""

from __future__ import annotations

import time

import numpy as np


def available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _mlp(torch, inputs: int, outputs: int, width: int):
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(inputs, width),
        nn.Softplus(),
        nn.Linear(width, width),
        nn.Softplus(),
        nn.Linear(width, outputs),
    )


def seconds_per_step(
    model: str, z: np.ndarray, target: np.ndarray, width: int, steps: int, repeats: int
) -> float:
    """Best-of-``repeats`` seconds per eager Adam step of ``model`` ("NODE", "HNN" or "LNN")."""
    import torch

    torch.manual_seed(0)
    x = torch.from_numpy(np.asarray(z, np.float32))
    y = torch.from_numpy(np.asarray(target, np.float32))
    n = x.shape[1] // 2
    net = _mlp(torch, x.shape[1], x.shape[1] if model == "NODE" else 1, width)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    if model == "NODE":
        field = net
    elif model == "HNN":

        def field(x):
            x = x.detach().requires_grad_(True)
            grad = torch.autograd.grad(net(x).sum(), x, create_graph=True)[0]
            return torch.cat([grad[:, n:], -grad[:, :n]], dim=1)

    elif model == "LNN":
        params = dict(net.named_parameters())

        def lagrangian(p, z):
            return torch.func.functional_call(net, p, (z,)).squeeze()

        def one(p, z):
            hess = torch.func.hessian(lagrangian, argnums=1)(p, z)
            grad = torch.func.grad(lagrangian, argnums=1)(p, z)
            qdot = z[n:]
            rhs = grad[:n] - hess[n:, :n] @ qdot
            return torch.cat([qdot, torch.linalg.solve(hess[n:, n:], rhs)])

        def field(x):
            return torch.func.vmap(one, in_dims=(None, 0))(params, x)

    else:
        raise ValueError(f"unknown model {model!r}")

    def step():
        opt.zero_grad()
        loss = torch.mean((field(x) - y) ** 2)
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):  # warm-up
        step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best
