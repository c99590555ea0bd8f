// The typed op records of nnfast/nn/ops.py and the update rules of nnfast/optim/rules.py,
// read into the structs every executor runs (train/op_spec.h), with the checks both
// compiled modules make: nnfast._core's trainer and nnfast._cuda's.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "train/op_spec.h"

namespace nnfast::bindings {

// Row indices into X: int64, shape (n,), every value in [0, rows).
// allow_empty: a data-parallel process may have no rows of a global batch.
inline py::array row_indices(py::handle obj, const char* name, int64_t rows,
                             bool allow_empty = false) {
  py::array a = ndarray(obj, name);
  if (!has_dtype<int64_t>(a))
    throw py::type_error(arg(name) + "expected int64 row indices, got dtype " +
                         std::string(py::str(a.dtype())));
  check_ndim(a, name, 1);
  check_layout(a, name);
  if (a.shape(0) == 0 && !allow_empty) throw py::value_error(arg(name) + "empty batch");
  const int64_t* idx = static_cast<const int64_t*>(a.data());
  for (py::ssize_t i = 0; i < a.shape(0); ++i)
    if (idx[i] < 0 || idx[i] >= rows)
      throw py::value_error(arg(name) + "row " + std::to_string(idx[i]) + " outside [0, " +
                            std::to_string(rows) + ")");
  return a;
}

// The dtype and input width of a model's op records (nnfast/nn/ops.py): those of the first
// record holding an array that fixes them (a Dense weight, a batch norm's running mean).
struct RecordsShape {
  DType dtype = DType::f32;
  int64_t in = 0;
};

inline RecordsShape records_shape(const py::list& ops) {
  for (py::handle op : ops) {
    const auto kind = static_cast<nnfast::OpKind>(op.attr("code").cast<int>());
    if (kind == nnfast::OpKind::dense) {
      py::array w = ndarray(op.attr("weight").attr("data"), "weight");
      check_ndim(w, "weight", 2);
      return {float_dtype(w, "weight"), w.shape(0)};
    }
    if (kind == nnfast::OpKind::batchnorm) {
      py::array m = ndarray(op.attr("running_mean"), "running_mean");
      check_ndim(m, "running_mean", 1);
      return {float_dtype(m, "running_mean"), m.shape(0)};
    }
  }
  throw py::value_error("ops: at least one Dense or BatchNorm1d layer is needed");
}

// Reads the op records into the OpSpecs an executor runs, checking every array. `place(obj,
// name, shape)` gives the executor's pointer to a float array it reads and writes in place:
// the array itself on the CPU, a device copy on a GPU. slots: the optimizer's state per
// parameter in the records' parameter order (nnfast/optim/rules.py), or empty for an
// executor that only predicts.
template <typename T, typename Place>
std::vector<nnfast::OpSpec<T>> read_op_records(const py::list& ops, const py::list& slots,
                                               int64_t in, Place&& place) {
  std::vector<nnfast::OpSpec<T>> specs;
  size_t next_slot = 0;
  auto param = [&](py::handle parameter, const char* name, const Shape& shape) {
    nnfast::Param<T> p;
    p.value = place(parameter.attr("data"), name, shape);
    p.grad = place(parameter.attr("grad"), (std::string(name) + " grad").c_str(), shape);
    p.size = 1;
    for (py::ssize_t d : shape) p.size *= d;
    if (!slots.empty()) {
      if (next_slot >= slots.size())
        throw py::value_error("slots: fewer optimizer slots than parameters");
      py::handle s = slots[next_slot++];
      for (const char* role : {"velocity", "m"})
        if (!s.attr(role).is_none()) p.state0 = place(s.attr(role), role, shape);
      if (!s.attr("v").is_none()) p.state1 = place(s.attr("v"), "v", shape);
    }
    return p;
  };
  auto activation = [](py::handle record, nnfast::OpSpec<T>& spec) {
    spec.activation = parse_activation(record.attr("kind"), false);
    spec.activation_parameter = static_cast<T>(record.attr("parameter").cast<double>());
  };
  int64_t width = in;
  for (py::handle op : ops) {
    nnfast::OpSpec<T> spec;
    spec.kind = static_cast<nnfast::OpKind>(op.attr("code").cast<int>());
    spec.in = spec.out = width;
    switch (spec.kind) {
      case nnfast::OpKind::dense: {
        py::array w = ndarray(op.attr("weight").attr("data"), "weight");
        check_ndim(w, "weight", 2);
        if (w.shape(0) != width)
          throw py::value_error("weight: layer widths do not chain (" + std::to_string(width) +
                                " outputs into " + std::to_string(w.shape(0)) + " inputs)");
        spec.out = w.shape(1);
        spec.weight = param(op.attr("weight"), "weight", {spec.in, spec.out});
        spec.weight.l1 = op.attr("l1").cast<double>();
        spec.weight.l2 = op.attr("l2").cast<double>();
        if (!(spec.weight.l1 >= 0.0 && spec.weight.l2 >= 0.0))
          throw py::value_error("l1, l2: penalty coefficients must be >= 0");
        spec.bias = param(op.attr("bias"), "bias", {spec.out});
        activation(op.attr("activation"), spec);
        break;
      }
      case nnfast::OpKind::activation:
        activation(op.attr("activation"), spec);
        break;
      case nnfast::OpKind::dropout: {
        const double p = op.attr("p").cast<double>();
        spec.dropout = dropout_options(p, uint64_value(op.attr("seed"), "seed"), 0);
        spec.dropout_active = p != 0.0;
        py::array counter = ndarray(op.attr("counter"), "counter");
        if (!has_dtype<uint64_t>(counter))
          throw py::type_error("counter: expected a uint64 array, got dtype " +
                               std::string(py::str(counter.dtype())));
        check_shape(counter, "counter", {1});
        check_layout(counter, "counter");
        if (!counter.writeable()) throw py::value_error("counter: array is read-only");
        spec.dropout_counter = ptr<uint64_t>(counter);
        break;
      }
      case nnfast::OpKind::batchnorm:
        spec.running_mean = place(op.attr("running_mean"), "running_mean", {width});
        spec.running_var = place(op.attr("running_var"), "running_var", {width});
        spec.momentum = op.attr("momentum").cast<double>();
        spec.eps = op.attr("eps").cast<double>();
        if (!op.attr("gamma").is_none()) {
          spec.weight = param(op.attr("gamma"), "gamma", {width});
          spec.bias = param(op.attr("beta"), "beta", {width});
        }
        break;
      case nnfast::OpKind::residual_begin:
      case nnfast::OpKind::residual_end:
        break;
      default:
        throw py::value_error("ops: unknown op code " + std::to_string(static_cast<int>(spec.kind)));
    }
    if (spec.in == 0 || spec.out == 0)  // the kernels would copy from and to the empty arrays' null pointers
      throw py::value_error("ops: a layer of width 0 (op " + std::to_string(specs.size()) +
                            "); every layer needs at least one unit");
    width = spec.out;
    specs.push_back(spec);
  }
  if (next_slot != slots.size())
    throw py::value_error("slots: more optimizer slots than parameters");
  return specs;
}

// The update rule of one step (nnfast/optim/rules.py's SgdRule or AdamRule), checked.
inline nnfast::UpdateRule read_update_rule(py::handle rule) {
  nnfast::UpdateRule r;
  r.kind = static_cast<nnfast::RuleKind>(rule.attr("code").cast<int>());
  r.lr = rule.attr("lr").cast<double>();
  r.weight_decay = rule.attr("weight_decay").cast<double>();
  const py::object clipnorm = rule.attr("clipnorm"), clipvalue = rule.attr("clipvalue");
  if (!clipnorm.is_none() && !clipvalue.is_none())
    throw py::value_error("clipnorm, clipvalue: give one, not both");
  for (const auto& [limit, name] : {std::pair{clipnorm, "clipnorm"}, {clipvalue, "clipvalue"}})
    if (!limit.is_none() && !(limit.cast<double>() > 0.0))
      throw py::value_error(arg(name) + "must be positive, got " + std::string(py::repr(limit)));
  r.clipnorm = clipnorm.is_none() ? 0.0 : clipnorm.cast<double>();
  r.clipvalue = clipvalue.is_none() ? 0.0 : clipvalue.cast<double>();
  if (r.kind == nnfast::RuleKind::adam) {
    r.beta1 = rule.attr("beta1").cast<double>();
    r.beta2 = rule.attr("beta2").cast<double>();
    r.eps = rule.attr("eps").cast<double>();
    r.decoupled = rule.attr("decoupled").cast<bool>();
    r.step = rule.attr("step").cast<int64_t>();
    if (r.step < 1) throw py::value_error("step: counts from 1");
  } else if (r.kind == nnfast::RuleKind::sgd) {
    r.momentum = rule.attr("momentum").cast<double>();
    r.nesterov = rule.attr("nesterov").cast<bool>();
  } else {
    throw py::value_error("rule: unknown update rule code " +
                          std::to_string(static_cast<int>(r.kind)));
  }
  return r;
}

// What a trainer binding, on any device, checks and keeps of its model: the dtype, the
// widths and the loss of the records, and the checks of each call's arguments.
class TrainerShape {
 public:
  TrainerShape(const py::list& ops, int loss, const py::list& slots)
      : loss_(static_cast<nnfast::LossKind>(loss)), has_slots_(!slots.empty()) {
    if (loss < 0 || loss > static_cast<int>(nnfast::LossKind::bce_with_logits))
      throw py::value_error("loss: unknown loss code " + std::to_string(loss));
    const RecordsShape shape = records_shape(ops);
    dtype_ = shape.dtype;
    in_ = shape.in;
    for (py::handle op : ops)
      if (static_cast<nnfast::OpKind>(op.attr("code").cast<int>()) == nnfast::OpKind::batchnorm)
        has_batchnorm_ = true;
  }

