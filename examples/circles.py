"""Two concentric circles: a ReLU network learns a boundary no straight line can draw.
2-16-1, ReLU then sigmoid, binary cross-entropy, Adam, full batch; scored on fresh points.

    python examples/circles.py [--epochs 300] [--backend numpy] [--plot circles_training.png]
"""
from __future__ import annotations

import example_cli
from nnfast import datasets, nn, optim


def train(epochs: int = 300, seed: int = 0):
    """(model, history, test accuracy): trained on 400 noisy points, tested on 400 others
    (logged each epoch as validation, for the curves; nothing is tuned on them)."""
    X, y = datasets.circles(400, noise=0.1, factor=0.5, seed=seed)
    X_test, y_test = datasets.circles(400, noise=0.1, factor=0.5, seed=seed + 1)
    model = nn.Sequential(nn.Dense(2, 16, seed=seed), nn.ReLU(),
                          nn.Dense(16, 1, init="xavier", seed=seed + 1), nn.Sigmoid())
    history = model.fit(X, y, loss="bce", optimizer=optim.Adam(lr=0.05), epochs=epochs,
                        batch_size=len(X), validation_data=(X_test, y_test), seed=seed, verbose=0)
    return model, history, model.evaluate(X_test, y_test)["accuracy"]


def main(argv=None) -> None:
    parser = example_cli.argument_parser(__doc__, "circles_training.png")
    parser.add_argument("--epochs", type=int, default=300)
    args = example_cli.parse_args(parser, argv)
    _, history, accuracy = train(args.epochs, args.seed)
    example_cli.report(f"test accuracy {accuracy:.3f} on 400 fresh points "
                       f"(train accuracy {history['accuracy'][-1]:.3f})",
                       history, args.plot, "circles, 2-16-1")


if __name__ == "__main__":
    main()
