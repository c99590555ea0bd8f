"""A spam scanner on 3,921 real e-mails (9.4% spam): stratified 75/25 train/test split; the
training part cut into 5 stratified folds. Features: log1p of the count columns, a 0/1
"present" flag per count column, log characters per line, all standardized, and beside them
two piecewise-linear encodings of each non-binary column, over 8 and over 32 quantile bins
of the training part (Gorishniy et al. 2022, "On Embeddings for Numerical Features in
Tabular Deep Learning"). Two MLPs per fold, trained on the other four and stopped early on
the held-out fold's loss (--monitor val_auc: its ROC-AUC), one reading the scaled features
and the 8-bin encoding, the other the scaled features and the 32-bin one: 33 scaled and
about 40 or 140 bin features in, then 64-32-1 (Dense, BatchNorm1d, ReLU, Dropout 0.1; one
logit, BCEWithLogits, no class weights unless --class-weight balanced, Adam 3e-3, batch 64).
Each model keeps the mean of its weights over its best epoch and the epochs after it up to
the stop (stochastic weight averaging over the patience window). The scanner averages the
10 models' probabilities (--members N trains N models per fold, the i-th on the encoding
BINS[i % 2]: --members 1 is one 8-bin model per fold). The decision threshold is the best
F1 of the out-of-fold predictions, each training e-mail scored by the models that did not
train on it; never picked on the test split. The 10 models train side by side, one per
core.
On 60 development splits (seeds 10-69, never the default 0-2), each design run with 4 sets
of model seeds: the pair of encodings gained ROC-AUC +0.0017 (s.e. 0.0002, 49 of 60 splits
better) and F1 +0.007 over one 16-bin model per fold, where two 16-bin models per fold
gained +0.0007 and +0.002; the weight averaging +0.002 ROC-AUC over the best epoch's
weights alone.
Prints the test ROC-AUC, precision, recall and F1 of the spam class and the confusion
matrix, beside scikit-learn's LogisticRegression(class_weight="balanced"),
MLPClassifier((64, 32), early_stopping=True) and HistGradientBoostingClassifier trained on
the scaled columns and a 16-bin encoding of the whole training part, each with its
threshold picked on its own out-of-fold predictions over the same folds, and saves ROC and
precision/recall curves.
Needs scikit-learn (pip install "nnfast[metrics]"): the metrics and the peers are its.

    python examples/spam.py [--seeds 0 1 2] [--members 2] [--class-weight balanced]
                            [--monitor val_auc] [--backend numpy] [--plot spam_training.png]
"""
from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import example_cli
import nnfast
from nnfast import datasets, losses, nn, optim, threshold
from nnfast.callbacks import weight_arrays
from nnfast.datasets.spam import COUNT_FEATURES, FEATURE_NAMES

TEST_SIZE = 0.25
FOLDS = 5
BINS = (8, 32)  # one encoding per bin count; member i of a fold reads BINS[i % len(BINS)]'s
# scikit-learn's models read the scaled columns and one 16-bin encoding (what one nnfast
# model per fold read before the pair): given both of BINS' encodings, about 215 columns,
# its MLP ranked worse (ROC-AUC 0.920 against 0.939 on split seeds 0-2)
PEER_BINS = 16
EPOCHS, BATCH, LR = 60, 64, 3e-3
PATIENCE = 8
MEMBERS = 2
COUNT_COLUMNS = [FEATURE_NAMES.index(name) for name in COUNT_FEATURES]
CHARS, LINES = FEATURE_NAMES.index("num_char"), FEATURE_NAMES.index("line_breaks")


@dataclass
class Split:
    X_train: np.ndarray
    y_train: np.ndarray
    fold: np.ndarray  # (N_train,) the fold, 0 .. FOLDS-1, that holds out each training e-mail
    X_test: np.ndarray
    y_test: np.ndarray
    views: list[np.ndarray]  # per bin count of BINS, the columns its models read
    peer_columns: np.ndarray  # the columns scikit-learn's models read: PEER_BINS'


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

    @property
    def n_features(self) -> int:
        return sum(len(low) for _, low, _ in self.edges)


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
    binned with statistics of the whole training part (no labels involved): the scaled
    columns, then the bins of each encoding of BINS and PEER_BINS in turn."""
    (X_train, y_train), (X_test, y_test) = datasets.load_spam_split(test_size=TEST_SIZE, seed=seed)
    train_features = preprocess(X_train)
    scaler = datasets.StandardScaler().fit(train_features)
    encoders = [PiecewiseLinear(bins).fit(train_features) for bins in (*BINS, PEER_BINS)]

    def features(X):
        F = preprocess(X)
        return np.hstack([scaler.transform(F)]
                         + [e.transform(F) for e in encoders]).astype(np.float32)

    # Each model reads the scaled columns and one encoding: one model fed both encodings
    # ranked worse (ROC-AUC -0.003 on development splits) than a pair fed one each.
    scaled = np.arange(train_features.shape[1])
    views, start = [], len(scaled)
    for e in encoders:
        views.append(np.r_[scaled, start:start + e.n_features])
        start += e.n_features
    return Split(features(X_train), y_train, stratified_folds(y_train, FOLDS, seed),
                 features(X_test), y_test, views[:len(BINS)], views[-1])


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
    """Models trained alike on different folds, encodings or initial weights, each reading
    its own columns of the features; the mean of their probabilities of spam, (N,)."""

    def __init__(self, models, columns):
        self.models, self.columns = models, columns

    @classmethod
    def of(cls, trained) -> Ensemble:
        """The ensemble of fit_member's (model, columns, history) triples."""
        return cls([model for model, _, _ in trained], [columns for _, columns, _ in trained])

    def predict_proba(self, X) -> np.ndarray:
        return np.mean([m.predict_proba(X[:, c])[:, 0]
                        for m, c in zip(self.models, self.columns)], axis=0)


