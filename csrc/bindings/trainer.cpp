// The fused training step: one C++ call per batch (nnfast/fused.py drives it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "bindings/register.h"
#include "kernels/dropout.h"
#include "train/mlp_trainer.h"

namespace nnfast::bindings {

namespace {

// Row indices into X: int64, shape (n,), every value in [0, rows).
py::array row_indices(py::handle obj, const char* name, int64_t rows) {
  py::array a = ndarray(obj, name);
  if (!a.dtype().is(py::dtype::of<int64_t>()))
    throw py::type_error(arg(name) + "expected int64 row indices, got dtype " +
                         std::string(py::str(a.dtype())));
  check_ndim(a, name, 1);
  check_layout(a, name);
  if (a.shape(0) == 0) throw py::value_error(arg(name) + "empty batch");
  const int64_t* idx = static_cast<const int64_t*>(a.data());
  for (py::ssize_t i = 0; i < a.shape(0); ++i)
    if (idx[i] < 0 || idx[i] >= rows)
      throw py::value_error(arg(name) + "row " + std::to_string(idx[i]) + " outside [0, " +
                            std::to_string(rows) + ")");
  return a;
}

// The layer list MlpTrainer takes (nnfast/fused.py builds it), one dict per op:
//   {"op": "dense", "weight", "bias", "weight_grad", "bias_grad", "activation",
//    "negative_slope", "l1", "l2"}  (activation fused into the GEMM epilogue)
//   {"op": "activation", "activation", "negative_slope"}
//   {"op": "dropout", "p", "seed", "offset": uint64 (1,), advanced in place}
//   {"op": "batchnorm", "gamma", "beta", "gamma_grad", "beta_grad" (all None when not affine),
//    "running_mean", "running_var", "momentum", "eps"}
// plus optimizer state per parameter, "<name>_state0" (SGD velocity, Adam m) and
// "<name>_state1" (Adam v), absent or None where the optimizer keeps none.
// Holds the trainer and a reference to every array it writes into, so Python cannot free
// them while it lives. Calls are serialized: a trainer has one set of workspaces.
class MlpTrainerBinding {
 public:
  MlpTrainerBinding(py::list layers, const std::string& loss) {
    if (loss == "cross_entropy") loss_ = nnfast::LossKind::cross_entropy;
    else if (loss == "mse") loss_ = nnfast::LossKind::mse;
    else if (loss == "bce_with_logits") loss_ = nnfast::LossKind::bce_with_logits;
    else throw py::value_error("loss: the fused step supports cross_entropy, mse and "
                               "bce_with_logits, not '" + loss + "'");
    const py::dict first = first_sized_op(layers);
    const bool dense = op_kind(first) == "dense";
    py::array sized = ndarray(first[dense ? "weight" : "running_mean"],
                              dense ? "weight" : "running_mean");
    dtype_ = float_dtype(sized, dense ? "weight" : "running_mean");
    in_ = sized.ndim() > 0 ? sized.shape(0) : 0;
    by_dtype(dtype_, [&](auto tag) { build<decltype(tag)>(layers); });
  }

