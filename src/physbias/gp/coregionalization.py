"""A linear model of coregionalisation over the nodes of a graph, with spectral-mixture latents.

Each output is a node ``i`` of a graph; the signal of node ``i`` is a sum of latent processes
``u_q ~ GP(0, k_q)``, ``f_i(x) = sum_q sum_r W_q[i, r] u_q^(r)(x)`` plus node-private copies, so

    cov(f_i(x), f_j(x')) = sum_q B_q[i, j] k_q(x - x'),    B_q = W_q W_q^T + diag(kappa_q),

and the joint covariance of all nodes at common inputs is ``sum_q B_q (x) K_q`` (Kronecker
product, node-major), positive semi-definite because every ``B_q`` and ``K_q`` is. On a graph the
latents are anchored at the nodes (seed 002): latent ``q`` is node ``q``'s own process and may
load only on ``q``'s closed neighbourhood (``W_q[i] = 0`` and ``kappa_q[i] = 0`` unless ``i = q``
or ``(q, i)`` is an edge), so that neighbours share processes and nodes three or more hops apart
are uncorrelated. Each ``k_q`` is a spectral mixture whose log-frequencies and log-variances may
depend linearly on the features of the anchor node: a per-node spectral density.

References: A. G. Journel and C. J. Huijbregts, *Mining Geostatistics* (1978) and M. A. Alvarez,
L. Rosasco and N. D. Lawrence, "Kernels for vector-valued functions: a review" (2012) for the LMC;
A. G. Wilson and R. P. Adams (ICML 2013) for the spectral mixture.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import tinygp
from jaxtyping import Array, Bool, Float

from .spectral_mixture import SpectralMixture, spectral_mixture_value


def neighbourhood_mask(edges, num_nodes: int) -> np.ndarray:
    """``mask[q, i]``: node ``i`` is in the closed neighbourhood of node ``q`` (``i = q`` or an
    edge ``(q, i)`` or ``(i, q)``), shape ``(num_nodes, num_nodes)``, boolean, symmetric.

    Args:
        edges: ``(E, 2)`` integer node pairs (``E`` may be 0: ``[]``); undirected; self-loops are
            allowed and change nothing.
        num_nodes: ``N > 0``.

    Raises:
        ValueError: a non-positive ``num_nodes``, edges that are not integer pairs, or a node
            index outside ``[0, num_nodes)``.
    """
    if not isinstance(num_nodes, (int, np.integer)) or isinstance(num_nodes, bool) or num_nodes < 1:
        raise ValueError(f"`num_nodes` must be a positive integer, got {num_nodes!r}")
    e = np.asarray(edges)
    if e.size == 0:
        e = np.zeros((0, 2), dtype=np.int64)
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"`edges` must be an (E, 2) array of node pairs, got shape {e.shape}")
    if not np.issubdtype(e.dtype, np.integer):
        raise ValueError(f"`edges` must hold integer node indices, got dtype {e.dtype}")
    bad = (e < 0) | (e >= num_nodes)
    if np.any(bad):
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(
            f"`edges` row {row} is {e[row].tolist()}: node index out of range for a graph of {num_nodes} "
            f"nodes (valid indices 0..{num_nodes - 1})"
        )
    mask = np.eye(num_nodes, dtype=bool)
    mask[e[:, 0], e[:, 1]] = True
    mask[e[:, 1], e[:, 0]] = True
    return mask


def coregionalization_matrices(loadings: Float[Array, "Q N R"], kappa: Float[Array, "Q N"]) -> Array:
    """``B_q = W_q W_q^T + diag(kappa_q)``, shape ``(Q, N, N)``: PSD when ``kappa >= 0``."""
    return jnp.einsum("qir,qjr->qij", loadings, loadings) + jax.vmap(jnp.diag)(kappa)


def lmc_covariance(matrices: Float[Array, "Q N N"], grams: Float[Array, "Q n n"]) -> Float[Array, "Nn Nn"]:
    """The dense ``sum_q B_q (x) K_q`` (Kronecker products), rows ordered node-major: row
    ``i n + a`` is node ``i`` at input ``a``."""
    return jnp.sum(jax.vmap(jnp.kron)(matrices, grams), axis=0)


def _stack_latents(latents: Sequence[SpectralMixture]):
    if not latents or not all(isinstance(k, SpectralMixture) for k in latents):
        raise TypeError("`latents` must be a non-empty sequence of SpectralMixture kernels")
    shapes = {(k.log_frequencies.shape, k.scalar_input) for k in latents}
    if len(shapes) > 1:
        raise ValueError(
            "every latent SpectralMixture must have the same number of components and input dimension"
        )
    stack = lambda name: jnp.stack([getattr(k, name) for k in latents])  # noqa: E731
    return stack("log_weights"), stack("log_frequencies"), stack("log_variances"), latents[0].scalar_input


class GraphLMC(tinygp.kernels.Kernel):
    """The LMC kernel ``k((x, i), (x', j)) = sum_q B_q[i, j] k_q(x - x')`` over inputs ``(x, node)``.

    Inputs are tuples ``X = (x, node)``: ``x`` of shape ``(n,)`` (or ``(n, D)``) and ``node`` an
    integer array ``(n,)`` in ``[0, num_nodes)``; ``tinygp.GaussianProcess(GraphLMC(...), X)``
    solves the joint problem. Latent ``q``'s spectral mixture has log-parameters

        log mu_q = log_frequencies[q] + features_q . feature_frequencies,
        log v_q = log_variances[q] + features_q . feature_variances,

    (``log_frequencies`` etc. of leading size ``Q``, or 1 when shared by all latents), so that the
    features of latent ``q``'s anchor node modulate its spectral density.

    Build it with :meth:`from_graph`. The fields may be set directly for general (non-graph)
    LMC models: ``mask`` ``(Q, N)`` boolean says where ``W_q`` and ``kappa_q`` may be non-zero.

    Raises:
        ValueError: (in :meth:`check_inputs`) inputs that are not ``(x, node)`` with integer node
            indices in range.
    """

    loadings: Float[Array, "Q N R"]
    log_kappa: Float[Array, "Q N"]
    mask: Bool[Array, "Q N"]
    log_weights: Float[Array, "Qs M"]
    log_frequencies: Float[Array, "Qs M D"]
    log_variances: Float[Array, "Qs M D"]
    latent_features: Float[Array, "Q F"]
    feature_frequencies: Float[Array, "F M D"]
    feature_variances: Float[Array, "F M D"]
    scalar_input: bool = eqx.field(static=True)

    @classmethod
    def from_graph(
        cls,
        edges,
        num_nodes: int,
        latents: Sequence[SpectralMixture],
        *,
        node_features=None,
        rank: int = 1,
        private_variance: float = 0.05,
    ) -> GraphLMC:
        """One latent per node, loading on the node's closed neighbourhood.

        Args:
            edges: ``(E, 2)`` node pairs (see :func:`neighbourhood_mask`); ``[]`` gives independent
                per-node GPs.
            num_nodes: ``N``.
            latents: ``N`` spectral mixtures (same number ``M`` of components and input dimension), latent
                ``q``'s kernel at the start (e.g. from node ``q``'s periodogram).
            node_features: optional ``(N, F)``; when given, the latents share one base spectrum
                (the mean of the ``latents``' log-parameters) and differ through the features
                (feature maps start at zero).
            rank: ``R``, columns of every ``W_q``.
            private_variance: initial ``kappa_q[i]`` on the neighbourhood.

        ``W_q`` starts at ``1 / sqrt(R)`` on node ``q`` and half that on its neighbours.

        Raises:
            ValueError: invalid edges, ``len(latents) != num_nodes``, bad features or rank.
        """
        mask = neighbourhood_mask(edges, num_nodes)
        if len(latents) != num_nodes:
            raise ValueError(
                f"`latents` must hold one SpectralMixture per node ({num_nodes}), got {len(latents)}"
            )
        if not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"`rank` must be a positive integer, got {rank!r}")
        if not (np.isfinite(private_variance) and private_variance > 0):
            raise ValueError(f"`private_variance` must be positive, got {private_variance!r}")
        log_w, log_mu, log_v, scalar = _stack_latents(latents)
        dtype = log_w.dtype
        if node_features is None:
            features = jnp.zeros((num_nodes, 0), dtype)
        else:
            features = jnp.asarray(node_features, dtype)
            if features.ndim != 2 or features.shape[0] != num_nodes:
                raise ValueError(f"`node_features` must have shape ({num_nodes}, F), got {features.shape}")
            if not bool(jnp.all(jnp.isfinite(features))):
                raise ValueError("`node_features` contains NaN or inf")
            log_w, log_mu, log_v = (jnp.mean(a, axis=0, keepdims=True) for a in (log_w, log_mu, log_v))
        _, components, dim = log_mu.shape
        # Latent q starts as node q's own process (its kernel came from node q's data), shared with
        # the neighbours at half the amplitude.
        loadings = np.where(np.eye(num_nodes, dtype=bool), 1.0, np.where(mask, 0.5, 0.0))
        loadings = loadings[:, :, None] * np.ones((1, 1, rank)) / np.sqrt(rank)
        return cls(
            loadings=jnp.asarray(loadings, dtype),
            log_kappa=jnp.full((num_nodes, num_nodes), np.log(private_variance), dtype),
            mask=jnp.asarray(mask),
            log_weights=log_w,
            log_frequencies=log_mu,
            log_variances=log_v,
            latent_features=features,
            feature_frequencies=jnp.zeros((features.shape[1], components, dim), dtype),
            feature_variances=jnp.zeros((features.shape[1], components, dim), dtype),
            scalar_input=scalar,
        )

    @property
    def num_nodes(self) -> int:
        return self.loadings.shape[1]

    @property
    def num_latents(self) -> int:
        return self.loadings.shape[0]

    def coregionalization(self) -> Float[Array, "Q N N"]:
        """``B_q = W_q W_q^T + diag(kappa_q)`` with ``W_q`` and ``kappa_q`` masked to the neighbourhood."""
        w = jnp.where(self.mask[:, :, None], self.loadings, jnp.zeros_like(self.loadings))
        kappa = jnp.where(self.mask, jnp.exp(self.log_kappa), jnp.zeros_like(self.log_kappa))
        return coregionalization_matrices(w, kappa)

    def latent_parameters(self) -> tuple[Array, Array, Array]:
        """Log weights ``(Q, M)``, log frequencies and log variances ``(Q, M, D)`` of every latent."""
        features = jax.lax.stop_gradient(self.latent_features)  # data, not parameters
        q = self.num_latents
        log_w = jnp.broadcast_to(self.log_weights, (q, *self.log_weights.shape[1:]))
        log_mu = self.log_frequencies + jnp.einsum("qf,fmd->qmd", features, self.feature_frequencies)
        log_v = self.log_variances + jnp.einsum("qf,fmd->qmd", features, self.feature_variances)
        return (
            log_w,
            jnp.broadcast_to(log_mu, (q, *log_mu.shape[1:])),
            jnp.broadcast_to(log_v, (q, *log_v.shape[1:])),
        )

    def latent_kernel(self, q: int) -> SpectralMixture:
        """Latent ``q``'s kernel as a :class:`SpectralMixture`."""
        log_w, log_mu, log_v = self.latent_parameters()
        mu, v = jnp.exp(log_mu[q]), jnp.exp(log_v[q])
        if self.scalar_input:
            mu, v = mu[:, 0], v[:, 0]
        return SpectralMixture(jnp.exp(log_w[q]), mu, v)

    def evaluate(self, X1, X2) -> Array:
        (x1, i1), (x2, i2) = X1, X2
        log_w, log_mu, log_v = self.latent_parameters()
        tau = x1 - x2
        k = jax.vmap(lambda w, mu, v: spectral_mixture_value(w, mu, v, tau, self.scalar_input))(
            log_w, log_mu, log_v
        )
        return jnp.sum(self.coregionalization()[:, i1, i2] * k)

    def check_inputs(self, X) -> None:
        """Raise ``ValueError`` unless ``X = (x, node)`` with integer node indices in ``[0, N)``."""
        if not isinstance(X, tuple) or len(X) != 2:
            raise ValueError("GraphLMC inputs must be a tuple (x, node) of an input array and node indices")
        nodes = np.asarray(X[1])
        if not np.issubdtype(nodes.dtype, np.integer) or nodes.ndim != 1:
            raise ValueError(
                f"node indices must be a 1-D integer array, got dtype {nodes.dtype} shape {nodes.shape}"
            )
        bad = (nodes < 0) | (nodes >= self.num_nodes)
        if np.any(bad):
            raise ValueError(
                f"node index {int(nodes[np.argmax(bad)])} out of range for a graph of {self.num_nodes} nodes "
                f"(valid indices 0..{self.num_nodes - 1})"
            )
