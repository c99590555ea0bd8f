// The only source of nnfast._cuda that includes pybind11 (a separate extension, so that the
// CPU extension never depends on CUDA); its argument checks are nnfast._core's, from
// bindings/checks.h. The primitives copy NumPy arrays to the device, run one kernel and copy
// the result back: slow, but the same semantics as the NumPy reference.
// nnfast/backends/cuda_backend.py checks their arguments as the other Python backends do;
// here every array is checked again for dtype, layout and element count, so a direct call
// cannot read or write outside an array. The Trainer reads the op records as nnfast._core's
// does (bindings/op_records.h) and runs the same trainer on the device (cuda/cuda_trainer.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "bindings/op_records.h"
#include "common/activation.h"
#include "cuda/activations.h"
#include "cuda/cuda_trainer.h"
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
  if (!has_dtype<T>(a))
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
    return without_gil([&] {
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
    return without_gil([&] {
      auto dx = to_device(hx, n);
      DeviceBuffer<T> dy(n);
      if (act == Activation::softmax)
        nnfast::gpu::softmax_forward<T>(dy.data(), dx.data(), rows, cols);
      else
        nnfast::gpu::activation_forward<T>(dy.data(), dx.data(), n, act, T(negative_slope));
      dy.download(hy, n);
    });
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
    return without_gil([&] {
      auto dg = to_device(hg, n), dx = to_device(hx, n), dy = to_device(hy, n);
      DeviceBuffer<T> dout(n);
      if (act == Activation::softmax)
        nnfast::gpu::softmax_backward<T>(dout.data(), dg.data(), dy.data(), rows, cols);
      else
        nnfast::gpu::activation_backward<T>(dout.data(), dg.data(), dx.data(), dy.data(), n, act,
                                            T(negative_slope));
      dout.download(hout, n);
    });
  });
}

// The optional weights of a loss primitive (kernels/loss_weights.h), sample (rows) and
// per_class (cols) host arrays or None, checked with the GIL held and copied to the device
// without it.
template <typename T>
struct LossWeightsCopy {
  LossWeightsCopy(const py::object& sample, int64_t rows, const py::object& per_class,
                  int64_t cols)
      : host_sample(optional_data(sample, "sample_weight", rows)),
        host_class(optional_data(per_class, "class_weight", cols)),
        rows(rows),
        cols(cols) {}

  nnfast::LossWeights<T> upload() {
    nnfast::LossWeights<T> w;
    if (host_sample) {
      sample = to_device(host_sample, rows);
      w.sample = sample.data();
    }
    if (host_class) {
      per_class = to_device(host_class, cols);
      w.per_class = per_class.data();
    }
    return w;
  }

  static const T* optional_data(const py::object& obj, const char* name, int64_t n) {
    return obj.is_none() ? nullptr : host_data<T>(obj.cast<py::array>(), name, n);
  }

  const T* host_sample;
  const T* host_class;
  int64_t rows, cols;
  DeviceBuffer<T> sample, per_class;
};

// Sparse labels: int64 (N) in [0, C), checked here too (an index into each row).
const int64_t* labels_data(const py::array& target, const char* name, int64_t N, int64_t C) {
  return cptr<int64_t>(labels(target, name, N, C));
}

// A cross-entropy target, int64 labels (N) or (N, C) rows, checked with the GIL held and
// copied to the device without it.
template <typename T>
struct CrossEntropyTarget {
  CrossEntropyTarget(const py::array& target, int64_t N, int64_t C)
      : host_labels(target.ndim() == 1 ? labels_data(target, "target", N, C) : nullptr),
        host_dense(target.ndim() == 1 ? nullptr : host_data<T>(target, "target", N * C)) {}

  void upload(int64_t N, int64_t C) {
    if (host_labels) labels = to_device(host_labels, N);
    else dense = to_device(host_dense, N * C);
  }

  const int64_t* host_labels;
  const T* host_dense;
  DeviceBuffer<int64_t> labels;  // empty for a dense target
  DeviceBuffer<T> dense;         // empty for labels
};

