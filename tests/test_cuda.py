"""The CUDA backend. Without a GPU: the CUDA sources compile cleanly with nvcc, the CPU
extension does not depend on the CUDA runtime, and "cuda" is reported unavailable with a
reason. With a GPU: kernels beyond the shared suite's shapes (grid-stride loops, dropout
masks), the device-resident training step against the NumPy reference over 50 steps
(every op the CPU's fused step runs: Dense, activations, Dropout, BatchNorm1d, Residual,
L1/L2 penalties, clipping), fit/predict on a model moved with to("cuda"), the round trip
back to the CPU and the errors. The shared backend-parametrized suite covers every primitive and the gradient
checks on "cuda" when it is available.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import nnfast
from nnfast import backends, device, losses, nn, optim
from nnfast.backends import numpy_backend as reference
from test_fused_step import (CLIPPED, FEATURE_MODELS, assert_same_training, everything_model,
                             reference_step, residual_model)
from test_fused_step import data as make_data

ROOT = Path(__file__).resolve().parents[1]
CUDA_REASON = backends.unavailable_reason("cuda")
needs_gpu = pytest.mark.skipif(CUDA_REASON is not None,
                               reason=f"the cuda backend is unavailable: {CUDA_REASON}")
NVCC = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK)
                                else None)


# ----------------------------------------------------------------------------- without a GPU
@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_cuda_sources_compile_without_warnings(tmp_path):
    """Each .cu file compiles for one architecture (sm_75, the oldest CUDA 13 supports),
    warnings as errors. The package build compiles them for every architecture."""
    sources = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
    assert sources

    def compile_one(src):
        command = [NVCC, "-c", str(src), "-o", str(tmp_path / (src.stem + ".o")), "-I", str(ROOT / "csrc"),
                   "-O3", "-std=c++17", "-arch=sm_75", "--Werror", "all-warnings",
                   "-Xcompiler", "-Wall,-Wextra,-Werror"]
        return src.name, subprocess.run(command, capture_output=True, text=True, timeout=600)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name, result in pool.map(compile_one, sources):
            assert result.returncode == 0, f"{name}:\n{result.stderr}"


def test_registry_says_why_cuda_is_unavailable():
    if CUDA_REASON is None:
        pytest.skip("the cuda backend is available here")
    # Built without nvcc, or built with it on a machine without a driver or GPU.
    assert any(why in CUDA_REASON for why in ("built without its CUDA extension", "driver", "GPU")), CUDA_REASON
    with pytest.raises(nnfast.BackendUnavailableError, match="cuda"):
        nnfast.set_backend("cuda")
    model = nn.Sequential(nn.Dense(3, 2))
    with pytest.raises(RuntimeError, match="CUDA backend is unavailable"):
        model.to("cuda")
    assert model.device == "cpu"
    assert "cuda" not in nnfast.available_backends()  # never picked implicitly either


def test_to_rejects_unknown_device():
    with pytest.raises(ValueError, match="expected one of"):
        nn.Sequential(nn.Dense(3, 2)).to("tpu")


def _needed_libraries(module_file):
    readelf = shutil.which("readelf")
    if readelf is None or not module_file.endswith(".so"):
        pytest.skip("needs readelf and an ELF extension module")
    dynamic = subprocess.run([readelf, "-d", module_file], capture_output=True, text=True).stdout
    return [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]


def test_extensions_do_not_need_the_cuda_runtime_library():
    """The CPU extension never touches CUDA; the CUDA one links the runtime statically."""
    if backends.unavailable_reason("cpp") is not None:
        pytest.skip("the compiled CPU extension is not built")
    from nnfast import _core
    assert not any("cuda" in lib for lib in _needed_libraries(_core.__file__))
    try:
        from nnfast import _cuda
    except ImportError:
        return
    assert not any("cudart" in lib for lib in _needed_libraries(_cuda.__file__))


# ----------------------------------------------------------------------------- with a GPU
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_with_more_tiles_than_blocks(rng, dtype):
    """4160 x 4160 outputs are 4225 tiles of 64 x 64: more than the grid's 4096 blocks."""
    cuda = nnfast.get_backend("cuda")
    for trans_a, trans_b in [(False, False), (True, False), (False, True)]:
        a = rng.standard_normal((3, 4160) if trans_a else (4160, 3)).astype(dtype)
        b = rng.standard_normal((4160, 3) if trans_b else (3, 4160)).astype(dtype)
        bias = rng.standard_normal(4160).astype(dtype)
        out = cuda.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation="tanh")
        expected = reference.gemm(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation="tanh")
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@needs_gpu
def test_elementwise_and_bias_grad_beyond_one_grid(rng):
    """More elements than 4096 blocks x 256 threads, more columns than 4096 blocks."""
    cuda = nnfast.get_backend("cuda")
    x = rng.standard_normal(4096 * 256 + 4097).astype(np.float32)
    np.testing.assert_allclose(cuda.activation_forward("gelu", x),
                               reference.activation_forward("gelu", x), rtol=2e-5, atol=1e-6)
    g = rng.standard_normal((5, 4099)).astype(np.float32)
    np.testing.assert_allclose(cuda.bias_grad(g), reference.bias_grad(g), rtol=2e-5, atol=1e-5)


