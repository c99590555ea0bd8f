"""MNIST digits (first 8,000 of the shipped test set to train, last 2,000 to test), 5 epochs,
batch 64:
  plain: 784-128-64-10, ReLU, Adam 1e-3;
  deep:  784-128, then two residual blocks (Dense, BatchNorm, ReLU, Dropout, Dense), with
         BatchNorm, ReLU and Dropout between, AdamW 2e-3 with a cosine schedule.

    python examples/mnist.py [--model both|plain|deep] [--backend numpy] [--plot mnist_training.png]
"""
from __future__ import annotations

import os

import example_cli
from nnfast import datasets, nn, optim

EPOCHS, BATCH = 5, 64


def plain_model(seed: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Dense(784, 128, seed=seed), nn.ReLU(),
                         nn.Dense(128, 64, seed=seed + 1), nn.ReLU(),
                         nn.Dense(64, 10, seed=seed + 2))


def residual_block(width: int, seed: int) -> nn.Residual:
    return nn.Residual(nn.Sequential(nn.Dense(width, width, seed=seed), nn.BatchNorm1d(width), nn.ReLU(),
                                     nn.Dropout(0.1, seed=seed + 100), nn.Dense(width, width, seed=seed + 1)))


def deep_model(seed: int = 0, width: int = 128, blocks: int = 2) -> nn.Sequential:
    layers = [nn.Dense(784, width, seed=seed), nn.BatchNorm1d(width), nn.ReLU(),
              nn.Dropout(0.2, seed=seed + 50)]
    for i in range(blocks):
        layers += [residual_block(width, seed + 10 * (i + 1)), nn.BatchNorm1d(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Dense(width, 10, seed=seed + 99))


def train(kind: str = "plain", seed: int = 0, epochs: int = EPOCHS, validate: bool = True):
    """(model, history, test accuracy). validate: log the test set's loss and accuracy each
    epoch for the curves (nothing is tuned on it)."""
    (X, y), (X_test, y_test) = datasets.load_mnist_split()
    if kind == "plain":
        model, opt, scheduler = plain_model(seed), optim.Adam(lr=1e-3), None
    else:
        model = deep_model(seed)
        opt, scheduler = optim.AdamW(lr=2e-3, weight_decay=1e-2), optim.CosineAnnealingLR(epochs)
    history = model.fit(X, y, loss="cross_entropy", optimizer=opt, scheduler=scheduler, epochs=epochs,
                        batch_size=BATCH, seed=seed, verbose=0,
                        validation_data=(X_test, y_test) if validate else None)
    return model, history, model.evaluate(X_test, y_test)["accuracy"]


def main(argv=None) -> None:
    parser = example_cli.argument_parser(
        __doc__, "mnist_training.png",
        plot_help="where to save the training curves (the deep model's get a _deep suffix)")
    parser.add_argument("--model", choices=("both", "plain", "deep"), default="both")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = example_cli.parse_args(parser, argv)
    kinds = ("plain", "deep") if args.model == "both" else (args.model,)
    stem, ext = os.path.splitext(args.plot)
    for kind in kinds:
        _, history, accuracy = train(kind, args.seed, args.epochs)
        path = args.plot if kind == "plain" else f"{stem}_deep{ext or '.png'}"
        example_cli.report(f"test accuracy {accuracy:.4f} on the held-out 2,000, "
                           f"{sum(history['seconds']):.1f} s",
                           history, path, f"MNIST, {kind} model", prefix=f"{kind:5s} ")


if __name__ == "__main__":
    main()
