// One training step of a lowered model in a single call, written once for every device (K,
// the kernel table, supplies the kernels): gather the batch, forward through the ops, the
// loss and its gradient by the same kernels as the loss primitives, backward, weight
// penalties, gradient clipping and the optimizer update. Without clipping by global norm
// each op's parameters are updated as soon as its gradients are ready (while they are in
// cache); clipping by norm needs every gradient first, so then the whole backward runs
// before the updates. The numbers are those of the layer-by-layer path: the same kernels in
// the same order.
//
// A data-parallel step (nnfast/distributed) runs in two calls, so that the caller can sum
// the gradients across processes between them: gradients() (forward, loss, backward and
// penalties, no update) and update() (clipping and the optimizer update of every parameter).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernels/loss_weights.h"
#include "train/op_spec.h"
#include "train/train_ops.h"

namespace nnfast {

template <typename K, typename T>
class Trainer {
 public:
  // specs chain: each op's input width is the previous op's output width; every
  // residual_begin has its residual_end later in the list, nested properly. class_weight
  // (out) in K's memory, the caller's, or null: the loss's per-class weights (torch's weight=
  // of cross-entropy, pos_weight of bce_with_logits; kernels/loss_weights.h).
  Trainer(const std::vector<OpSpec<T>>& specs, LossKind loss, const T* class_weight = nullptr)
      : loss_(loss), class_weight_(class_weight) {
    std::vector<ResidualBeginOp<K, T>*> open;
    for (const OpSpec<T>& spec : specs) {
      switch (spec.kind) {
        case OpKind::dense: ops_.push_back(std::make_unique<DenseOp<K, T>>(spec)); break;
        case OpKind::activation: ops_.push_back(std::make_unique<ActivationOp<K, T>>(spec)); break;
        case OpKind::dropout:
          ops_.push_back(std::make_unique<DropoutOp<K, T>>(spec, &rows_));
          break;
        case OpKind::batchnorm: ops_.push_back(std::make_unique<BatchNormOp<K, T>>(spec)); break;
        case OpKind::residual_begin: {
          auto begin = std::make_unique<ResidualBeginOp<K, T>>(spec);
          open.push_back(begin.get());
          ops_.push_back(std::move(begin));
          break;
        }
        case OpKind::residual_end:
          if (open.empty()) throw std::invalid_argument("a residual end without its begin");
          ops_.push_back(std::make_unique<ResidualEndOp<K, T>>(spec, open.back()));
          open.pop_back();
          break;
      }
    }
    if (!open.empty()) throw std::invalid_argument("a residual begin without its end");
    if (ops_.empty()) throw std::invalid_argument("no ops");
    first_trained_ = ops_.size();
    for (size_t i = 0; i < ops_.size(); ++i)
      if (!ops_[i]->params().empty()) {
        first_trained_ = i;
        break;
      }
  }

  int64_t in_width() const { return ops_.front()->in_width(); }
  int64_t out_width() const { return ops_.back()->out_width(); }

  // X (n_total, in), idx (batch): rows to train on; targets: int64 labels (n_total) for
  // cross-entropy, T (n_total, out) for mse and bce_with_logits; sample_weight (n_total) or
  // null: each sample's weight in the loss. X, targets, idx and sample_weight are in K's
  // memory.
  StepResult step(const T* X, const void* targets, const int64_t* idx, int64_t batch,
                  const UpdateRule& rule, const T* sample_weight = nullptr) {
    rows_ = RowWindow{};
    StepResult result = forward_and_loss(X, targets, sample_weight, idx, batch);
    // Each op's input gradient is computed before its update: it needs this step's weights.
    const bool deferred = rule.clipnorm > 0.0;
    backward(batch, [&](const Param<T>& p) {
      if (deferred) return;
      if (rule.clipvalue > 0.0) clip_value(p, rule.clipvalue);
      apply(p, rule);
    });
    if (deferred) {
      clip_by_global_norm(rule.clipnorm);
      for (const auto& op : ops_)
        for (const Param<T>& p : op->params()) apply(p, rule);
    }
    return result;
  }

  // The first half of a data-parallel step: as step() on this process's rows (window
  // `rows` of the global batch), leaving every gradient (penalties included) for update().
  // batch 0: this process has no rows of the global batch; its gradients are zero.
  StepResult gradients(const T* X, const void* targets, const int64_t* idx, int64_t batch,
                       const RowWindow& rows, const T* sample_weight = nullptr) {
    rows_ = rows;
    if (batch == 0) {
      for (const auto& op : ops_) {
        op->pass(rows.total);
        for (const Param<T>& p : op->params()) K::template fill_zero<T>(p.grad, p.size);
      }
      StepResult none;
      none.correct = loss_ == LossKind::mse ? -1 : 0;
      return none;
    }
    StepResult result = forward_and_loss(X, targets, sample_weight, idx, batch);
    backward(batch, [](const Param<T>&) {});
    return result;
  }

