// The primitives of the backend contract (nnfast/backends/_contract.py): each checks its
// arguments (bindings/checks.h), releases the GIL and calls its kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "bindings/keywords.h"
#include "bindings/register.h"
#include "gemm/gemm.h"
#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/bias_grad.h"
#include "kernels/dropout.h"
#include "kernels/losses.h"
#include "kernels/norms.h"
#include "kernels/optimizers.h"
#include "kernels/softmax_cross_entropy.h"

namespace nnfast::bindings {

namespace {

// ------------------------------------------------------------------------- gemm

py::array gemm(py::handle a_obj, py::handle b_obj, py::handle out_obj, bool trans_a,
               bool trans_b, double alpha, double beta, py::handle bias_obj,
               py::object activation, double negative_slope) {
  DType dt;
  py::array a = input(a_obj, "a", &dt, 2);
  py::array b = ndarray(b_obj, "b");
  check_dtype(b, "b", dt);
  check_ndim(b, "b", 2);
  check_layout(b, "b");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0);
  const int64_t K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0);
  const int64_t N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb)
    throw py::value_error("gemm: inner dimensions differ: op(a) is (" + std::to_string(M) +
                          ", " + std::to_string(K) + "), op(b) is (" + std::to_string(Kb) +
                          ", " + std::to_string(N) + ")");
  const Activation act = parse_activation(activation, false);
  if (out_obj.is_none() && beta != 0.0)
    throw py::value_error("out: beta != 0 needs an existing out array");
  py::array out = output(out_obj, "out", dt, {M, N});
  // A default-constructed py::array is an empty array, not null: track presence separately.
  const bool has_bias = !bias_obj.is_none();
  py::array bias;
  if (has_bias) {
    bias = input_like(bias_obj, "bias", dt, {N});
    check_no_overlap(out, "out", bias, "bias", false);
  }
  check_no_overlap(out, "out", a, "a", false);
  check_no_overlap(out, "out", b, "b", false);
  if (M == 0 || N == 0) return out;

  const int64_t lda = a.shape(1), ldb = b.shape(1);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    nnfast::GemmEpilogue<T> ep{has_bias ? cptr<T>(bias) : nullptr, act,
                               static_cast<T>(negative_slope)};
    const T *A = cptr<T>(a), *B = cptr<T>(b);
    T* C = ptr<T>(out);
    without_gil([&] {
      nnfast::gemm<T>(trans_a, trans_b, M, N, K, static_cast<T>(alpha), A, lda, B, ldb,
                      static_cast<T>(beta), C, N, ep);
    });
  });
  return out;
}

py::array gemm_entry(const py::args& args, const py::kwargs& kwargs) {
  static const Signature sig("gemm",
                             {"a", "b", "out", "trans_a", "trans_b", "alpha", "beta", "bias",
                              "activation", "negative_slope"},
                             3, 2);
  py::handle v[10];
  sig.match(args, kwargs, v);
  const py::handle none = py::none();
  return gemm(v[0], v[1], v[2] ? v[2] : none, sig.value(v, 3, false), sig.value(v, 4, false),
              sig.value(v, 5, 1.0), sig.value(v, 6, 0.0), v[7] ? v[7] : none,
              py::reinterpret_borrow<py::object>(v[8] ? v[8] : none), sig.value(v, 9, 0.01));
}

// ------------------------------------------------------------------------- activations

py::array activation_forward(py::object kind, py::handle x_obj, py::handle out_obj,
                             double negative_slope) {
  const Activation act = parse_activation(kind, true);
  const bool softmax = act == Activation::softmax;
  DType dt;
  py::array x = input(x_obj, "x", &dt, softmax ? 2 : -1);
  py::array out = output(out_obj, "out", dt, shape_of(x));
  check_no_overlap(out, "out", x, "x", true);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(x);
    T* Y = ptr<T>(out);
    if (softmax) {
      const int64_t N = x.shape(0), C = x.shape(1);
      if (N > 0 && C > 0) without_gil([&] { nnfast::softmax_forward<T>(Y, X, N, C); });
    } else {
      const int64_t n = x.size();
      const T slope = static_cast<T>(negative_slope);
      without_gil([&] { nnfast::activation_forward<T>(Y, X, n, act, slope); });
    }
  });
  return out;
}

