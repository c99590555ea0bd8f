"""Fuzzed primitives: random shapes, dtypes, strides, misalignment, read-only flags, aliased
operands and options, on every compiled backend. Each call must give the NumPy reference's
result (on identical inputs) or raise TypeError/ValueError: never crash, never differ.
The CI profile (tests/conftest.py) replays the same examples on every run."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import nnfast
from nnfast.backends import numpy_backend as reference

BACKENDS = [name for name in nnfast.available_backends() if name in ("cpp", "numba")]
EXAMPLES = 60  # per primitive and backend

DTYPES = ["float32", "float64", "float16", "int64", ">f4"]
LAYOUTS = ["contiguous", "strided", "transposed", "misaligned"]


@st.composite
def array_specs(draw, ndim=None, dims=None):
    """A recipe for one operand: (dtype, shape, layout, read-only); build() makes it."""
    ndim = draw(st.integers(1, 3)) if ndim is None else ndim
    shape = tuple(draw(st.integers(0, 6)) if dims is None else dims[i] for i in range(ndim))
    dtype = draw(st.sampled_from(DTYPES + ["float32"] * 12))  # mostly well formed
    layout = draw(st.sampled_from(LAYOUTS + ["contiguous"] * 12))
    return dtype, shape, layout, draw(st.sampled_from([False] * 5 + [True]))


def build(spec, rng):
    dtype, shape, layout, read_only = spec
    values = rng.standard_normal(shape)
    if layout == "strided" and len(shape):
        wide = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        a = wide[..., ::2]
        a[...] = values
    elif layout == "transposed" and len(shape) == 2:
        a = np.array(values.T, dtype).T
    elif layout == "misaligned":
        raw = np.zeros(values.size * np.dtype(dtype).itemsize + 1, np.uint8)
        a = np.frombuffer(raw.data, dtype, values.size, offset=1).reshape(shape)
        a[...] = values
    else:
        a = np.array(values, dtype)
    if read_only:
        a.setflags(write=False)
    return a


def same_result(got, want, rtol):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            same_result(g, w, rtol)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True)


def check(call, backend_name, seed):
    """call(module, rng) -> (result, arrays written in place); same seed, same inputs."""
    module = nnfast.get_backend(backend_name)
    try:
        got, got_arrays = call(module, np.random.default_rng(seed))
    except (TypeError, ValueError):
        event("refused")  # --hypothesis-show-statistics counts both outcomes
        return
    want, want_arrays = call(reference, np.random.default_rng(seed))
    # float32 kernels reorder sums (blocking, SIMD); float64 ones barely differ
    rtol = 1e-10 if all(a.dtype == np.float64 for a in want_arrays) else 1e-4
    same_result(got, want, rtol)
    for g, w in zip(got_arrays, want_arrays, strict=True):
        same_result(g, w, rtol)
    event("accepted")


ACTIVATIONS = ["relu", "tanh", "sigmoid", "leaky_relu", "gelu", "softmax", "identity", "nope"]
SEEDS = st.integers(0, 2 ** 32 - 1)


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=EXAMPLES)
@given(m=st.integers(0, 7), n=st.integers(0, 7), k=st.integers(0, 7), data=st.data(),
       trans_a=st.booleans(), trans_b=st.booleans(), alpha=st.sampled_from([1.0, 0.0, -2.5]),
       beta=st.sampled_from([0.0, 1.0, 0.5]), activation=st.sampled_from(ACTIVATIONS[:5] + [None, "softmax"]),
       out_mode=st.sampled_from(["new", "given", "alias_a", "given"]), with_bias=st.booleans(),
       seed=SEEDS)
def test_gemm(name, m, n, k, data, trans_a, trans_b, alpha, beta, activation, out_mode, with_bias, seed):
    a_spec = data.draw(array_specs(ndim=2, dims=(k, m) if trans_a else (m, k)))
    b_spec = data.draw(array_specs(ndim=2, dims=(n, k) if trans_b else (k, n)))
    out_spec = data.draw(array_specs(ndim=2, dims=(m, n)))
    bias_spec = data.draw(array_specs(ndim=1, dims=(n,)))

    def call(module, rng):
        a, b = build(a_spec, rng), build(b_spec, rng)
        out = {"new": None, "given": build(out_spec, rng), "alias_a": a}[out_mode]
        bias = build(bias_spec, rng) if with_bias else None
        result = module.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta,
                             bias=bias, activation=activation)
        return result, [a, b]

    check(call, name, seed)


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data(), kind=st.sampled_from(ACTIVATIONS), out_mode=st.sampled_from(["new", "given", "same"]),
       seed=SEEDS)
def test_activations(name, data, kind, out_mode, seed):
    x_spec = data.draw(array_specs())
    out_spec = data.draw(array_specs(ndim=len(x_spec[1]), dims=x_spec[1]))
    backward = data.draw(st.booleans())

    def call(module, rng):
        x = build(x_spec, rng)
        out = {"new": None, "given": build(out_spec, rng), "same": x}[out_mode]
        if backward:
            g = build(x_spec, rng)
            y = reference.activation_forward(kind, np.array(x, np.float64)).astype(x.dtype) \
                if kind in ACTIVATIONS[:-1] and x.dtype.kind == "f" and x.dtype.itemsize >= 4 else x
            return module.activation_backward(kind, g, x, y, out), [x]
        return module.activation_forward(kind, x, out), [x]

    check(call, name, seed)


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data(), adam=st.booleans(), momentum=st.sampled_from([0.0, 0.9]),
       alias=st.sampled_from(["none", "none", "grad_is_param", "m_is_v", "overlap"]), seed=SEEDS)
def test_optimizer_updates(name, data, adam, momentum, alias, seed):
    p_spec = data.draw(array_specs())
    others = [data.draw(array_specs(ndim=len(p_spec[1]), dims=p_spec[1])) for _ in range(3)]

    def call(module, rng):
        param = build(p_spec, rng)
        grad, s1, s2 = (build(spec, rng) for spec in others)
        if alias == "grad_is_param":
            grad = param
        elif alias == "m_is_v":
            s2 = s1
        elif alias == "overlap" and param.ndim == 1 and param.size > 1:
            grad = param[::-1]
        if adam:
            return module.adam_update(param, grad, s1, s2, lr=1e-2, step=3), [param, s1, s2]
        velocity = s1 if momentum else None
        return module.sgd_update(param, grad, velocity, lr=0.1, momentum=momentum,
                                 weight_decay=1e-3), [param, s1]

    check(call, name, seed)


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=EXAMPLES)
@given(data=st.data(), loss=st.sampled_from(["mse", "bce_with_logits", "softmax_ce_labels", "bias_grad"]),
       seed=SEEDS, label_shift=st.sampled_from([0, 0, 0, 7, -1]))
def test_losses_and_reductions(name, data, loss, seed, label_shift):
    x_spec = data.draw(array_specs(ndim=2))
    t_spec = data.draw(array_specs(ndim=2, dims=x_spec[1]))

    def call(module, rng):
        x, t = build(x_spec, rng), build(t_spec, rng)
        if loss == "mse":
            return module.mse_forward(x, t), [x, t]
        if loss == "bce_with_logits":
            return module.bce_with_logits_forward(x, np.abs(t) % 1 if t.dtype.kind == "f" else t), [x]
        if loss == "bias_grad":
            return module.bias_grad(x), [x]
        n, c = x.shape
        labels = (rng.integers(0, max(c, 1), n) + label_shift).astype(np.int64)
        return module.softmax_cross_entropy_forward(x, labels), [x]

    check(call, name, seed)
