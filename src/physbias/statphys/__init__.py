"""Statistical physics as a bias: the Ising model, its Metropolis sampler and exact references;
Hopfield networks, classical and modern; energy-based models trained by persistent contrastive
divergence."""

from .ebm import ReplayBuffer, grid_samples, langevin, mala, pcd_loss
from .exact import ONSAGER_CRITICAL_TEMPERATURE, ising_chain_exact, onsager_energy, onsager_magnetisation
from .hopfield import (
    CLASSICAL_CAPACITY,
    HopfieldNetwork,
    ModernHopfield,
    check_patterns,
    corrupt,
    hebbian_couplings,
    overlap,
)
from .ising import (
    IsingChain,
    IsingModel,
    IsingObservables,
    binder_crossing,
    checkerboard_sweep,
    metropolis,
    observables,
)

__all__ = [
    "ReplayBuffer",
    "grid_samples",
    "langevin",
    "mala",
    "pcd_loss",
    "CLASSICAL_CAPACITY",
    "HopfieldNetwork",
    "ModernHopfield",
    "check_patterns",
    "corrupt",
    "hebbian_couplings",
    "overlap",
    "IsingChain",
    "IsingModel",
    "IsingObservables",
    "ONSAGER_CRITICAL_TEMPERATURE",
    "binder_crossing",
    "checkerboard_sweep",
    "ising_chain_exact",
    "metropolis",
    "observables",
    "onsager_energy",
    "onsager_magnetisation",
]