def fit_member(s: Split, seed: int, k: int, member: int, class_weight, monitor: str):
    """(model, its columns, history): member `member` of fold k, trained on the other folds
    and stopped early on fold k's `monitor`, on the columns of the encoding
    BINS[member % len(BINS)]."""
    fit, held_out = s.fold != k, s.fold == k
    # build_model draws from model_seed + 0..101: members 200 apart share no stream
    model_seed = 1000 * seed + 10 * k + 200 * member
    view = s.views[member % len(s.views)]
    model = build_model(len(view), model_seed)
    # the best epoch's weights need no restoring: TailAverage replaces them
    stopper = nnfast.EarlyStopping(monitor=monitor, patience=PATIENCE, restore_best=False)
    history = model.fit(
        s.X_train[fit][:, view], s.y_train[fit].astype(np.float32), loss=losses.BCEWithLogits(),
        optimizer=optim.Adam(lr=LR), epochs=EPOCHS, batch_size=BATCH,
        validation_data=(s.X_train[held_out][:, view], s.y_train[held_out].astype(np.float32)),
        class_weight=class_weight, metrics=["auc"] if monitor == "val_auc" else None,
        callbacks=[stopper, TailAverage(stopper)], seed=model_seed, verbose=0,
        drop_last=True)  # a last batch of one would break BatchNorm1d
    return model, view, history


def train(seed: int = 0, split: Split | None = None, members: int = MEMBERS,
          class_weight=None, monitor: str = "val_loss"):
    """(ensemble, first model's history, tuned threshold, training seconds) of nnfast on the
    split of `seed`: `members` models per fold (fit_member), each stopped early on its
    held-out fold's `monitor` ("val_loss" or "val_auc") and left with its weights averaged
    from the best epoch to the stop (TailAverage). Unweighted classes by default:
    class_weight="balanced" ranked the likeliest spam worse (F1 0.629 against 0.644 on
    development splits) and the threshold makes up for the rarity; val_auc stops as well as
    val_loss in twice the time (scikit-learn's ROC-AUC of the training and held-out data
    every epoch).
    The models are independent, so they train side by side, one per core and each on one
    thread: a batch of 64 rows is too small to share out, and fit() runs each epoch in one
    compiled call that leaves the GIL to the other thread."""
    s = split or split_data(seed)
    jobs = [(k, member) for k in range(FOLDS) for member in range(members)]
    start = time.perf_counter()
    cores = nnfast.get_num_threads()
    with threadpool_limits(limits=1), ThreadPoolExecutor(cores) as pool:
        # each job in a copy of this thread's context: a backend chosen with nnfast.backend()
        # is a context variable
        running = [pool.submit(contextvars.copy_context().run, fit_member, s, seed, k, member,
                               class_weight, monitor) for k, member in jobs]
        trained = [job.result() for job in running]
    out_of_fold = np.zeros(len(s.y_train))
    for k in range(FOLDS):
        held_out = s.fold == k
        fold = [t for (fold_k, _), t in zip(jobs, trained) if fold_k == k]
        out_of_fold[held_out] = Ensemble.of(fold).predict_proba(s.X_train[held_out])
    seconds = time.perf_counter() - start
    cut = threshold.best(s.y_train, out_of_fold, criterion="f1")
    return Ensemble.of(trained), trained[0][2], cut, seconds


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
    X = s.X_train[:, s.peer_columns]
    for name, estimator in models:
        out_of_fold = cross_val_predict(estimator, X, s.y_train, cv=PredefinedSplit(s.fold),
                                        method="predict_proba")[:, 1]
        start = time.perf_counter()
        estimator.fit(X, s.y_train)
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
        p = estimator.predict_proba(s.X_test[:, s.peer_columns])[:, 1]
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
                        help=f"models per fold, differently seeded, the i-th on the encoding of "
                             f"{' / '.join(map(str, BINS))} bins in turn (default: {MEMBERS})")
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
