"""A spam scanner on 3,921 real e-mails (9.4% spam): stratified 75/25 train/test split; the
training part cut into 5 stratified folds. Features: log1p of the count columns, a 0/1
"present" flag per count column, log characters per line, all standardized, and beside them
a piecewise-linear encoding of each non-binary column over 16 quantile bins of the training
part (Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular Deep
Learning"). One MLP per fold, trained on the other four and stopped early on the held-out
fold's loss (--monitor val_auc: its ROC-AUC): 112-64-32-1 (33 scaled features and 79 bin
features in; Dense, BatchNorm1d, ReLU, Dropout 0.1; one logit, BCEWithLogits, no class
weights unless --class-weight balanced, Adam 3e-3, batch 64). Each model keeps the mean of
its weights over its best epoch and the epochs after it up to the stop (stochastic weight
averaging over the patience window; ROC-AUC +0.002 on development splits against the best
epoch's weights alone). The scanner averages the 5 models' probabilities (--members N
trains N differently seeded models per fold). The decision threshold is the best F1 of
the out-of-fold predictions, each training e-mail scored by the model that did not train on
it; never picked on the test split.
Prints the test ROC-AUC, precision, recall and F1 of the spam class and the confusion
matrix, beside scikit-learn's LogisticRegression(class_weight="balanced"),
MLPClassifier((64, 32), early_stopping=True) and HistGradientBoostingClassifier trained on
the same features of the whole training part, each with its threshold picked on its own
out-of-fold predictions over the same folds, and saves ROC and precision/recall curves.
Needs scikit-learn (pip install "nnfast[metrics]"): the metrics and the peers are its.

    python examples/spam.py [--seeds 0 1 2] [--members 1] [--class-weight balanced]
                            [--monitor val_auc] [--backend numpy] [--plot spam_training.png]
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import example_cli
import nnfast
from nnfast import datasets, losses, nn, optim, threshold
from nnfast.callbacks import weight_arrays
from nnfast.datasets.spam import COUNT_FEATURES, FEATURE_NAMES

TEST_SIZE = 0.25
FOLDS = 5
BINS = 16
EPOCHS, BATCH, LR = 60, 64, 3e-3
PATIENCE = 8
MEMBERS = 1
COUNT_COLUMNS = [FEATURE_NAMES.index(name) for name in COUNT_FEATURES]
CHARS, LINES = FEATURE_NAMES.index("num_char"), FEATURE_NAMES.index("line_breaks")


@dataclass
class Split:
    X_train: np.ndarray
    y_train: np.ndarray
    fold: np.ndarray  # (N_train,) the fold, 0 .. FOLDS-1, that holds out each training e-mail
    X_test: np.ndarray
    y_test: np.ndarray


def preprocess(X: np.ndarray) -> np.ndarray:
    """log1p of the count columns (long right tails), the other columns as they are; then a
    0/1 flag per count column (whether the word, image, ... occurs at all: the step a tree
    finds by itself) and log(1 + characters per line) (num_char is in thousands)."""
    logs = X.copy()
    logs[:, COUNT_COLUMNS] = np.log1p(X[:, COUNT_COLUMNS])
    present = (X[:, COUNT_COLUMNS] > 0).astype(np.float64)
    per_line = np.log1p(1000 * X[:, CHARS] / (1 + X[:, LINES]))[:, None]
    return np.hstack([logs, present, per_line])


class PiecewiseLinear:
    """Each column with more than two distinct quantiles becomes one feature per quantile
    bin of the data it was fitted on: 0 below the bin, 1 above it, linear inside. A step or
    a bump anywhere along a column is then one weight away for the first Dense layer, where
    a standardized column needs several ReLUs to bend; the trees' advantage on tabular data."""

    def __init__(self, bins: int):
        self.bins = bins

    def fit(self, X: np.ndarray) -> PiecewiseLinear:
        quantiles = np.linspace(0, 1, self.bins + 1)
        self.edges = []
        for j in range(X.shape[1]):
            edges = np.unique(np.quantile(X[:, j], quantiles))
            if len(edges) > 2:  # 0/1 flags and near-constant columns are left to the scaled copy
                self.edges.append((j, edges[:-1], edges[1:]))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.hstack([np.clip((X[:, [j]] - low) / (high - low), 0, 1)
                          for j, low, high in self.edges])


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of each sample: each class dealt out in turn, in an order drawn from `seed`."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(y == label))
        fold[members] = np.arange(len(members)) % folds
    return fold