def splitmix64_bits(seed, offset, n):
    """The reference's counter-based bits (nnfast/backends/numpy_backend.py on the train branch)."""
    def mix(z):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
    with np.errstate(over="ignore"):
        key = mix(np.array([seed], dtype=np.uint64))[0]
        counters = np.arange(n, dtype=np.uint64) + np.uint64(offset)
        return mix(key + (counters + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p,seed,offset", [(0.2, 7, 0), (0.5, 2 ** 64 - 1, 2 ** 64 - 3), (0.0, 1, 5)])
def test_dropout_masks_match_the_counter_based_reference(rng, dtype, p, seed, offset):
    cuda = nnfast.get_backend("cuda")
    x = rng.standard_normal((37, 29)).astype(dtype)
    out, mask = cuda.dropout_forward(x, p=p, seed=seed, offset=offset)
    keep = (splitmix64_bits(seed, offset, x.size) >> np.uint64(32)) >= np.uint64(int(p * 2 ** 32))
    np.testing.assert_array_equal(mask.ravel(), keep.astype(np.uint8))
    scale = dtype(1.0 / (1.0 - p))
    np.testing.assert_array_equal(out, np.where(keep.reshape(x.shape), x * scale, dtype(0)))
    g = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(cuda.dropout_backward(g, mask, p=p),
                                  np.where(mask != 0, g * scale, dtype(0)))


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU,
               "elu": lambda: nn.ELU(0.7),
               "leaky_negative": lambda: nn.LeakyReLU(-0.2)}  # GELU, SiLU and this keep pre-activations
OPTIMIZERS = {
    "momentum_wd": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "adam_l2": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-2),
    "adamw": lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.05),
}
TOL = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=2e-3, atol=2e-5)}


def make_model(act, dtype, out=5):
    return nn.Sequential(nn.Dense(13, 17, seed=0, dtype=dtype), ACTIVATIONS[act](),
                         nn.Dense(17, 9, seed=1, dtype=dtype), ACTIVATIONS[act](),
                         nn.Dense(9, out, seed=2, dtype=dtype))


def run_on_cuda(model_fn, opt_fn, loss_name, dtype, rng, steps=50, batch=16):
    """Train two copies of model_fn() on the same batches: one on the GPU (one epoch of the
    device trainer, whose end brings every array back to the host), one layer by layer on
    the NumPy reference. Returns both models, optimizers and loss lists."""
    X, y = make_data(loss_name, dtype, rng)
    gpu_model, ref_model = model_fn(), model_fn()
    gpu_opt, ref_opt = opt_fn(gpu_model.parameters()), opt_fn(ref_model.parameters())
    loss_fn = losses.get(loss_name)
    trainer = device.CudaTrainer(gpu_model.to("cuda"), loss_fn, gpu_opt, X, y)
    trainer.begin_epoch()
    order = rng.permutation(np.tile(np.arange(len(X)), steps * batch // len(X) + 1))
    gpu_losses, ref_losses = [], []
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch].copy()
        gpu_losses.append(trainer.step(X, y, idx)[0])
        with nnfast.backend("numpy"):
            ref_losses.append(reference_step(ref_model, ref_opt, loss_fn, X[idx], y[idx]))
    trainer.end_epoch()
    return gpu_model, ref_model, gpu_losses, ref_losses, gpu_opt, ref_opt


def assert_same_optimizer_state(gpu_opt, ref_opt, dtype):
    for s, r in zip(gpu_opt.slots, ref_opt.slots):
        for key, value in s.named().items():
            np.testing.assert_allclose(value, r.named()[key], **TOL[dtype], err_msg=key)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss_name,opt_name", [("cross_entropy", "adam_l2"), ("mse", "momentum_wd"),
                                                ("bce_with_logits", "adamw"), ("cross_entropy", "nesterov")])
