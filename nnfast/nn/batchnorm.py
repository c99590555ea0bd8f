"""Batch normalization over the batch dimension of (N, C) input, as torch.nn.BatchNorm1d."""
from __future__ import annotations

import numpy as np

from ..backends import get_backend
from .module import Layer, Parameter, as_batch_input, as_float_input, config_width
from .ops import BatchNormOp


class BatchNorm1d(Layer):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta.  x (N, C), gamma, beta (C,), y (N, C).

    Training: mean and (biased) var of the batch, and running_mean/running_var updated with
    `momentum` (running_var from the unbiased variance, as torch). Eval: the running
    statistics. affine=False leaves out gamma and beta.
    """

    # One sample has no variance to normalize by.
    min_train_batch = 2

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5,
                 affine: bool = True, dtype=np.float32):
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise ValueError(f"BatchNorm1d: num_features must be a positive integer, got {num_features!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm1d: momentum must lie in [0, 1], got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"BatchNorm1d: eps must be positive, got {eps!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"BatchNorm1d: dtype must be float32 or float64, got {self.dtype}")
        self.num_features = self.in_features = self.out_features = int(num_features)
        self.momentum, self.eps, self.affine = float(momentum), float(eps), bool(affine)
        c = self.num_features
        self.gamma_param = Parameter(np.ones(c, self.dtype), "gamma") if affine else None
        self.beta_param = Parameter(np.zeros(c, self.dtype), "beta") if affine else None
        self.running_mean = np.zeros(c, self.dtype)
        self.running_var = np.ones(c, self.dtype)
        self._x = None

    gamma = property(lambda self: self.gamma_param.data if self.affine else None)
    beta = property(lambda self: self.beta_param.data if self.affine else None)

    def parameters(self):
        return [self.gamma_param, self.beta_param] if self.affine else []

    def buffers(self):
        return [self.running_mean, self.running_var]

    def own_state(self):
        affine = [("weight", self.gamma_param), ("bias", self.beta_param)] if self.affine else []
        return affine + [("running_mean", self.running_mean), ("running_var", self.running_var)]

    def forward(self, x):
        x = as_batch_input(x, self.dtype, self.num_features, "BatchNorm1d")
        B = get_backend()
        if self.training:
            if x.shape[0] < 2:
                raise ValueError(f"BatchNorm1d: training mode needs at least 2 samples per batch "
                                 f"(the variance of one sample is undefined), got a batch of "
                                 f"{x.shape[0]}; use a larger batch or call model.eval()")
            out, self._mean, self._inv_std = B.batchnorm_forward_train(
                x, self.gamma, self.beta, self.running_mean, self.running_var,
                momentum=self.momentum, eps=self.eps)
        else:
            out = B.batchnorm_forward_eval(x, self.gamma, self.beta, self.running_mean,
                                           self.running_var, eps=self.eps)
            self._mean = self._inv_std = None
        self._x, self._trained_forward = x, self.training
        return out

    def backward(self, grad_out):
        (x,) = self._saved("_x")
        grad_out = as_float_input(grad_out, self.dtype, "grad_out")
        if grad_out.shape != x.shape:
            raise ValueError(f"BatchNorm1d.backward: expected grad of shape {x.shape}, "
                             f"got {grad_out.shape}")
        if self._trained_forward:
            mean, inv_std = self._mean, self._inv_std
        else:  # an eval-mode forward normalized with the running statistics, constants in x
            mean = self.running_mean
            inv_std = (1.0 / np.sqrt(self.running_var + self.dtype.type(self.eps))).astype(self.dtype)
        return get_backend().batchnorm_backward(
            grad_out, x, mean, inv_std, self.gamma,
            grad_gamma=self.gamma_param.grad if self.affine else None,
            grad_beta=self.beta_param.grad if self.affine else None,
            training=self._trained_forward)

    def lower(self):
        return [BatchNormOp(self.gamma_param, self.beta_param, self.running_mean, self.running_var,
                            self.momentum, self.eps)]

    @classmethod
    def declared_size(cls, config, size_of):
        affine = config.get("affine", True)
        return (4 if affine else 2) * config_width(config, "num_features")

    def get_config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps,
                "affine": self.affine, "dtype": self.dtype.name}

    def __repr__(self):
        return (f"BatchNorm1d({self.num_features}, momentum={self.momentum}, eps={self.eps}, "
                f"affine={self.affine}, dtype={self.dtype.name})")
