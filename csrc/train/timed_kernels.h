// A kernel table that times its base table's kernels by phase, for the profiling trainer
// (_core.ProfilingTrainer): Trainer<TimedKernels<CpuKernels>, T> runs the same kernels in
// the same order as the production Trainer<CpuKernels, T>, and adds each call's wall time
// (steady_clock, on the calling thread, around the whole parallel kernel) to the phase it
// belongs to. The production trainer is a separate instantiation and pays nothing.
//
// Kernels this table does not wrap (copies, dropout, batch norm, residual adds, and any the
// base table gains later) are inherited untimed: they fall into "other", which the reader
// takes as the step's time less every timed phase, so the phases always add up to the step.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include "gemm/gemm.h"

namespace nnfast {

// Seconds spent per phase, summed over the steps since the last reset.
struct PhaseTimes {
  double gemm_forward = 0.0;  // x W (+ the fused bias and activation epilogue)
  double gemm_dx = 0.0;       // dY W^T: input gradients (B transposed)
  double gemm_dw = 0.0;       // X^T dY: weight gradients (A transposed)
  double activation = 0.0;    // activations not fused into a GEMM, forward and backward
  double loss = 0.0;          // loss forward and gradient, and counting correct predictions
  double bias_grad = 0.0;
  double optimizer = 0.0;     // the update, weight penalties and gradient clipping
  double gather = 0.0;        // the batch's rows, labels, targets and sample weights
  double step = 0.0;          // whole trainer calls (step, gradients, update)
  int64_t steps = 0;
};

// Where the calling thread's timed kernels add their time: the PhaseTimes of the trainer
// call in progress on this thread, or null (no timed call in progress: nothing is recorded).
inline thread_local PhaseTimes* phase_sink = nullptr;

// Adds the wall time of its own lifetime to one phase of the current sink.
class PhaseClock {
 public:
  explicit PhaseClock(double PhaseTimes::*phase)
      : phase_(phase), start_(std::chrono::steady_clock::now()) {}
  ~PhaseClock() {
    if (phase_sink != nullptr)
      phase_sink->*phase_ += std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                           start_).count();
  }
  PhaseClock(const PhaseClock&) = delete;
  PhaseClock& operator=(const PhaseClock&) = delete;

 private:
  double PhaseTimes::*phase_;
  std::chrono::steady_clock::time_point start_;
};

template <typename Base>
struct TimedKernels : Base {
  // The trainer's three products tell apart by their transposes: forward x W, weight
  // gradient X^T dY, input gradient dY W^T.
  template <typename T>
  static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                   const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                   const GemmEpilogue<T>& epilogue) {
    PhaseClock clock(trans_a   ? &PhaseTimes::gemm_dw
                     : trans_b ? &PhaseTimes::gemm_dx
                               : &PhaseTimes::gemm_forward);
    Base::template gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                           epilogue);
  }

  template <typename T, typename... Args>
  static void activation_forward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::activation);
    Base::template activation_forward<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void activation_backward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::activation);
    Base::template activation_backward<T>(std::forward<Args>(args)...);
  }

  template <typename T, typename... Args>
  static auto softmax_cross_entropy_forward_sparse(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    return Base::template softmax_cross_entropy_forward_sparse<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void softmax_cross_entropy_backward_sparse(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    Base::template softmax_cross_entropy_backward_sparse<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static auto mse_forward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    return Base::template mse_forward<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void mse_backward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    Base::template mse_backward<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static auto bce_with_logits_forward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    return Base::template bce_with_logits_forward<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void bce_with_logits_backward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    Base::template bce_with_logits_backward<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static auto count_argmax_hits(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    return Base::template count_argmax_hits<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static auto count_sign_hits(Args&&... args) {
    PhaseClock clock(&PhaseTimes::loss);
    return Base::template count_sign_hits<T>(std::forward<Args>(args)...);
  }

  template <typename T, typename... Args>
  static void bias_grad(Args&&... args) {
    PhaseClock clock(&PhaseTimes::bias_grad);
    Base::template bias_grad<T>(std::forward<Args>(args)...);
  }

  template <typename T, typename... Args>
  static void sgd_update(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    Base::template sgd_update<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void adam_update(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    Base::template adam_update<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void weight_penalty_backward(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    Base::template weight_penalty_backward<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static auto sum_squares(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    return Base::template sum_squares<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static auto sum_abs(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    return Base::template sum_abs<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void scale_inplace(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    Base::template scale_inplace<T>(std::forward<Args>(args)...);
  }
  template <typename T, typename... Args>
  static void clip_inplace(Args&&... args) {
    PhaseClock clock(&PhaseTimes::optimizer);
    Base::template clip_inplace<T>(std::forward<Args>(args)...);
  }

  template <typename T>
  static void gather_rows(T* out, const T* X, const int64_t* idx, int64_t batch, int64_t cols) {
    PhaseClock clock(&PhaseTimes::gather);
    Base::template gather_rows<T>(out, X, idx, batch, cols);
  }
};

// Times one whole trainer call into `times` while it lives, and makes `times` the sink of
// the timed kernels it runs. For a kernel table that is not timed it does nothing.
template <typename K>
class StepClock {
 public:
  explicit StepClock(PhaseTimes&) {}
};

template <typename Base>
class StepClock<TimedKernels<Base>> {
 public:
  explicit StepClock(PhaseTimes& times)
      : times_(times), outer_(phase_sink), start_(std::chrono::steady_clock::now()) {
    phase_sink = &times_;
  }
  ~StepClock() {
    times_.step +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    ++times_.steps;
    phase_sink = outer_;
  }
  StepClock(const StepClock&) = delete;
  StepClock& operator=(const StepClock&) = delete;

 private:
  PhaseTimes& times_;
  PhaseTimes* outer_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace nnfast