py::array activation_backward(py::object kind, py::handle grad_obj, py::handle x_obj,
                              py::handle y_obj, py::handle out_obj, double negative_slope) {
  const Activation act = parse_activation(kind, true);
  const bool softmax = act == Activation::softmax;
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt, softmax ? 2 : -1);
  const Shape shape = shape_of(grad);
  py::array x = input_like(x_obj, "x", dt, shape);
  py::array y = input_like(y_obj, "y", dt, shape);
  py::array out = output(out_obj, "out", dt, shape);
  check_no_overlap(out, "out", grad, "grad_out", true);
  check_no_overlap(out, "out", x, "x", true);
  check_no_overlap(out, "out", y, "y", true);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *G = cptr<T>(grad), *X = cptr<T>(x), *Y = cptr<T>(y);
    T* D = ptr<T>(out);
    if (softmax) {
      const int64_t N = grad.shape(0), C = grad.shape(1);
      if (N > 0 && C > 0) without_gil([&] { nnfast::softmax_backward<T>(D, G, Y, N, C); });
    } else {
      const int64_t n = grad.size();
      const T slope = static_cast<T>(negative_slope);
      without_gil([&] { nnfast::activation_backward<T>(D, G, X, Y, n, act, slope); });
    }
  });
  return out;
}

// ------------------------------------------------------------------------- loss weights

// The optional weights of a loss (kernels/loss_weights.h): sample (rows) and per_class
// (cols) arrays of dtype dt, or None. Holds the arrays while the kernel reads them.
struct WeightArrays {
  py::array sample, per_class;
  bool has_sample = false, has_class = false;

  template <typename T>
  nnfast::LossWeights<T> get() const {
    nnfast::LossWeights<T> w;
    if (has_sample) w.sample = cptr<T>(sample);
    if (has_class) w.per_class = cptr<T>(per_class);
    return w;
  }
};

WeightArrays weight_arrays(py::handle sample_obj, int64_t rows, py::handle class_obj,
                           const char* class_name, int64_t cols, DType dt) {
  WeightArrays w;
  w.has_sample = !sample_obj.is_none();
  if (w.has_sample) w.sample = input_like(sample_obj, "sample_weight", dt, {rows});
  w.has_class = !class_obj.is_none();
  if (w.has_class) w.per_class = input_like(class_obj, class_name, dt, {cols});
  return w;
}

// ------------------------------------------------------------------------- softmax + cross-entropy

// The reference's rule: a 1-D target holds sparse labels, anything else is (N, C) targets.
bool is_sparse(py::handle target) {
  return py::isinstance<py::array>(target) &&
         py::reinterpret_borrow<py::array>(target).ndim() == 1;
}

// The checked arguments of a softmax cross-entropy primitive: its (N, C) input, the (N, C)
// array it writes (apart from the input, or the input itself), and the target, sparse
// labels or (N, C) rows.
struct CrossEntropyCall {
  DType dt;
  int64_t N, C;
  py::array in, out, target;
  bool sparse;
};

CrossEntropyCall cross_entropy_call(py::handle in_obj, const char* in_name,
                                    py::handle target_obj, py::handle out_obj,
                                    const char* out_name) {
  CrossEntropyCall c;
  c.in = input(in_obj, in_name, &c.dt, 2);
  c.N = c.in.shape(0);
  c.C = c.in.shape(1);
  c.out = output(out_obj, out_name, c.dt, {c.N, c.C});
  check_no_overlap(c.out, out_name, c.in, in_name, true);
  c.sparse = is_sparse(target_obj);
  c.target = c.sparse ? labels(target_obj, "target", c.N, c.C)
                      : input_like(target_obj, "target", c.dt, {c.N, c.C});
  check_no_overlap(c.out, out_name, c.target, "target", !c.sparse);
  return c;
}

py::tuple softmax_cross_entropy_forward(py::handle logits_obj, py::handle target_obj,
                                        py::handle probs_obj, py::handle sample_weight,
                                        py::handle class_weight) {
  CrossEntropyCall c = cross_entropy_call(logits_obj, "logits", target_obj, probs_obj,
                                          "probs");
  const int64_t N = c.N, C = c.C;
  const WeightArrays weights = weight_arrays(sample_weight, N, class_weight, "class_weight", C,
                                             c.dt);
  if (N > 0 && C == 0)
    throw py::value_error("logits: expected at least one class, got shape " +
                          shape_str({N, C}));
  if (N == 0) return py::make_tuple(std::nan(""), c.out);
  const double loss = by_dtype(c.dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(c.in);
    T* P = ptr<T>(c.out);
    const nnfast::LossWeights<T> w = weights.get<T>();
    if (c.sparse) {
      const int64_t* Y = cptr<int64_t>(c.target);
      return without_gil(
          [&] { return nnfast::softmax_cross_entropy_forward_sparse<T>(P, X, Y, N, C, w); });
    }
    const T* Tg = cptr<T>(c.target);
    return without_gil(
        [&] { return nnfast::softmax_cross_entropy_forward_dense<T>(P, X, Tg, N, C, w); });
  });
  return py::make_tuple(loss, c.out);
}

