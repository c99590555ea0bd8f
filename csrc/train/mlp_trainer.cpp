#include "train/mlp_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "common/activation.h"
#include "common/parallel.h"
#include "common/threading.h"
#include "kernels/norms.h"
#include "kernels/optimizers.h"

namespace nnfast {

namespace {
constexpr int64_t kMinRowsPerThread = 16;
constexpr int64_t kMinElementsPerThread = 1 << 14;
// As torch's clip_grad_norm_ (nnfast/optim/clip.py): a norm just at max_norm is left alone.
constexpr double kClipNormEps = 1e-6;
}  // namespace

template <typename T>
MlpTrainer<T>::MlpTrainer(std::vector<std::unique_ptr<TrainOp<T>>> ops, LossKind loss)
    : ops_(std::move(ops)), loss_(loss) {
  first_trained_ = ops_.size();
  for (size_t i = 0; i < ops_.size(); ++i)
    if (!ops_[i]->params().empty()) {
      first_trained_ = i;
      break;
    }
}

template <typename T>
void MlpTrainer<T>::reserve(int64_t batch) {
  if (batch <= capacity_) return;
  int64_t widest = ops_.front()->in_width();
  input_.reserve(batch * ops_.front()->in_width());
  for (auto& op : ops_) {
    widest = std::max(widest, op->out_width());
    op->reserve(batch);
  }
  grad_a_.reserve(batch * widest);
  grad_b_.reserve(batch * widest);
  row_loss_.reserve(batch);
  row_correct_.reserve(batch);
  capacity_ = batch;
}

// x0 (batch, in) -> the last op's output (batch, out).
template <typename T>
const T* MlpTrainer<T>::forward(const T* x0, int64_t batch, bool training) {
  const T* x = x0;
  for (auto& op : ops_) x = op->forward(x, batch, training);
  return x;
}

// From the last op's output (batch, C) and the targets: the batch-mean loss, the count
// of correct predictions, and d loss / d output written into grad_a_ (batch, C).
template <typename T>
StepResult MlpTrainer<T>::loss_and_gradient(const T* out, const void* targets,
                                            const int64_t* idx, int64_t batch) {
  const int64_t C = ops_.back()->out_width();
  T* grad = grad_a_.data();
  double* row_loss = row_loss_.data();
  int64_t* row_correct = row_correct_.data();
  const int threads = threads_for(batch, kMinRowsPerThread);

  if (loss_ == LossKind::cross_entropy) {
    const int64_t* labels = static_cast<const int64_t*>(targets);
    const T inv_batch = T(1) / T(batch);
    parallel_tasks(batch, threads, [&](int64_t i) {
      const T* z = out + i * C;
      T* g = grad + i * C;
      const int64_t label = labels[idx[i]];
      int64_t argmax = 0;
      for (int64_t j = 1; j < C; ++j)
        if (z[j] > z[argmax]) argmax = j;
      const T zmax = z[argmax];
      T sum = T(0);
      for (int64_t j = 0; j < C; ++j) {
        g[j] = std::exp(z[j] - zmax);
        sum += g[j];
      }
      const T scale = inv_batch / sum;
      for (int64_t j = 0; j < C; ++j) g[j] *= scale;
      g[label] -= inv_batch;
      row_loss[i] = static_cast<double>(std::log(sum) + zmax - z[label]);
      row_correct[i] = argmax == label;
    });
  } else {
    const T* t_all = static_cast<const T*>(targets);
    const T inv_count = T(1) / T(batch * C);
    const bool logits = loss_ == LossKind::bce_with_logits;
    parallel_tasks(batch, threads, [&](int64_t i) {
      const T* z = out + i * C;
      const T* t = t_all + idx[i] * C;
      T* g = grad + i * C;
      double loss = 0.0;
      int64_t correct = 0;
      for (int64_t j = 0; j < C; ++j) {
        if (logits) {
          const T zj = z[j];
          loss += static_cast<double>(std::max(zj, T(0)) - zj * t[j] +
                                      std::log1p(std::exp(-std::abs(zj))));
          g[j] = (sigmoid_stable(zj) - t[j]) * inv_count;
          correct += (zj >= T(0)) == (t[j] >= T(0.5));
        } else {
          const T d = z[j] - t[j];
          loss += static_cast<double>(d * d);
          g[j] = T(2) * d * inv_count;
        }
      }
      row_loss[i] = loss;
      row_correct[i] = correct;
    });
  }
  // Summed in row order on one thread, so the loss does not depend on the thread count.
  double total = 0.0;
  int64_t correct = 0;
  for (int64_t i = 0; i < batch; ++i) {
    total += row_loss[i];
    correct += row_correct[i];
  }
  StepResult result;
  result.loss = loss_ == LossKind::cross_entropy ? total / batch : total / (batch * C);
  result.correct = loss_ == LossKind::mse ? -1 : correct;
  return result;
}

// The L1/L2 penalties on the weights as they are before this step's update, summed in
// parameter order as Sequential.penalty() does.
template <typename T>
double MlpTrainer<T>::penalty() const {
  double total = 0.0;
  for (const auto& op : ops_)
    for (const Param<T>& p : op->params())
      if (p.l1 != 0.0 || p.l2 != 0.0)
        total += p.l1 * sum_abs<T>(p.value, p.size) + p.l2 * sum_squares<T>(p.value, p.size);
  return total;
}

// clip_grad_norm: the norm of all gradients as one vector (each array's sum of squares in
// fixed chunks, arrays in parameter order), then every gradient scaled if it exceeds max_norm.
template <typename T>
void MlpTrainer<T>::clip_by_global_norm(double max_norm) const {
  double sum = 0.0;
  for (const auto& op : ops_)
    for (const Param<T>& p : op->params()) sum += sum_squares<T>(p.grad, p.size);
  const double scale = max_norm / (std::sqrt(sum) + kClipNormEps);
  if (!(scale < 1.0)) return;  // also for a NaN norm: nothing sensible to scale by
  for (const auto& op : ops_)
    for (const Param<T>& p : op->params()) scale_inplace<T>(p.grad, p.size, static_cast<T>(scale));
}

template <typename T>
void MlpTrainer<T>::update(const Param<T>& p, const OptimizerConfig& opt) const {
  if (opt.kind == OptimizerKind::adam) {
    AdamOptions adam;
    adam.lr = opt.lr;
    adam.beta1 = opt.beta1;
    adam.beta2 = opt.beta2;
    adam.eps = opt.eps;
    adam.weight_decay = opt.weight_decay;
    adam.step = opt.step;
    adam.decoupled = opt.decoupled;
    adam_update<T>(p.value, p.grad, p.state0, p.state1, p.size, adam);
  } else {
    SgdOptions sgd;
    sgd.lr = opt.lr;
    sgd.momentum = opt.momentum;
    sgd.nesterov = opt.nesterov;
    sgd.weight_decay = opt.weight_decay;
    sgd_update<T>(p.value, p.grad, opt.momentum != 0.0 ? p.state0 : nullptr, p.size, sgd);
  }
}

template <typename T>
StepResult MlpTrainer<T>::step(const T* X, const void* targets, const int64_t* idx,
                               int64_t batch, const OptimizerConfig& opt) {
  reserve(batch);
  const int64_t in0 = ops_.front()->in_width();
  T* x0 = input_.data();
  const int gather_threads = threads_for(batch * in0, kMinElementsPerThread);
  parallel_tasks(batch, gather_threads, [&](int64_t i) {
    std::memcpy(x0 + i * in0, X + idx[i] * in0, sizeof(T) * in0);
  });

  const T* out = forward(x0, batch, true);
  StepResult result = loss_and_gradient(out, targets, idx, batch);
  result.loss += penalty();

  // Each op's input gradient is computed before its update: it needs this step's weights.
  const bool deferred = opt.clipnorm > 0.0;
  T* dy = grad_a_.data();
  for (size_t i = ops_.size(); i-- > first_trained_;) {
    TrainOp<T>& op = *ops_[i];
    T* spare = dy == grad_a_.data() ? grad_b_.data() : grad_a_.data();
    dy = op.backward(dy, spare, batch, i > first_trained_);
    for (const Param<T>& p : op.params()) {
      if (p.l1 != 0.0 || p.l2 != 0.0)
        weight_penalty_backward<T>(p.grad, p.value, p.size, static_cast<T>(p.l1),
                                   static_cast<T>(2.0 * p.l2));
      if (deferred) continue;
      if (opt.clipvalue > 0.0)
        clip_inplace<T>(p.grad, p.size, static_cast<T>(-opt.clipvalue),
                        static_cast<T>(opt.clipvalue));
      update(p, opt);
    }
  }
  if (deferred) {
    clip_by_global_norm(opt.clipnorm);
    for (const auto& op : ops_)
      for (const Param<T>& p : op->params()) update(p, opt);
  }
  return result;
}

template <typename T>
void MlpTrainer<T>::predict(const T* X, int64_t batch, T* out) {
  reserve(batch);
  const T* y = forward(X, batch, false);
  std::memcpy(out, y, sizeof(T) * batch * ops_.back()->out_width());
}

template class MlpTrainer<float>;
template class MlpTrainer<double>;

}  // namespace nnfast