  DType dtype() const { return dtype_; }
  nnfast::LossKind loss() const { return loss_; }
  // Built with optimizer slots, to train; without, it only predicts and writes no record's
  // array (read-only weights are fine then, as on the other backends).
  bool trains() const { return has_slots_; }
  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  // The output width, known once the records are read.
  void set_out(int64_t out) { out_ = out; }

  // X (rows, in) of the model's dtype.
  py::array features(py::handle obj) const {
    py::array X = ndarray(obj, "X");
    check_dtype(X, "X", dtype_);
    check_ndim(X, "X", 2);
    check_layout(X, "X");
    if (X.shape(1) != in_)
      throw py::value_error("X: expected " + std::to_string(in_) + " features, got shape " +
                            shape_str(shape_of(X)));
    return X;
  }

  // Targets of a data set of `rows` rows: int64 labels (rows) in [0, out) for cross-entropy
  // (only the labels of rows `only` are checked, when given), else (rows, out) floats.
  py::array targets(py::handle obj, int64_t rows, const py::array* only = nullptr) const {
    if (loss_ != nnfast::LossKind::cross_entropy)
      return input_like(obj, "targets", dtype_, {rows, out_});
    py::array targets = ndarray(obj, "targets");
    if (!has_dtype<int64_t>(targets))
      throw py::type_error("targets: cross-entropy labels must be int64, got dtype " +
                           std::string(py::str(targets.dtype())));
    if (only == nullptr) return labels(targets, "targets", rows, out_);
    check_shape(targets, "targets", {rows});
    check_layout(targets, "targets");
    const int64_t* y = static_cast<const int64_t*>(targets.data());
    const int64_t* idx = static_cast<const int64_t*>(only->data());
    for (py::ssize_t i = 0; i < only->shape(0); ++i)
      if (y[idx[i]] < 0 || y[idx[i]] >= out_)
        throw py::value_error("targets: label " + std::to_string(y[idx[i]]) + " outside [0, " +
                              std::to_string(out_) + ")");
    return targets;
  }