py::array softmax_cross_entropy_backward(py::handle probs_obj, py::handle target_obj,
                                         py::handle out_obj, py::handle sample_weight,
                                         py::handle class_weight) {
  CrossEntropyCall c = cross_entropy_call(probs_obj, "probs", target_obj, out_obj, "out");
  const int64_t N = c.N, C = c.C;
  const WeightArrays weights = weight_arrays(sample_weight, N, class_weight, "class_weight", C,
                                             c.dt);
  if (N == 0 || C == 0) return c.out;
  by_dtype(c.dt, [&](auto tag) {
    using T = decltype(tag);
    const T* P = cptr<T>(c.in);
    T* D = ptr<T>(c.out);
    const nnfast::LossWeights<T> w = weights.get<T>();
    if (c.sparse) {
      const int64_t* Y = cptr<int64_t>(c.target);
      without_gil([&] { nnfast::softmax_cross_entropy_backward_sparse<T>(D, P, Y, N, C, w); });
    } else {
      const T* Tg = cptr<T>(c.target);
      without_gil([&] { nnfast::softmax_cross_entropy_backward_dense<T>(D, P, Tg, N, C, w); });
    }
  });
  return c.out;
}

// ------------------------------------------------------------------------- elementwise losses

// The checked (prediction, target) pair of an elementwise loss, its (rows, cols) shape (rows:
// the first axis; each element of a 1-D prediction is a row) and its optional weights.
struct LossPair {
  DType dt;
  py::array pred, target;
  int64_t rows = 0, cols = 0;
  WeightArrays weights;
};

LossPair loss_pair(py::handle pred_obj, const char* pred_name, py::handle target_obj,
                   py::handle sample_weight, py::handle pos_weight) {
  LossPair p;
  p.pred = input(pred_obj, pred_name, &p.dt);
  p.target = input_like(target_obj, "target", p.dt, shape_of(p.pred));
  const bool weighted = !sample_weight.is_none() || !pos_weight.is_none();
  if (weighted && p.pred.ndim() != 1 && p.pred.ndim() != 2)
    throw py::value_error(arg(pred_name) + "weighted losses take a 1-D or 2-D array, got shape " +
                          shape_str(shape_of(p.pred)));
  p.rows = p.pred.ndim() == 0 ? 1 : p.pred.shape(0);
  p.cols = p.pred.ndim() == 2 ? p.pred.shape(1) : (p.rows ? p.pred.size() / p.rows : 0);
  p.weights = weight_arrays(sample_weight, p.rows, pos_weight, "pos_weight", p.cols, p.dt);
  return p;
}

template <typename Kernel32, typename Kernel64>
double loss_forward(const LossPair& p, Kernel32 kernel32, Kernel64 kernel64) {
  if (p.dt == DType::f32) {
    const float *X = cptr<float>(p.pred), *Tg = cptr<float>(p.target);
    const nnfast::LossWeights<float> w = p.weights.get<float>();
    return without_gil([&] { return kernel32(X, Tg, p.rows, p.cols, w); });
  }
  const double *X = cptr<double>(p.pred), *Tg = cptr<double>(p.target);
  const nnfast::LossWeights<double> w = p.weights.get<double>();
  return without_gil([&] { return kernel64(X, Tg, p.rows, p.cols, w); });
}

template <typename Kernel32, typename Kernel64>
py::array loss_backward(const LossPair& p, const char* pred_name, py::handle out_obj,
                        Kernel32 kernel32, Kernel64 kernel64) {
  py::array out = output(out_obj, "out", p.dt, shape_of(p.pred));
  check_no_overlap(out, "out", p.pred, pred_name, true);
  check_no_overlap(out, "out", p.target, "target", true);
  if (p.pred.size() == 0) return out;
  if (p.dt == DType::f32) {
    const float *X = cptr<float>(p.pred), *Tg = cptr<float>(p.target);
    const nnfast::LossWeights<float> w = p.weights.get<float>();
    float* D = ptr<float>(out);
    without_gil([&] { kernel32(D, X, Tg, p.rows, p.cols, w); });
  } else {
    const double *X = cptr<double>(p.pred), *Tg = cptr<double>(p.target);
    const nnfast::LossWeights<double> w = p.weights.get<double>();
    double* D = ptr<double>(out);
    without_gil([&] { kernel64(D, X, Tg, p.rows, p.cols, w); });
  }
  return out;
}

// An elementwise loss's two primitives, `<name>_forward(pred, target, *, sample_weight=None)`
// and `<name>_backward(pred, target, out=None, *, sample_weight=None)`, its prediction
// argument called `pred_name`; with pos_weight=None too where the loss has it.
template <auto Forward32, auto Forward64, auto Backward32, auto Backward64, bool PosWeight,
          typename Def>
