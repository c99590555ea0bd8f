"""Trainers measured by the training benchmark: nnfast and its peers, each doing the same
work per step (gather a shuffled batch, forward, softmax cross-entropy, backward, Adam).

Every trainer is built from the same initial weights, so their losses can be compared.
"""
from __future__ import annotations

import time

import numpy as np


def initial_weights(sizes, seed=0, dtype=np.float32):
    """He-normal weights (in, out) and zero biases for the layer sizes, e.g. [784, 128, 10]."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, np.sqrt(2 / a), (a, b)).astype(dtype), np.zeros(b, dtype))
            for a, b in zip(sizes[:-1], sizes[1:])]


class Trainer:
    """Trains for one epoch over (X, y) with a given batch size; reports the last loss."""

    name = ""
    compile_seconds = 0.0  # the warm-up: the first two training steps (compiles, caches)

    def epoch(self) -> float:
        raise NotImplementedError

    def predict_one(self, x: np.ndarray):
        """The model's output for one sample x (features,), as a user would call it."""
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The model's outputs (logits) for a batch X (samples, features), as a NumPy array."""
        raise NotImplementedError


class NnfastTrainer(Trainer):
    def __init__(self, backend, sizes, X, y, batch, lr=1e-3, seed=0, warm_up=True):
        import nnfast
        from nnfast import nn, optim
        self.name = f"nnfast-{backend}"
        self.nnfast, self.backend = nnfast, backend
        layers = []
        for i, (w, b) in enumerate(initial_weights(sizes, seed)):
            dense = nn.Dense(*w.shape)
            dense.weight[...] = w
            dense.bias[...] = b
            layers += [dense, nn.ReLU()] if i < len(sizes) - 2 else [dense]
        self.model = nn.Sequential(*layers)
        self.opt = optim.Adam(self.model.parameters(), lr=lr)
        self.X, self.y, self.batch = X, y, batch
        if warm_up:
            start = time.perf_counter()
            self._fit(X[:2 * batch], y[:2 * batch])  # the first steps compile (numba), warm caches
            self.compile_seconds = time.perf_counter() - start

    def _fit(self, X, y):
        # What a user gets: fit(), with its input checks, shuffling and batch gathering.
        with self.nnfast.backend(self.backend):
            history = self.model.fit(X, y, loss="cross_entropy", optimizer=self.opt, epochs=1,
                                     batch_size=self.batch, verbose=0, seed=len(self.opt.params))
        return history.last("loss")

    def epoch(self):
        return self._fit(self.X, self.y)

    def predict_one(self, x):
        with self.nnfast.backend(self.backend):
            return self.model.predict(x)

    def predict(self, X):
        with self.nnfast.backend(self.backend):
            return self.model.predict(X)


class NumpyBlueprintTrainer(Trainer):
    """The from-scratch NumPy MLP that tutorials teach: x @ W + b, ReLU, softmax-CE, Adam."""

    name = "numpy-blueprint"

    def __init__(self, sizes, X, y, batch, lr=1e-3, seed=0):
        self.params = [a.copy() for wb in initial_weights(sizes, seed) for a in wb]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t, self.lr = 0, lr
        self.X, self.y, self.batch = X, y, batch
        self.rng = np.random.default_rng(seed)

    def forward(self, xb):
        """The logits and every layer's input."""
        acts, h = [xb], xb
        n_layers = len(self.params) // 2
        for i in range(n_layers):
            h = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < n_layers - 1:
                h = np.maximum(h, 0)
            acts.append(h)
        return h, acts

    def predict(self, X):
        return self.forward(X)[0]

    def step(self, xb, yb):
        h, acts = self.forward(xb)
        n_layers = len(self.params) // 2
        z = h - h.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[np.arange(len(yb)), yb] + 1e-12).mean()
        g = p
        g[np.arange(len(yb)), yb] -= 1
        g /= len(yb)
        grads = [None] * len(self.params)
        for i in range(n_layers - 1, -1, -1):
            grads[2 * i] = acts[i].T @ g
            grads[2 * i + 1] = g.sum(axis=0)
            if i:
                g = (g @ self.params[2 * i].T) * (acts[i] > 0)
        self.t += 1
        b1, b2 = 0.9, 0.999
        for p_, g_, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g_
            v *= b2
            v += (1 - b2) * g_ * g_
            p_ -= self.lr / (1 - b1 ** self.t) * m / (np.sqrt(v / (1 - b2 ** self.t)) + 1e-8)
        return float(loss)

    def epoch(self):
        order = self.rng.permutation(len(self.X))
        loss = 0.0
        for s in range(0, len(order), self.batch):
            idx = order[s:s + self.batch]
            loss = self.step(self.X[idx], self.y[idx])
        return loss