// logits (N, C), target int64 (N) or (N, C), probs (N, C), sample_weight (N) or None,
// class_weight (C) or None; returns the mean loss
double softmax_cross_entropy_forward(py::array logits, py::array target, py::array probs,
                                     py::object sample_weight, py::object class_weight) {
  if (logits.ndim() != 2) throw py::value_error("logits: expected a 2-D array");
  const int64_t N = logits.shape(0), C = logits.shape(1);
  return dispatch_float(logits, "logits", [&](auto tag) {
    using T = decltype(tag);
    const T* hz = host_data<T>(logits, "logits", N * C);
    T* hp = host_data<T>(probs, "probs", N * C, true);
    CrossEntropyTarget<T> t(target, N, C);
    LossWeightsCopy<T> weights(sample_weight, N, class_weight, C);
    return without_gil([&] {
      auto dz = to_device(hz, N * C);
      t.upload(N, C);
      const nnfast::LossWeights<T> w = weights.upload();
      DeviceBuffer<T> dp(N * C);
      const double loss = nnfast::gpu::softmax_cross_entropy_forward<T>(
          dp.data(), dz.data(), t.labels.data(), t.dense.data(), N, C, w);
      dp.download(hp, N * C);
      return loss;
    });
  });
}

// probs (N, C), target int64 (N) or (N, C), out (N, C), sample_weight (N) or None,
// class_weight (C) or None
void softmax_cross_entropy_backward(py::array probs, py::array target, py::array out,
                                    py::object sample_weight, py::object class_weight) {
  if (probs.ndim() != 2) throw py::value_error("probs: expected a 2-D array");
  const int64_t N = probs.shape(0), C = probs.shape(1);
  dispatch_float(probs, "probs", [&](auto tag) {
    using T = decltype(tag);
    const T* hp = host_data<T>(probs, "probs", N * C);
    T* hout = host_data<T>(out, "out", N * C, true);
    CrossEntropyTarget<T> t(target, N, C);
    LossWeightsCopy<T> weights(sample_weight, N, class_weight, C);
    return without_gil([&] {
      auto dp = to_device(hp, N * C);
      t.upload(N, C);
      const nnfast::LossWeights<T> w = weights.upload();
      DeviceBuffer<T> dout(N * C);
      nnfast::gpu::softmax_cross_entropy_backward<T>(dout.data(), dp.data(), t.labels.data(),
                                                     t.dense.data(), N, C, w);
      dout.download(hout, N * C);
    });
  });
}

enum class ElementLoss { mse, bce, bce_with_logits };

ElementLoss parse_element_loss(const std::string& kind) {
  if (kind == "mse") return ElementLoss::mse;
  if (kind == "bce") return ElementLoss::bce;
  if (kind == "bce_with_logits") return ElementLoss::bce_with_logits;
  throw py::value_error("loss: expected 'mse', 'bce' or 'bce_with_logits', got '" + kind + "'");
}

// The rows of an elementwise loss's prediction: its first axis (each element of a 1-D one).
int64_t loss_rows(const py::array& pred) { return pred.ndim() == 0 ? 1 : pred.shape(0); }

// pred (rows, ...), target (same), sample_weight (rows) or None, pos_weight (the rest) or
// None: the mean loss over all elements
double element_loss_forward(const std::string& kind, py::array pred, py::array target,
                            py::object sample_weight, py::object pos_weight) {
  const ElementLoss loss = parse_element_loss(kind);
  const int64_t n = pred.size(), rows = loss_rows(pred), cols = rows ? n / rows : 0;
  return dispatch_float(pred, "pred", [&](auto tag) {
    using T = decltype(tag);
    const T* hp = host_data<T>(pred, "pred", n);
    const T* ht = host_data<T>(target, "target", n);
    LossWeightsCopy<T> weights(sample_weight, rows, pos_weight, cols);
    return without_gil([&] {
      auto dp = to_device(hp, n), dt = to_device(ht, n);
      const nnfast::LossWeights<T> w = weights.upload();
      if (loss == ElementLoss::mse)
        return nnfast::gpu::mse_forward<T>(dp.data(), dt.data(), rows, cols, w);
      if (loss == ElementLoss::bce)
        return nnfast::gpu::bce_forward<T>(dp.data(), dt.data(), rows, cols, w);
      return nnfast::gpu::bce_with_logits_forward<T>(dp.data(), dt.data(), rows, cols, w);
    });
  });
}