void def_elementwise_loss(Def& def, const std::string& name, const char* pred_name) {
  const py::object none = py::none();
  if constexpr (PosWeight) {
    def((name + "_forward").c_str(), [pred_name](py::handle pred, py::handle target,
                                                 py::handle sample_weight, py::handle pos_weight) {
      return loss_forward(loss_pair(pred, pred_name, target, sample_weight, pos_weight),
                          Forward32, Forward64);
    }, py::arg(pred_name), py::arg("target"), py::kw_only(), py::arg("sample_weight") = none,
       py::arg("pos_weight") = none);
    def((name + "_backward").c_str(), [pred_name](py::handle pred, py::handle target,
                                                  py::handle out, py::handle sample_weight,
                                                  py::handle pos_weight) {
      return loss_backward(loss_pair(pred, pred_name, target, sample_weight, pos_weight),
                           pred_name, out, Backward32, Backward64);
    }, py::arg(pred_name), py::arg("target"), py::arg("out") = none, py::kw_only(),
       py::arg("sample_weight") = none, py::arg("pos_weight") = none);
  } else {
    def((name + "_forward").c_str(), [pred_name](py::handle pred, py::handle target,
                                                 py::handle sample_weight) {
      return loss_forward(loss_pair(pred, pred_name, target, sample_weight, py::none()),
                          Forward32, Forward64);
    }, py::arg(pred_name), py::arg("target"), py::kw_only(), py::arg("sample_weight") = none);
    def((name + "_backward").c_str(), [pred_name](py::handle pred, py::handle target,
                                                  py::handle out, py::handle sample_weight) {
      return loss_backward(loss_pair(pred, pred_name, target, sample_weight, py::none()),
                           pred_name, out, Backward32, Backward64);
    }, py::arg(pred_name), py::arg("target"), py::arg("out") = none, py::kw_only(),
       py::arg("sample_weight") = none);
  }
}

// ------------------------------------------------------------------------- bias gradient

py::array bias_grad(py::handle grad_obj, py::handle out_obj, double beta) {
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt, 2);
  const int64_t N = grad.shape(0), C = grad.shape(1);
  if (out_obj.is_none() && beta != 0.0)
    throw py::value_error("out: beta != 0 needs an existing out array");
  py::array out = output(out_obj, "out", dt, {C});
  check_no_overlap(out, "out", grad, "grad_out", false);
  if (C == 0) return out;
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* G = cptr<T>(grad);
    T* D = ptr<T>(out);
    const T b = static_cast<T>(beta);
    without_gil([&] { nnfast::bias_grad<T>(D, G, N, C, b); });
  });
  return out;
}

// ------------------------------------------------------------------------- optimizers

py::array sgd_update(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj,
                     double lr, double momentum, bool nesterov, double weight_decay) {
  DType dt;
  py::array param = input(param_obj, "param", &dt);
  if (!param.writeable()) throw py::value_error("param: array is read-only");
  const Shape shape = shape_of(param);
  py::array grad = input_like(grad_obj, "grad", dt, shape);
  check_no_overlap(param, "param", grad, "grad", true);
  const bool has_velocity = momentum != 0.0;
  py::array velocity;
  if (has_velocity) {
    if (velocity_obj.is_none())
      throw py::value_error("velocity: momentum != 0 needs a velocity buffer");
    velocity = inout(velocity_obj, "velocity", dt, shape);
    check_no_overlap(velocity, "velocity", param, "param", false);
    check_no_overlap(velocity, "velocity", grad, "grad", false);
  } else if (nesterov) {
    throw py::value_error("nesterov: Nesterov momentum needs momentum > 0");
  }
  const nnfast::SgdOptions opt{lr, momentum, weight_decay, nesterov};
  const int64_t n = param.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* P = ptr<T>(param);
    const T* G = cptr<T>(grad);
    T* V = has_velocity ? ptr<T>(velocity) : nullptr;
    without_gil([&] { nnfast::sgd_update<T>(P, G, V, n, opt); });
  });
  return param;
}

py::array adam_update(py::handle param_obj, py::handle grad_obj, py::handle m_obj,
                      py::handle v_obj, double lr, double beta1, double beta2, double eps,
                      double weight_decay, int64_t step, bool decoupled) {
  DType dt;
  py::array param = input(param_obj, "param", &dt);
  if (!param.writeable()) throw py::value_error("param: array is read-only");
  const Shape shape = shape_of(param);
  py::array grad = input_like(grad_obj, "grad", dt, shape);
  py::array m = inout(m_obj, "m", dt, shape);
  py::array v = inout(v_obj, "v", dt, shape);
  if (step < 1)
    throw py::value_error("step: Adam steps count from 1, got " + std::to_string(step));
  // Each element is read once and written once, so grad may be param; state arrays must be
  // their own memory.
  check_no_overlap(param, "param", grad, "grad", true);
  check_no_overlap(m, "m", param, "param", false);
  check_no_overlap(m, "m", grad, "grad", false);
  check_no_overlap(v, "v", param, "param", false);
  check_no_overlap(v, "v", grad, "grad", false);
  check_no_overlap(v, "v", m, "m", false);
  const nnfast::AdamOptions opt{lr, beta1, beta2, eps, weight_decay, step, decoupled};
  const int64_t n = param.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T *P = ptr<T>(param), *Mp = ptr<T>(m), *Vp = ptr<T>(v);
    const T* G = cptr<T>(grad);
    without_gil([&] { nnfast::adam_update<T>(P, G, Mp, Vp, n, opt); });
  });
  return param;
}

