"""Code lengths of a quantised parameter vector: arithmetic coding and the message length.

A quantised vector is ``d`` symbols ``s_i`` in ``{0, ..., L-1}`` plus a codebook of ``L`` levels.
Its message (Lotfi et al. 2022, and ``quantize_fns.get_message_len`` of the reference
implementation ``activatedgeek/tight-pac-bayes``) is

* the symbols, arithmetic coded with the empirical frequencies ``c_k / d``: about
  ``d H(c / d)`` bits (:func:`arithmetic_encode`, or the ideal length :func:`entropy_code_length`);
* the codebook, ``16 L`` bits (float16 levels);
* the frequencies, ``ceil(log2 d) L`` bits (one count per level),

so ``ell = bits + 16 L + ceil(log2 d) L`` (:func:`message_length`). An adaptive coder
(:func:`adaptive_arithmetic_encode`, Krichevsky-Trofimov frequencies learned while coding) needs
no counts and comes within 2 bits of :func:`kt_code_length`, about ``d H + (L - 1)/2 log2 d``.
A prior over messages of every length needs a prefix-free (self-delimiting) code, which costs
``ell + 2 log2 ell`` bits (:func:`prefix_free_length`).

The coder is the integer arithmetic coder of Witten, Neal & Cleary (1987) with 64-bit registers
(Python integers, so no overflow), frequencies given by the symbol counts. Its output length is
within 2 bits (plus a rounding loss far below one bit for ``d < 10^6``) of ``sum_i -log2(c_{s_i}/d)
= d H(c / d)``, and it decodes back exactly (:func:`arithmetic_decode`).

References:
    I. H. Witten, R. M. Neal, J. G. Cleary, "Arithmetic coding for data compression",
    Communications of the ACM 30(6), 1987.
    S. Lotfi et al., "PAC-Bayes compression bounds so tight that they can explain
    generalization", NeurIPS 2022.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

_PRECISION = 64  # register bits; total counts must stay below 2^(precision - 2)
_FULL = 1 << _PRECISION
_HALF = _FULL >> 1
_QUARTER = _HALF >> 1
_MASK = _FULL - 1
CODEBOOK_BITS = 16
"""Bits per codebook level (float16), as in the reference implementation."""
CODERS = ("arithmetic", "entropy", "adaptive")


def _check_symbols(symbols, levels) -> tuple[np.ndarray, int]:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels <= 0:
        raise ValueError(f"`levels` must be a positive integer (codebook size), got {levels!r}")
    arr = np.asarray(symbols)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`symbols` must be a non-empty 1-D array of integers, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`symbols` must hold integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= levels:
        raise ValueError(
            f"`symbols` must lie in [0, levels) = [0, {levels}), got values in [{arr.min()}, {arr.max()}]"
        )
    if arr.size >= 1 << (_PRECISION - 2):
        raise ValueError(f"`symbols` is too long for the {_PRECISION}-bit coder: {arr.size}")
    return arr.astype(np.int64), int(levels)


def symbol_counts(symbols, levels: int) -> np.ndarray:
    """Occurrences of each level, ``c_k = #{i : s_i = k}``, shape ``(levels,)`` int64."""
    arr, levels = _check_symbols(symbols, levels)
    return np.bincount(arr, minlength=levels).astype(np.int64)


def entropy_code_length(symbols, levels: int) -> float:
    """Ideal code length in bits with the empirical frequencies: ``d H(c/d) = -sum_k c_k log2(c_k/d)``.

    The length an arithmetic coder reaches up to 2 bits; no code of the symbols with these
    frequencies can be shorter on average.

    Example:
        >>> entropy_code_length([0, 0, 1, 1], 2)
        4.0
    """
    counts = symbol_counts(symbols, levels)
    d = int(counts.sum())
    nz = counts[counts > 0].astype(np.float64)
    return float(-np.sum(nz * np.log2(nz / d))) + 0.0  # + 0.0: no -0.0 for a single level


class _StaticModel:
    """Frequencies fixed to the symbol counts (sent with the message)."""

    def __init__(self, counts: np.ndarray):
        self.cum = [0, *np.cumsum(counts).tolist()]
        self.total = self.cum[-1]

    def update(self, s: int) -> None:
        pass


class _AdaptiveModel:
    """Krichevsky-Trofimov frequencies: symbol ``k`` after ``t`` symbols has probability
    ``(c_k + 1/2) / (t + L/2)``, kept in integers as ``(2 c_k + 1) / (2 t + L)``."""

    def __init__(self, levels: int):
        self.freq = [1] * levels
        self.cum = list(range(levels + 1))
        self.total = levels

    def update(self, s: int) -> None:
        self.freq[s] += 2
        self.total += 2
        for k in range(s + 1, len(self.cum)):
            self.cum[k] += 2