// pred (rows, ...), target, out (same), weights as the forward's: d mean loss / d pred
void element_loss_backward(const std::string& kind, py::array pred, py::array target,
                           py::array out, py::object sample_weight, py::object pos_weight) {
  const ElementLoss loss = parse_element_loss(kind);
  const int64_t n = pred.size(), rows = loss_rows(pred), cols = rows ? n / rows : 0;
  dispatch_float(pred, "pred", [&](auto tag) {
    using T = decltype(tag);
    const T* hp = host_data<T>(pred, "pred", n);
    const T* ht = host_data<T>(target, "target", n);
    T* hout = host_data<T>(out, "out", n, true);
    LossWeightsCopy<T> weights(sample_weight, rows, pos_weight, cols);
    return without_gil([&] {
      auto dp = to_device(hp, n), dt = to_device(ht, n);
      const nnfast::LossWeights<T> w = weights.upload();
      DeviceBuffer<T> dout(n);
      if (loss == ElementLoss::mse)
        nnfast::gpu::mse_backward<T>(dout.data(), dp.data(), dt.data(), rows, cols, w);
      else if (loss == ElementLoss::bce)
        nnfast::gpu::bce_backward<T>(dout.data(), dp.data(), dt.data(), rows, cols, w);
      else
        nnfast::gpu::bce_with_logits_backward<T>(dout.data(), dp.data(), dt.data(), rows, cols, w);
      dout.download(hout, n);
    });
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
    return without_gil([&] {
      auto dg = to_device(hg, N * C);
      DeviceBuffer<T> dout(C);
      if (beta != 0.0) dout.upload(hout, C);
      nnfast::gpu::bias_grad<T>(dout.data(), dg.data(), N, C, T(beta));
      dout.download(hout, C);
    });
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
    return without_gil([&] {
      auto dp = to_device(hp, n), dg = to_device(hg, n);
      DeviceBuffer<T> dv;
      if (hv) dv = to_device(hv, n);
      nnfast::gpu::sgd_update<T>(dp.data(), dg.data(), dv.data(), n, lr, momentum, nesterov,
                                 weight_decay);
      dp.download(hp, n);
      if (hv) dv.download(hv, n);
    });
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
    return without_gil([&] {
      auto dp = to_device(hp, n), dg = to_device(hg, n);
      auto dm = to_device(hm, n), dv = to_device(hv, n);
      nnfast::gpu::adam_update<T>(dp.data(), dg.data(), dm.data(), dv.data(), n, lr, beta1, beta2,
                                  eps, weight_decay, step, decoupled);
      dp.download(hp, n);
      dm.download(hm, n);
      dv.download(hv, n);
    });
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
    return without_gil([&] {
      auto dx = to_device(hx, n);
      DeviceBuffer<T> dout(n);
      DeviceBuffer<uint8_t> dmask(n);
      nnfast::gpu::dropout_forward<T>(dout.data(), dmask.data(), dx.data(), n, threshold,
                                      T(1.0 / (1.0 - p)), seed, offset);
      dout.download(hout, n);
      dmask.download(hmask, n);
    });
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
    return without_gil([&] {
      auto dg = to_device(hg, n);
      auto dmask = to_device(hmask, n);
      DeviceBuffer<T> dout(n);
      nnfast::gpu::dropout_backward<T>(dout.data(), dg.data(), dmask.data(), n,
                                       T(1.0 / (1.0 - p)));
      dout.download(hout, n);
    });
  });
}

// ---------------------------------------------------------------------------------------
// the training step on the device

// A host array the op records or optimizer slots name, and its device copy.
template <typename T>
struct Mirrored {
  py::array host;
  DeviceBuffer<T> device;
};