// ------------------------------------------------------------------------- shared checks of the training primitives

// A dropout keep-mask: uint8 (1 keep, 0 drop), C-contiguous, of the given shape.
py::array mask_array(py::handle obj, const char* name, const Shape& shape) {
  py::array a = ndarray(obj, name);
  if (!has_dtype<uint8_t>(a))
    throw py::type_error(arg(name) + "the dropout mask must be uint8, got dtype " +
                         std::string(py::str(a.dtype())));
  check_shape(a, name, shape);
  check_layout(a, name);
  return a;
}

py::array output_mask(py::handle obj, const char* name, const Shape& shape) {
  if (obj.is_none()) return py::array_t<uint8_t>(shape);
  py::array a = mask_array(obj, name, shape);
  if (!a.writeable()) throw py::value_error(arg(name) + "output array is read-only");
  return a;
}

// None, or a (n,) array of the call's dtype; `present` says which.
py::array optional_vector(py::handle obj, const char* name, DType dt, py::ssize_t n,
                          bool* present) {
  *present = !obj.is_none();
  return *present ? input_like(obj, name, dt, {n}) : py::array();
}

// The (C,) state, statistics and gradients of one batch-norm call must be their own memory,
// apart from each other and from the (N, C) arrays.
void check_all_apart(const std::vector<std::pair<const py::array*, const char*>>& arrays) {
  for (size_t i = 0; i < arrays.size(); ++i)
    for (size_t j = 0; j < arrays.size(); ++j)
      if (i != j) check_no_overlap(*arrays[i].first, arrays[i].second, *arrays[j].first,
                                   arrays[j].second, false);
}

template <typename T>
const T* cptr_or_null(const py::array& a, bool present) {
  return present ? cptr<T>(a) : nullptr;
}
template <typename T>
T* ptr_or_null(py::array& a, bool present) {
  return present ? ptr<T>(a) : nullptr;
}

// ------------------------------------------------------------------------- dropout

py::tuple dropout_forward(py::handle x_obj, py::handle out_obj, py::handle mask_obj, double p,
                          py::handle seed_obj, py::handle offset_obj) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  const nnfast::DropoutOptions opt = dropout_options(
      p, uint64_value(seed_obj, "seed"), uint64_value(offset_obj, "offset"));
  const Shape shape = shape_of(x);
  py::array out = output(out_obj, "out", dt, shape);
  py::array mask = output_mask(mask_obj, "mask", shape);
  check_no_overlap(out, "out", x, "x", true);
  check_no_overlap(mask, "mask", x, "x", false);
  check_no_overlap(mask, "mask", out, "out", false);
  const int64_t n = x.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(x);
    T* Y = ptr<T>(out);
    uint8_t* M = ptr<uint8_t>(mask);
    without_gil([&] { nnfast::dropout_forward<T>(Y, M, X, n, opt); });
  });
  return py::make_tuple(out, mask);
}

py::array dropout_backward(py::handle grad_obj, py::handle mask_obj, py::handle out_obj,
                           double p) {
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt);
  const Shape shape = shape_of(grad);
  py::array mask = mask_array(mask_obj, "mask", shape);
  p = dropout_probability(p);
  py::array out = output(out_obj, "out", dt, shape);
  check_no_overlap(out, "out", grad, "grad_out", true);
  check_no_overlap(out, "out", mask, "mask", false);
  const int64_t n = grad.size();
  const double scale = 1.0 / (1.0 - p);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* G = cptr<T>(grad);
    const uint8_t* M = cptr<uint8_t>(mask);
    T* D = ptr<T>(out);
    without_gil([&] { nnfast::dropout_backward<T>(D, G, M, n, scale); });
  });
  return out;
}

// ------------------------------------------------------------------------- batch norm