  // The second half: clip the gradients as the rule says and update every parameter.
  void update(const UpdateRule& rule) {
    if (rule.clipnorm > 0.0) clip_by_global_norm(rule.clipnorm);
    for (const auto& op : ops_)
      for (const Param<T>& p : op->params()) {
        if (rule.clipvalue > 0.0) clip_value(p, rule.clipvalue);
        apply(p, rule);
      }
  }

  // Where the next update of the parameter whose values are at `value` writes them as they
  // were (TerminateOnNaN keeps the weights each batch started from). The update kernel
  // writes them in its own pass: one array more to write, where a separate copy would also
  // read the parameter once more. Used once: a later update keeps nothing until the next
  // call. False, and nothing kept, when `value` is not one of this trainer's parameters.
  // target in K's memory, p.size elements.
  bool keep_previous(const T* value, T* target) {
    bool is_param = false;
    for (const auto& op : ops_)
      for (const Param<T>& p : op->params()) is_param = is_param || p.value == value;
    if (!is_param) return false;
    for (auto& kept : previous_)
      if (kept.first == value) {
        kept.second = target;
        return true;
      }
    previous_.emplace_back(value, target);
    return true;
  }

  // X (batch, in), out (batch, out), in K's memory: inference in eval mode.
  void predict(const T* X, int64_t batch, T* out) {
    reserve(batch);
    const T* y = forward(X, batch, false);
    K::template copy<T>(out, y, batch * out_width());
  }

 private:
  void reserve(int64_t batch) {
    if (batch <= capacity_) return;
    int64_t widest = in_width();
    input_.reserve(batch * in_width());
    for (auto& op : ops_) {
      widest = std::max(widest, op->out_width());
      op->reserve(batch);
    }
    grad_a_.reserve(batch * widest);
    grad_b_.reserve(batch * widest);
    probs_.reserve(batch * out_width());
    labels_.reserve(batch);
    weights_.reserve(batch);
    capacity_ = batch;
  }

  // Gathers the rows, runs the training forward and the loss: (loss plus penalties, correct
  // count), with d loss / d output in grad_a_.
  StepResult forward_and_loss(const T* X, const void* targets, const T* sample_weight,
                              const int64_t* idx, int64_t batch) {
    reserve(batch);
    T* x0 = input_.data();
    K::template gather_rows<T>(x0, X, idx, batch, in_width());
    const T* out = forward(x0, batch, true);
    StepResult result = loss_and_gradient(out, targets, sample_weight, idx, batch);
    result.loss += penalty();
    return result;
  }

  // The backward from grad_a_, in reverse op order; each parameter's gradient gets its
  // weight penalty, then goes to ready(p) while it is still in cache.
  template <typename Ready>
  void backward(int64_t batch, Ready&& ready) {
    T* dy = grad_a_.data();
    for (size_t i = ops_.size(); i-- > first_trained_;) {
      TrainOp<K, T>& op = *ops_[i];
      T* spare = dy == grad_a_.data() ? grad_b_.data() : grad_a_.data();
      dy = op.backward(dy, spare, batch, i > first_trained_);
      for (const Param<T>& p : op.params()) {
        if (p.l1 != 0.0 || p.l2 != 0.0)
          K::template weight_penalty_backward<T>(p.grad, p.value, p.size, static_cast<T>(p.l1),
                                                 static_cast<T>(2.0 * p.l2));
        ready(p);
      }
    }
  }

  // x0 (batch, in) -> the last op's output (batch, out).
  const T* forward(const T* x0, int64_t batch, bool training) {
    const T* x = x0;
    for (auto& op : ops_) x = op->forward(x, batch, training);
    return x;
  }