// The GPU's executor of the op records (nnfast/nn/ops.py), as _core.Trainer is the CPU's:
// the same records, read by the same reader, run by the same trainer on the CUDA kernel
// table. Every array the records and slots name gets a device copy, which upload() and
// download() bring in step with the host array; the dropout counters stay on the host.
// Calls are serialized: a trainer has one set of workspaces.
class TrainerBinding {
 public:
  TrainerBinding(py::list ops, int loss, py::list slots, py::object class_weight)
      : shape_(ops, loss, slots) {
    by_dtype(shape_.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Device<T>& d = device<T>();
      auto place = [&](py::handle obj, const char* name, const Shape& s) {
        py::array a = inout(obj, name, shape_.dtype(), s);
        for (const Mirrored<T>& m : d.arrays)  // an array named twice stays one array
          if (m.host.data() == a.data() && m.host.size() == a.size()) return m.device.data();
        d.arrays.push_back({a, DeviceBuffer<T>(static_cast<size_t>(a.size()))});
        return d.arrays.back().device.data();
      };
      const std::vector<nnfast::OpSpec<T>> specs = read_op_records<T>(ops, slots, shape_.in(),
                                                                      place);
      for (py::handle op : ops) keep_alive_.append(op);  // the dropout counters they hold
      const int64_t out = specs.empty() ? 0 : specs.back().out;
      const T* weights = nullptr;
      if (!class_weight.is_none()) {
        py::array cw = shape_.class_weight(class_weight, out);
        d.class_weight = to_device(cptr<T>(cw), out);
        weights = d.class_weight.data();
      }
      d.trainer = build_trainer([&] {
        return std::make_unique<nnfast::gpu::CudaTrainer<T>>(specs, shape_.loss(), weights);
      });
      shape_.set_out(d.trainer->out_width());
    });
    upload();
  }

  // Copies every named host array to its device copy.
  void upload() {
    by_dtype(shape_.dtype(), [&](auto tag) {
      Device<decltype(tag)>& d = device<decltype(tag)>();
      return without_gil([&] {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& m : d.arrays)
          m.device.upload(cptr<decltype(tag)>(m.host), static_cast<size_t>(m.host.size()));
      });
    });
  }

  // Copies every device copy into its host array.
  void download() {
    by_dtype(shape_.dtype(), [&](auto tag) {
      Device<decltype(tag)>& d = device<decltype(tag)>();
      return without_gil([&] {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& m : d.arrays)
          m.device.download(ptr<decltype(tag)>(m.host), static_cast<size_t>(m.host.size()));
      });
    });
  }

  // X (n, in); targets int64 labels (n) in [0, out) for cross-entropy, else (n, out);
  // sample_weight (n) or None: the data set every step trains on, copied to the device until
  // replaced.
  void set_data(py::handle X_obj, py::handle targets_obj, py::object sample_weight) {
    py::array X = shape_.features(X_obj);
    const int64_t n = X.shape(0);
    if (n == 0) throw py::value_error("X: no rows");
    py::array targets = shape_.targets(targets_obj, n);
    const bool weighted = !sample_weight.is_none();
    py::array weights = weighted ? shape_.sample_weight(sample_weight, n) : py::array();
    const bool sparse = shape_.loss() == nnfast::LossKind::cross_entropy;
    const int64_t in = shape_.in(), out = shape_.out();
    by_dtype(shape_.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Device<T>& d = device<T>();
      const T* x = cptr<T>(X);
      const void* t = targets.data();
      const T* sw = weighted ? cptr<T>(weights) : nullptr;
      return without_gil([&] {
        std::lock_guard<std::mutex> lock(mutex_);
        const T* device_weights = nullptr;
        if (weighted) {
          d.sample_weight.reserve(static_cast<size_t>(n));
          d.sample_weight.upload(sw, static_cast<size_t>(n));
          device_weights = d.sample_weight.data();
        }
        d.X.reserve(static_cast<size_t>(n * in));
        d.X.upload(x, static_cast<size_t>(n * in));
        const void* device_targets;
        if (sparse) {
          d.labels.reserve(static_cast<size_t>(n));
          d.labels.upload(static_cast<const int64_t*>(t), static_cast<size_t>(n));
          device_targets = d.labels.data();
        } else {
          d.targets.reserve(static_cast<size_t>(n * out));
          d.targets.upload(static_cast<const T*>(t), static_cast<size_t>(n * out));
          device_targets = d.targets.data();
        }
        d.trainer->set_data(d.X.data(), n, device_targets, device_weights);
      });
    });
    rows_ = n;
  }

  // idx int64 (batch): rows of the data set; rule: the optimizer's update of this step.
  py::tuple step(py::handle idx_obj, py::handle rule) {
    if (rows_ == 0) throw py::value_error("step: no data on the device; call set_data first");
    py::array idx = shape_.step_rows(idx_obj, rows_);
    const nnfast::UpdateRule r = read_update_rule(rule);
    const int64_t batch = idx.shape(0);
    const int64_t* rows = cptr<int64_t>(idx);
    return step_result(by_dtype(shape_.dtype(), [&](auto tag) {
      Device<decltype(tag)>& d = device<decltype(tag)>();
      return without_gil([&] {
        std::lock_guard<std::mutex> lock(mutex_);
        return d.trainer->step(rows, batch, r);
      });
    }));
  }

  // X (batch, in), out (batch, out) or None: host arrays; eval mode.
  py::array predict(py::handle X_obj, py::handle out_obj) {
    py::array X = shape_.features(X_obj);
    py::array out = shape_.predictions(out_obj, X);
    const int64_t batch = X.shape(0);
    if (batch == 0) return out;
    by_dtype(shape_.dtype(), [&](auto tag) {
      using T = decltype(tag);
      Device<T>& d = device<T>();
      const T* x = cptr<T>(X);
      T* y = ptr<T>(out);
      return without_gil([&] {
        std::lock_guard<std::mutex> lock(mutex_);
        d.trainer->predict(x, batch, y);
      });
    });
    return out;
  }

 private:
  // The trainer of one dtype and the device copies it runs on.
  template <typename T>
  struct Device {
    std::vector<Mirrored<T>> arrays;  // what the records and slots name
    DeviceBuffer<T> X, targets;       // the data set; targets for mse and bce_with_logits
    DeviceBuffer<int64_t> labels;     // for cross-entropy
    DeviceBuffer<T> sample_weight;    // (n) when set_data was given sample weights
    DeviceBuffer<T> class_weight;     // (out) when the loss has per-class weights
    std::unique_ptr<nnfast::gpu::CudaTrainer<T>> trainer;  // after the arrays it points into
  };

  template <typename T>
  Device<T>& device() {
    if constexpr (std::is_same_v<T, float>) return f32_;
    else return f64_;
  }

  TrainerShape shape_;
  int64_t rows_ = 0;
  py::list keep_alive_;
  std::mutex mutex_;
  Device<float> f32_;
  Device<double> f64_;
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
  m.def("synchronize", [] { without_gil([] { nnfast::gpu::synchronize(); }); });

  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("alpha"),
        py::arg("beta"), py::arg("bias"), py::arg("activation"), py::arg("negative_slope"));
  m.def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"), py::arg("out"),
        py::arg("negative_slope"));
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"),
        py::arg("x"), py::arg("y"), py::arg("out"), py::arg("negative_slope"));
  m.def("softmax_cross_entropy_forward", &softmax_cross_entropy_forward, py::arg("logits"),
        py::arg("target"), py::arg("probs"), py::arg("sample_weight"), py::arg("class_weight"));
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("probs"),
        py::arg("target"), py::arg("out"), py::arg("sample_weight"), py::arg("class_weight"));
  m.def("element_loss_forward", &element_loss_forward, py::arg("kind"), py::arg("pred"),
        py::arg("target"), py::arg("sample_weight"), py::arg("pos_weight"));
  m.def("element_loss_backward", &element_loss_backward, py::arg("kind"), py::arg("pred"),
        py::arg("target"), py::arg("out"), py::arg("sample_weight"), py::arg("pos_weight"));
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

  py::class_<TrainerBinding>(m, "Trainer",
                             "The training step on the GPU: the CPU's trainer on CUDA kernels, "
                             "with parameters, optimizer state and data in device memory")
      .def(py::init<py::list, int, py::list, py::object>(), py::arg("ops"), py::arg("loss"),
           py::arg("slots"), py::arg("class_weight") = py::none(),
           "ops: typed op records (nnfast/nn/ops.py); loss: a code of ops.LOSS_CODES; slots: "
           "the optimizer's state per parameter (nnfast/optim/rules.py), empty to predict only; "
           "class_weight: the loss's per-class weights (out,) or None")
      .def("upload", &TrainerBinding::upload, "copy every array the records name to the device")
      .def("download", &TrainerBinding::download, "copy the device's arrays back to the host")
      .def("set_data", &TrainerBinding::set_data, py::arg("X"), py::arg("targets"),
           py::arg("sample_weight") = py::none(),
           "copy the data set the steps train on (with its sample weights) to the device")
      .def("step", &TrainerBinding::step, py::arg("idx"), py::arg("rule"),
           "(loss, correct count or None) of one training step on rows idx of the data set")
      .def("predict", &TrainerBinding::predict, py::arg("X"), py::arg("out") = py::none());
}
