// The fused training step on the CPU: the one trainer (train/trainer.h) over the CPU kernel
// table, built from the op records (nnfast/fused.py drives it); and the same trainer over
// the timed kernel table (train/timed_kernels.h), _core.ProfilingTrainer, which also reports
// where its steps' time went.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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
#include "train/timed_kernels.h"
#include "train/trainer.h"

namespace nnfast::bindings {

namespace {

// x (n): whether no value is NaN or infinite. A value's magnitude bits, read as an integer,
// order as the magnitudes do, and infinity's are the smallest of the non-finite ones: one
// running maximum, which vectorizes, without a branch per value.
template <typename T>
bool all_finite(const T* x, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits magnitude = ~(Bits{1} << (8 * sizeof(T) - 1));
  const T inf = std::numeric_limits<T>::infinity();
  Bits inf_bits, largest = 0;
  std::memcpy(&inf_bits, &inf, sizeof inf_bits);
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof b);
    b &= magnitude;
    largest = b > largest ? b : largest;
  }
  return largest < inf_bits;
}

// Holds the trainer over kernel table K and a reference to every array it writes into, so
// Python cannot free them while it lives. Calls are serialized: a trainer has one set of
// workspaces.
template <typename K>
class TrainerBinding {
 public:
  TrainerBinding(py::list ops, int loss, py::list slots, py::object class_weight)
      : shape_(ops, loss, slots) {
    by_dtype(shape_.dtype(), [&](auto tag) {
      using T = decltype(tag);
      auto place = [&](py::handle obj, const char* name, const Shape& s) {
        py::array a = shape_.trains() ? inout(obj, name, shape_.dtype(), s)
                                      : input_like(obj, name, shape_.dtype(), s);
        keep_alive_.append(a);
        // The specs hold writable pointers for training; predict writes through none.
        return shape_.trains() ? ptr<T>(a) : const_cast<T*>(cptr<T>(a));
      };
      const std::vector<nnfast::OpSpec<T>> specs = read_op_records<T>(ops, slots, shape_.in(),
                                                                      place);
      for (py::handle op : ops) keep_alive_.append(op);  // the dropout counters they hold
      const T* weights = nullptr;
      if (!class_weight.is_none()) {
        py::array cw = shape_.class_weight(class_weight, specs.empty() ? 0 : specs.back().out);
        keep_alive_.append(cw);
        weights = cptr<T>(cw);
      }
      auto made = build_trainer(
          [&] { return std::make_unique<CpuTrainer<T>>(specs, shape_.loss(), weights); });
      shape_.set_out(made->out_width());
      if constexpr (std::is_same_v<T, float>) f32_ = std::move(made);
      else f64_ = std::move(made);
    });
  }

