// The only source of nnfast._cuda that includes pybind11 (a separate extension, so that the
// CPU extension never depends on CUDA); its argument checks are nnfast._core's, from
// bindings/checks.h. The primitives copy NumPy arrays to the device, run one kernel and copy
// the result back: slow, but the same semantics as the NumPy reference.
// nnfast/backends/cuda_backend.py checks their arguments as the other Python backends do;
// here every array is checked again for dtype, layout and element count, so a direct call
// cannot read or write outside an array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "common/activation.h"
#include "cuda/activations.h"
#include "cuda/cuda_mlp_trainer.h"
#include "cuda/device_buffer.h"
#include "cuda/dropout.h"
#include "cuda/errors.h"
#include "cuda/gemm.h"
#include "cuda/losses.h"
#include "cuda/optimizers.h"
#include "cuda/reductions.h"

using nnfast::Activation;
using nnfast::gpu::DeviceBuffer;

namespace {

using namespace nnfast::bindings;

// Calls f(T{}) with T the float type of `a`.
template <typename F>
auto dispatch_float(const py::array& a, const char* name, F&& f) {
  return by_dtype(float_dtype(a, name), std::forward<F>(f));
}

// The data of `a` after checking its dtype, layout, element count and writability.
template <typename T>
T* host_data(const py::array& a, const char* name, int64_t count, bool writable = false) {
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(arg(name) + "expected dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  check_layout(a, name);
  if (a.size() != count)
    throw py::value_error(arg(name) + "expected " + std::to_string(count) + " elements, got " +
                          std::to_string(a.size()));
  if (writable && !a.writeable()) throw py::value_error(arg(name) + "array is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

template <typename T>
DeviceBuffer<T> to_device(const T* host, int64_t n) {
  DeviceBuffer<T> buffer(n);
  buffer.upload(host, n);
  return buffer;
}

// ---------------------------------------------------------------------------------------
// primitives

void gemm(py::array a, py::array b, py::array out, bool trans_a, bool trans_b, int64_t M,
          int64_t N, int64_t K, double alpha, double beta, py::object bias_obj,
          py::object activation, double negative_slope) {
  const Activation act = parse_activation(activation, true);
  if (act == Activation::softmax) throw py::value_error("gemm: softmax is not an epilogue");
  dispatch_float(a, "a", [&](auto tag) {
    using T = decltype(tag);
    const T* ha = host_data<T>(a, "a", M * K);
    const T* hb = host_data<T>(b, "b", K * N);
    T* hc = host_data<T>(out, "out", M * N, true);
    const T* hbias = bias_obj.is_none() ? nullptr : host_data<T>(bias_obj.cast<py::array>(), "bias", N);
    py::gil_scoped_release release;
    auto da = to_device(ha, M * K), db = to_device(hb, K * N);
    DeviceBuffer<T> dc(M * N);
    if (beta != 0.0) dc.upload(hc, M * N);
    DeviceBuffer<T> dbias;
    if (hbias) dbias = to_device(hbias, N);
    nnfast::gpu::gemm<T>(trans_a, trans_b, M, N, K, T(alpha), da.data(), trans_a ? M : K,
                         db.data(), trans_b ? K : N, T(beta), dc.data(), N,
                         {dbias.data(), act, T(negative_slope)});
    dc.download(hc, M * N);
  });
}

// x (N, C) for softmax, any shape otherwise
void activation_forward(py::object kind, py::array x, py::array out, double negative_slope) {
  const Activation act = parse_activation(kind, true);
  if (act == Activation::softmax && x.ndim() != 2)
    throw py::value_error("x: softmax needs a 2-D array");
  const int64_t n = x.size();
  dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const T* hx = host_data<T>(x, "x", n);
    T* hy = host_data<T>(out, "out", n, true);
    const int64_t rows = act == Activation::softmax ? x.shape(0) : 0;
    const int64_t cols = act == Activation::softmax ? x.shape(1) : 0;
    py::gil_scoped_release release;
    auto dx = to_device(hx, n);
    DeviceBuffer<T> dy(n);
    if (act == Activation::softmax)
      nnfast::gpu::softmax_forward<T>(dy.data(), dx.data(), rows, cols);
    else
      nnfast::gpu::activation_forward<T>(dy.data(), dx.data(), n, act, T(negative_slope));
    dy.download(hy, n);
  });
}

// grad_out, x, y, out: one shape
void activation_backward(py::object kind, py::array grad_out, py::array x, py::array y,
                         py::array out, double negative_slope) {
  const Activation act = parse_activation(kind, true);
  if (act == Activation::softmax && grad_out.ndim() != 2)
    throw py::value_error("grad_out: softmax needs a 2-D array");
  const int64_t n = grad_out.size();
  dispatch_float(grad_out, "grad_out", [&](auto tag) {
    using T = decltype(tag);
    const T* hg = host_data<T>(grad_out, "grad_out", n);
    const T* hx = host_data<T>(x, "x", n);
    const T* hy = host_data<T>(y, "y", n);
    T* hout = host_data<T>(out, "out", n, true);
    const int64_t rows = act == Activation::softmax ? grad_out.shape(0) : 0;
    const int64_t cols = act == Activation::softmax ? grad_out.shape(1) : 0;
    py::gil_scoped_release release;
    auto dg = to_device(hg, n), dx = to_device(hx, n), dy = to_device(hy, n);
    DeviceBuffer<T> dout(n);
    if (act == Activation::softmax)
      nnfast::gpu::softmax_backward<T>(dout.data(), dg.data(), dy.data(), rows, cols);
    else
      nnfast::gpu::activation_backward<T>(dout.data(), dg.data(), dx.data(), dy.data(), n, act,
                                          T(negative_slope));
    dout.download(hout, n);
  });
}

// Sums the per-row or per-element losses on the device and returns sum / count.
double mean_of(const DeviceBuffer<double>& losses, int64_t n, double count) {
  if (n == 0) return std::nan("");
  DeviceBuffer<double> total(1);
  nnfast::gpu::sum(total.data(), losses.data(), n);
  double host_total = 0.0;
  total.download(&host_total, 1);
  return host_total / count;
}

// Sparse labels: int64 (N) in [0, C), checked here too (an index into each row).
const int64_t* labels_data(const py::array& target, const char* name, int64_t N, int64_t C) {
  return cptr<int64_t>(labels(target, name, N, C));
}

// logits (N, C), target int64 (N) or (N, C), probs (N, C); returns the mean loss
double softmax_cross_entropy_forward(py::array logits, py::array target, py::array probs) {
  if (logits.ndim() != 2) throw py::value_error("logits: expected a 2-D array");
  const int64_t N = logits.shape(0), C = logits.shape(1);
  const bool sparse = target.ndim() == 1;
  return dispatch_float(logits, "logits", [&](auto tag) {
    using T = decltype(tag);
    const T* hz = host_data<T>(logits, "logits", N * C);
    T* hp = host_data<T>(probs, "probs", N * C, true);
    const int64_t* hl = sparse ? labels_data(target, "target", N, C) : nullptr;
    const T* ht = sparse ? nullptr : host_data<T>(target, "target", N * C);
    py::gil_scoped_release release;
    auto dz = to_device(hz, N * C);
    DeviceBuffer<int64_t> dl;
    DeviceBuffer<T> dt;
    if (sparse) dl = to_device(hl, N);
    else dt = to_device(ht, N * C);
    DeviceBuffer<T> dp(N * C);
    DeviceBuffer<double> row_loss(N);
    nnfast::gpu::softmax_cross_entropy_forward<T>(dp.data(), row_loss.data(), dz.data(),
                                                  dl.data(), dt.data(), N, C);
    dp.download(hp, N * C);
    return mean_of(row_loss, N, static_cast<double>(N));
  });
}

// probs (N, C), target int64 (N) or (N, C), out (N, C)
void softmax_cross_entropy_backward(py::array probs, py::array target, py::array out) {
  if (probs.ndim() != 2) throw py::value_error("probs: expected a 2-D array");
  const int64_t N = probs.shape(0), C = probs.shape(1);
  const bool sparse = target.ndim() == 1;
  dispatch_float(probs, "probs", [&](auto tag) {
    using T = decltype(tag);
    const T* hp = host_data<T>(probs, "probs", N * C);
    T* hout = host_data<T>(out, "out", N * C, true);
    const int64_t* hl = sparse ? labels_data(target, "target", N, C) : nullptr;
    const T* ht = sparse ? nullptr : host_data<T>(target, "target", N * C);
    py::gil_scoped_release release;
    auto dp = to_device(hp, N * C);
    DeviceBuffer<int64_t> dl;
    DeviceBuffer<T> dt;
    if (sparse) dl = to_device(hl, N);
    else dt = to_device(ht, N * C);
    DeviceBuffer<T> dout(N * C);
    nnfast::gpu::softmax_cross_entropy_backward<T>(dout.data(), dp.data(), dl.data(), dt.data(),
                                                   N, C);
    dout.download(hout, N * C);
  });
}

enum class ElementLoss { mse, bce, bce_with_logits };

ElementLoss parse_element_loss(const std::string& kind) {
  if (kind == "mse") return ElementLoss::mse;
  if (kind == "bce") return ElementLoss::bce;
  if (kind == "bce_with_logits") return ElementLoss::bce_with_logits;
  throw py::value_error("loss: expected 'mse', 'bce' or 'bce_with_logits', got '" + kind + "'");
}

// pred (...), target (...): the mean loss over all elements
double element_loss_forward(const std::string& kind, py::array pred, py::array target) {
  const ElementLoss loss = parse_element_loss(kind);
  const int64_t n = pred.size();
  return dispatch_float(pred, "pred", [&](auto tag) {
    using T = decltype(tag);
    const T* hp = host_data<T>(pred, "pred", n);
    const T* ht = host_data<T>(target, "target", n);
    py::gil_scoped_release release;
    auto dp = to_device(hp, n), dt = to_device(ht, n);
    DeviceBuffer<double> elem(n);
    if (loss == ElementLoss::mse) nnfast::gpu::mse_forward<T>(elem.data(), dp.data(), dt.data(), n);
    else if (loss == ElementLoss::bce) nnfast::gpu::bce_forward<T>(elem.data(), dp.data(), dt.data(), n);
    else nnfast::gpu::bce_with_logits_forward<T>(elem.data(), dp.data(), dt.data(), n);
    return mean_of(elem, n, static_cast<double>(n));
  });
}

// pred (...), target (...), out (...): d mean loss / d pred
void element_loss_backward(const std::string& kind, py::array pred, py::array target,
                           py::array out) {
  const ElementLoss loss = parse_element_loss(kind);
  const int64_t n = pred.size();
  dispatch_float(pred, "pred", [&](auto tag) {
    using T = decltype(tag);
    const T* hp = host_data<T>(pred, "pred", n);
    const T* ht = host_data<T>(target, "target", n);
    T* hout = host_data<T>(out, "out", n, true);
    py::gil_scoped_release release;
    auto dp = to_device(hp, n), dt = to_device(ht, n);
    DeviceBuffer<T> dout(n);
    if (loss == ElementLoss::mse) nnfast::gpu::mse_backward<T>(dout.data(), dp.data(), dt.data(), n);
    else if (loss == ElementLoss::bce) nnfast::gpu::bce_backward<T>(dout.data(), dp.data(), dt.data(), n);
    else nnfast::gpu::bce_with_logits_backward<T>(dout.data(), dp.data(), dt.data(), n);
    dout.download(hout, n);
  });
}

// grad_out (N, C), out (C)
void bias_grad(py::array grad_out, py::array out, double beta) {
  if (grad_out.ndim() != 2) throw py::value_error("grad_out: expected a 2-D array");
  const int64_t N = grad_out.shape(0), C = grad_out.shape(1);
  dispatch_float(grad_out, "grad_out", [&](auto tag) {
    using T = decltype(tag);
    const T* hg = host_data<T>(grad_out, "grad_out", N * C);
    T* hout = host_data<T>(out, "out", C, true);
    py::gil_scoped_release release;
    auto dg = to_device(hg, N * C);
    DeviceBuffer<T> dout(C);
    if (beta != 0.0) dout.upload(hout, C);
    nnfast::gpu::bias_grad<T>(dout.data(), dg.data(), N, C, T(beta));
    dout.download(hout, C);
  });
}

// param, grad, velocity (or None when momentum is 0): one shape
void sgd_update(py::array param, py::array grad, py::object velocity_obj, double lr,
                double momentum, bool nesterov, double weight_decay) {
  const int64_t n = param.size();
  dispatch_float(param, "param", [&](auto tag) {
    using T = decltype(tag);
    T* hp = host_data<T>(param, "param", n, true);
    const T* hg = host_data<T>(grad, "grad", n);
    T* hv = momentum != 0.0 ? host_data<T>(velocity_obj.cast<py::array>(), "velocity", n, true)
                            : nullptr;
    py::gil_scoped_release release;
    auto dp = to_device(hp, n), dg = to_device(hg, n);
    DeviceBuffer<T> dv;
    if (hv) dv = to_device(hv, n);
    nnfast::gpu::sgd_update<T>(dp.data(), dg.data(), dv.data(), n, lr, momentum, nesterov,
                               weight_decay);
    dp.download(hp, n);
    if (hv) dv.download(hv, n);
  });
}

// param, grad, m, v: one shape
void adam_update(py::array param, py::array grad, py::array m, py::array v, double lr,
                 double beta1, double beta2, double eps, double weight_decay, int64_t step,
                 bool decoupled) {
  if (step < 1) throw py::value_error("step: Adam steps count from 1");
  const int64_t n = param.size();
  dispatch_float(param, "param", [&](auto tag) {
    using T = decltype(tag);
    T* hp = host_data<T>(param, "param", n, true);
    const T* hg = host_data<T>(grad, "grad", n);
    T* hm = host_data<T>(m, "m", n, true);
    T* hv = host_data<T>(v, "v", n, true);
    py::gil_scoped_release release;
    auto dp = to_device(hp, n), dg = to_device(hg, n), dm = to_device(hm, n), dv = to_device(hv, n);
    nnfast::gpu::adam_update<T>(dp.data(), dg.data(), dm.data(), dv.data(), n, lr, beta1, beta2,
                                eps, weight_decay, step, decoupled);
    dp.download(hp, n);
    dm.download(hm, n);
    dv.download(hv, n);
  });
}

// x (...), out (...), mask uint8 (...); p in [0, 1), seed and offset any uint64
void dropout_forward(py::array x, py::array out, py::array mask, double p, uint64_t seed,
                     uint64_t offset) {
  dropout_probability(p);
  const int64_t n = x.size();
  // floor(p 2^32) < 2^32 for p < 1, as the reference's threshold.
  const uint64_t threshold = static_cast<uint64_t>(p * 4294967296.0);
  dispatch_float(x, "x", [&](auto tag) {
    using T = decltype(tag);
    const T* hx = host_data<T>(x, "x", n);
    T* hout = host_data<T>(out, "out", n, true);
    uint8_t* hmask = host_data<uint8_t>(mask, "mask", n, true);
    py::gil_scoped_release release;
    auto dx = to_device(hx, n);
    DeviceBuffer<T> dout(n);
    DeviceBuffer<uint8_t> dmask(n);
    nnfast::gpu::dropout_forward<T>(dout.data(), dmask.data(), dx.data(), n, threshold,
                                    T(1.0 / (1.0 - p)), seed, offset);
    dout.download(hout, n);
    dmask.download(hmask, n);
  });
}

// grad_out (...), mask uint8 (...), out (...)
void dropout_backward(py::array grad_out, py::array mask, py::array out, double p) {
  dropout_probability(p);
  const int64_t n = grad_out.size();
  dispatch_float(grad_out, "grad_out", [&](auto tag) {
    using T = decltype(tag);
    const T* hg = host_data<T>(grad_out, "grad_out", n);
    const uint8_t* hmask = host_data<uint8_t>(mask, "mask", n);
    T* hout = host_data<T>(out, "out", n, true);
    py::gil_scoped_release release;
    auto dg = to_device(hg, n);
    auto dmask = to_device(hmask, n);
    DeviceBuffer<T> dout(n);
    nnfast::gpu::dropout_backward<T>(dout.data(), dg.data(), dmask.data(), n, T(1.0 / (1.0 - p)));
    dout.download(hout, n);
  });
}

// ---------------------------------------------------------------------------------------
// the fused training step on the device

using nnfast::gpu::LayerArray;

constexpr std::pair<const char*, LayerArray> kLayerArrays[] = {
    {"weight", LayerArray::weight},
    {"bias", LayerArray::bias},
    {"weight_grad", LayerArray::weight_grad},
    {"bias_grad", LayerArray::bias_grad},
    {"weight_state0", LayerArray::weight_state0},
    {"weight_state1", LayerArray::weight_state1},
    {"bias_state0", LayerArray::bias_state0},
    {"bias_state1", LayerArray::bias_state1},
};

// Layers are given as nnfast/fused.py builds them for the CPU trainer: a list of dicts
// with "weight" (in, out), "bias" (out,), "activation", "negative_slope" and, optionally,
// gradients and optimizer state under the names of kLayerArrays. Calls are serialized.
class CudaMlpTrainerBinding {
  // Helpers first: their deduced return types must be known where the methods use them.
  // Calls f(trainer) for the trainer of this model's dtype.
  template <typename F>
  auto with_trainer(F&& f) {
    return float32_ ? f(f32_) : f(f64_);
  }

  void transfer(py::list layers, bool to_device) {
    with_trainer([&](auto& t) {
      using T = typename std::remove_reference_t<decltype(*t)>::value_type;
      if (static_cast<size_t>(py::len(layers)) != t->layers().size())
        throw py::value_error("layers: expected " + std::to_string(t->layers().size()) +
                              " layers, got " + std::to_string(py::len(layers)));
      std::vector<std::pair<size_t, LayerArray>> which;
      std::vector<T*> host;
      for (size_t l = 0; l < t->layers().size(); ++l) {
        py::dict spec = layers[l].cast<py::dict>();
        for (const auto& [name, array] : kLayerArrays) {
          if (!spec.contains(name) || spec[name].is_none()) continue;
          host.push_back(host_data<T>(py::cast<py::array>(spec[name]), name, t->size(l, array),
                                      !to_device));
          which.emplace_back(l, array);
        }
      }
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      for (size_t i = 0; i < which.size(); ++i) {
        if (to_device) t->upload(which[i].first, which[i].second, host[i]);
        else t->download(which[i].first, which[i].second, host[i]);
      }
    });
  }

 public:
  explicit CudaMlpTrainerBinding(py::list layers) {
    if (layers.empty()) throw py::value_error("layers: at least one Dense layer is needed");
    std::vector<nnfast::gpu::LayerShape> shapes;
    for (py::handle h : layers) {
      py::dict spec = h.cast<py::dict>();
      py::array w = spec["weight"].cast<py::array>();
      if (w.ndim() != 2) throw py::value_error("weight: expected a 2-D array");
      nnfast::gpu::LayerShape s;
      s.in = w.shape(0);
      s.out = w.shape(1);
      if (!shapes.empty() && shapes.back().out != s.in)
        throw py::value_error("weight: layer widths do not chain (" +
                              std::to_string(shapes.back().out) + " outputs into " +
                              std::to_string(s.in) + " inputs)");
      s.activation = parse_activation(spec["activation"], true);
      if (s.activation == Activation::softmax)
        throw py::value_error("activation: softmax is not fusable (use cross_entropy on logits)");
      s.negative_slope = spec["negative_slope"].cast<double>();
      shapes.push_back(s);
    }
    dispatch_float(layers[0].cast<py::dict>()["weight"].cast<py::array>(), "weight", [&](auto tag) {
      using T = decltype(tag);
      py::gil_scoped_release release;
      auto trainer = std::make_unique<nnfast::gpu::CudaMlpTrainer<T>>(shapes);
      if constexpr (std::is_same_v<T, float>) f32_ = std::move(trainer);
      else f64_ = std::move(trainer);
      float32_ = std::is_same_v<T, float>;
    });
    upload(layers);
  }

  // Copies every array present in `layers` to the device.
  void upload(py::list layers) { transfer(layers, true); }
  // Copies the device's arrays into every array present in `layers`.
  void download(py::list layers) { transfer(layers, false); }

  // X (n, in), targets int64 (n) for cross-entropy, else (n, out)
  void set_data(py::array X, py::array targets, const std::string& loss_name) {
    nnfast::LossKind loss;
    if (loss_name == "cross_entropy") loss = nnfast::LossKind::cross_entropy;
    else if (loss_name == "mse") loss = nnfast::LossKind::mse;
    else if (loss_name == "bce_with_logits") loss = nnfast::LossKind::bce_with_logits;
    else throw py::value_error("loss: the CUDA trainer supports cross_entropy, mse and "
                               "bce_with_logits, not '" + loss_name + "'");
    with_trainer([&](auto& t) {
      using T = typename std::remove_reference_t<decltype(*t)>::value_type;
      if (X.ndim() != 2) throw py::value_error("X: expected a 2-D array");
      const int64_t n = X.shape(0), in = t->layers().front().in, out = t->layers().back().out;
      if (X.shape(1) != in)
        throw py::value_error("X: expected " + std::to_string(in) + " features, got " +
                              std::to_string(X.shape(1)));
      if (n == 0) throw py::value_error("X: no rows");
      const T* hx = host_data<T>(X, "X", n * in);
      const void* ht;
      if (loss == nnfast::LossKind::cross_entropy) {
        if (!targets.dtype().is(py::dtype::of<int64_t>()))
          throw py::type_error("targets: cross-entropy labels must be int64, got dtype " +
                               std::string(py::str(targets.dtype())));
        ht = labels_data(targets, "targets", n, out);
      } else {
        ht = host_data<T>(targets, "targets", n * out);
      }
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      t->set_data(hx, n, ht, loss);
    });
  }

  py::tuple step(py::array idx, const std::string& kind, double lr, double momentum,
                 bool nesterov, double weight_decay, double beta1, double beta2, double eps,
                 bool decoupled, int64_t step_count) {
    if (!idx.dtype().is(py::dtype::of<int64_t>()))
      throw py::type_error("idx: expected int64 row indices, got dtype " +
                           std::string(py::str(idx.dtype())));
    if (idx.ndim() != 1) throw py::value_error("idx: expected a 1-D array");
    const int64_t batch = idx.shape(0);
    if (batch == 0) throw py::value_error("idx: empty batch");
    const int64_t* rows = host_data<int64_t>(idx, "idx", batch);
    nnfast::OptimizerConfig opt;
    if (kind == "adam") opt.kind = nnfast::OptimizerKind::adam;
    else if (kind == "sgd") opt.kind = nnfast::OptimizerKind::sgd;
    else throw py::value_error("optimizer: expected 'sgd' or 'adam', got '" + kind + "'");
    if (step_count < 1) throw py::value_error("step: counts from 1");
    opt.lr = lr;
    opt.momentum = momentum;
    opt.nesterov = nesterov;
    opt.weight_decay = weight_decay;
    opt.beta1 = beta1;
    opt.beta2 = beta2;
    opt.eps = eps;
    opt.decoupled = decoupled;
    opt.step = step_count;
    nnfast::StepResult r;
    with_trainer([&](auto& t) {
      const int64_t n_total = t->data_rows();
      if (n_total == 0) throw py::value_error("step: no data on the device; call set_data first");
      for (int64_t i = 0; i < batch; ++i)
        if (rows[i] < 0 || rows[i] >= n_total)
          throw py::value_error("idx: row " + std::to_string(rows[i]) + " outside [0, " +
                                std::to_string(n_total) + ")");
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      r = t->step(rows, batch, opt);
    });
    return py::make_tuple(r.loss, r.correct < 0 ? py::object(py::none()) : py::int_(r.correct));
  }

  // X (batch, in), out (batch, out_last) or None
  py::array predict(py::array X, py::object out_obj) {
    return with_trainer([&](auto& t) -> py::array {
      using T = typename std::remove_reference_t<decltype(*t)>::value_type;
      if (X.ndim() != 2) throw py::value_error("X: expected a 2-D array");
      const int64_t batch = X.shape(0), in = t->layers().front().in, width = t->layers().back().out;
      if (X.shape(1) != in)
        throw py::value_error("X: expected " + std::to_string(in) + " features, got " +
                              std::to_string(X.shape(1)));
      py::array out = out_obj.is_none() ? py::array(py::array_t<T>({batch, width}))
                                        : out_obj.cast<py::array>();
      if (out.ndim() != 2 || out.shape(0) != batch || out.shape(1) != width)
        throw py::value_error("out: expected shape (" + std::to_string(batch) + ", " +
                              std::to_string(width) + ")");
      const T* hx = host_data<T>(X, "X", batch * in);
      T* hout = host_data<T>(out, "out", batch * width, true);
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      t->predict(hx, batch, hout);
      return out;
    });
  }

 private:
  bool float32_ = true;
  std::mutex mutex_;
  std::unique_ptr<nnfast::gpu::CudaMlpTrainer<float>> f32_;
  std::unique_ptr<nnfast::gpu::CudaMlpTrainer<double>> f64_;
};

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "nnfast CUDA kernels (float32 and float64); see nnfast.backends.cuda_backend";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const nnfast::gpu::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    }
  });

  m.def("device_count", &nnfast::gpu::device_count,
        "CUDA devices visible; RuntimeError with CUDA's reason when there is no usable one");
  m.def("runtime_version", &nnfast::gpu::runtime_version,
        "the CUDA runtime linked in, as 1000 * major + 10 * minor");
  m.def("driver_version", &nnfast::gpu::driver_version,
        "the newest CUDA version the installed driver supports; 0 without a driver");
  m.def("device_name", &nnfast::gpu::device_name);
  m.def("memory_info", [] {
    size_t free_bytes = 0, total_bytes = 0;
    nnfast::gpu::memory_info(&free_bytes, &total_bytes);
    return py::make_tuple(free_bytes, total_bytes);
  }, "(free, total) bytes of device memory");
  m.def("synchronize", &nnfast::gpu::synchronize, py::call_guard<py::gil_scoped_release>());

  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("alpha"),
        py::arg("beta"), py::arg("bias"), py::arg("activation"), py::arg("negative_slope"));
  m.def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"), py::arg("out"),
        py::arg("negative_slope"));
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"),
        py::arg("x"), py::arg("y"), py::arg("out"), py::arg("negative_slope"));
  m.def("softmax_cross_entropy_forward", &softmax_cross_entropy_forward, py::arg("logits"),
        py::arg("target"), py::arg("probs"));
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("probs"),
        py::arg("target"), py::arg("out"));
  m.def("element_loss_forward", &element_loss_forward, py::arg("kind"), py::arg("pred"),
        py::arg("target"));
  m.def("element_loss_backward", &element_loss_backward, py::arg("kind"), py::arg("pred"),
        py::arg("target"), py::arg("out"));
  m.def("bias_grad", &bias_grad, py::arg("grad_out"), py::arg("out"), py::arg("beta"));
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"), py::arg("velocity"),
        py::arg("lr"), py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"));
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("step"), py::arg("decoupled"));
  m.def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("out"), py::arg("mask"),
        py::arg("p"), py::arg("seed"), py::arg("offset"));
  m.def("dropout_backward", &dropout_backward, py::arg("grad_out"), py::arg("mask"),
        py::arg("out"), py::arg("p"));

  py::class_<CudaMlpTrainerBinding>(
      m, "MlpTrainer", "The fused training step on the GPU: parameters, optimizer state and data on the device")
      .def(py::init<py::list>(), py::arg("layers"))
      .def("upload", &CudaMlpTrainerBinding::upload, py::arg("layers"))
      .def("download", &CudaMlpTrainerBinding::download, py::arg("layers"))
      .def("set_data", &CudaMlpTrainerBinding::set_data, py::arg("X"), py::arg("targets"),
           py::arg("loss"))
      .def("step", &CudaMlpTrainerBinding::step, py::arg("idx"), py::kw_only(), py::arg("kind"),
           py::arg("lr"), py::arg("momentum") = 0.0, py::arg("nesterov") = false,
           py::arg("weight_decay") = 0.0, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
           py::arg("eps") = 1e-8, py::arg("decoupled") = false, py::arg("step") = 1)
      .def("predict", &CudaMlpTrainerBinding::predict, py::arg("X"), py::arg("out") = py::none());
}
