"""The classic tasks of the tutorials, run from the examples/ scripts' own code, on every
backend: breast cancer to >= 95%, MNIST level with PyTorch, the deeper MNIST model with
BatchNorm, Dropout, Residual blocks, AdamW and a cosine schedule ahead of the plain one, and
the spam scanner ahead of a balanced logistic regression on real e-mail."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import nnfast
from nnfast import datasets
from nnfast.train import epoch_order
from unimplemented import skip_if_unimplemented

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import breast_cancer  # noqa: E402
import mnist  # noqa: E402
import spam  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread_per_library():
    """These tests check accuracy, not speed. On a busy 2-core machine OpenBLAS's threads
    (behind the numpy backend) and torch's OpenMP threads oversubscribe the cores and slow
    5-epoch MNIST runs by 5x or more; one thread each keeps them to seconds."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


def test_breast_cancer_reaches_95_percent(backend):
    """Seeds 0-4 (over seeds 0-19 the numpy backend averages 0.971, 19 of 20 >= 0.95)."""
    with skip_if_unimplemented():
        results = [breast_cancer.train(seed) for seed in range(5)]
    accuracies = [accuracy for _, _, accuracy in results]
    assert sum(a >= 0.95 for a in accuracies) >= 4 and np.mean(accuracies) >= 0.95, accuracies
    assert all(len(history.epoch) < 100 for _, history, _ in results)  # early stopping acted


def torch_mnist_accuracy(initial_weights, seed):
    """The plain model in PyTorch: same initial weights, same batches, same Adam schedule."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    (X, y), (X_test, y_test) = datasets.load_mnist_split()
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                                torch.nn.ReLU(), torch.nn.Linear(64, 10))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, weight, bias in zip(linears, initial_weights[::2], initial_weights[1::2]):
            linear.weight.copy_(torch.from_numpy(weight.T.copy()))  # nnfast stores W as (in, out)
            linear.bias.copy_(torch.from_numpy(bias))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    for epoch in range(mnist.EPOCHS):
        order = torch.from_numpy(epoch_order(seed, epoch, len(X)))
        for start in range(0, len(X), mnist.BATCH):
            idx = order[start:start + mnist.BATCH]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X_t[idx]), y_t[idx]).backward()
            opt.step()
    with torch.no_grad():
        return float((model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean())


@pytest.fixture(scope="module")
def plain_mnist_runs():
    """nnfast's plain model per backend, trained once for both MNIST tests."""
    return {}


def plain_mnist(backend, cache, seed=0):
    if backend.name not in cache:
        initial = [p.data.copy() for p in mnist.plain_model(seed).parameters()]
        with skip_if_unimplemented():
            _, _, accuracy = mnist.train("plain", seed, validate=False)
        cache[backend.name] = (initial, accuracy)
    return cache[backend.name]


def test_mnist_plain_model_matches_pytorch(backend, plain_mnist_runs):
    initial, ours = plain_mnist(backend, plain_mnist_runs)
    theirs = torch_mnist_accuracy(initial, seed=0)
    print(f"MNIST 784-128-64-10, 5 epochs: nnfast ({backend.name}) {ours:.4f}, PyTorch {theirs:.4f}")
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    assert ours >= 0.92


def test_mnist_deep_model_beats_the_plain_one(backend, plain_mnist_runs):
    _, plain = plain_mnist(backend, plain_mnist_runs)
    with skip_if_unimplemented():
        _, history, deep = mnist.train("deep", 0, validate=False)
    print(f"MNIST held-out 2,000: deep {deep:.4f}, plain {plain:.4f}")
    lr = history["lr"]
    assert lr[0] == pytest.approx(2e-3) and all(a > b for a, b in zip(lr, lr[1:]))  # the cosine schedule
    assert deep > plain + 0.005, (deep, plain)


def test_spam_scanner_beats_logistic_regression(backend, monkeypatch):
    """examples/spam.py's 5 fold models on the split of seed 0 (981 test e-mails, 92 spam):
    test ROC-AUC >= 0.93 and above scikit-learn's balanced logistic regression on the same
    features; F1 of the spam class >= 0.55 at the threshold tuned on the out-of-fold
    predictions, which cover every training e-mail. The models train in worker threads, on
    the test's backend."""
    metrics = pytest.importorskip("sklearn.metrics")
    from sklearn.linear_model import LogisticRegression
    split = spam.split_data(0)
    trained_on, fit_member = [], spam.fit_member
    monkeypatch.setattr(spam, "fit_member", lambda *args: trained_on.append(
        nnfast.get_backend().name) or fit_member(*args))
    with skip_if_unimplemented():
        model, history, cut, _ = spam.train(0, split, members=1)
    assert len(model.models) == spam.FOLDS and trained_on == [backend.name] * spam.FOLDS
    proba = model.predict_proba(split.X_test)
    auc = metrics.roc_auc_score(split.y_test, proba)
    f1 = metrics.f1_score(split.y_test, (proba >= cut).astype(int))
    X_train, X_test = split.X_train[:, split.peer_columns], split.X_test[:, split.peer_columns]
    peer = LogisticRegression(class_weight="balanced", max_iter=2000).fit(X_train, split.y_train)
    peer_auc = metrics.roc_auc_score(split.y_test, peer.predict_proba(X_test)[:, 1])
    assert auc >= 0.93 and auc > peer_auc and f1 >= 0.55, (auc, peer_auc, f1)
    assert len(history.epoch) < spam.EPOCHS  # early stopping on the held-out fold's loss acted