def split_data(seed: int) -> Split:
    """The test split from `seed` and the folds of the training part; the features scaled and
    binned with statistics of the whole training part (no labels involved)."""
    (X_train, y_train), (X_test, y_test) = datasets.load_spam_split(test_size=TEST_SIZE, seed=seed)
    train_features = preprocess(X_train)
    scaler = datasets.StandardScaler().fit(train_features)
    encoder = PiecewiseLinear(BINS).fit(train_features)

    def features(X):
        F = preprocess(X)
        return np.hstack([scaler.transform(F), encoder.transform(F)]).astype(np.float32)

    return Split(features(X_train), y_train, stratified_folds(y_train, FOLDS, seed),
                 features(X_test), y_test)


class TailAverage(nnfast.Callback):
    """After training, the model holds the mean of its weights (and BatchNorm running
    statistics) at the end of the stopper's best epoch and of every epoch after it: the
    epochs that early stopping trains past its best are averaged in, as in stochastic weight
    averaging (Izmailov et al. 2018), instead of thrown away. Put it after the EarlyStopping
    in fit()'s callbacks: it reads the stopper's best_epoch once the stopper has judged the
    epoch."""

    def __init__(self, stopper: nnfast.EarlyStopping):
        self.stopper = stopper

    def on_train_begin(self, model, logs):
        self.total, self.count = None, 0

    def on_epoch_end(self, model, epoch, logs):
        if self.stopper.best_epoch == epoch:  # a new best: the average starts again from it
            self.total, self.count = [a.astype(np.float64) for a in weight_arrays(model)], 1
        elif self.total is not None:
            for total, a in zip(self.total, weight_arrays(model)):
                total += a
            self.count += 1

    def on_train_end(self, model, logs):
        if self.total is None:
            return
        for target, total in zip(weight_arrays(model), self.total):
            target[...] = total / self.count


def build_model(width: int, seed: int) -> nn.Sequential:
    return nn.Sequential(nn.Dense(width, 64, seed=seed), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Dropout(0.1, seed=seed + 100),
                         nn.Dense(64, 32, seed=seed + 1), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Dropout(0.1, seed=seed + 101),
                         nn.Dense(32, 1, init="xavier", seed=seed + 50))


@dataclass
class Scores:
    """Test figures of the spam class at one decision threshold."""

    name: str
    threshold: float
    auc: float
    precision: float
    recall: float
    f1: float
    confusion: np.ndarray  # [[tn, fp], [fn, tp]]
    seconds: float

    def row(self) -> str:
        return (f"{self.name:<46} {self.threshold:>5.2f} {self.auc:>7.4f} {self.precision:>9.4f} "
                f"{self.recall:>7.4f} {self.f1:>7.4f} {self.seconds:>8.3f}")


HEADER = f"{'model':<46} {'thr':>5} {'ROC-AUC':>7} {'precision':>9} {'recall':>7} {'F1':>7} {'train s':>8}"


def score(name, y_true, proba, cut, seconds) -> Scores:
    """ROC-AUC of the probabilities; precision, recall, F1 (spam) and the confusion matrix of
    the classes at threshold `cut` (scikit-learn's definitions)."""
    from sklearn import metrics
    predicted = (proba >= cut).astype(int)
    return Scores(name, cut, metrics.roc_auc_score(y_true, proba),
                  metrics.precision_score(y_true, predicted, zero_division=0),
                  metrics.recall_score(y_true, predicted, zero_division=0),
                  metrics.f1_score(y_true, predicted, zero_division=0),
                  metrics.confusion_matrix(y_true, predicted, labels=[0, 1]), seconds)


class Ensemble:
    """Models trained alike on different folds or from different initial weights; the mean
    of their probabilities of spam, (N,)."""

    def __init__(self, models):
        self.models = models

    def predict_proba(self, X) -> np.ndarray:
        return np.mean([m.predict_proba(X)[:, 0] for m in self.models], axis=0)