  py::tuple step(py::handle X_obj, py::handle targets_obj, py::handle idx_obj,
                 const std::string& kind, double lr, double momentum, bool nesterov,
                 double weight_decay, double beta1, double beta2, double eps, bool decoupled,
                 int64_t step_count, std::optional<double> clipnorm,
                 std::optional<double> clipvalue) {
    py::array X = features(X_obj);
    const int64_t rows = X.shape(0);
    py::array idx = row_indices(idx_obj, "idx", rows);
    const int64_t batch = idx.shape(0);
    const int64_t* rows_ptr = cptr<int64_t>(idx);
    if (has_batchnorm_ && batch < 2)
      throw py::value_error("idx: batch norm in training mode needs at least 2 samples per "
                            "batch, got a batch of " + std::to_string(batch));
    py::array targets;
    if (loss_ == nnfast::LossKind::cross_entropy) {
      targets = ndarray(targets_obj, "targets");
      if (!targets.dtype().is(py::dtype::of<int64_t>()))
        throw py::type_error("targets: cross-entropy labels must be int64, got dtype " +
                             std::string(py::str(targets.dtype())));
      check_shape(targets, "targets", {rows});
      check_layout(targets, "targets");
      const int64_t* y = cptr<int64_t>(targets);
      for (int64_t i = 0; i < batch; ++i)  // only this batch's labels are read
        if (y[rows_ptr[i]] < 0 || y[rows_ptr[i]] >= out_)
          throw py::value_error("targets: label " + std::to_string(y[rows_ptr[i]]) +
                                " outside [0, " + std::to_string(out_) + ")");
    } else {
      targets = input_like(targets_obj, "targets", dtype_, {rows, out_});
    }
    nnfast::OptimizerConfig opt;
    if (kind == "adam") opt.kind = nnfast::OptimizerKind::adam;
    else if (kind == "sgd") opt.kind = nnfast::OptimizerKind::sgd;
    else throw py::value_error("kind: expected 'sgd' or 'adam', got '" + kind + "'");
    if (opt.kind == nnfast::OptimizerKind::adam && !(has_state0_ && has_state1_))
      throw py::value_error("kind: Adam needs m and v state arrays for every parameter");
    if (opt.kind == nnfast::OptimizerKind::sgd && momentum != 0.0 && !has_state0_)
      throw py::value_error("momentum: SGD momentum needs a velocity array for every parameter");
    if (step_count < 1) throw py::value_error("step: counts from 1");
    if (clipnorm && clipvalue) throw py::value_error("clipnorm, clipvalue: give one, not both");
    check_clip_limit(clipnorm, "clipnorm");
    check_clip_limit(clipvalue, "clipvalue");
    opt.lr = lr;
    opt.momentum = momentum;
    opt.nesterov = nesterov;
    opt.weight_decay = weight_decay;
    opt.beta1 = beta1;
    opt.beta2 = beta2;
    opt.eps = eps;
    opt.decoupled = decoupled;
    opt.step = step_count;
    opt.clipnorm = clipnorm.value_or(0.0);
    opt.clipvalue = clipvalue.value_or(0.0);

    const void* x = X.data();
    const void* t = targets.data();
    const nnfast::StepResult r = without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      return by_dtype(dtype_, [&](auto tag) {
        using T = decltype(tag);
        return trainer<T>()->step(static_cast<const T*>(x), t, rows_ptr, batch, opt);
      });
    });
    return py::make_tuple(r.loss, r.correct < 0 ? py::object(py::none()) : py::int_(r.correct));
  }

