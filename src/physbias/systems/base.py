"""The contract of a simulated physical system: a state, its vector field, its energy."""

import abc

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray


class AbstractSystem(eqx.Module):
    """A system with known dynamics ``dz/dt = field(z)`` on states of size ``state_size``.

    Members: :class:`~physbias.systems.AbstractMechanicalSystem` (a Lagrangian in generalised
    coordinates, state ``(q, qdot)``) and :class:`~physbias.systems.CartesianChainPendulum`
    (Cartesian coordinates with explicit constraints, state ``(x, p)``). :func:`simulate` and
    :func:`sample_initial_states` take any member; ``energy`` is conserved along ``field``
    exactly when ``conservative`` (a contract test checks every member).
    """

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Number of entries of one state."""

    @abc.abstractmethod
    def field(self, z: Float[Array, " d"]) -> Float[Array, " d"]:
        """``dz/dt`` at one state."""

    @abc.abstractmethod
    def energy(self, z: Float[Array, " d"]) -> Float[Array, ""]:
        """The total energy of one state (in the state's own coordinates)."""

    @abc.abstractmethod
    def sample_initial(self, key: PRNGKeyArray) -> Float[Array, " d"]:
        """A random valid initial state."""

    @property
    def conservative(self) -> bool:
        """Whether ``energy`` is conserved (no dissipation)."""
        return True
