"""pickle, copy.deepcopy and sklearn.base.clone of models, layers and optimizers: a copy
predicts and trains as the original (its compiled caches are rebuilt when first needed),
a clone is the same architecture, untrained."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import nnfast
from nnfast import nn, optim
from test_saving import every_layer_model, task
from unimplemented import skip_if_unimplemented


def pickled(obj):
    return pickle.loads(pickle.dumps(obj))


COPIES = {"pickle": pickled, "deepcopy": copy.deepcopy}


def fitted_model(backend_rng, X, y, epochs=2):
    model = every_layer_model()
    with skip_if_unimplemented():
        model.fit(X, y, optimizer=optim.AdamW(lr=1e-2, clipnorm=1.0), scheduler=optim.StepLR(1, 0.5),
                  epochs=epochs, batch_size=16, verbose=0, seed=0)
    return model


@pytest.mark.parametrize("how", COPIES)
def test_copy_of_a_fitted_model_predicts_and_resumes_as_the_original(backend, rng, how):
    X, y = task(rng)
    model = fitted_model(rng, X, y)
    expected = model.predict(X)  # fills the compiled predictor cache before copying
    twin = COPIES[how](model)
    np.testing.assert_array_equal(twin.predict(X), expected)
    assert repr(twin) == repr(model) and twin.epochs_trained == 2
    assert twin.optimizer.step_count == model.optimizer.step_count
    # The copy's optimizer optimizes the copy's parameters, not the original's.
    assert all(a is b for a, b in zip(twin.optimizer.params, twin.parameters()))
    assert twin.scheduler.optimizer is twin.optimizer
    with skip_if_unimplemented():
        model.fit(X, y, epochs=1, batch_size=16, verbose=0, seed=0)
        twin.fit(X, y, epochs=1, batch_size=16, verbose=0, seed=0)
    for a, b in zip(twin.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_is_independent_of_the_original(how, rng):
    X, y = task(rng)
    model = every_layer_model()
    model.predict(X)
    twin = COPIES[how](model)
    twin[0].weight[...] = 0
    assert np.abs(model[0].weight).sum() > 0
    assert not np.array_equal(twin.predict(X), model.predict(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unpickled_arrays_reach_the_compiled_kernels(dtype, rng):
    """An unpickled array holds its own dtype object, equal to NumPy's but not the same one;
    the bindings once compared dtypes by identity and refused it ("expected a float32 or
    float64 array, got dtype float32")."""
    if "cpp" not in nnfast.available_backends():
        pytest.skip("the compiled backend is not built here")
    X = rng.standard_normal((5, 6)).astype(dtype)
    model = nn.Sequential(nn.Dense(6, 4, seed=0, dtype=dtype), nn.ReLU(), nn.Dense(4, 2, seed=1, dtype=dtype))
    twin = pickled(model)
    with nnfast.backend("cpp") as cpp:
        np.testing.assert_array_equal(twin.predict(pickled(X)), model.predict(X))
        W = rng.standard_normal((6, 4)).astype(dtype)
        np.testing.assert_allclose(cpp.gemm(pickled(X), pickled(W)), X @ W, rtol=1e-5)
        labels = pickled(np.array([0, 1, 1, 0, 1], np.int64))
        twin.fit(pickled(X), labels, loss="cross_entropy", epochs=1, batch_size=5, verbose=0)
    with pytest.raises(TypeError, match="expected a float32 or float64 array, got dtype >f4"):
        nnfast.get_backend("cpp").gemm(X.astype(">f4"), X.T.astype(">f4").copy())


def test_a_model_with_read_only_arrays_predicts(backend, rng):
    """joblib memory-maps large arrays read-only when it loads a model; predicting only
    reads them (the compiled step, which binds them for writing, steps aside)."""
    X, y = task(rng)
    model = fitted_model(rng, X, y, epochs=1)
    expected = model.predict(X)
    twin = pickled(model)
    for a in [p.data for p in twin.parameters()] + twin.buffers():
        a.flags.writeable = False
    np.testing.assert_array_equal(twin.predict(X), expected)


def test_a_model_moved_to_cuda_unpickles_on_the_cpu(rng):
    """Device placement is not part of the model's state: the copy lives on the CPU."""
    X, y = task(rng)
    model = fitted_model(rng, X, y, epochs=1)
    twin = pickled(model)
    assert twin.device == "cpu"


def test_clone_gives_the_same_architecture_untrained(rng):
    clone = pytest.importorskip("sklearn.base").clone
    X, y = task(rng)
    model = fitted_model(rng, X, y)
    fresh = clone(model)
    assert type(fresh) is nn.Sequential and repr(fresh) == repr(model)
    assert fresh.optimizer is None and fresh.epochs_trained == 0 and fresh.history is None
    assert fresh[3].offset == 0 and model[3].offset > 0  # Dropout starts its masks afresh
    assert not any(np.array_equal(a.data, b.data) for a, b in
                   zip(fresh.parameters(), model.parameters()) if a.name == "weight")
    with skip_if_unimplemented():
        fresh.fit(X, y, epochs=1, batch_size=16, verbose=0)


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
                                  lambda: optim.Adam(lr=1e-2, clipvalue=0.5),
                                  lambda: optim.AdamW(lr=1e-2, weight_decay=0.1)],
                         ids=["sgd", "adam", "adamw"])
def test_optimizers_copy_with_state_and_clone_without(make, rng):
    clone = pytest.importorskip("sklearn.base").clone
    X, y = task(rng)
    model = every_layer_model()
    opt = make()
    with skip_if_unimplemented():
        model.fit(X, y, optimizer=opt, epochs=1, batch_size=32, verbose=0, seed=0)
    for how, twin in (("pickle", pickled(opt)), ("deepcopy", copy.deepcopy(opt))):
        assert type(twin) is type(opt) and twin.get_config() == opt.get_config(), how
        assert twin.step_count == opt.step_count and len(twin.params) == len(opt.params), how
        for a, b in zip(twin.slots, opt.slots):
            for name in ("velocity", "m", "v"):
                if getattr(b, name, None) is not None:
                    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    fresh = clone(opt)
    assert type(fresh) is type(opt) and fresh.get_config() == opt.get_config()
    assert not fresh.bound and fresh.step_count == 0


def test_every_layer_pickles_alone(rng):
    x = rng.standard_normal((8, 16)).astype(np.float32)
    for layer in every_layer_model().layers[1:-3]:
        layer.eval()
        np.testing.assert_array_equal(pickled(layer)(x), layer(x), err_msg=repr(layer))
