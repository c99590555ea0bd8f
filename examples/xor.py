"""XOR, the classic first network: 2-4-1 with sigmoids, mean squared error, SGD with momentum.

    python examples/xor.py [--epochs 2000] [--backend numpy] [--plot xor_training.png]
"""
from __future__ import annotations

import numpy as np

import example_cli
from nnfast import datasets, nn, optim


def train(epochs: int = 2000, seed: int = 0):
    """(model, history) after training on the four XOR points."""
    X, y = datasets.xor()
    model = nn.Sequential(nn.Dense(2, 4, init="xavier", seed=seed), nn.Sigmoid(),
                          nn.Dense(4, 1, init="xavier", seed=seed + 1), nn.Sigmoid())
    history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1.0, momentum=0.9), epochs=epochs,
                        batch_size=4, seed=seed, verbose=0)
    return model, history


def main(argv=None) -> None:
    parser = example_cli.argument_parser(__doc__, "xor_training.png")
    parser.add_argument("--epochs", type=int, default=2000)
    args = example_cli.parse_args(parser, argv)
    model, history = train(args.epochs, args.seed)
    X, y = datasets.xor()
    predictions = model.predict(X)
    for x, target, p in zip(X, y, predictions):
        print(f"{x.astype(int)} -> {p[0]:.3f}  (target {int(target[0])})")
    accuracy = float(np.mean((predictions > 0.5) == (y > 0.5)))
    example_cli.report(f"accuracy {accuracy:.2f}, final loss {history['loss'][-1]:.5f}",
                       history, args.plot, "XOR, 2-4-1")


if __name__ == "__main__":
    main()