  // The loss's per-class weights, (out) of the model's dtype: torch's weight= of
  // cross-entropy or pos_weight of bce_with_logits; MSE has none.
  py::array class_weight(py::handle obj, int64_t out) const {
    if (loss_ == nnfast::LossKind::mse)
      throw py::value_error("class_weight: the mse loss has no per-class weights");
    return input_like(obj, "class_weight", dtype_, {out});
  }

  // Per-sample loss weights of a data set of `rows` rows, (rows) of the model's dtype.
  py::array sample_weight(py::handle obj, int64_t rows) const {
    return input_like(obj, "sample_weight", dtype_, {rows});
  }

  // The row indices of one training step into a data set of `rows` rows (none, where
  // allow_empty: a data-parallel process's share of a small global batch).
  py::array step_rows(py::handle idx_obj, int64_t rows, bool allow_empty = false) const {
    if (!has_slots_) throw py::value_error("step: this trainer was built without optimizer slots");
    py::array idx = row_indices(idx_obj, "idx", rows, allow_empty);
    if (has_batchnorm_ && idx.shape(0) < 2 && !(allow_empty && idx.shape(0) == 0))
      throw py::value_error("idx: batch norm in training mode needs at least 2 samples per "
                            "batch, got a batch of " + std::to_string(idx.shape(0)));
    return idx;
  }

  // An epoch's n rows (step_rows' checks passed), cut into batches of batch_size rows (the
  // last one shorter where n is not a multiple): each batch can train.
  void check_epoch_batches(int64_t n, int64_t batch_size) const {
    if (batch_size < 1)
      throw py::value_error("batch_size: must be at least 1, got " + std::to_string(batch_size));
    const int64_t last = n % batch_size == 0 ? batch_size : n % batch_size;
    if (has_batchnorm_ && std::min(batch_size, last) < 2)
      throw py::value_error("order: batch norm in training mode needs at least 2 samples per "
                            "batch; " + std::to_string(n) + " rows in batches of " +
                            std::to_string(batch_size) + " leave a batch of 1");
  }

  // predict's result array, (batch, out), apart from X.
  py::array predictions(py::handle out_obj, const py::array& X) const {
    py::array out = output(out_obj, "out", dtype_, {X.shape(0), out_});
    check_no_overlap(out, "out", X, "X", false);
    return out;
  }

 private:
  nnfast::LossKind loss_;
  bool has_slots_;
  bool has_batchnorm_ = false;
  DType dtype_ = DType::f32;
  int64_t in_ = 0, out_ = 0;
};

// A step's result as Python sees it: (loss, correct count or None).
inline py::tuple step_result(const nnfast::StepResult& r) {
  return py::make_tuple(r.loss, r.correct < 0 ? py::object(py::none()) : py::int_(r.correct));
}

// A trainer made by `make`, with the trainer's refusal of the records as a ValueError.
template <typename Make>
auto build_trainer(Make&& make) {
  try {
    return make();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string("ops: ") + e.what());
  }
}

}  // namespace nnfast::bindings
