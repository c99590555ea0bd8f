"""Inspection and reproducibility: summary(), count_params(), state_dict()/load_state_dict()
under torch's names, get_weights()/set_weights() in Keras's order, named_parameters(),
nnfast.manual_seed, Dense's initializers and print(model)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import nn
from test_saving import every_layer_model, task
from unimplemented import skip_if_unimplemented

TORCH_NAMES = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
               "4.block.0.weight", "4.block.0.bias", "4.block.2.running_mean",
               "4.block.2.running_var", "6.weight", "6.bias", "8.weight", "8.bias"]


def test_state_dict_uses_torchs_names_and_copies():
    model = every_layer_model()
    state = model.state_dict()
    assert list(state) == TORCH_NAMES
    assert [n for n, _ in model.named_parameters()] == [n for n in TORCH_NAMES if "running" not in n]
    assert [n for n, _ in model.named_buffers()] == [n for n in TORCH_NAMES if "running" in n]
    assert all(p is q for (_, p), q in zip(model.named_parameters(), model.parameters()))
    state["0.weight"][...] = 0  # a copy: the model is untouched
    assert np.abs(model[0].weight).sum() > 0


def test_state_dict_matches_torchs_for_the_same_architecture():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Dense(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                 torch.nn.Linear(8, 2))
    expected = [k for k in theirs.state_dict() if not k.endswith("num_batches_tracked")]
    assert list(ours.state_dict()) == expected
    # torch's Linear.weight is (out, in), Dense's (in, out): load the transpose.
    ours.load_state_dict({k: (v.numpy().T if k.endswith("weight") and v.ndim == 2 else v.numpy())
                          for k, v in theirs.state_dict().items() if k in expected})
    ours.eval(), theirs.eval()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_load_state_dict_restores_in_place_and_reports_mismatches(rng):
    X, y = task(rng)
    model, other = every_layer_model(), every_layer_model()
    with skip_if_unimplemented():
        model.fit(X, y, epochs=1, batch_size=16, verbose=0, seed=0)
    arrays_before = [a for _, a in other.named_parameters()]
    other.load_state_dict(model.state_dict())
    assert all(a is b for a, (_, b) in zip(arrays_before, other.named_parameters()))
    model.eval(), other.eval()
    np.testing.assert_array_equal(other.predict(X), model.predict(X))
    state = model.state_dict()
    state["extra"] = np.zeros(1)
    del state["0.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\], unexpected keys \['extra'\]"):
        other.load_state_dict(state)
    assert other.load_state_dict(state, strict=False) == (["0.bias"], ["extra"])
    with pytest.raises(ValueError, match=r"0.weight: the model's array has shape \(6, 16\), the given one \(16, 6\)"):
        other.load_state_dict({**model.state_dict(), "0.weight": np.zeros((16, 6))})


def test_get_and_set_weights_in_keras_order(rng):
    model, other = every_layer_model(), every_layer_model()
    weights = model.get_weights()
    assert [w.shape for w in weights[:6]] == [(6, 16), (16,), (16,), (16,), (16,), (16,)]
    other.set_weights(weights)
    for a, b in zip(other.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="the model has 14 arrays"):
        other.set_weights(weights[:-1])


def test_count_params_and_summary_in_keras_format():
    model = nn.Sequential(nn.Dense(784, 128), nn.ReLU(), nn.BatchNorm1d(128), nn.Dropout(0.2),
                          nn.Dense(128, 10))
    assert model.count_params() == 784 * 128 + 128 + 4 * 128 + 128 * 10 + 10
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert lines[0] == 'Model: "Sequential"'
    assert "Layer (type)" in lines[2] and "Output Shape" in lines[2] and "Param #" in lines[2]
    assert any(line.split() == ["0", "(Dense)", "(None,", "128)", "100,480"] for line in lines), text
    assert any(line.split() == ["2", "(BatchNorm1d)", "(None,", "128)", "512"] for line in lines), text
    assert any(line.split() == ["4", "(Dense)", "(None,", "10)", "1,290"] for line in lines), text
    assert "Total params: 102,282 (399.54 KB)" in lines
    assert "Trainable params: 102,026 (398.54 KB)" in lines
    assert "Non-trainable params: 256 (1.00 KB)" in lines


def test_print_indents_nested_blocks():
    model = nn.Sequential(nn.Dense(4, 4), nn.Residual(nn.Sequential(nn.Dense(4, 4), nn.ReLU())))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Dense(4, 4, init='he', dtype=float32)\n"
        "  (1): Residual(\n"
        "    Sequential(\n"
        "      (0): Dense(4, 4, init='he', dtype=float32)\n"
        "      (1): ReLU()\n"
        "    )\n"
        "  )\n"
        ")")


def build_and_train(X, y):
    model = nn.Sequential(nn.Dense(6, 8), nn.Dropout(0.3), nn.ReLU(), nn.Dense(8, 3))
    with skip_if_unimplemented():
        model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    return model


def test_manual_seed_makes_init_dropout_and_shuffling_repeat(rng):
    X, y = task(rng)
    nnfast.manual_seed(123)
    first = build_and_train(X, y)
    nnfast.manual_seed(123)
    second = build_and_train(X, y)
    nnfast.manual_seed(124)
    third = build_and_train(X, y)
    assert first[1].seed == second[1].seed != third[1].seed
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(first[0].weight, third[0].weight)


def test_manual_seed_leaves_explicit_seeds_alone():
    nnfast.manual_seed(1)
    a = nn.Dense(3, 3, seed=5)
    nnfast.manual_seed(2)
    np.testing.assert_array_equal(nn.Dense(3, 3, seed=5).weight, a.weight)
    with pytest.raises(ValueError, match="non-negative integer"):
        nnfast.manual_seed(-1)


@pytest.mark.parametrize("init, std", [("he", np.sqrt(2 / 400)), ("lecun", np.sqrt(1 / 400)),
                                       ("torch", np.sqrt(1 / 400) / np.sqrt(3)),
                                       ("normal", 0.05), ("uniform", 0.05 / np.sqrt(3)),
                                       ("xavier", np.sqrt(2 / 600))])
def test_named_initializers_have_their_spread(init, std):
    weight = nn.Dense(400, 200, init=init, seed=0, dtype=np.float64).weight
    assert abs(weight.mean()) < 0.05 * std * 10
    assert weight.std() == pytest.approx(std, rel=0.03)


def test_zeros_and_callable_initializers():
    assert not nn.Dense(3, 2, init="zeros").weight.any()
    dense = nn.Dense(3, 2, init=lambda shape, rng: np.full(shape, 0.5))
    np.testing.assert_array_equal(dense.weight, np.full((3, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"returned an array of shape \(2, 3\)"):
        nn.Dense(3, 2, init=lambda shape, rng: np.zeros(shape[::-1]))
    with pytest.raises(ValueError, match="or a callable"):
        nn.Dense(3, 2, init="orthogonal")


def test_torch_init_matches_torchs_linear_defaults():
    """init="torch": weight and bias both uniform within +-1/sqrt(fan_in), as torch.nn.Linear."""
    torch = pytest.importorskip("torch")
    ours = nn.Dense(300, 200, init="torch", seed=0, dtype=np.float64)
    theirs = torch.nn.Linear(300, 200)
    bound = 1 / np.sqrt(300)
    for a, b in ((ours.weight, theirs.weight.detach().numpy()), (ours.bias, theirs.bias.detach().numpy())):
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
        assert a.std() == pytest.approx(b.std(), rel=0.1)


def test_a_callable_init_cannot_be_saved_by_name(tmp_path):
    model = nn.Sequential(nn.Dense(3, 2, init=lambda shape, rng: np.ones(shape)))
    with pytest.raises(TypeError, match="callable"):
        model.save(tmp_path / "m.npz")
