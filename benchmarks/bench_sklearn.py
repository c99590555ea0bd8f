"""nnfast's scikit-learn estimator against scikit-learn's own MLPClassifier, in one run:
5-fold cross-validation (the same stratified folds for both) on breast cancer and on MNIST
(the 8,000 training digits), accuracy and time.

Both estimators get the same network, optimizer and stopping rule: ReLU hidden layers,
Adam (lr 1e-3, no L2 penalty: sklearn's alpha=0), batch 200 ("auto"), at most `epochs`
epochs, stopping when the training loss has not improved by 1e-4 for 10 epochs; breast
cancer is standardized inside the pipeline (fitted on each training fold). Float32 MNIST
stays float32 in both, float64 breast cancer float64. The two alternate round by round, so
a burst of load from another process hits both; times are the median over rounds and folds
of one fold's fit, and the total of one cross-validation (fit and score of every fold).

    python benchmarks/bench_sklearn.py [--rounds 3] [--threads N] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
import warnings

import numpy as np

from publish import invocation, publish

TASKS = {
    # name: (hidden layers, epochs)
    "breast cancer (569 x 30)": ((32,), 200),
    "MNIST (8,000 x 784)": ((128, 64), 30),
}


def load(task: str):
    from nnfast import datasets
    if task.startswith("breast"):
        return datasets.load_breast_cancer()
    (X, y), _ = datasets.load_mnist_split()
    return X, y


def estimators(hidden, epochs, seed=0):
    from sklearn.neural_network import MLPClassifier as SkMLP
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from nnfast.sklearn import NNClassifier
    common = dict(hidden_layer_sizes=hidden, batch_size="auto", tol=1e-4, n_iter_no_change=10,
                  random_state=seed)
    return {
        "nnfast NNClassifier": make_pipeline(StandardScaler(), NNClassifier(
            learning_rate=1e-3, epochs=epochs, optimizer="adam", verbose=0, **common)),
        "sklearn MLPClassifier": make_pipeline(StandardScaler(), SkMLP(
            learning_rate_init=1e-3, max_iter=epochs, solver="adam", alpha=0.0, **common)),
    }


def cross_validate_once(estimator, X, y, folds):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_validate
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = cross_validate(estimator, X, y, cv=folds, scoring="accuracy",
                                return_estimator=True)
    total = time.perf_counter() - start
    epochs = [fitted[-1].n_iter_ for fitted in result["estimator"]]
    return {"accuracy": list(result["test_score"]), "fit": list(result["fit_time"]),
            "total": total, "epochs": epochs}


def run(rounds: int, threads: int):
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    import nnfast
    nnfast.set_num_threads(threads)
    threadpool_limits(threads)  # NumPy's BLAS, which scikit-learn's MLP runs on
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    table = {}
    for task, (hidden, epochs) in TASKS.items():
        X, y = load(task)
        runs = {name: [] for name in estimators(hidden, epochs)}
        for r in range(rounds):
            for name, estimator in estimators(hidden, epochs).items():
                runs[name].append(cross_validate_once(estimator, X, y, folds))
                last = runs[name][-1]
                print(f"{task}, round {r + 1}/{rounds}, {name}: accuracy "
                      f"{np.mean(last['accuracy']):.4f}, epochs {last['epochs']}, "
                      f"{last['total']:.1f} s", flush=True)
        table[task] = {
            name: {"accuracy": runs[name][0]["accuracy"],  # deterministic: the same every round
                   "epochs": runs[name][0]["epochs"],
                   "fold_fit": statistics.median(t for run in runs[name] for t in run["fit"]),
                   "total": statistics.median(run["total"] for run in runs[name])}
            for name in runs}
        table[task]["_setup"] = (hidden, epochs)
    return table


def markdown(table, rounds, threads, command) -> str:
    from nnfast.bench.train_bench import cpu_model
    import sklearn

    import nnfast
    out = ["## scikit-learn estimators: 5-fold cross-validation, nnfast against scikit-learn's MLP",
           "", f"- machine: {cpu_model()}, {os.cpu_count()} cores, {threads} thread(s) for both",
           f"- date: {datetime.date.today().isoformat()}; nnfast {nnfast.__version__}, "
           f"scikit-learn {sklearn.__version__}", f"- command: `{command}`",
           "- both: StandardScaler then the MLP; ReLU, Adam lr 1e-3, no L2 penalty, batch 200, "
           "stop when the training loss has not improved by 1e-4 for 10 epochs; the same "
           "stratified folds (shuffled, seed 0)",
           f"- time: median over {rounds} round(s) x 5 folds of one fold's fit, and median over "
           "rounds of one whole cross-validation (5 fits and scores); seconds per epoch: the "
           "fold's fit divided by the epochs it ran (the two may stop after different numbers "
           "of epochs); speed-up: scikit-learn's time over nnfast's", "",
           "| data | network, max epochs | estimator | accuracy (mean ± std of 5 folds) | "
           "epochs run (mean of 5 folds) | fit per fold (s) | seconds per epoch | "
           "cross-validation (s) | speed-up |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for task, rows in table.items():
        hidden, epochs = rows["_setup"]
        peer = rows["sklearn MLPClassifier"]
        peer_epoch = peer["fold_fit"] / np.mean(peer["epochs"])
        for name, r in rows.items():
            if name.startswith("_"):
                continue
            acc = np.asarray(r["accuracy"])
            per_epoch = r["fold_fit"] / np.mean(r["epochs"])
            out.append(f"| {task} | {'-'.join(map(str, hidden))} hidden, {epochs} | {name} | "
                       f"{acc.mean():.4f} ± {acc.std():.4f} | {np.mean(r['epochs']):.1f} | "
                       f"{r['fold_fit']:.2f} | {per_epoch:.4f} | {r['total']:.1f} | "
                       f"{peer['total'] / r['total']:.2f}x ({peer_epoch / per_epoch:.2f}x per "
                       "epoch) |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--markdown", help="write the table to this file")
    args = parser.parse_args(argv)
    table = run(args.rounds, args.threads)
    publish(markdown(table, args.rounds, args.threads, invocation("bench_sklearn.py", argv)),
            args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
