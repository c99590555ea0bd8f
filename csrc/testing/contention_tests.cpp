// nnfast._contention_tests: the contention rules of common/contention.h on a monitor of the
// test's own, fed explicit timings, so that tests/test_contention.py checks them without
// a clock or a busy machine, and without a hook in nnfast._core.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "common/contention.h"

namespace py = pybind11;
using nnfast::ContentionMonitor;

PYBIND11_MODULE(_contention_tests, m) {
  py::class_<ContentionMonitor>(m, "Monitor")
      .def(py::init<>())
      .def(
          "report",
          [](ContentionMonitor& self, int64_t start_ns, int64_t own_ns, int64_t wait_ns,
             int team, int64_t opened_at_ns) {
            nnfast::TeamTimes times;
            times.start = opened_at_ns;
            times.opener_started = opened_at_ns + start_ns;
            times.opener_done = times.opener_started + own_ns;
            times.end = times.opener_done + wait_ns;
            times.team = team;
            self.report(times);
            return times.end;
          },
          py::arg("start_ns"), py::arg("own_ns"), py::arg("wait_ns"), py::kw_only(),
          py::arg("team") = 2, py::arg("opened_at_ns"),
          "one region: the opener's start delay, its share, its wait for the team; returns "
          "when the region closed")
      .def("stats", [](const ContentionMonitor& self, int64_t now_ns) {
        const nnfast::ContentionStats stats = self.stats(now_ns);
        py::dict result;
        result["contended_regions"] = stats.contended_regions;
        result["backing_off"] = stats.backing_off;
        result["next_backoff_s"] = static_cast<double>(stats.next_backoff_ns) * 1e-9;
        return result;
      }, py::arg("now_ns"));
  m.attr("SLACK_NS") = ContentionMonitor::kSlackNs;
  m.attr("IDLE_NS") = ContentionMonitor::kIdleNs;
  m.attr("COLD_SLACK_NS") = ContentionMonitor::kColdSlackNs;
  m.attr("FIRST_BACKOFF_NS") = ContentionMonitor::kFirstBackoffNs;
  m.attr("MAX_BACKOFF_NS") = ContentionMonitor::kMaxBackoffNs;
}