def train(seed: int = 0, split: Split | None = None, members: int = MEMBERS,
          class_weight=None, monitor: str = "val_loss"):
    """(ensemble, first model's history, tuned threshold, training seconds) of nnfast on the
    split of `seed`: `members` models per fold, each stopped early on its held-out fold's
    `monitor` ("val_loss" or "val_auc") and left with its weights averaged from the best
    epoch to the stop (TailAverage). Unweighted classes by default: class_weight=
    "balanced" ranked the likeliest spam worse (F1 0.629 against 0.644 on development
    splits) and the threshold makes up for the rarity; val_auc stops as well as val_loss in
    twice the time (scikit-learn's ROC-AUC of the training and held-out data every epoch)."""
    auc = monitor == "val_auc"
    s = split or split_data(seed)
    models, histories = [], []
    out_of_fold = np.zeros(len(s.y_train))
    start = time.perf_counter()
    for k in range(FOLDS):
        fit, held_out = s.fold != k, s.fold == k
        fold_models = []
        for member in range(members):
            model_seed = 1000 * seed + 10 * k + member
            model = build_model(s.X_train.shape[1], model_seed)
            # the best epoch's weights need no restoring: TailAverage replaces them
            stopper = nnfast.EarlyStopping(monitor=monitor, patience=PATIENCE, restore_best=False)
            histories.append(model.fit(
                s.X_train[fit], s.y_train[fit].astype(np.float32), loss=losses.BCEWithLogits(),
                optimizer=optim.Adam(lr=LR), epochs=EPOCHS, batch_size=BATCH,
                validation_data=(s.X_train[held_out], s.y_train[held_out].astype(np.float32)),
                class_weight=class_weight, metrics=["auc"] if auc else None,
                callbacks=[stopper, TailAverage(stopper)], seed=model_seed, verbose=0,
                drop_last=True))  # a last batch of one would break BatchNorm1d
            fold_models.append(model)
        out_of_fold[held_out] = Ensemble(fold_models).predict_proba(s.X_train[held_out])
        models += fold_models
    seconds = time.perf_counter() - start
    cut = threshold.best(s.y_train, out_of_fold, criterion="f1")
    return Ensemble(models), histories[0], cut, seconds


def peers(s: Split, seed: int):
    """(name, estimator fitted on the whole training part, threshold picked on its
    out-of-fold predictions over the folds of `s`, seconds of the final fit) of the
    scikit-learn models. The MLP's early stopping holds out its own 10%."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, cross_val_predict
    from sklearn.neural_network import MLPClassifier
    models = [
        ("sklearn LogisticRegression(balanced)", LogisticRegression(class_weight="balanced", max_iter=2000)),
        ("sklearn MLPClassifier(64, 32)", MLPClassifier((64, 32), early_stopping=True,
                                                        max_iter=500, random_state=seed)),
        ("sklearn HistGradientBoosting", HistGradientBoostingClassifier(random_state=seed)),
    ]
    for name, estimator in models:
        out_of_fold = cross_val_predict(estimator, s.X_train, s.y_train, cv=PredefinedSplit(s.fold),
                                        method="predict_proba")[:, 1]
        start = time.perf_counter()
        estimator.fit(s.X_train, s.y_train)
        yield name, estimator, threshold.best(s.y_train, out_of_fold), time.perf_counter() - start


def run_seed(seed: int, members: int, class_weight=None, monitor: str = "val_loss"):
    """The rows of one split: nnfast at its tuned threshold and at 0.5, then each peer at
    0.5 and at its tuned threshold. Also the curves' inputs."""
    s = split_data(seed)
    model, history, cut, seconds = train(seed, s, members, class_weight, monitor)
    proba = model.predict_proba(s.X_test)
    label = f"nnfast {FOLDS}-fold MLPs" if members == 1 else f"nnfast {FOLDS}x{members} MLPs"
    rows = [score(f"{label} (tuned threshold)", s.y_test, proba, cut, seconds),
            score(f"{label} (threshold 0.5)", s.y_test, proba, 0.5, seconds)]
    curves = [(label, proba)]
    for name, estimator, peer_cut, secs in peers(s, seed):
        p = estimator.predict_proba(s.X_test)[:, 1]
        rows.append(score(f"{name}", s.y_test, p, 0.5, secs))
        rows.append(score(f"{name} (tuned)", s.y_test, p, peer_cut, secs))
        curves.append((name, p))
    return rows, history, curves, s.y_test


