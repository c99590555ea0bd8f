"""nnfast's CUDA training step against PyTorch CUDA eager: samples/s of one epoch of
784-128-64-10 and 784-(512x4)-10 MLPs (ReLU, softmax cross-entropy, Adam), batch 64 to 4096.

    python benchmarks/bench_cuda.py [--rounds 5] [--samples 16384]

Both keep the data set and the model on the GPU and shuffle every epoch. nnfast runs what a
user gets from model.to("cuda"); model.fit(...): a Python loop with one device call per
batch, which uploads the batch's row indices and waits for its loss. PyTorch runs its usual
eager loop without reading the loss back. Each point is the median over several epochs
after a warm-up epoch. Before timing, one nnfast step is checked against the NumPy
blueprint from the same weights. Without a GPU, or without nnfast's CUDA extension, the
script says why and exits 0.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import nnfast
from nnfast import device, losses, nn, optim
from nnfast.bench import peers
from nnfast.bench.train_bench import synthetic_data

ARCHITECTURES = {"784-128-64-10": [784, 128, 64, 10], "784-512x4-10": [784, 512, 512, 512, 512, 10]}
BATCHES = (64, 256, 1024, 4096)


def nnfast_model(sizes):
    layers = []
    for i, (w, b) in enumerate(peers.initial_weights(sizes)):
        dense = nn.Dense(*w.shape)
        dense.weight[...], dense.bias[...] = w, b
        layers += [dense, nn.ReLU()] if i < len(sizes) - 2 else [dense]
    return nn.Sequential(*layers)


def check_one_step(sizes, X, y, batch=64):
    """One Adam step on the GPU moves the weights as the NumPy blueprint's step does."""
    model = nnfast_model(sizes).to("cuda")
    opt = optim.Adam(model.parameters(), lr=1e-3)
    trainer = device.CudaTrainer(model, losses.CrossEntropy(), opt, X[:batch], y[:batch])
    trainer.begin_epoch()
    trainer.step(None, None, np.arange(batch, dtype=np.int64))
    trainer.end_epoch()
    blueprint = peers.NumpyBlueprintTrainer(sizes, X, y, batch)
    blueprint.step(X[:batch], y[:batch])
    np.testing.assert_allclose(model.layers[0].weight, blueprint.params[0], rtol=1e-4, atol=1e-5)


def nnfast_samples_per_second(sizes, X, y, batch, rounds):
    model = nnfast_model(sizes).to("cuda")
    history = model.fit(X, y, loss="cross_entropy", optimizer=optim.Adam(lr=1e-3),
                        epochs=rounds + 1, batch_size=batch, verbose=0, seed=0)
    return len(X) / statistics.median(history["seconds"][1:])


def torch_samples_per_second(torch, sizes, X, y, batch, rounds):
    cuda = torch.device("cuda")
    layers = []
    for i, (w, b) in enumerate(peers.initial_weights(sizes)):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()] if i < len(sizes) - 2 else [lin]
    model = torch.nn.Sequential(*layers).to(cuda)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xd, yd = torch.from_numpy(X).to(cuda), torch.from_numpy(y).to(cuda)
    seconds = []
    for _ in range(rounds + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(len(Xd), device=cuda)
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(Xd[idx]), yd[idx]).backward()
            opt.step()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return len(X) / statistics.median(seconds[1:])


def torch_cuda():
    """(torch, None), or (None, why PyTorch CUDA cannot be measured)."""
    try:
        import torch
    except ImportError as exc:
        return None, f"torch is not installed ({exc})"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no CUDA device"
    return torch, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per point (median)")
    parser.add_argument("--samples", type=int, default=16384, help="data set size (a multiple of 4096)")
    args = parser.parse_args(argv)
    reason = nnfast.backends.unavailable_reason("cuda")
    if reason is not None:
        print(f"bench_cuda: skipped: the cuda backend is unavailable: {reason}")
        return 0
    cuda_backend = nnfast.get_backend("cuda")
    torch, torch_reason = torch_cuda()
    X, y = synthetic_data(n=args.samples)
    print(f"device: {cuda_backend.device_name}; {len(X)} samples; median of {args.rounds} epochs")
    if torch_reason:
        print(f"PyTorch CUDA not measured: {torch_reason}")
    print(f"{'model':<16}{'batch':>6}{'nnfast-cuda':>14}{'torch-cuda':>14}{'ratio':>8}   (samples/s)")
    for arch, sizes in ARCHITECTURES.items():
        check_one_step(sizes, X, y)
        for batch in BATCHES:
            ours = nnfast_samples_per_second(sizes, X, y, batch, args.rounds)
            theirs = torch_samples_per_second(torch, sizes, X, y, batch, args.rounds) if torch else None
            ratio = f"{ours / theirs:8.2f}" if theirs else f"{'-':>8}"
            print(f"{arch:<16}{batch:>6}{ours:>14,.0f}{(f'{theirs:,.0f}' if theirs else '-'):>14}{ratio}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