py::tuple batchnorm_forward_train(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                                  py::handle rm_obj, py::handle rv_obj, py::handle out_obj,
                                  py::handle mean_obj, py::handle inv_std_obj, double momentum,
                                  double eps) {
  DType dt;
  py::array x = input(x_obj, "x", &dt, 2);
  const int64_t N = x.shape(0), C = x.shape(1);
  bool has_gamma, has_beta;
  py::array gamma = optional_vector(gamma_obj, "gamma", dt, C, &has_gamma);
  py::array beta = optional_vector(beta_obj, "beta", dt, C, &has_beta);
  py::array rm = inout(rm_obj, "running_mean", dt, {C});
  py::array rv = inout(rv_obj, "running_var", dt, {C});
  if (N < 2)
    throw py::value_error("x: batch norm in training mode needs at least 2 samples per batch "
                          "to estimate a variance, got a batch of " + std::to_string(N));
  py::array out = output(out_obj, "out", dt, {N, C});
  py::array mean = output(mean_obj, "mean", dt, {C});
  py::array inv_std = output(inv_std_obj, "inv_std", dt, {C});
  check_no_overlap(out, "out", x, "x", true);
  std::vector<std::pair<const py::array*, const char*>> apart = {
      {&mean, "mean"}, {&inv_std, "inv_std"}, {&rm, "running_mean"}, {&rv, "running_var"},
      {&out, "out"}};
  if (has_gamma) apart.push_back({&gamma, "gamma"});
  if (has_beta) apart.push_back({&beta, "beta"});
  check_all_apart(apart);
  for (auto [a, name] : {std::pair{&mean, "mean"}, {&inv_std, "inv_std"},
                         {&rm, "running_mean"}, {&rv, "running_var"}})
    check_no_overlap(*a, name, x, "x", false);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *X = cptr<T>(x), *G = cptr_or_null<T>(gamma, has_gamma);
    const T* B = cptr_or_null<T>(beta, has_beta);
    T *Y = ptr<T>(out), *Mean = ptr<T>(mean), *Inv = ptr<T>(inv_std);
    T *Rm = ptr<T>(rm), *Rv = ptr<T>(rv);
    without_gil([&] {
      nnfast::batchnorm_forward_train<T>(Y, Mean, Inv, Rm, Rv, X, G, B, N, C, momentum, eps);
    });
  });
  return py::make_tuple(out, mean, inv_std);
}

py::array batchnorm_forward_eval(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                                 py::handle rm_obj, py::handle rv_obj, py::handle out_obj,
                                 double eps) {
  DType dt;
  py::array x = input(x_obj, "x", &dt, 2);
  const int64_t N = x.shape(0), C = x.shape(1);
  bool has_gamma, has_beta;
  py::array gamma = optional_vector(gamma_obj, "gamma", dt, C, &has_gamma);
  py::array beta = optional_vector(beta_obj, "beta", dt, C, &has_beta);
  py::array rm = input_like(rm_obj, "running_mean", dt, {C});
  py::array rv = input_like(rv_obj, "running_var", dt, {C});
  py::array out = output(out_obj, "out", dt, {N, C});
  check_no_overlap(out, "out", x, "x", true);
  check_no_overlap(out, "out", rm, "running_mean", false);
  check_no_overlap(out, "out", rv, "running_var", false);
  if (has_gamma) check_no_overlap(out, "out", gamma, "gamma", false);
  if (has_beta) check_no_overlap(out, "out", beta, "beta", false);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *X = cptr<T>(x), *Rm = cptr<T>(rm), *Rv = cptr<T>(rv);
    const T *G = cptr_or_null<T>(gamma, has_gamma), *B = cptr_or_null<T>(beta, has_beta);
    T* Y = ptr<T>(out);
    without_gil([&] { nnfast::batchnorm_forward_eval<T>(Y, X, Rm, Rv, G, B, N, C, eps); });
  });
  return out;
}