  // X (rows, in), targets (rows) or (rows, out), idx (batch), sample_weight (rows) or None:
  // one step on rows idx.
  py::tuple step(py::handle X_obj, py::handle targets_obj, py::handle idx_obj, py::handle rule,
                 py::handle sample_weight) {
    const Batch b = read_batch(X_obj, targets_obj, idx_obj, sample_weight, false);
    const nnfast::UpdateRule r = read_update_rule(rule);
    return step_result(without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      const nnfast::StepClock<K> clock(times_);
      return by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        return trainer<T>()->step(b.template x<T>(), b.targets.data(), b.rows(), b.size(), r,
                                  b.template sample_weight<T>());
      });
    }));
  }

  // An epoch's steps in one call, without the GIL or a Python call between batches: step()
  // on each batch of batch_size rows of `order` (rows of X; the last batch may be shorter)
  // from batch first_batch on, Adam's step count going on from the rule's. Stops after the
  // first batch whose loss is not finite, whose update is made, as step() makes it, or
  // after the batch that ends max_seconds (> 0) of them, so that the caller can see to
  // Ctrl-C. kept: None, or (sources, even, odd), where the arrays batch i starts from go,
  // as keep_previous() puts them: into even[j] for an even i, odd[j] for an odd one
  // (TerminateOnNaN's weights of the last two batches). Returns (the loss of each batch
  // run, float64; the correct count or None).
  py::tuple steps(py::handle X_obj, py::handle targets_obj, py::handle order_obj,
                  int64_t batch_size, py::handle rule, py::handle sample_weight,
                  py::handle kept, int64_t first_batch, double max_seconds) {
    const Batch b = read_batch(X_obj, targets_obj, order_obj, sample_weight, false);
    shape_.check_epoch_batches(b.size(), batch_size);
    const nnfast::UpdateRule first_rule = read_update_rule(rule);
    std::vector<KeptArray> keep;
    if (!kept.is_none()) {
      const auto lists = kept.cast<py::tuple>();
      if (lists.size() != 3) throw py::value_error("kept: expected (sources, even, odd)");
      const auto sources = lists[0].cast<py::list>(), even = lists[1].cast<py::list>(),
                 odd = lists[2].cast<py::list>();
      if (even.size() != sources.size() || odd.size() != sources.size())
        throw py::value_error("kept: " + std::to_string(sources.size()) + " sources for " +
                              std::to_string(even.size()) + " and " +
                              std::to_string(odd.size()) + " targets");
      for (size_t i = 0; i < sources.size(); ++i) {
        auto [source, to_even] = kept_pair(sources[i], even[i]);
        py::array to_odd = kept_pair(sources[i], odd[i]).second;
        check_no_overlap(to_odd, "an odd batch's target", to_even, "an even batch's target",
                         false);
        keep.push_back({source.data(), to_even.mutable_data(), to_odd.mutable_data(),
                        static_cast<size_t>(source.nbytes())});
      }
    }
    const int64_t n = b.size();
    const int64_t batches = (n + batch_size - 1) / batch_size;
    if (first_batch < 0 || first_batch >= batches)
      throw py::value_error("first_batch: " + std::to_string(first_batch) + " is not one of the " +
                            std::to_string(batches) + " batches");
    if (!(max_seconds > 0.0))
      throw py::value_error("max_seconds: must be positive, got " + std::to_string(max_seconds));
    std::vector<double> loss;
    loss.reserve(batches - first_batch);
    int64_t correct = 0;
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(
                                                 std::min(max_seconds, 1e9)));
    without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        nnfast::UpdateRule r = first_rule;
        for (int64_t i = first_batch; i < batches; ++i) {
          for (const KeptArray& k : keep) {
            T* target = static_cast<T*>(i % 2 == 0 ? k.even : k.odd);
            if (!trainer<T>()->keep_previous(static_cast<const T*>(k.source), target))
              std::memcpy(target, k.source, k.bytes);
          }
          const int64_t first = i * batch_size;
          const nnfast::StepClock<K> clock(times_);
          const nnfast::StepResult result = trainer<T>()->step(
              b.template x<T>(), b.targets.data(), b.rows() + first,
              std::min(batch_size, n - first), r, b.template sample_weight<T>());
          loss.push_back(result.loss);
          correct = result.correct < 0 ? -1 : correct + result.correct;
          ++r.step;
          if (!std::isfinite(result.loss) || Clock::now() >= deadline) break;
        }
      });
    });
    py::array_t<double> losses(static_cast<py::ssize_t>(loss.size()));
    std::copy(loss.begin(), loss.end(), losses.mutable_data());
    return py::make_tuple(losses, correct < 0 ? py::object(py::none()) : py::int_(correct));
  }

  // The first half of a data-parallel step: forward, loss and backward on rows idx of
  // (X, targets), which are rows [first, first + len(idx)) of a global batch of `total`
  // rows, with sample_weight as step(); the gradients are left for update(). idx may be
  // empty.
  py::tuple gradients(py::handle X_obj, py::handle targets_obj, py::handle idx_obj,
                      int64_t first, int64_t total, py::handle sample_weight) {
    const Batch b = read_batch(X_obj, targets_obj, idx_obj, sample_weight, true);
    if (first < 0 || first + b.size() > total)
      throw py::value_error("gradients: rows [" + std::to_string(first) + ", " +
                            std::to_string(first + b.size()) + ") lie outside a global batch of " +
                            std::to_string(total) + " rows");
    const nnfast::RowWindow window{first, total};
    return step_result(without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      const nnfast::StepClock<K> clock(times_);
      return by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        return trainer<T>()->gradients(b.template x<T>(), b.targets.data(), b.rows(), b.size(),
                                       window, b.template sample_weight<T>());
      });
    }));
  }

  // The second half: clipping and the optimizer update of every parameter, from the
  // gradients as they are now (summed across processes by the caller).
  void update(py::handle rule) {
    const nnfast::UpdateRule r = read_update_rule(rule);
    without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      const nnfast::StepClock<K> clock(times_);
      by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        trainer<T>()->update(r);
      });
    });
  }

  // Each sources[i] copied into targets[i] (same dtype, shape, C-contiguous, writable)
  // before the next step() or update() changes it: a parameter's right before its update
  // reads it (Trainer::keep_previous), anything else (batch norm's running statistics,
  // which the forward changes) now.
  void keep_previous(const py::list& sources, const py::list& targets) {
    if (sources.size() != targets.size())
      throw py::value_error("keep_previous: " + std::to_string(sources.size()) + " sources for " +
                            std::to_string(targets.size()) + " targets");
    py::list kept;
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < sources.size(); ++i) {
      auto [source, target] = kept_pair(sources[i], targets[i]);
      by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if (!trainer<T>()->keep_previous(cptr<T>(source), ptr<T>(target)))
          std::memcpy(target.mutable_data(), source.data(), source.nbytes());
      });
      kept.append(target);
    }
    pending_previous_ = kept;  // written by the next update: alive until then
  }

  // The eval-mode outputs of X where X can run as it is: an ndarray of the model's dtype,
  // C-contiguous and aligned, (in) for one sample or (rows, in) with 1 <= rows <= max_rows,
  // every value finite; gives (out) or (rows, out). None for anything else, raising nothing:
  // the caller's checks (nnfast/train.py check_inputs) then convert X or say what is wrong
  // with it. One call instead of those checks and predict(), which cost several times the
  // forward of one sample.
  py::object predict_ready(py::handle X_obj, int64_t max_rows) {
    if (!py::isinstance<py::array>(X_obj)) return py::none();
    const auto X = py::reinterpret_borrow<py::array>(X_obj);
    const int64_t in = shape_.in();
    const bool single = X.ndim() == 1 && X.shape(0) == in;
    const bool batch = X.ndim() == 2 && X.shape(1) == in && X.shape(0) >= 1 &&
                       X.shape(0) <= max_rows;
    const bool of_dtype = shape_.dtype() == DType::f32 ? has_dtype<float>(X)
                                                       : has_dtype<double>(X);
    if (!(single || batch) || !of_dtype || !(X.flags() & py::array::c_style) ||
        reinterpret_cast<std::uintptr_t>(X.data()) % X.itemsize() != 0)
      return py::none();
    const int64_t rows = single ? 1 : X.shape(0);
    py::array out = single ? new_array(shape_.dtype(), {shape_.out()})
                           : new_array(shape_.dtype(), {rows, shape_.out()});
    const void* x = X.data();
    void* y = out.mutable_data();
    const bool finite = without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      return by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        if (!all_finite(static_cast<const T*>(x), rows * in)) return false;
        trainer<T>()->predict(static_cast<const T*>(x), rows, static_cast<T*>(y));
        return true;
      });
    });
    return finite ? py::object(std::move(out)) : py::object(py::none());
  }

  // X (batch, in), out (batch, out) or None: eval mode.
  py::array predict(py::handle X_obj, py::handle out_obj) {
    py::array X = shape_.features(X_obj);
    py::array out = shape_.predictions(out_obj, X);
    const int64_t batch = X.shape(0);
    if (batch == 0) return out;
    const void* x = X.data();
    void* y = out.mutable_data();
    without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      by_dtype(shape_.dtype(), [&](auto tag) {
        using T = decltype(tag);
        trainer<T>()->predict(static_cast<const T*>(x), batch, static_cast<T*>(y));
      });
    });
    return out;
  }

  // The phase times summed over the step(), gradients() and update() calls since the last
  // reset_times(); all zero unless K is timed.
  nnfast::PhaseTimes times() {
    std::lock_guard<std::mutex> lock(mutex_);
    return times_;
  }
  void reset_times() {
    std::lock_guard<std::mutex> lock(mutex_);
    times_ = nnfast::PhaseTimes{};
  }

 private:
  // One batch's checked arguments; the arrays stay referenced while the kernels read them.
  struct Batch {
    py::array X, idx, targets, weights;  // weights: empty (not None) when absent
    bool weighted = false;

    int64_t size() const { return idx.shape(0); }
    const int64_t* rows() const { return cptr<int64_t>(idx); }
    template <typename T>
    const T* x() const { return static_cast<const T*>(X.data()); }
    template <typename T>
    const T* sample_weight() const {
      return weighted ? static_cast<const T*>(weights.data()) : nullptr;
    }
  };

  Batch read_batch(py::handle X_obj, py::handle targets_obj, py::handle idx_obj,
                   py::handle sample_weight, bool allow_empty) {
    Batch b;
    b.X = shape_.features(X_obj);
    const int64_t rows = b.X.shape(0);
    b.idx = shape_.step_rows(idx_obj, rows, allow_empty);
    b.targets = shape_.targets(targets_obj, rows, &b.idx);
    b.weighted = !sample_weight.is_none();
    if (b.weighted) b.weights = shape_.sample_weight(sample_weight, rows);
    return b;
  }

  // A source of keep_previous() or steps() and one of its targets, checked.
  std::pair<py::array, py::array> kept_pair(py::handle source_obj, py::handle target_obj) const {
    py::array source = ndarray(source_obj, "source");
    check_dtype(source, "source", shape_.dtype());
    check_layout(source, "source");
    py::array target = inout(target_obj, "target", shape_.dtype(), shape_of(source));
    check_no_overlap(target, "target", source, "source", false);
    return {source, target};
  }

  // One of steps()' kept arrays: where its values go before an even and an odd batch.
  struct KeptArray {
    const void* source;
    void* even;
    void* odd;
    size_t bytes;
  };

  template <typename T>
  using CpuTrainer = nnfast::Trainer<K, T>;

  template <typename T>
  CpuTrainer<T>* trainer() {
    if constexpr (std::is_same_v<T, float>) return f32_.get();
    else return f64_.get();
  }

  TrainerShape shape_;
  py::list keep_alive_;
  py::list pending_previous_;
  std::mutex mutex_;
  std::unique_ptr<CpuTrainer<float>> f32_;
  std::unique_ptr<CpuTrainer<double>> f64_;
  nnfast::PhaseTimes times_;
};