def plot_curves(path: Path, y_true, curves, title: str) -> tuple[Path, Path]:
    """ROC and precision/recall curves of each model's test probabilities, to two PNGs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn import metrics
    roc_path = path.with_name(f"{path.stem}_roc.png")
    pr_path = path.with_name(f"{path.stem}_pr.png")
    for kind, target in (("roc", roc_path), ("pr", pr_path)):
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        for name, proba in curves:
            if kind == "roc":
                fpr, tpr, _ = metrics.roc_curve(y_true, proba)
                ax.plot(fpr, tpr, label=f"{name} (AUC {metrics.roc_auc_score(y_true, proba):.3f})")
            else:
                precision, recall, _ = metrics.precision_recall_curve(y_true, proba)
                ap = metrics.average_precision_score(y_true, proba)
                ax.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
        else:
            ax.set(xlabel="recall (spam)", ylabel="precision (spam)")
        ax.set_title(f"{title}: {'ROC' if kind == 'roc' else 'precision/recall'} (test)")
        ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "upper right")
        fig.tight_layout()
        fig.savefig(target, dpi=110)
        plt.close(fig)
    return roc_path, pr_path


def main(argv=None) -> None:
    parser = example_cli.argument_parser(__doc__, "spam_training.png",
                                         "where to save the training curves (the ROC and "
                                         "precision/recall curves go beside it, *_roc.png, *_pr.png)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="the split seeds (default: 0 1 2)")
    parser.add_argument("--members", type=int, default=MEMBERS,
                        help=f"models per fold, differently seeded (default: {MEMBERS})")
    parser.add_argument("--class-weight", choices=["none", "balanced"], default="none",
                        help="fit()'s class_weight (default: none; the tuned threshold handles "
                             "the rarity)")
    parser.add_argument("--monitor", choices=["val_loss", "val_auc"], default="val_loss",
                        help="what early stopping watches on the held-out fold (default: val_loss)")
    args = example_cli.parse_args(parser, argv)
    try:  # imported before any timing: the first import of scikit-learn takes seconds
        import sklearn.metrics  # noqa: F401
    except ImportError:
        raise SystemExit("examples/spam.py scores with scikit-learn: pip install \"nnfast[metrics]\"")
    by_name: dict[str, list[Scores]] = {}
    for i, seed in enumerate(args.seeds):
        rows, history, curves, y_test = run_seed(
            seed, args.members, None if args.class_weight == "none" else args.class_weight,
            args.monitor)
        print(f"split seed {seed}: {len(y_test)} test e-mails, {int(y_test.sum())} spam; "
              f"nnfast's first model stopped after {len(history.epoch)} epochs")
        print(HEADER)
        for r in rows:
            print(r.row())
            by_name.setdefault(r.name, []).append(r)
        tn, fp, fn, tp = rows[0].confusion.ravel()
        print(f"nnfast confusion matrix at threshold {rows[0].threshold:.2f}: "
              f"[[tn {tn}, fp {fp}], [fn {fn}, tp {tp}]]")
        if i == 0:
            roc, pr = plot_curves(Path(args.plot), y_test, curves, f"spam, seed {seed}")
            first_history = history
            print(f"ROC curves saved to {roc}, precision/recall curves to {pr}")
        print()
    print(f"mean over split seeds {args.seeds}:")
    print(HEADER)
    for name, runs in by_name.items():
        mean = Scores(name, float(np.mean([r.threshold for r in runs])),
                      *(float(np.mean([getattr(r, f) for r in runs]))
                        for f in ("auc", "precision", "recall", "f1")),
                      np.sum([r.confusion for r in runs], axis=0),
                      float(np.mean([r.seconds for r in runs])))
        print(mean.row())
    nnfast_runs = next(iter(by_name.values()))  # nnfast at its tuned threshold
    example_cli.report(f"test ROC-AUC {np.mean([r.auc for r in nnfast_runs]):.4f}, F1 (spam) "
                       f"{np.mean([r.f1 for r in nnfast_runs]):.4f} at the tuned threshold, "
                       f"training {np.mean([r.seconds for r in nnfast_runs]):.3f} s (mean of "
                       f"{len(nnfast_runs)} splits)", first_history, args.plot,
                       "spam, first fold's model")


if __name__ == "__main__":
    main()
