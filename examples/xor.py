"""XOR, the classic first network: 2-4-1 with sigmoids, mean squared error, SGD with momentum.

    python examples/xor.py [--epochs 2000] [--backend numpy] [--plot xor_training.png]
"""
from __future__ import annotations

import argparse

import numpy as np

import nnfast
from nnfast import datasets, nn, optim


def train(epochs: int = 2000, seed: int = 0):
    """(model, history) after training on the four XOR points."""
    X, y = datasets.xor()
    model = nn.Sequential(nn.Dense(2, 4, init="xavier", seed=seed), nn.Sigmoid(),
                          nn.Dense(4, 1, init="xavier", seed=seed + 1), nn.Sigmoid())
    history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1.0, momentum=0.9), epochs=epochs,
                        batch_size=4, seed=seed, verbose=0)
    return model, history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default=None, help="cpp, numba or numpy (default: the best available)")
    parser.add_argument("--plot", default="xor_training.png", help="where to save the training curves")
    args = parser.parse_args(argv)
    if args.backend:
        nnfast.set_backend(args.backend)
    model, history = train(args.epochs, args.seed)
    X, y = datasets.xor()
    predictions = model.predict(X)
    for x, target, p in zip(X, y, predictions):
        print(f"{x.astype(int)} -> {p[0]:.3f}  (target {int(target[0])})")
    accuracy = float(np.mean((predictions > 0.5) == (y > 0.5)))
    print(f"backend {nnfast.get_backend().name}: accuracy {accuracy:.2f}, "
          f"final loss {history['loss'][-1]:.5f}")
    history.plot(args.plot, title="XOR, 2-4-1")
    print(f"training curves saved to {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