using ProductionBinding = TrainerBinding<nnfast::CpuKernels>;
using ProfilingBinding = TrainerBinding<nnfast::TimedKernels<nnfast::CpuKernels>>;

// The methods both trainers share, under the production trainer's names and arguments.
template <typename Binding>
py::class_<Binding> define_trainer(py::module_& m, const char* name, const char* doc) {
  return py::class_<Binding>(m, name, doc)
      .def(py::init<py::list, int, py::list, py::object>(), py::arg("ops"), py::arg("loss"),
           py::arg("slots"), py::arg("class_weight") = py::none(),
           "ops: typed op records (nnfast/nn/ops.py); loss: a code of ops.LOSS_CODES; slots: "
           "the optimizer's state per parameter (nnfast/optim/rules.py), empty to predict only; "
           "class_weight: the loss's per-class weights (out,) or None")
      .def("step", &Binding::step, py::arg("X"), py::arg("targets"), py::arg("idx"),
           py::arg("rule"), py::arg("sample_weight") = py::none(),
           "(loss, correct count or None) of one training step on rows idx; sample_weight: "
           "(rows,) loss weights of the data set, or None")
      .def("steps", &Binding::steps, py::arg("X"), py::arg("targets"), py::arg("order"),
           py::arg("batch_size"), py::arg("rule"), py::arg("sample_weight") = py::none(),
           py::arg("kept") = py::none(), py::arg("first_batch") = 0,
           py::arg("max_seconds") = std::numeric_limits<double>::infinity(),
           "(losses, correct count or None) of the steps on the batches of order from "
           "first_batch on, in one call; stops after the first batch whose loss is not finite "
           "or the batch that ends max_seconds. kept: None or (sources, even, odd), where the "
           "arrays each batch starts from go (into even for even batches, odd for odd ones)")
      .def("gradients", &Binding::gradients, py::arg("X"), py::arg("targets"),
           py::arg("idx"), py::arg("first"), py::arg("total"),
           py::arg("sample_weight") = py::none(),
           "(loss, correct count or None) of rows idx, which are rows [first, first + len(idx)) "
           "of a global batch of total rows; leaves the gradients for update()")
      .def("update", &Binding::update, py::arg("rule"),
           "clip the gradients and update every parameter by the rule")
      .def("keep_previous", &Binding::keep_previous, py::arg("sources"), py::arg("targets"),
           "copy each source into its target before the next step or update changes it: a "
           "parameter right before its update, anything else now")
      .def("predict", &Binding::predict, py::arg("X"), py::arg("out") = py::none())
      .def("predict_ready", &Binding::predict_ready, py::arg("X"), py::arg("max_rows"),
           "the eval-mode outputs of X, (out) or (rows, out), when X is a finite C-contiguous "
           "(in) or (rows, in) array of the model's dtype with rows <= max_rows; else None");
}

}  // namespace

