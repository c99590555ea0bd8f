// The only file that includes pybind11. Every entry point checks its arrays (dtype, shape,
// C-contiguity, alignment, writability) and raises TypeError/ValueError naming the argument,
// never converting silently; then it releases the GIL and calls the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/activation.h"
#include "common/fpu_guard.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "kernels/activations.h"
#include "train/mlp_trainer.h"

namespace py = pybind11;
using nnfast::Activation;

namespace {

enum class DType { f32, f64 };

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

DType float_dtype(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::f32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::f64;
  throw py::type_error(std::string(name) + ": expected a float32 or float64 array, got dtype " +
                       std::string(py::str(a.dtype())));
}

void check_same_dtype(const py::array& a, const char* name, DType want) {
  if (float_dtype(a, name) != want)
    throw py::type_error(std::string(name) + ": dtype " + std::string(py::str(a.dtype())) +
                         " does not match the other operands (" +
                         (want == DType::f32 ? "float32" : "float64") + ")");
}

void check_layout(const py::array& a, const char* name, bool writable) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) +
                          ": array must be C-contiguous (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize() != 0)
    throw py::value_error(std::string(name) + ": array data is misaligned");
  if (writable && !a.writeable())
    throw py::value_error(std::string(name) + ": output array is read-only");
}

void check_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                          "-D array, got shape " + shape_str(a));
}

void check_shape(const py::array& a, const char* name, std::vector<py::ssize_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i)
      want += (i ? ", " : "") + std::to_string(shape[i]);
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(std::string(name) + ": expected shape " + want + ", got " +
                          shape_str(a));
  }
}

py::array new_array(DType dt, std::vector<py::ssize_t> shape) {
  if (dt == DType::f32) return py::array_t<float>(shape);
  return py::array_t<double>(shape);
}

Activation parse_activation(const py::object& name, bool allow_softmax) {
  if (name.is_none()) return Activation::identity;
  const std::string s = py::str(name);
  if (s == "identity" || s == "linear") return Activation::identity;
  if (s == "relu") return Activation::relu;
  if (s == "leaky_relu") return Activation::leaky_relu;
  if (s == "sigmoid") return Activation::sigmoid;
  if (s == "tanh") return Activation::tanh;
  if (s == "gelu") return Activation::gelu;
  if (s == "gelu_tanh") return Activation::gelu_tanh;
  if (s == "softmax" && allow_softmax) return Activation::softmax;
  throw py::value_error("activation: unknown activation '" + s + "'");
}

template <typename T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <typename T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// ---------------------------------------------------------------------------------------
// gemm