def test_cuda_training_matches_reference_over_50_steps(rng, dtype, act, loss_name, opt_name):
    *runs, gpu_opt, ref_opt = run_on_cuda(lambda: make_model(act, dtype), OPTIMIZERS[opt_name],
                                          loss_name, dtype, rng)
    assert_same_training(*runs, dtype)
    assert_same_optimizer_state(gpu_opt, ref_opt, dtype)  # the optimizer state came back too


# The feature models of tests/test_fused_step.py: kinked (ReLU, L1) in float64, smooth in
# float32, for the reason given there.
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model_name", FEATURE_MODELS)
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce_with_logits"])
def test_cuda_training_features_match_reference(rng, dtype, model_name, loss_name):
    model_fn, opt_name = FEATURE_MODELS[model_name]
    *runs, gpu_opt, ref_opt = run_on_cuda(lambda: model_fn(dtype, dtype == np.float32),
                                          OPTIMIZERS[opt_name], loss_name, dtype, rng)
    assert_same_training(*runs, dtype)  # running statistics and dropout counters included
    assert_same_optimizer_state(gpu_opt, ref_opt, dtype)
    if model_name == "dropout":
        assert [layer.offset for layer in runs[0].layers[::3]] == [50 * 16 * 13, 50 * 16 * 17, 0]


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt_name", CLIPPED)
def test_cuda_gradient_clipping_matches_reference(rng, dtype, opt_name):
    *runs, _, _ = run_on_cuda(lambda: everything_model(dtype, smooth=dtype == np.float32),
                              CLIPPED[opt_name], "cross_entropy", dtype, rng)
    assert_same_training(*runs, dtype)
    grads = [p.grad for p in runs[0].parameters()]  # the last step's gradients, as clipped
    if opt_name.startswith("clipnorm"):
        np.testing.assert_allclose(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)),
                                   0.05, rtol=1e-4)
    else:
        assert max(float(np.abs(g).max()) for g in grads) == np.asarray(0.002, dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse", "bce_with_logits"])
def test_cuda_residual_model_matches_reference(rng, dtype, loss_name):
    *runs, _, _ = run_on_cuda(lambda: residual_model(dtype, smooth=dtype == np.float32),
                              OPTIMIZERS["adam_l2"], loss_name, dtype, rng)
    assert_same_training(*runs, dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_predict_runs_in_eval_mode(rng, dtype):
    model = everything_model(dtype)
    model.layers[2].running_mean[:] = rng.standard_normal(17)
    model.layers[2].running_var[:] = rng.uniform(0.5, 2.0, 17)
    X = rng.standard_normal((9, 13)).astype(dtype)
    out = model.to("cuda").predict(X)
    with nnfast.backend("numpy"):
        np.testing.assert_allclose(out, model.eval()(X), **TOL[dtype])
    assert model.layers[3].offset == 0  # no mask drawn


@needs_gpu
def test_fit_and_predict_on_cuda_match_the_cpu(rng):
    X, y = make_data("cross_entropy", np.float32, rng, n=300)
    results = {}
    for where in ("cuda", "cpu"):
        model = make_model("tanh", np.float32)
        if where == "cuda":
            assert model.to("cuda") is model and model.device == "cuda"
        with nnfast.backend("numpy"):
            history = model.fit(X, y, optimizer=optim.Adam(lr=1e-2), epochs=3, batch_size=32,
                                validation_split=0.1, seed=7, verbose=0)
            results[where] = (model, history, model.predict(X[:50]))
    (gm, gh, gp), (cm, ch, cp) = results["cuda"], results["cpu"]
    np.testing.assert_allclose(gh["loss"], ch["loss"], rtol=1e-4)
    np.testing.assert_allclose(gh["val_loss"], ch["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(gp, cp, rtol=1e-3, atol=1e-4)
    for p, q in zip(gm.parameters(), cm.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-3, atol=1e-4)


@needs_gpu
def test_round_trip_to_cuda_and_back(rng):
    model = make_model("relu", np.float32)
    X, y = make_data("cross_entropy", np.float32, rng, n=64)
    model.to("cuda")
    model.fit(X, y, optimizer=optim.SGD(lr=0.1, momentum=0.9), epochs=1, batch_size=16, verbose=0)
    trained = [p.data.copy() for p in model.parameters()]
    model.layers[0].weight_param.data = model.layers[0].weight * 2  # a host change, between calls
    with nnfast.backend("numpy"):
        expected = model(X[:4])
    np.testing.assert_allclose(model.predict(X[:4]), expected, rtol=1e-5, atol=1e-6)  # device saw it
    assert model.to("cpu") is model and model.device == "cpu"
    np.testing.assert_array_equal(model.layers[0].weight, trained[0] * 2)
    for p, before in zip(model.parameters()[1:], trained[1:]):
        np.testing.assert_array_equal(p.data, before)


@needs_gpu
def test_terminate_on_nan_sees_and_restores_the_device_weights(rng):
    """A diverging run on the GPU stops at the first non-finite loss with finite weights,
    which stay finite when the model comes back to the CPU."""
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (100 * rng.standard_normal((64, 1))).astype(np.float32)
    model = nn.Sequential(nn.Dense(4, 16, seed=0), nn.ReLU(), nn.Dense(16, 1, seed=1)).to("cuda")
    with pytest.warns(RuntimeWarning, match="TerminateOnNaN"):
        history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1.0), epochs=50, batch_size=8,
                            verbose=0, seed=0)
    assert len(history.epoch) < 50
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    model.to("cpu")
    assert all(np.isfinite(p.data).all() for p in model.parameters())


@needs_gpu
def test_cuda_errors_are_clear(rng):
    with pytest.raises(ValueError, match="Softmax layer has no op record"):
        nn.Sequential(nn.Dense(4, 3), nn.Softmax()).to("cuda")
    model = nn.Sequential(nn.Dense(4, 1), nn.Sigmoid()).to("cuda")
    with pytest.raises(ValueError, match="on the GPU"):
        model.fit(np.zeros((8, 4), np.float32), np.zeros(8), loss="bce", verbose=0)
    wide = nn.Sequential(nn.Dense(1, 1 << 16, seed=0), nn.Dense(1 << 16, 1, seed=1)).to("cuda")
    trainer = device.CudaTrainer(wide, losses.MSE(), optim.SGD(wide.parameters(), lr=0.1),
                                 np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32))
    with pytest.raises(MemoryError, match="bytes"):  # 2^20 rows of 2^16-wide workspaces, 256 GiB each
        trainer.step(None, None, np.zeros(1 << 20, np.int64))
    model = make_model("relu", np.float32).to("cuda")
    trainer = device.CudaTrainer(model, losses.CrossEntropy(), optim.SGD(model.parameters(), lr=0.1),
                                 *make_data("cross_entropy", np.float32, rng, n=20))
    with pytest.raises(ValueError, match=r"idx: row 20 outside \[0, 20\)"):
        trainer.step(None, None, np.array([0, 20]))
    with pytest.raises(TypeError, match="idx"):
        trainer.step(None, None, np.array([0, 1], dtype=np.int32))
    model = everything_model(np.float32).to("cuda")
    trainer = device.CudaTrainer(model, losses.CrossEntropy(), optim.SGD(model.parameters(), lr=0.1),
                                 *make_data("cross_entropy", np.float32, rng, n=20))
    with pytest.raises(ValueError, match="batch norm in training mode needs at least 2 samples"):
        trainer.step(None, None, np.array([3]))
    assert model.layers[3].offset == 0  # nothing ran