def _encode(arr: np.ndarray, model) -> list[int]:
    low, high, pending = 0, _MASK, 0
    out: list[int] = []

    def emit(bit: int) -> None:
        nonlocal pending
        out.append(bit)
        out.extend([1 - bit] * pending)
        pending = 0

    for s in arr.tolist():
        span, cum, total = high - low + 1, model.cum, model.total
        high = low + span * cum[s + 1] // total - 1
        low = low + span * cum[s] // total
        model.update(s)
        while True:  # renormalise: shift out the settled leading bits
            if high < _HALF:
                emit(0)
            elif low >= _HALF:
                emit(1)
                low, high = low - _HALF, high - _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                pending += 1  # straddles the middle: the bit is known only later
                low, high = low - _QUARTER, high - _QUARTER
            else:
                break
            low, high = 2 * low, 2 * high + 1
    pending += 1  # two more bits select a point inside the final interval
    emit(0 if low < _QUARTER else 1)
    return out


def _decode(bits, length: int, model) -> list[int]:
    bits = [int(b) for b in bits]
    position = 0

    def next_bit() -> int:
        nonlocal position
        position += 1
        return bits[position - 1] if position <= len(bits) else 0  # the tail is implicitly zero

    value = 0
    for _ in range(_PRECISION):
        value = 2 * value + next_bit()
    low, high = 0, _MASK
    decoded = []
    for _ in range(length):
        span, cum, total = high - low + 1, model.cum, model.total
        target = ((value - low + 1) * total - 1) // span
        s = int(np.searchsorted(cum, target, side="right")) - 1
        decoded.append(s)
        high = low + span * cum[s + 1] // total - 1
        low = low + span * cum[s] // total
        model.update(s)
        while True:
            if high < _HALF:
                pass
            elif low >= _HALF:
                low, high, value = low - _HALF, high - _HALF, value - _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                low, high, value = low - _QUARTER, high - _QUARTER, value - _QUARTER
            else:
                break
            low, high, value = 2 * low, 2 * high + 1, 2 * value + next_bit()
    return decoded


def arithmetic_encode(symbols, levels: int) -> list[int]:
    """Arithmetic code of ``symbols`` with frequencies ``symbol_counts(symbols, levels)``.

    Returns the bits (a list of 0/1). The decoder needs the counts (part of the message, see
    :func:`message_length`) and ``d``.

    Raises:
        ValueError/TypeError: ``symbols`` not a non-empty 1-D integer array in ``[0, levels)``, or
            ``levels`` not a positive integer.

    Example:
        >>> bits = arithmetic_encode([0, 1, 1, 2, 1, 0], 3)
        >>> arithmetic_decode(bits, symbol_counts([0, 1, 1, 2, 1, 0], 3))
        [0, 1, 1, 2, 1, 0]
    """
    arr, levels = _check_symbols(symbols, levels)
    return _encode(arr, _StaticModel(np.bincount(arr, minlength=levels)))


def arithmetic_decode(bits, counts) -> list[int]:
    """Invert :func:`arithmetic_encode`: the ``sum(counts)`` symbols coded in ``bits``.

    Args:
        bits: the code, a sequence of 0/1.
        counts: occurrences of each level, shape ``(levels,)`` (from :func:`symbol_counts`).

    Raises:
        ValueError: ``counts`` not a non-empty 1-D array of non-negative integers with a positive sum.
    """
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"`counts` must be a non-empty 1-D integer array, got {counts!r}")
    if counts.min() < 0 or counts.sum() <= 0:
        raise ValueError("`counts` must be non-negative with a positive sum")
    return _decode(bits, int(counts.sum()), _StaticModel(counts))


def arithmetic_code_length(symbols, levels: int) -> int:
    """Length in bits of :func:`arithmetic_encode` ``(symbols, levels)``.

    Example:
        >>> arithmetic_code_length([0] * 90 + [1] * 10, 2) <= entropy_code_length([0] * 90 + [1] * 10, 2) + 2
        True
    """
    return len(arithmetic_encode(symbols, levels))


def adaptive_arithmetic_encode(symbols, levels: int) -> list[int]:
    """Adaptive arithmetic code of ``symbols``: each symbol coded with the Krichevsky-Trofimov
    estimate ``(c_k + 1/2) / (t + L/2)`` from the ``t`` symbols before it.

    The decoder needs only ``levels`` and ``d`` (no counts), and the length is within 2 bits of
    :func:`kt_code_length`, which exceeds ``d H(c/d)`` by about ``(L - 1)/2 log2 d`` bits: less than
    the ``ceil(log2 d) L`` bits that sending the counts costs.

    Example:
        >>> bits = adaptive_arithmetic_encode([0, 1, 1, 2, 1, 0], 3)
        >>> adaptive_arithmetic_decode(bits, 3, 6)
        [0, 1, 1, 2, 1, 0]
    """
    arr, levels = _check_symbols(symbols, levels)
    return _encode(arr, _AdaptiveModel(levels))