void register_trainer(py::module_& m) {
  define_trainer<ProductionBinding>(
      m, "Trainer", "One C++ call per batch: gather, forward, loss, backward, update");

  using Times = nnfast::PhaseTimes;
  py::class_<Times>(m, "PhaseTimes",
                    "seconds per phase of a ProfilingTrainer's calls, summed since its last "
                    "reset_times(); 'other' is step less every phase named here")
      .def_readonly("gemm_forward", &Times::gemm_forward, "x W, with its fused epilogue")
      .def_readonly("gemm_dx", &Times::gemm_dx, "dY W^T: input gradients")
      .def_readonly("gemm_dw", &Times::gemm_dw, "X^T dY: weight gradients")
      .def_readonly("activation", &Times::activation,
                    "activations outside a GEMM epilogue, forward and backward")
      .def_readonly("loss", &Times::loss, "loss and its gradient, correct counts")
      .def_readonly("bias_grad", &Times::bias_grad)
      .def_readonly("optimizer", &Times::optimizer, "update, penalties, clipping")
      .def_readonly("gather", &Times::gather, "the batch's rows, labels and weights")
      .def_readonly("step", &Times::step, "whole trainer calls")
      .def_readonly("steps", &Times::steps, "trainer calls timed");

  define_trainer<ProfilingBinding>(
      m, "ProfilingTrainer",
      "Trainer with the same arguments and results, whose kernels are timed by phase "
      "(profiling only: the timers cost a little on every kernel call)")
      .def("times", &ProfilingBinding::times, "the PhaseTimes since the last reset_times()")
      .def("reset_times", &ProfilingBinding::reset_times);
}

}  // namespace nnfast::bindings
