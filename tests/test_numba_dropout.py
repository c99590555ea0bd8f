"""The Numba backend's dropout beyond the shared suite: the mask and output bitwise the
reference's at counters that wrap past 2**64, with every accepted integer type for seed and
offset, one compiled signature for all of them, and outputs that overlap the input."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES
from nnfast.backends import numpy_backend as ref

pytest.importorskip("numba")
from nnfast.backends.numba_backend import _dropout  # noqa: E402
from nnfast.backends.numba_backend import dropout_backward, dropout_forward  # noqa: E402

U64 = 2 ** 64
# (seed, offset): zero, the largest seed, counters that wrap to 0 inside the array, offsets
# above 2**63 (negative as int64), and the same values as NumPy integers of both signs.
SEEDS_AND_OFFSETS = [
    (0, 0), (U64 - 1, U64 - 1), (12345, U64 - 7), (2 ** 63, 2 ** 63 - 3), (7, 2 ** 63),
    (np.uint64(U64 - 2), np.uint64(U64 - 100)), (np.int64(5), np.int64(2 ** 62)),
    (np.uint32(9), np.int8(3)),
]
SHAPES = [(1,), (1, 1), (7, 3), (13, 31), (1021, 3), (2, 3, 5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed,offset", SEEDS_AND_OFFSETS)
def test_mask_and_output_are_bitwise_the_reference(rng, dtype, shape, seed, offset):
    x = rng.standard_normal(shape).astype(dtype)
    out, mask = dropout_forward(x, p=0.37, seed=seed, offset=offset)
    out_ref, mask_ref = ref.dropout_forward(x, p=0.37, seed=seed, offset=offset)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(out, out_ref)  # one product by the same rounded scale
    g = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(dropout_backward(g, mask, p=0.37),
                                  ref.dropout_backward(g, mask_ref, p=0.37))


def test_counter_wraps_to_zero_within_one_call(rng):
    """Counters 2**64 - 3 .. 2**64 - 1 then 0, 1: the tail is the mask of offset 0."""
    x = rng.standard_normal(5)
    _, across = dropout_forward(x, p=0.5, seed=11, offset=U64 - 3)
    _, from_zero = dropout_forward(x[3:].copy(), p=0.5, seed=11, offset=0)
    np.testing.assert_array_equal(across[3:], from_zero)


@pytest.mark.parametrize("p", [0.0, 2.0 ** -32, 0.5, 1 - 2.0 ** -32])
def test_extreme_probabilities_match_the_reference(rng, p):
    x = rng.standard_normal(4099).astype(np.float32)
    out, mask = dropout_forward(x, p=p, seed=3, offset=U64 - 2000)
    out_ref, mask_ref = ref.dropout_forward(x, p=p, seed=3, offset=U64 - 2000)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(out, out_ref)


def test_every_integer_type_shares_one_compiled_signature(rng):
    """seed and offset reach the kernel as uint64 whatever their Python type: a signed
    variant would compute the hash in other arithmetic."""
    x = rng.standard_normal(10)
    for seed, offset in SEEDS_AND_OFFSETS:
        dropout_forward(x, p=0.5, seed=seed, offset=offset)
    float64_signatures = [s for s in _dropout._dropout_forward_kernel.signatures
                          if str(s[0].dtype) == "float64"]
    assert len(float64_signatures) == 1
    assert all(str(t) == "uint64" for t in float64_signatures[0][3:6])


@pytest.mark.parametrize("seed,error", [
    (-1, ValueError), (U64, ValueError), (np.int64(-1), ValueError), (True, TypeError),
    (1.0, TypeError), ("1", TypeError), (np.float64(1), TypeError),
])
def test_bad_seeds_and_offsets_are_refused(seed, error):
    x = np.ones(3)
    with pytest.raises(error, match="seed"):
        dropout_forward(x, p=0.5, seed=seed, offset=0)
    with pytest.raises(error, match="offset"):
        dropout_forward(x, p=0.5, seed=0, offset=seed)


@pytest.mark.parametrize("dtype", DTYPES)
def test_outputs_may_overlap_the_input(rng, dtype):
    x = rng.standard_normal(300).astype(dtype)
    expected, mask_ref = ref.dropout_forward(x, p=0.4, seed=1, offset=2)
    in_place = x.copy()
    dropout_forward(in_place, in_place, p=0.4, seed=1, offset=2)
    np.testing.assert_array_equal(in_place, expected)
    # out shifted by one element along x: a streaming kernel would read what it wrote
    buffer = np.zeros(301, dtype)
    buffer[1:] = x
    out, _ = dropout_forward(buffer[1:], buffer[:-1], p=0.4, seed=1, offset=2)
    np.testing.assert_array_equal(out, expected)
    grad = buffer.copy()
    dropout_backward(grad[1:], mask_ref, grad[:-1], p=0.4)
    np.testing.assert_array_equal(grad[:-1], ref.dropout_backward(buffer[1:], mask_ref, p=0.4))