py::array batchnorm_backward(py::handle grad_obj, py::handle x_obj, py::handle mean_obj,
                             py::handle inv_std_obj, py::handle gamma_obj, py::handle grad_x_obj,
                             py::handle grad_gamma_obj, py::handle grad_beta_obj,
                             bool training) {
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt, 2);
  const int64_t N = grad.shape(0), C = grad.shape(1);
  py::array x = input_like(x_obj, "x", dt, {N, C});
  py::array mean = input_like(mean_obj, "mean", dt, {C});
  py::array inv_std = input_like(inv_std_obj, "inv_std", dt, {C});
  bool has_gamma;
  py::array gamma = optional_vector(gamma_obj, "gamma", dt, C, &has_gamma);
  const bool has_dgamma = !grad_gamma_obj.is_none(), has_dbeta = !grad_beta_obj.is_none();
  py::array dgamma = has_dgamma ? inout(grad_gamma_obj, "grad_gamma", dt, {C}) : py::array();
  py::array dbeta = has_dbeta ? inout(grad_beta_obj, "grad_beta", dt, {C}) : py::array();
  py::array dx = output(grad_x_obj, "grad_x", dt, {N, C});
  check_no_overlap(dx, "grad_x", grad, "grad_out", true);
  check_no_overlap(dx, "grad_x", x, "x", true);
  // The outputs must be their own memory: apart from each other and every other operand.
  std::vector<std::pair<const py::array*, const char*>> outputs = {{&dx, "grad_x"}};
  if (has_dgamma) outputs.push_back({&dgamma, "grad_gamma"});
  if (has_dbeta) outputs.push_back({&dbeta, "grad_beta"});
  std::vector<std::pair<const py::array*, const char*>> operands = {{&mean, "mean"},
                                                                    {&inv_std, "inv_std"}};
  if (has_gamma) operands.push_back({&gamma, "gamma"});
  for (const auto& [o, o_name] : outputs) {
    for (const auto& [other, other_name] : outputs)
      if (other != o) check_no_overlap(*o, o_name, *other, other_name, false);
    for (const auto& [in, in_name] : operands) check_no_overlap(*o, o_name, *in, in_name, false);
    if (o != &dx) {
      check_no_overlap(*o, o_name, grad, "grad_out", false);
      check_no_overlap(*o, o_name, x, "x", false);
    }
  }
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *G = cptr<T>(grad), *X = cptr<T>(x), *Mean = cptr<T>(mean);
    const T *Inv = cptr<T>(inv_std), *Gamma = cptr_or_null<T>(gamma, has_gamma);
    T *D = ptr<T>(dx), *Dg = ptr_or_null<T>(dgamma, has_dgamma);
    T* Db = ptr_or_null<T>(dbeta, has_dbeta);
    without_gil([&] {
      nnfast::batchnorm_backward<T>(D, Dg, Db, G, X, Mean, Inv, Gamma, N, C, training);
    });
  });
  return dx;
}

// ------------------------------------------------------------------------- norms, clipping, penalties

double sum_squares(py::handle x_obj) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  const int64_t n = x.size();
  return by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(x);
    return without_gil([&] { return nnfast::sum_squares<T>(X, n); });
  });
}

py::array scale_inplace(py::handle x_obj, double alpha) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  if (!x.writeable()) throw py::value_error("x: array is read-only");
  const int64_t n = x.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* X = ptr<T>(x);
    const T a = static_cast<T>(alpha);
    without_gil([&] { nnfast::scale_inplace<T>(X, n, a); });
  });
  return x;
}

py::array clip_inplace(py::handle x_obj, double lo, double hi) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  if (!x.writeable()) throw py::value_error("x: array is read-only");
  if (!(lo <= hi))
    throw py::value_error("lo, hi: need lo <= hi, got lo=" + py_float(lo) + ", hi=" +
                          py_float(hi));
  const int64_t n = x.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* X = ptr<T>(x);
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    without_gil([&] { nnfast::clip_inplace<T>(X, n, l, h); });
  });
  return x;
}

void check_penalty(double l1, double l2) {
  if (!(l1 >= 0.0 && l2 >= 0.0))
    throw py::value_error("l1, l2: penalty coefficients must be >= 0, got l1=" + py_float(l1) +
                          ", l2=" + py_float(l2));
}

double weight_penalty_forward(py::handle w_obj, double l1, double l2) {
  DType dt;
  py::array w = input(w_obj, "w", &dt);
  check_penalty(l1, l2);
  const int64_t n = w.size();
  return by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* W = cptr<T>(w);
    return without_gil([&] {
      return l1 * nnfast::sum_abs<T>(W, n) + l2 * nnfast::sum_squares<T>(W, n);
    });
  });
}

py::array weight_penalty_backward(py::handle w_obj, py::handle grad_obj, double l1, double l2) {
  DType dt;
  py::array w = input(w_obj, "w", &dt);
  py::array grad = inout(grad_obj, "grad", dt, shape_of(w));
  check_penalty(l1, l2);
  check_no_overlap(grad, "grad", w, "w", true);
  const int64_t n = w.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* W = cptr<T>(w);
    T* G = ptr<T>(grad);
    const T a = static_cast<T>(l1), b = static_cast<T>(2.0 * l2);
    without_gil([&] { nnfast::weight_penalty_backward<T>(G, W, n, a, b); });
  });
  return grad;
}

}  // namespace