  py::array predict(py::handle X_obj, py::handle out_obj) {
    py::array X = features(X_obj);
    const int64_t batch = X.shape(0);
    py::array out = output(out_obj, "out", dtype_, {batch, out_});
    check_no_overlap(out, "out", X, "X", false);
    if (batch == 0) return out;
    const void* x = X.data();
    void* y = out.mutable_data();
    without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      by_dtype(dtype_, [&](auto tag) {
        using T = decltype(tag);
        trainer<T>()->predict(static_cast<const T*>(x), batch, static_cast<T*>(y));
      });
    });
    return out;
  }

 private:
  static void check_clip_limit(const std::optional<double>& limit, const char* name) {
    if (limit && !(*limit > 0.0))
      throw py::value_error(arg(name) + "must be positive, got " +
                            std::string(py::repr(py::float_(*limit))));
  }

  static std::string op_kind(py::dict spec) {
    if (!spec.contains("op")) throw py::value_error("layers: every op needs an 'op' entry");
    return py::str(spec["op"]);
  }

  // The first op whose arrays fix the model's input width and dtype (a Dense or batch norm).
  static py::dict first_sized_op(py::list layers) {
    for (py::handle h : layers) {
      py::dict spec = h.cast<py::dict>();
      const std::string kind = op_kind(spec);
      if (kind == "dense" || kind == "batchnorm") return spec;
    }
    throw py::value_error("layers: at least one Dense or BatchNorm1d layer is needed");
  }

  py::array features(py::handle obj) {
    py::array X = ndarray(obj, "X");
    check_dtype(X, "X", dtype_);
    check_ndim(X, "X", 2);
    check_layout(X, "X");
    if (X.shape(1) != in_)
      throw py::value_error("X: expected " + std::to_string(in_) + " features, got shape " +
                            shape_str(shape_of(X)));
    return X;
  }

  template <typename T>
  nnfast::MlpTrainer<T>* trainer() {
    if constexpr (std::is_same_v<T, float>) return f32_.get();
    else return f64_.get();
  }

  static bool has(py::dict spec, const std::string& key) {
    return spec.contains(key) && !spec[key.c_str()].is_none();
  }

  static double number(py::dict spec, const char* key, double fallback) {
    return has(spec, key) ? spec[key].cast<double>() : fallback;
  }

  // An array the trainer updates in place; null where absent and optional.
  template <typename T>
  T* array_arg(py::dict spec, const std::string& key, const Shape& shape, bool optional) {
    if (!has(spec, key)) {
      if (!optional) throw py::value_error(key + ": missing");
      return nullptr;
    }
    py::array a = inout(spec[key.c_str()], key.c_str(), dtype_, shape);
    keep_alive_.append(a);
    return ptr<T>(a);
  }

  // The parameter `name` with its gradient "<name>_grad" and optimizer state.
  template <typename T>
  nnfast::Param<T> param(py::dict spec, const std::string& name, const Shape& shape) {
    nnfast::Param<T> p;
    p.value = array_arg<T>(spec, name, shape, false);
    p.grad = array_arg<T>(spec, name + "_grad", shape, false);
    p.state0 = array_arg<T>(spec, name + "_state0", shape, true);
    p.state1 = array_arg<T>(spec, name + "_state1", shape, true);
    p.size = 1;
    for (py::ssize_t d : shape) p.size *= d;
    has_state0_ = has_state0_ && p.state0;
    has_state1_ = has_state1_ && p.state1;
    return p;
  }

  template <typename T>
  std::unique_ptr<nnfast::TrainOp<T>> dense_op(py::dict spec, int64_t width) {
    py::array w = ndarray(spec["weight"], "weight");
    check_ndim(w, "weight", 2);
    const int64_t in = w.shape(0), out = w.shape(1);
    if (in != width)
      throw py::value_error("weight: layer widths do not chain (" + std::to_string(width) +
                            " outputs into " + std::to_string(in) + " inputs)");
    const Activation act = parse_activation(spec["activation"], false);
    const T slope = static_cast<T>(number(spec, "negative_slope", 0.01));
    nnfast::Param<T> weight = param<T>(spec, "weight", {in, out});
    weight.l1 = number(spec, "l1", 0.0);
    weight.l2 = number(spec, "l2", 0.0);
    if (!(weight.l1 >= 0.0 && weight.l2 >= 0.0))
      throw py::value_error("l1, l2: penalty coefficients must be >= 0");
    const nnfast::Param<T> bias = param<T>(spec, "bias", {out});
    return std::make_unique<nnfast::DenseOp<T>>(in, out, act, slope, weight, bias);
  }

  template <typename T>
  std::unique_ptr<nnfast::TrainOp<T>> dropout_op(py::dict spec, int64_t width) {
    const double p = spec["p"].cast<double>();
    const nnfast::DropoutOptions opt = dropout_options(p, uint64_value(spec["seed"], "seed"), 0);
    py::array offset = ndarray(spec["offset"], "offset");
    if (!offset.dtype().is(py::dtype::of<uint64_t>()))
      throw py::type_error("offset: expected a uint64 counter array, got dtype " +
                           std::string(py::str(offset.dtype())));
    check_shape(offset, "offset", {1});
    check_layout(offset, "offset");
    if (!offset.writeable()) throw py::value_error("offset: array is read-only");
    keep_alive_.append(offset);
    return std::make_unique<nnfast::DropoutOp<T>>(width, opt, p != 0.0, ptr<uint64_t>(offset));
  }

  template <typename T>
  std::unique_ptr<nnfast::TrainOp<T>> batchnorm_op(py::dict spec, int64_t width) {
    T* running_mean = array_arg<T>(spec, "running_mean", {width}, false);
    T* running_var = array_arg<T>(spec, "running_var", {width}, false);
    nnfast::Param<T> gamma, beta;
    if (has(spec, "gamma")) {
      gamma = param<T>(spec, "gamma", {width});
      beta = param<T>(spec, "beta", {width});
    }
    has_batchnorm_ = true;
    return std::make_unique<nnfast::BatchNormOp<T>>(width, number(spec, "momentum", 0.1),
                                                    number(spec, "eps", 1e-5), gamma, beta,
                                                    running_mean, running_var);
  }

  template <typename T>
  void build(py::list layers) {
    std::vector<std::unique_ptr<nnfast::TrainOp<T>>> ops;
    has_state0_ = has_state1_ = true;
    int64_t width = in_;
    for (py::handle h : layers) {
      py::dict spec = h.cast<py::dict>();
      const std::string kind = op_kind(spec);
      if (kind == "dense") {
        ops.push_back(dense_op<T>(spec, width));
      } else if (kind == "activation") {
        ops.push_back(std::make_unique<nnfast::ActivationOp<T>>(
            width, parse_activation(spec["activation"], false),
            static_cast<T>(number(spec, "negative_slope", 0.01))));
      } else if (kind == "dropout") {
        ops.push_back(dropout_op<T>(spec, width));
      } else if (kind == "batchnorm") {
        ops.push_back(batchnorm_op<T>(spec, width));
      } else {
        throw py::value_error("op: expected 'dense', 'activation', 'dropout' or 'batchnorm', "
                              "got '" + kind + "'");
      }
      width = ops.back()->out_width();
    }
    out_ = width;
    auto made = std::make_unique<nnfast::MlpTrainer<T>>(std::move(ops), loss_);
    if constexpr (std::is_same_v<T, float>) f32_ = std::move(made);
    else f64_ = std::move(made);
  }

  DType dtype_ = DType::f32;
  nnfast::LossKind loss_ = nnfast::LossKind::cross_entropy;
  int64_t in_ = 0, out_ = 0;
  bool has_state0_ = true, has_state1_ = true, has_batchnorm_ = false;
  py::list keep_alive_;
  std::mutex mutex_;
  std::unique_ptr<nnfast::MlpTrainer<float>> f32_;
  std::unique_ptr<nnfast::MlpTrainer<double>> f64_;
};

}  // namespace

void register_trainer(py::module_& m) {
  const auto none = py::none();
  py::class_<MlpTrainerBinding>(m, "MlpTrainer",
                                 "One C++ call per batch: gather, forward, loss, backward, update")
      .def(py::init<py::list, const std::string&>(), py::arg("layers"), py::arg("loss"))
      .def("step", &MlpTrainerBinding::step, py::arg("X"), py::arg("targets"), py::arg("idx"),
           py::kw_only(), py::arg("kind"), py::arg("lr"), py::arg("momentum") = 0.0,
           py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("beta1") = 0.9,
           py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("decoupled") = false,
           py::arg("step") = 1, py::arg("clipnorm") = none, py::arg("clipvalue") = none)
      .def("predict", &MlpTrainerBinding::predict, py::arg("X"), py::arg("out") = py::none());
}

}  // namespace nnfast::bindings
