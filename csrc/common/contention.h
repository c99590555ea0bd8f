// Whether the kernels' thread teams are meeting descheduled threads, from the timings of
// their parallel regions. When the cores are shared (another process asking for all of
// them, a busy PyTorch or OpenBLAS pool, more threads than cores), a team member that is not
// running delays the whole region by the scheduler's time slice, milliseconds for a kernel
// of microseconds, and one thread is then faster than two. Measured with 1024x784x128
// sgemms in two processes of 2 threads each on a 2-core VM that other builds also used:
// 12-15 GFLOP/s per process with fixed teams, 42-44 with this fallback, 49 on one thread.
// Kept apart from threading.cpp, with every time passed in, so that the rules can be tested
// without a clock (nnfast._contention_tests).
#pragma once

#include <algorithm>
#include <atomic>
#include <bitset>
#include <cstdint>

namespace nnfast {

// Nanoseconds on one steady clock, taken by the thread that opened the region.
struct TeamTimes {
  int64_t start = 0;           // before the region opened
  int64_t opener_started = 0;  // the opener starts its share
  int64_t opener_done = 0;     // the opener finished its share
  int64_t end = 0;             // after the region closed
  int team = 1;                // threads in the team
};

struct ContentionStats {
  int64_t contended_regions;  // regions judged late
  bool backing_off;           // kernels run on one thread now
  int64_t next_backoff_ns;    // how long the next back-off lasts
};

class ContentionMonitor {
 public:
  // A region is late when the opener waited for the team (to start its share, then for the
  // others to finish theirs) longer than the rest of the team's work plus kSlackNs: the team
  // then took longer than the opener alone would have. The slack lies between a running
  // worker's join (tens of microseconds) and a time slice (Linux's default base slice is
  // 0.75 ms; Windows and macOS quanta are 10 ms or more), so it holds on any machine.
  static constexpr int64_t kSlackNs = 500'000;
  // Idle workers spin for a while, then sleep, and waking a sleeping one can take longer than
  // the slack (in a virtual machine its vCPU may be halted): a region opened this long after
  // the previous one closed is judged with kColdSlackNs instead. Such a region is how a
  // script that calls nnfast between other libraries' calls meets contention: OpenBLAS's
  // workers spin on the cores for a while after numpy's matmul returns, and a 64 x 784 x 128
  // sgemm on 2 threads, called 2 ms after one, took 6.5 ms (median) instead of 0.11 ms hot
  // and 0.27 ms after a 2 ms sleep (the Zen 3 guest). Not judged, such regions never backed
  // off, and each paid the wait.
  static constexpr int64_t kIdleNs = 2'000'000;
  static constexpr int64_t kColdSlackNs = 2'000'000;
  // One late region can be chance (an interrupt, a page fault): kernels run on one thread
  // once kLateToBackOff of the last kJudged regions were late, for a back-off that doubles
  // while that recurs and starts over after kJudged on-time regions in a row. Short, so
  // that a wrong verdict costs little, and bounded, so that threads come back soon after
  // the other work ends.
  static constexpr int kJudged = 4;
  static constexpr int kLateToBackOff = 2;
  static constexpr int64_t kFirstBackoffNs = 50'000'000;
  static constexpr int64_t kMaxBackoffNs = 400'000'000;

  // Several Python threads may report at once: relaxed atomics keep the record approximate
  // then, which costs at most a back-off too many or too few.
  void report(const TeamTimes& t) {
    const int64_t previous_end = last_end_.exchange(t.end, std::memory_order_relaxed);
    if (t.team < 2) return;
    const int64_t slack = t.start - previous_end > kIdleNs ? kColdSlackNs : kSlackNs;
    const int64_t own = t.opener_done - t.opener_started;
    const int64_t waited = (t.opener_started - t.start) + (t.end - t.opener_done);
    const bool late = waited > (t.team - 1) * own + slack;
    const unsigned recent =
        ((recent_.load(std::memory_order_relaxed) << 1) | (late ? 1u : 0u)) & kRecentMask;
    recent_.store(recent, std::memory_order_relaxed);
    if (!late) {
      if (recent == 0) backoff_ns_.store(kFirstBackoffNs, std::memory_order_relaxed);
      return;
    }
    contended_.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<int>(std::bitset<kJudged>(recent).count()) < kLateToBackOff) return;
    const int64_t backoff = backoff_ns_.load(std::memory_order_relaxed);
    single_until_ns_.store(t.end + backoff, std::memory_order_relaxed);
    backoff_ns_.store(std::min(2 * backoff, kMaxBackoffNs), std::memory_order_relaxed);
  }

  bool backing_off(int64_t now_ns) const {
    return now_ns < single_until_ns_.load(std::memory_order_relaxed);
  }

  ContentionStats stats(int64_t now_ns) const {
    return {contended_.load(std::memory_order_relaxed), backing_off(now_ns),
            backoff_ns_.load(std::memory_order_relaxed)};
  }

 private:
  static constexpr unsigned kRecentMask = (1u << kJudged) - 1;
  std::atomic<int64_t> last_end_{0};
  std::atomic<unsigned> recent_{0};  // bit i: the region judged i regions ago was late
  std::atomic<int64_t> single_until_ns_{0};
  std::atomic<int64_t> backoff_ns_{kFirstBackoffNs};
  std::atomic<int64_t> contended_{0};
};

}  // namespace nnfast
