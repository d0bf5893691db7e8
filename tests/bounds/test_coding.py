"""Arithmetic coding, the entropy bound and the message length of a quantised vector."""

import math

import numpy as np
import pytest

from physbias.bounds import (
    adaptive_arithmetic_decode,
    adaptive_arithmetic_encode,
    arithmetic_code_length,
    arithmetic_decode,
    arithmetic_encode,
    entropy_code_length,
    kt_code_length,
    message_length,
    prefix_free_length,
    symbol_counts,
)

# (seed, d, levels, Dirichlet concentration): a single symbol, short, long, skewed, near uniform
SEQUENCES = [(0, 1, 1, 1.0), (1, 9, 3, 1.0), (2, 500, 7, 1.0), (3, 2000, 15, 0.2), (4, 300, 5, 5.0)]


def _random_symbols(seed, d, levels, skew=1.0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(levels, skew))
    return rng.choice(levels, size=d, p=p)


def test_entropy_code_length_by_hand():
    assert entropy_code_length([0, 0, 1, 1], 2) == 4.0  # 4 symbols, 1 bit each
    # counts (6, 2) of 8: -6 log2(3/4) - 2 log2(1/4) = 2.4902 + 4
    assert entropy_code_length([0] * 6 + [2] * 2, 3) == pytest.approx(6 * math.log2(4 / 3) + 4.0, rel=1e-12)
    assert entropy_code_length([1] * 10, 2) == 0.0
    assert symbol_counts([0, 2, 2, 1, 2], 4).tolist() == [1, 1, 3, 0]


@pytest.mark.parametrize("seed, d, levels, skew", SEQUENCES)
def test_arithmetic_code_decodes_exactly_within_two_bits_of_the_entropy(seed, d, levels, skew):
    symbols = _random_symbols(seed, d, levels, skew)
    bits = arithmetic_encode(symbols, levels)
    assert set(bits) <= {0, 1}
    assert arithmetic_decode(bits, symbol_counts(symbols, levels)) == symbols.tolist()
    ideal = entropy_code_length(symbols, levels)
    assert math.floor(ideal) <= len(bits) <= ideal + 2.01  # + 2 bits to end, rounding loss << 0.01 bit
    assert arithmetic_code_length(symbols, levels) == len(bits)


@pytest.mark.parametrize("seed, d, levels, skew", SEQUENCES)
def test_adaptive_code_decodes_exactly_within_two_bits_of_the_kt_length(seed, d, levels, skew):
    symbols = _random_symbols(seed, d, levels, skew)
    bits = adaptive_arithmetic_encode(symbols, levels)
    assert adaptive_arithmetic_decode(bits, levels, d) == symbols.tolist()
    ideal = kt_code_length(symbols, levels)
    assert math.floor(ideal) <= len(bits) <= ideal + 2.01
    # Its redundancy over the empirical entropy is (L - 1)/2 log2 d + O(L), below the counts' ceil(log2 d) L.
    redundancy = ideal - entropy_code_length(symbols, levels)
    assert 0.0 <= redundancy <= (levels - 1) / 2 * math.log2(d) + levels
    if d > 1:
        assert redundancy < math.ceil(math.log2(d)) * levels


def test_kt_code_length_is_the_product_of_sequential_estimates():
    symbols = [2, 0, 2, 2, 1, 0, 2]
    counts, bits = [0, 0, 0], 0.0
    for t, s in enumerate(symbols):
        bits -= math.log2((counts[s] + 0.5) / (t + 1.5))
        counts[s] += 1
    assert kt_code_length(symbols, 3) == pytest.approx(bits, rel=1e-12)


def test_a_different_sequence_decodes_differently():
    a, b = [0, 1, 2, 1, 0, 0, 2], [0, 1, 2, 1, 0, 2, 0]  # same counts
    counts = symbol_counts(a, 3)
    assert arithmetic_encode(a, 3) != arithmetic_encode(b, 3)
    assert arithmetic_decode(arithmetic_encode(b, 3), counts) == b


def test_message_length_formula():
    symbols = _random_symbols(5, 500, 7)
    for coder, coded in (
        ("arithmetic", arithmetic_code_length(symbols, 7)),
        ("entropy", entropy_code_length(symbols, 7)),
    ):
        m = message_length(symbols, 7, coder=coder)
        # ell = bits + 16 L + ceil(log2 d) L, with ceil(log2 500) = 9
        assert m.symbol_bits == coded
        assert (m.codebook_bits, m.count_bits) == (16 * 7, 9 * 7)
        assert m.message_bits == pytest.approx(coded + 112 + 63, rel=1e-15)
        assert m.prefix_free_bits == pytest.approx(m.message_bits + 2 * math.log2(m.message_bits), rel=1e-15)
    assert message_length(symbols, 7, codebook_bits_per_level=32).codebook_bits == 224
    adaptive = message_length(symbols, 7, coder="adaptive")  # no counts to send
    assert adaptive.count_bits == 0.0
    assert adaptive.symbol_bits == len(adaptive_arithmetic_encode(symbols, 7))
    assert adaptive.message_bits == adaptive.symbol_bits + 112
    assert adaptive.message_bits < message_length(symbols, 7).message_bits


def test_prefix_free_length_at_least_the_entropy_bound():
    assert prefix_free_length(1024.0) == 1044.0  # 1024 + 2 * 10
    assert prefix_free_length(0.0) == 0.0
    for seed in range(4):
        symbols = _random_symbols(seed, 400, 5, 0.5)
        m = message_length(symbols, 5)
        assert m.prefix_free_bits >= m.message_bits >= entropy_code_length(symbols, 5)


@pytest.mark.parametrize(
    "symbols, levels, error",
    [
        ([0, 1], 0, ValueError),
        ([0, 1], -3, ValueError),
        ([0, 3], 3, ValueError),
        ([-1, 0], 3, ValueError),
        ([], 3, ValueError),
        ([[0, 1]], 3, ValueError),
        ([0.0, 1.0], 3, TypeError),
    ],
)
def test_bad_symbols_or_levels(symbols, levels, error):
    with pytest.raises(error):
        arithmetic_encode(symbols, levels)
    with pytest.raises(error):
        message_length(symbols, levels)


def test_bad_coder_and_lengths():
    with pytest.raises(ValueError, match="coder"):
        message_length([0, 1], 2, coder="huffman")
    with pytest.raises(ValueError, match="message_bits"):
        prefix_free_length(-1.0)
    with pytest.raises(ValueError, match="counts"):
        arithmetic_decode([0, 1], [0, 0])
    with pytest.raises(ValueError, match="length"):
        adaptive_arithmetic_decode([0, 1], 2, 0)
