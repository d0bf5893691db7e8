"""The contract every bias object fulfils: which of the four kinds it is, and how hard."""

import equinox as eqx
from equinox import AbstractClassVar


class AbstractBias(eqx.Module):
    """A bias: a data transform, a loss term, a model wrapper or a known-physics model.

    Subclasses declare ``kind`` (``"observation"``, ``"learning"``, ``"inductive"`` or
    ``"physics"``) and ``hard`` (``True`` when the bias cannot be violated, to float rounding)
    as class variables; :func:`physbias.bias.describe` prints ``"inductive (hard)"``.
    """

    kind: AbstractClassVar[str]
    hard: AbstractClassVar[bool]


KINDS = ("observation", "learning", "inductive", "physics")