class TorchTrainer(Trainer):
    def __init__(self, sizes, X, y, batch, lr=1e-3, seed=0, compiled=False, warm_up=True):
        import torch
        self.torch = torch
        self.name = "torch-compile" if compiled else "torch-eager"
        layers = []
        for i, (w, b) in enumerate(initial_weights(sizes, seed)):
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers += [lin, torch.nn.ReLU()] if i < len(sizes) - 2 else [lin]
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.batch = batch
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(xb, yb):
            self.opt.zero_grad(set_to_none=True)
            loss = loss_fn(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            return loss

        if compiled:
            # Every trainer's step is the same code with new objects: without a reset, the
            # ninth configuration of a run hits dynamo's recompile limit and runs eager.
            torch._dynamo.reset()
        self._step = torch.compile(step) if compiled else step
        # Single-sample predict through the compiled forward too (compiled on its first call).
        self._forward_one = torch.compile(self.model) if compiled else self.model
        if warm_up:
            start = time.perf_counter()
            for s in (0, batch):  # compile and warm up on two batches
                self._step(self.X[s:s + batch], self.y[s:s + batch])
            self.compile_seconds = time.perf_counter() - start

    def epoch(self):
        order = self.torch.randperm(len(self.X))
        loss = None
        for s in range(0, len(order), self.batch):
            idx = order[s:s + self.batch]
            loss = self._step(self.X[idx], self.y[idx])
        return loss.item()

    def predict_one(self, x):
        with self.torch.inference_mode():
            return self._forward_one(self.torch.from_numpy(x)[None, :])

    def predict(self, X):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).numpy()


class JaxTrainer(Trainer):
    name = "jax-jit"

    def __init__(self, sizes, X, y, batch, lr=1e-3, seed=0, warm_up=True):
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp = jax, jnp
        params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in initial_weights(sizes, seed)]

        def forward(params, xb):
            h = xb
            for i, (w, b) in enumerate(params):
                h = h @ w + b
                if i < len(params) - 1:
                    h = jax.nn.relu(h)
            return h

        def loss_fn(params, xb, yb):
            logp = jax.nn.log_softmax(forward(params, xb))
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        b1, b2, eps = 0.9, 0.999, 1e-8

        @jax.jit
        def step(params, m, v, t, xb, yb):
            loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
            m = jax.tree_util.tree_map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
            v = jax.tree_util.tree_map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
            scale = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            params = jax.tree_util.tree_map(lambda p, m_, v_: p - scale * m_ / (jnp.sqrt(v_) + eps),
                                            params, m, v)
            return params, m, v, loss

        self._step = step
        self._forward = jax.jit(lambda params, x: forward(params, x[None, :]))
        self._forward_batch = jax.jit(forward)
        self.params = params
        self.m = jax.tree_util.tree_map(jnp.zeros_like, params)
        self.v = jax.tree_util.tree_map(jnp.zeros_like, params)
        self.t = 0
        self.X, self.y, self.batch = jnp.asarray(X), jnp.asarray(y), batch
        self.rng = np.random.default_rng(seed)
        if warm_up:
            start = time.perf_counter()
            self._run(np.arange(2 * batch))
            self.compile_seconds = time.perf_counter() - start

    def epoch(self):
        return self._run(self.rng.permutation(self.X.shape[0]))

    def _run(self, order):
        if len(order) % self.batch:
            raise ValueError("jax trainer: the sample count must be a multiple of the batch size "
                             "(one compiled shape)")
        loss = None
        for s in range(0, len(order), self.batch):
            idx = self.jnp.asarray(order[s:s + self.batch])
            self.t += 1
            self.params, self.m, self.v, loss = self._step(self.params, self.m, self.v, self.t,
                                                           self.X[idx], self.y[idx])
        return float(loss)

    def predict_one(self, x):
        return self._forward(self.params, x).block_until_ready()

    def predict(self, X):
        return np.asarray(self._forward_batch(self.params, self.jnp.asarray(X)))