// Each primitive is listed in _core.PRIMITIVES as it is defined: cpp_backend.py exports the
// primitives by that list, so no list of names is kept by hand beside this one.
void register_primitives(py::module_& m) {
  const auto none = py::none();
  py::list names;
  auto def = [&](const char* name, auto function, const auto&... extra) {
    m.def(name, function, extra...);
    names.append(name);
  };

  def("gemm", &gemm_entry,
      "gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, "
      "bias=None, activation=None, negative_slope=0.01)\n\n"
      "out = act(alpha * op(a) @ op(b) + beta * out + bias)");
  def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"),
      py::arg("out") = none, py::kw_only(), py::arg("negative_slope") = 0.01,
      "y = act(x); softmax over the last axis of a 2-D x");
  def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"),
      py::arg("x"), py::arg("y"), py::arg("out") = none, py::kw_only(),
      py::arg("negative_slope") = 0.01, "dx = dy * act'(x), given x and y = act(x)");
  def("softmax_cross_entropy_forward", &softmax_cross_entropy_forward, py::arg("logits"),
      py::arg("target"), py::arg("probs") = none, py::kw_only(), py::arg("sample_weight") = none,
      py::arg("class_weight") = none,
      "(mean cross-entropy, probs) of softmax(logits); target int64 (N,) or (N, C); "
      "sample_weight (N,), class_weight (C,) as torch's weight=");
  def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("probs"),
      py::arg("target"), py::arg("out") = none, py::kw_only(), py::arg("sample_weight") = none,
      py::arg("class_weight") = none,
      "d loss / d logits = (probs * rowsum(target) - target) / N, weighted as the forward");
  def_elementwise_loss<nnfast::mse_forward<float>, nnfast::mse_forward<double>,
                      nnfast::mse_backward<float>, nnfast::mse_backward<double>, false>(
      def, "mse", "pred");
  def_elementwise_loss<nnfast::bce_forward<float>, nnfast::bce_forward<double>,
                      nnfast::bce_backward<float>, nnfast::bce_backward<double>, false>(
      def, "bce", "prob");
  def_elementwise_loss<nnfast::bce_with_logits_forward<float>,
                      nnfast::bce_with_logits_forward<double>,
                      nnfast::bce_with_logits_backward<float>,
                      nnfast::bce_with_logits_backward<double>, true>(def, "bce_with_logits",
                                                                      "logits");
  def("bias_grad", &bias_grad, py::arg("grad_out"), py::arg("out") = none, py::kw_only(),
      py::arg("beta") = 0.0, "out = column sums of grad_out + beta * out");
  def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"),
      py::arg("velocity") = none, py::kw_only(), py::arg("lr"), py::arg("momentum") = 0.0,
      py::arg("nesterov") = false, py::arg("weight_decay") = 0.0,
      "one torch.optim.SGD step in place");
  def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
      py::arg("v"), py::kw_only(), py::arg("lr"), py::arg("beta1") = 0.9,
      py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
      py::arg("step"), py::arg("decoupled") = false,
      "one torch.optim.Adam (or AdamW with decoupled=True) step in place");
  def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("out") = none,
      py::arg("mask") = none, py::kw_only(), py::arg("p"), py::arg("seed"), py::arg("offset"),
      "inverted dropout with a counter-based mask; returns (out, mask)");
  def("dropout_backward", &dropout_backward, py::arg("grad_out"), py::arg("mask"),
      py::arg("out") = none, py::kw_only(), py::arg("p"));
  def("batchnorm_forward_train", &batchnorm_forward_train, py::arg("x"), py::arg("gamma"),
      py::arg("beta"), py::arg("running_mean"), py::arg("running_var"), py::arg("out") = none,
      py::arg("mean") = none, py::arg("inv_std") = none, py::kw_only(),
      py::arg("momentum") = 0.1, py::arg("eps") = 1e-5,
      "batch norm with batch statistics; returns (out, mean, inv_std)");
  def("batchnorm_forward_eval", &batchnorm_forward_eval, py::arg("x"), py::arg("gamma"),
      py::arg("beta"), py::arg("running_mean"), py::arg("running_var"), py::arg("out") = none,
      py::kw_only(), py::arg("eps") = 1e-5);
  def("batchnorm_backward", &batchnorm_backward, py::arg("grad_out"), py::arg("x"),
      py::arg("mean"), py::arg("inv_std"), py::arg("gamma"), py::arg("grad_x") = none,
      py::arg("grad_gamma") = none, py::arg("grad_beta") = none, py::kw_only(),
      py::arg("training") = true);
  def("sum_squares", &sum_squares, py::arg("x"), "sum(x^2), accumulated in float64");
  def("scale_inplace", &scale_inplace, py::arg("x"), py::kw_only(), py::arg("alpha"));
  def("clip_inplace", &clip_inplace, py::arg("x"), py::kw_only(), py::arg("lo"),
      py::arg("hi"));
  def("weight_penalty_forward", &weight_penalty_forward, py::arg("w"), py::kw_only(),
      py::arg("l1"), py::arg("l2"));
  def("weight_penalty_backward", &weight_penalty_backward, py::arg("w"), py::arg("grad"),
      py::kw_only(), py::arg("l1"), py::arg("l2"));

  m.attr("PRIMITIVES") = py::tuple(names);
}

}  // namespace nnfast::bindings