  // From the last op's output (batch, C) and the targets: the batch-mean loss, the count of
  // correct predictions, and d loss / d output written into grad_a_ (batch, C). The same
  // kernels as the loss primitives, on the batch's targets and sample weights gathered
  // first.
  StepResult loss_and_gradient(const T* out, const void* targets, const T* sample_weight,
                               const int64_t* idx, int64_t batch) {
    const int64_t C = out_width();
    T* grad = grad_a_.data();
    LossWeights<T> w;
    w.per_class = class_weight_;
    if (sample_weight != nullptr) {
      K::template gather_rows<T>(weights_.data(), sample_weight, idx, batch, 1);
      w.sample = weights_.data();
    }
    StepResult result;
    if (loss_ == LossKind::cross_entropy) {
      int64_t* labels = labels_.data();
      K::template gather_rows<int64_t>(labels, static_cast<const int64_t*>(targets), idx, batch,
                                       1);
      result.loss = K::template softmax_cross_entropy_forward_sparse<T>(probs_.data(), out,
                                                                        labels, batch, C, w);
      K::template softmax_cross_entropy_backward_sparse<T>(grad, probs_.data(), labels, batch, C,
                                                          w);
      result.correct = K::template count_argmax_hits<T>(out, labels, batch, C);
      return result;
    }
    T* target = probs_.data();
    K::template gather_rows<T>(target, static_cast<const T*>(targets), idx, batch, C);
    if (loss_ == LossKind::mse) {
      result.loss = K::template mse_forward<T>(out, target, batch, C, w);
      K::template mse_backward<T>(grad, out, target, batch, C, w);
    } else {
      result.loss = K::template bce_with_logits_forward<T>(out, target, batch, C, w);
      K::template bce_with_logits_backward<T>(grad, out, target, batch, C, w);
      result.correct = K::template count_sign_hits<T>(out, target, batch * C);
    }
    return result;
  }

  // The L1/L2 penalties on the weights as they are before this step's update, summed in
  // parameter order as Sequential.penalty() does.
  double penalty() const {
    double total = 0.0;
    for (const auto& op : ops_)
      for (const Param<T>& p : op->params())
        if (p.l1 != 0.0 || p.l2 != 0.0)
          total += p.l1 * K::template sum_abs<T>(p.value, p.size) +
                   p.l2 * K::template sum_squares<T>(p.value, p.size);
    return total;
  }

  // clip_grad_norm: the norm of all gradients as one vector (each array's sum of squares in
  // fixed chunks, arrays in parameter order), then every gradient scaled if it exceeds
  // max_norm, as nnfast/optim/clip.py.
  void clip_by_global_norm(double max_norm) const {
    double sum = 0.0;
    for (const auto& op : ops_)
      for (const Param<T>& p : op->params()) sum += K::template sum_squares<T>(p.grad, p.size);
    const double scale = max_norm / (std::sqrt(sum) + kClipNormEps);
    if (!(scale < 1.0)) return;  // also for a NaN norm: nothing sensible to scale by
    for (const auto& op : ops_)
      for (const Param<T>& p : op->params())
        K::template scale_inplace<T>(p.grad, p.size, static_cast<T>(scale));
  }

  static void clip_value(const Param<T>& p, double clipvalue) {
    K::template clip_inplace<T>(p.grad, p.size, static_cast<T>(-clipvalue),
                                static_cast<T>(clipvalue));
  }

  void apply(const Param<T>& p, const UpdateRule& rule) {
    T* previous = nullptr;
    for (auto& kept : previous_)
      if (kept.first == p.value) std::swap(previous, kept.second);
    if (rule.kind == RuleKind::adam)
      K::template adam_update<T>(p.value, p.grad, p.state0, p.state1, p.size, rule, previous);
    else
      K::template sgd_update<T>(p.value, p.grad, rule.momentum != 0.0 ? p.state0 : nullptr,
                                p.size, rule, previous);
  }

  // As torch's clip_grad_norm_: a norm just at max_norm is left alone.
  static constexpr double kClipNormEps = 1e-6;

  std::vector<std::unique_ptr<TrainOp<K, T>>> ops_;
  LossKind loss_;
  const T* class_weight_;  // (out) or null, the caller's
  size_t first_trained_ = 0;  // ops before it have no parameters: backward stops there
  int64_t capacity_ = 0;
  KBuffer<K, T> input_;           // (batch, in): the gathered rows
  KBuffer<K, T> grad_a_, grad_b_; // (batch, widest): ping-pong gradients
  KBuffer<K, T> probs_;           // (batch, out): softmax, or the gathered targets
  KBuffer<K, int64_t> labels_;    // (batch): the gathered labels
  KBuffer<K, T> weights_;         // (batch): the gathered sample weights
  RowWindow rows_;                // this step's place in the global batch (DropoutOp reads it)
  std::vector<std::pair<const T*, T*>> previous_;  // keep_previous(): value, target or null
};

}  // namespace nnfast