def adaptive_arithmetic_decode(bits, levels: int, length: int) -> list[int]:
    """Invert :func:`adaptive_arithmetic_encode`: the ``length`` symbols in ``[0, levels)`` in ``bits``."""
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels <= 0:
        raise ValueError(f"`levels` must be a positive integer (codebook size), got {levels!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length <= 0:
        raise ValueError(f"`length` must be a positive integer (number of symbols), got {length!r}")
    return _decode(bits, int(length), _AdaptiveModel(int(levels)))


def kt_code_length(symbols, levels: int) -> float:
    """Ideal length in bits of the Krichevsky-Trofimov sequential code,

        -log2 prod_i (c_{s_i}^{(<i)} + 1/2) / (i - 1 + L/2)
        = log2 [Gamma(d + L/2) Gamma(1/2)^L / (Gamma(L/2) prod_k Gamma(c_k + 1/2))],

    which depends on the counts only (Krichevsky & Trofimov 1981).

    Example:
        >>> round(kt_code_length([0, 0], 2), 6)  # (1/2)/1 * (3/2)/2 = 3/8
        1.415037
    """
    counts = symbol_counts(symbols, levels)
    d = int(counts.sum())
    nats = (
        math.lgamma(d + levels / 2)
        + levels * math.lgamma(0.5)
        - math.lgamma(levels / 2)
        - sum(math.lgamma(c + 0.5) for c in counts.tolist())
    )
    return nats / math.log(2)


def prefix_free_length(message_bits: float) -> float:
    """Length of a self-delimiting code for a message of ``ell`` bits: ``ell + 2 log2 ell``
    (0 for an empty message), as in Lotfi et al. 2022.

    Raises:
        ValueError: ``message_bits`` negative or non-finite.

    Example:
        >>> prefix_free_length(1024.0)
        1044.0
    """
    if isinstance(message_bits, bool) or not isinstance(message_bits, (int, float, np.integer, np.floating)):
        raise TypeError(f"`message_bits` must be a number, got {type(message_bits).__name__}")
    ell = float(message_bits)
    if not (math.isfinite(ell) and ell >= 0.0):
        raise ValueError(f"`message_bits` must be finite and >= 0, got {message_bits!r}")
    return ell + 2.0 * math.log2(ell) if ell > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class MessageLength:
    """The parts of a quantised vector's message, in bits.

    Attributes:
        symbol_bits: the coded symbols (arithmetic code, or the entropy bound ``d H``).
        codebook_bits: ``16 L`` (``codebook_bits_per_level * L``).
        count_bits: ``ceil(log2 d) L``, the symbol frequencies (0 for the adaptive coder).
        message_bits: ``ell``, the sum of the three.
        prefix_free_bits: ``ell + 2 log2 ell``.
    """

    symbol_bits: float
    codebook_bits: float
    count_bits: float
    message_bits: float
    prefix_free_bits: float


def message_length(
    symbols, levels: int, *, coder: str = "arithmetic", codebook_bits_per_level: int = CODEBOOK_BITS
) -> MessageLength:
    """Message length of a quantised vector: ``ell = bits + 16 L + ceil(log2 d) L``.

    Args:
        symbols: ``(d,)`` integer symbols in ``[0, levels)``.
        levels: codebook size ``L``.
        coder: ``"arithmetic"`` (the length of an actual code, :func:`arithmetic_encode`),
            ``"entropy"`` (its ideal length ``d H``, :func:`entropy_code_length`), or ``"adaptive"``
            (an actual adaptive code, :func:`adaptive_arithmetic_encode`, which needs no counts:
            ``ell = bits + 16 L``).
        codebook_bits_per_level: bits per stored level (16 for float16).

    Raises:
        ValueError/TypeError: bad ``symbols``/``levels`` or an unknown ``coder``.

    Example:
        >>> m = message_length([0, 1, 1, 2] * 25, 3, coder="entropy")
        >>> m.symbol_bits, m.codebook_bits, m.count_bits, m.message_bits
        (150.0, 48.0, 21.0, 219.0)
    """
    if coder not in CODERS:
        raise ValueError(f"`coder` must be one of {CODERS}, got {coder!r}")
    if not isinstance(codebook_bits_per_level, (int, np.integer)) or codebook_bits_per_level <= 0:
        raise ValueError(
            f"`codebook_bits_per_level` must be a positive integer, got {codebook_bits_per_level!r}"
        )
    arr, levels = _check_symbols(symbols, levels)
    d = arr.size
    if coder == "arithmetic":
        bits = float(arithmetic_code_length(arr, levels))
    elif coder == "entropy":
        bits = entropy_code_length(arr, levels)
    else:
        bits = float(len(adaptive_arithmetic_encode(arr, levels)))
    codebook = float(codebook_bits_per_level * levels)
    count = 0.0 if coder == "adaptive" else float(math.ceil(math.log2(d)) * levels)
    ell = bits + codebook + count
    return MessageLength(bits, codebook, count, ell, prefix_free_length(ell))


__all__ = [
    "CODEBOOK_BITS",
    "CODERS",
    "MessageLength",
    "adaptive_arithmetic_decode",
    "adaptive_arithmetic_encode",
    "arithmetic_code_length",
    "arithmetic_decode",
    "arithmetic_encode",
    "entropy_code_length",
    "kt_code_length",
    "message_length",
    "prefix_free_length",
    "symbol_counts",
]
