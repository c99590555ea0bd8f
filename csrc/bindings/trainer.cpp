// The fused training step on the CPU: the one trainer (train/trainer.h) over the CPU kernel
// table, built from the op records (nnfast/fused.py drives it).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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
#include "bindings/register.h"
#include "train/cpu_kernels.h"
#include "train/op_spec.h"
#include "train/trainer.h"

namespace nnfast::bindings {

namespace {

// Holds the trainer and a reference to every array it writes into, so Python cannot free
// them while it lives. Calls are serialized: a trainer has one set of workspaces.
class TrainerBinding {
 public:
  TrainerBinding(py::list ops, int loss, py::list slots)
      : loss_(static_cast<nnfast::LossKind>(loss)), has_slots_(!slots.empty()) {
    if (loss < 0 || loss > static_cast<int>(nnfast::LossKind::bce_with_logits))
      throw py::value_error("loss: unknown loss code " + std::to_string(loss));
    const RecordsShape shape = records_shape(ops);
    dtype_ = shape.dtype;
    in_ = shape.in;
    for (py::handle op : ops)
      if (static_cast<nnfast::OpKind>(op.attr("code").cast<int>()) == nnfast::OpKind::batchnorm)
        has_batchnorm_ = true;
    by_dtype(dtype_, [&](auto tag) {
      using T = decltype(tag);
      auto place = [&](py::handle obj, const char* name, const Shape& s) {
        py::array a = inout(obj, name, dtype_, s);
        keep_alive_.append(a);
        return ptr<T>(a);
      };
      std::vector<nnfast::OpSpec<T>> specs = read_op_records<T>(ops, slots, in_, place);
      for (py::handle op : ops) keep_alive_.append(op);
      auto made = make_trainer(specs);
      out_ = made->out_width();
      if constexpr (std::is_same_v<T, float>) f32_ = std::move(made);
      else f64_ = std::move(made);
    });
  }

  py::tuple step(py::handle X_obj, py::handle targets_obj, py::handle idx_obj, py::handle rule) {
    if (!has_slots_) throw py::value_error("step: this trainer was built without optimizer slots");
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
    const nnfast::UpdateRule r = read_update_rule(rule);
    const void* x = X.data();
    const void* t = targets.data();
    const nnfast::StepResult result = without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      return by_dtype(dtype_, [&](auto tag) {
        using T = decltype(tag);
        return trainer<T>()->step(static_cast<const T*>(x), t, rows_ptr, batch, r);
      });
    });
    return py::make_tuple(result.loss, result.correct < 0 ? py::object(py::none())
                                                          : py::int_(result.correct));
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
  template <typename T>
  using CpuTrainer = nnfast::Trainer<nnfast::CpuKernels, T>;

  template <typename T>
  std::unique_ptr<CpuTrainer<T>> make_trainer(const std::vector<nnfast::OpSpec<T>>& specs) {
    try {
      return std::make_unique<CpuTrainer<T>>(specs, loss_);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(std::string("ops: ") + e.what());
    }
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
  CpuTrainer<T>* trainer() {
    if constexpr (std::is_same_v<T, float>) return f32_.get();
    else return f64_.get();
  }

  DType dtype_ = DType::f32;
  nnfast::LossKind loss_;
  bool has_slots_;
  bool has_batchnorm_ = false;
  int64_t in_ = 0, out_ = 0;
  py::list keep_alive_;
  std::mutex mutex_;
  std::unique_ptr<CpuTrainer<float>> f32_;
  std::unique_ptr<CpuTrainer<double>> f64_;
};

}  // namespace

void register_trainer(py::module_& m) {
  py::class_<TrainerBinding>(m, "Trainer",
                             "One C++ call per batch: gather, forward, loss, backward, update")
      .def(py::init<py::list, int, py::list>(), py::arg("ops"), py::arg("loss"),
           py::arg("slots"),
           "ops: typed op records (nnfast/nn/ops.py); loss: a code of ops.LOSS_CODES; slots: "
           "the optimizer's state per parameter (nnfast/optim/rules.py), empty to predict only")
      .def("step", &TrainerBinding::step, py::arg("X"), py::arg("targets"), py::arg("idx"),
           py::arg("rule"), "(loss, correct count or None) of one training step on rows idx")
      .def("predict", &TrainerBinding::predict, py::arg("X"), py::arg("out") = py::none());
}

}  // namespace nnfast::bindings
