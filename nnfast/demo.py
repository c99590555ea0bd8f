"""The main job: train 784-128-64-10 on real MNIST digits and report accuracy and speed."""
from __future__ import annotations

import time

from . import datasets, nn, optim
from .backends import active_backend_name


def mnist_mlp(seed: int = 0, dtype="float32") -> nn.Sequential:
    return nn.Sequential(
        nn.Dense(784, 128, seed=seed, dtype=dtype), nn.ReLU(),
        nn.Dense(128, 64, seed=seed + 1, dtype=dtype), nn.ReLU(),
        nn.Dense(64, 10, seed=seed + 2, dtype=dtype),
    )


def run_demo(epochs: int = 5, batch_size: int = 64, seed: int = 0, verbose: int = 1) -> dict:
    """Train on the first 8,000 MNIST test images, evaluate on the last 2,000."""
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist_split()
    model = mnist_mlp(seed)
    start = time.perf_counter()
    history = model.fit(X_train, y_train, loss="cross_entropy", optimizer=optim.Adam(lr=1e-3),
                        epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose)
    seconds = time.perf_counter() - start
    result = model.evaluate(X_test, y_test)
    return {
        "backend": active_backend_name(),
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "train_seconds": seconds,
        "samples_per_sec": epochs * len(X_train) / seconds,
        "history": history,
    }


def print_demo(result: dict) -> None:
    print(f"backend          {result['backend']}")
    print(f"test accuracy    {result['test_accuracy']:.4f}  (last 2,000 MNIST test images)")
    print(f"test loss        {result['test_loss']:.4f}")
    print(f"training time    {result['train_seconds']:.2f} s")
    print(f"throughput       {result['samples_per_sec']:,.0f} samples/s")
