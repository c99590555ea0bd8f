"""Wisconsin breast cancer: 30-64-32-1 with ReLU, Dropout 0.3 and 0.2, sigmoid + binary
cross-entropy, Adam 1e-3, batch 32, up to 100 epochs with early stopping on a validation
split; stratified 80/20 train/test split (random_state 42), features standardized.

    python examples/breast_cancer.py [--seed 0] [--backend numpy] [--plot breast_cancer_training.png]
"""
from __future__ import annotations

import numpy as np

import example_cli
import nnfast
from nnfast import datasets, nn, optim


def split_data():
    """((X_train, y_train), (X_val, y_val), (X_test, y_test)), float32, scaled on X_train.
    The validation set (early stopping) is a stratified 20% of the training part."""
    X, y = datasets.load_breast_cancer()
    X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, test_size=0.2, stratify=y,
                                                                 random_state=42)
    X_fit, X_val, y_fit, y_val = datasets.train_test_split(X_train, y_train, test_size=0.2,
                                                           stratify=y_train, random_state=42)
    scaler = datasets.StandardScaler().fit(X_fit)
    return [(scaler.transform(a).astype(np.float32), b)
            for a, b in ((X_fit, y_fit), (X_val, y_val), (X_test, y_test))]


def build_model(seed: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Dense(30, 64, seed=seed), nn.ReLU(), nn.Dropout(0.3, seed=seed + 100),
                         nn.Dense(64, 32, seed=seed + 1), nn.ReLU(), nn.Dropout(0.2, seed=seed + 101),
                         nn.Dense(32, 1, init="xavier", seed=seed + 2), nn.Sigmoid())


def train(seed: int = 0):
    """(model, history, test accuracy)."""
    (X, y), (X_val, y_val), (X_test, y_test) = split_data()
    model = build_model(seed)
    stopper = nnfast.EarlyStopping(monitor="val_loss", patience=10, restore_best=True)
    history = model.fit(X, y, loss="bce", optimizer=optim.Adam(lr=1e-3), epochs=100, batch_size=32,
                        validation_data=(X_val, y_val), callbacks=[stopper], seed=seed, verbose=0)
    return model, history, model.evaluate(X_test, y_test)["accuracy"]


def main(argv=None) -> None:
    parser = example_cli.argument_parser(__doc__, "breast_cancer_training.png")
    args = example_cli.parse_args(parser, argv)
    _, history, accuracy = train(args.seed)
    example_cli.report(f"stopped after {len(history.epoch)} epochs, best val_loss "
                       f"{min(history['val_loss']):.4f}; test accuracy {accuracy:.4f} (114 patients)",
                       history, args.plot, "breast cancer, 30-64-32-1")


if __name__ == "__main__":
    main()