py::array gemm(py::array a, py::array b, py::object out_obj, bool trans_a, bool trans_b,
               double alpha, double beta, py::object bias_obj, py::object activation,
               double negative_slope) {
  const DType dt = float_dtype(a, "a");
  check_same_dtype(b, "b", dt);
  check_ndim(a, "a", 2);
  check_ndim(b, "b", 2);
  check_layout(a, "a", false);
  check_layout(b, "b", false);
  const int64_t M = trans_a ? a.shape(1) : a.shape(0);
  const int64_t K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0);
  const int64_t N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb)
    throw py::value_error("gemm: inner dimensions differ: op(a) is (" + std::to_string(M) +
                          ", " + std::to_string(K) + "), op(b) is (" + std::to_string(Kb) +
                          ", " + std::to_string(N) + ")");
  const Activation act = parse_activation(activation, false);

  py::array out;
  if (out_obj.is_none()) {
    if (beta != 0.0) throw py::value_error("out: beta != 0 needs an existing out array");
    out = new_array(dt, {M, N});
  } else {
    out = py::reinterpret_borrow<py::array>(out_obj);
    check_same_dtype(out, "out", dt);
    check_shape(out, "out", {M, N});
    check_layout(out, "out", true);
  }
  py::array bias;
  if (!bias_obj.is_none()) {
    bias = py::reinterpret_borrow<py::array>(bias_obj);
    check_same_dtype(bias, "bias", dt);
    check_shape(bias, "bias", {N});
    check_layout(bias, "bias", false);
  }
  if (M == 0 || N == 0) return out;

  const int64_t lda = a.shape(1), ldb = b.shape(1);
  {
    py::gil_scoped_release release;
    nnfast::FpuGuard fpu;
    if (dt == DType::f32) {
      nnfast::GemmEpilogue<float> ep{bias ? cptr<float>(bias) : nullptr, act,
                                     static_cast<float>(negative_slope)};
      nnfast::gemm<float>(trans_a, trans_b, M, N, K, static_cast<float>(alpha), cptr<float>(a),
                          lda, cptr<float>(b), ldb, static_cast<float>(beta), ptr<float>(out), N,
                          ep);
    } else {
      nnfast::GemmEpilogue<double> ep{bias ? cptr<double>(bias) : nullptr, act,
                                      negative_slope};
      nnfast::gemm<double>(trans_a, trans_b, M, N, K, alpha, cptr<double>(a), lda,
                           cptr<double>(b), ldb, beta, ptr<double>(out), N, ep);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// activations

py::array activation_forward(py::object kind, py::array x, py::object out_obj,
                             double negative_slope) {
  const Activation act = parse_activation(kind, true);
  if (act == Activation::softmax)
    throw py::value_error("activation_forward: softmax is not implemented in the cpp backend yet");
  const DType dt = float_dtype(x, "x");
  check_layout(x, "x", false);
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  py::array out;
  if (out_obj.is_none()) {
    out = new_array(dt, shape);
  } else {
    out = py::reinterpret_borrow<py::array>(out_obj);
    check_same_dtype(out, "out", dt);
    check_shape(out, "out", shape);
    check_layout(out, "out", true);
  }
  const int64_t n = x.size();
  py::gil_scoped_release release;
  nnfast::FpuGuard fpu;
  if (dt == DType::f32)
    nnfast::activation_forward<float>(ptr<float>(out), cptr<float>(x), n, act,
                                      static_cast<float>(negative_slope));
  else
    nnfast::activation_forward<double>(ptr<double>(out), cptr<double>(x), n, act,
                                       negative_slope);
  return out;
}

py::array activation_backward(py::object kind, py::array grad_out, py::array x, py::array y,
                              py::object out_obj, double negative_slope) {
  const Activation act = parse_activation(kind, true);
  if (act == Activation::softmax)
    throw py::value_error("activation_backward: softmax is not implemented in the cpp backend yet");
  const DType dt = float_dtype(grad_out, "grad_out");
  std::vector<py::ssize_t> shape(grad_out.shape(), grad_out.shape() + grad_out.ndim());
  check_layout(grad_out, "grad_out", false);
  check_same_dtype(x, "x", dt);
  check_shape(x, "x", shape);
  check_layout(x, "x", false);
  check_same_dtype(y, "y", dt);
  check_shape(y, "y", shape);
  check_layout(y, "y", false);
  py::array out;
  if (out_obj.is_none()) {
    out = new_array(dt, shape);
  } else {
    out = py::reinterpret_borrow<py::array>(out_obj);
    check_same_dtype(out, "out", dt);
    check_shape(out, "out", shape);
    check_layout(out, "out", true);
  }
  const int64_t n = grad_out.size();
  py::gil_scoped_release release;
  nnfast::FpuGuard fpu;
  if (dt == DType::f32)
    nnfast::activation_backward<float>(ptr<float>(out), cptr<float>(grad_out), cptr<float>(x),
                                       cptr<float>(y), n, act,
                                       static_cast<float>(negative_slope));
  else
    nnfast::activation_backward<double>(ptr<double>(out), cptr<double>(grad_out),
                                        cptr<double>(x), cptr<double>(y), n, act,
                                        negative_slope);
  return out;
}


// ---------------------------------------------------------------------------------------
// fused MLP training step

// Holds the trainer and a reference to every array it writes into, so Python cannot free
// them while it lives. Calls are serialized: a trainer has one set of workspaces.
class MlpTrainerBinding {
 public:
  MlpTrainerBinding(py::list layers, const std::string& loss) {
    if (layers.empty()) throw py::value_error("layers: at least one Dense layer is needed");
    if (loss == "cross_entropy") loss_ = nnfast::LossKind::cross_entropy;
    else if (loss == "mse") loss_ = nnfast::LossKind::mse;
    else if (loss == "bce_with_logits") loss_ = nnfast::LossKind::bce_with_logits;
    else throw py::value_error("loss: the fused step supports cross_entropy, mse and "
                               "bce_with_logits, not '" + loss + "'");
    dtype_ = float_dtype(layers[0].cast<py::dict>()["weight"].cast<py::array>(), "weight");
    if (dtype_ == DType::f32) f32_ = make<float>(layers);
    else f64_ = make<double>(layers);
  }

  py::tuple step(py::array X, py::array targets, py::array idx, const std::string& kind,
                 double lr, double momentum, bool nesterov, double weight_decay, double beta1,
                 double beta2, double eps, bool decoupled, int64_t step_count) {
    check_same_dtype(X, "X", dtype_);
    check_ndim(X, "X", 2);
    check_layout(X, "X", false);
    if (X.shape(1) != in_)
      throw py::value_error("X: expected " + std::to_string(in_) + " features, got shape " +
                            shape_str(X));
    const int64_t n_total = X.shape(0);
    if (!idx.dtype().is(py::dtype::of<int64_t>()))
      throw py::type_error("idx: expected int64 row indices, got dtype " +
                           std::string(py::str(idx.dtype())));
    check_ndim(idx, "idx", 1);
    check_layout(idx, "idx", false);
    const int64_t batch = idx.shape(0);
    if (batch == 0) throw py::value_error("idx: empty batch");
    const int64_t* rows = cptr<int64_t>(idx);
    for (int64_t i = 0; i < batch; ++i)
      if (rows[i] < 0 || rows[i] >= n_total)
        throw py::value_error("idx: row " + std::to_string(rows[i]) + " outside [0, " +
                              std::to_string(n_total) + ")");
    if (loss_ == nnfast::LossKind::cross_entropy) {
      if (!targets.dtype().is(py::dtype::of<int64_t>()))
        throw py::type_error("targets: cross-entropy labels must be int64, got dtype " +
                             std::string(py::str(targets.dtype())));
      check_shape(targets, "targets", {n_total});
      check_layout(targets, "targets", false);
      const int64_t* labels = cptr<int64_t>(targets);
      for (int64_t i = 0; i < batch; ++i)
        if (labels[rows[i]] < 0 || labels[rows[i]] >= out_)
          throw py::value_error("targets: label " + std::to_string(labels[rows[i]]) +
                                " outside [0, " + std::to_string(out_) + ")");
    } else {
      check_same_dtype(targets, "targets", dtype_);
      check_shape(targets, "targets", {n_total, out_});
      check_layout(targets, "targets", false);
    }
    nnfast::OptimizerConfig opt;
    if (kind == "adam") opt.kind = nnfast::OptimizerKind::adam;
    else if (kind == "sgd") opt.kind = nnfast::OptimizerKind::sgd;
    else throw py::value_error("optimizer: expected 'sgd' or 'adam', got '" + kind + "'");
    if (opt.kind == nnfast::OptimizerKind::adam && !has_state1_)
      throw py::value_error("optimizer: Adam needs m and v state arrays for every parameter");
    if (opt.kind == nnfast::OptimizerKind::sgd && momentum != 0.0 && !has_state0_)
      throw py::value_error("optimizer: SGD momentum needs a velocity array for every parameter");
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
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      nnfast::FpuGuard fpu;
      if (dtype_ == DType::f32)
        r = f32_->step(cptr<float>(X), targets.data(), rows, batch, opt);
      else
        r = f64_->step(cptr<double>(X), targets.data(), rows, batch, opt);
    }
    return py::make_tuple(r.loss, r.correct < 0 ? py::object(py::none()) : py::int_(r.correct));
  }

  py::array predict(py::array X, py::object out_obj) {
    check_same_dtype(X, "X", dtype_);
    check_ndim(X, "X", 2);
    check_layout(X, "X", false);
    if (X.shape(1) != in_)
      throw py::value_error("X: expected " + std::to_string(in_) + " features, got shape " +
                            shape_str(X));
    const int64_t batch = X.shape(0);
    py::array out;
    if (out_obj.is_none()) {
      out = new_array(dtype_, {batch, out_});
    } else {
      out = py::reinterpret_borrow<py::array>(out_obj);
      check_same_dtype(out, "out", dtype_);
      check_shape(out, "out", {batch, out_});
      check_layout(out, "out", true);
    }
    if (batch == 0) return out;
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(mutex_);
    nnfast::FpuGuard fpu;
    if (dtype_ == DType::f32) f32_->predict(cptr<float>(X), batch, ptr<float>(out));
    else f64_->predict(cptr<double>(X), batch, ptr<double>(out));
    return out;
  }

 private:
  template <typename T>
  T* param(py::dict spec, const char* key, std::vector<py::ssize_t> shape, bool optional,
           bool* present = nullptr) {
    py::object obj = spec.contains(key) ? py::object(spec[key]) : py::object(py::none());
    if (obj.is_none()) {
      if (!optional) throw py::value_error(std::string(key) + ": missing");
      if (present) *present = false;
      return nullptr;
    }
    py::array a = obj.cast<py::array>();
    check_same_dtype(a, key, dtype_);
    check_shape(a, key, shape);
    check_layout(a, key, true);
    keep_alive_.append(a);
    return ptr<T>(a);
  }

  template <typename T>
  std::unique_ptr<nnfast::MlpTrainer<T>> make(py::list layers) {
    std::vector<nnfast::DenseLayerRef<T>> refs;
    has_state0_ = has_state1_ = true;
    for (py::handle h : layers) {
      py::dict spec = h.cast<py::dict>();
      py::array w = spec["weight"].cast<py::array>();
      check_ndim(w, "weight", 2);
      nnfast::DenseLayerRef<T> r;
      r.in = w.shape(0);
      r.out = w.shape(1);
      if (!refs.empty() && refs.back().out != r.in)
        throw py::value_error("weight: layer widths do not chain (" +
                              std::to_string(refs.back().out) + " outputs into " +
                              std::to_string(r.in) + " inputs)");
      r.activation = parse_activation(spec["activation"], false);
      r.negative_slope = static_cast<T>(spec["negative_slope"].cast<double>());
      r.weight = param<T>(spec, "weight", {r.in, r.out}, false);
      r.bias = param<T>(spec, "bias", {r.out}, false);
      r.weight_grad = param<T>(spec, "weight_grad", {r.in, r.out}, false);
      r.bias_grad = param<T>(spec, "bias_grad", {r.out}, false);
      bool s0 = true, s1 = true;
      r.weight_state0 = param<T>(spec, "weight_state0", {r.in, r.out}, true, &s0);
      r.bias_state0 = param<T>(spec, "bias_state0", {r.out}, true, &s0);
      r.weight_state1 = param<T>(spec, "weight_state1", {r.in, r.out}, true, &s1);
      r.bias_state1 = param<T>(spec, "bias_state1", {r.out}, true, &s1);
      has_state0_ = has_state0_ && s0;
      has_state1_ = has_state1_ && s1;
      refs.push_back(r);
    }
    in_ = refs.front().in;
    out_ = refs.back().out;
    return std::make_unique<nnfast::MlpTrainer<T>>(std::move(refs), loss_);
  }

  DType dtype_ = DType::f32;
  nnfast::LossKind loss_ = nnfast::LossKind::cross_entropy;
  int64_t in_ = 0, out_ = 0;
  bool has_state0_ = false, has_state1_ = false;
  py::list keep_alive_;
  std::mutex mutex_;
  std::unique_ptr<nnfast::MlpTrainer<float>> f32_;
  std::unique_ptr<nnfast::MlpTrainer<double>> f64_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast compiled kernels (C++/OpenMP)";

  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out") = py::none(), py::kw_only(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("activation") = py::none(),
        py::arg("negative_slope") = 0.01,
        "out = act(alpha * op(a) @ op(b) + beta * out + bias)");
  m.def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"),
        py::arg("out") = py::none(), py::kw_only(), py::arg("negative_slope") = 0.01);
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"),
        py::arg("x"), py::arg("y"), py::arg("out") = py::none(), py::kw_only(),
        py::arg("negative_slope") = 0.01);

  py::class_<MlpTrainerBinding>(m, "MlpTrainer",
                                 "One C++ call per batch: gather, forward, loss, backward, update")
      .def(py::init<py::list, const std::string&>(), py::arg("layers"), py::arg("loss"))
      .def("step", &MlpTrainerBinding::step, py::arg("X"), py::arg("targets"), py::arg("idx"),
           py::kw_only(), py::arg("kind"), py::arg("lr"), py::arg("momentum") = 0.0,
           py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("beta1") = 0.9,
           py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("decoupled") = false,
           py::arg("step") = 1)
      .def("predict", &MlpTrainerBinding::predict, py::arg("X"), py::arg("out") = py::none());

  m.def("set_num_threads", &nnfast::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &nnfast::num_threads);
  m.def("gemm_isa", &nnfast::gemm_isa);
#ifdef _OPENMP
  m.attr("openmp") = _OPENMP;
#else
  m.attr("openmp") = py::none();
#endif
#ifdef NNFAST_CXXFLAGS
  m.attr("compile_flags") = NNFAST_CXXFLAGS;
#endif
#if defined(__clang__)
  m.attr("compiler") = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.attr("compiler") = "gcc " __VERSION__;
#elif defined(_MSC_VER)
  m.attr("compiler") = "msvc " + std::to_string(_MSC_VER);
#endif
}
