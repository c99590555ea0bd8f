"""The rules by which the compiled kernels fall back to one thread when their teams meet
descheduled threads (csrc/common/contention.h), on a monitor fed explicit timings through
the test-only extension nnfast._contention_tests."""
from __future__ import annotations

import pytest

tests = pytest.importorskip("nnfast._contention_tests")

MS = 1_000_000
ON_TIME = dict(start_ns=20_000, own_ns=1 * MS, wait_ns=50_000)
LATE = dict(start_ns=20_000, own_ns=1 * MS, wait_ns=5 * MS)  # a time slice for a 1 ms share


class Regions:
    """Back-to-back regions on one monitor; `now` is when the last one closed."""

    def __init__(self):
        self.monitor = tests.Monitor()
        self.now = 0

    def run(self, times, gap_ns=100_000, **kw):
        self.now = self.monitor.report(**times, opened_at_ns=self.now + gap_ns, **kw)
        return self.stats()

    def stats(self, after_ns=0):
        return self.monitor.stats(now_ns=self.now + after_ns)


def test_one_late_region_is_not_enough():
    regions = Regions()
    regions.run(ON_TIME)
    assert regions.run(LATE) == {"contended_regions": 1, "backing_off": False,
                                 "next_backoff_s": 0.05}
    for _ in range(4):
        assert not regions.run(ON_TIME)["backing_off"]


def test_two_late_regions_of_four_back_off_briefly_and_doubling_up_to_a_bound():
    regions = Regions()
    regions.run(LATE)
    regions.run(ON_TIME)
    assert regions.run(LATE) == {"contended_regions": 2, "backing_off": True,
                                 "next_backoff_s": 0.1}
    assert regions.stats(after_ns=49 * MS)["backing_off"]
    assert not regions.stats(after_ns=50 * MS)["backing_off"]
    backoffs = []
    for _ in range(6):  # contention goes on: the back-off doubles, up to its bound
        regions.run(LATE, gap_ns=500 * MS)  # the first team after one thread's calls
        backoffs.append(regions.stats()["next_backoff_s"])
    assert backoffs == [0.2, 0.4, 0.4, 0.4, 0.4, 0.4]
    assert tests.MAX_BACKOFF_NS == 400 * MS


def test_four_on_time_regions_reset_the_back_off():
    regions = Regions()
    regions.run(LATE)
    regions.run(LATE)
    regions.run(ON_TIME, gap_ns=100 * MS)
    regions.run(LATE)
    assert regions.stats()["next_backoff_s"] == 0.2
    for expected in (0.2, 0.2, 0.2, 0.05):
        assert regions.run(ON_TIME)["next_backoff_s"] == expected


def test_late_means_slower_than_the_opener_alone_plus_a_time_slice_of_slack():
    # A 20 ms share waiting 5 ms for its partner still beat one thread: not late.
    regions = Regions()
    for _ in range(4):
        stats = regions.run(dict(start_ns=20_000, own_ns=20 * MS, wait_ns=5 * MS))
    assert stats["contended_regions"] == 0
    # Up to the slack beyond the others' work is a wake-up, not a descheduled thread.
    slack = tests.SLACK_NS
    for _ in range(4):
        stats = regions.run(dict(start_ns=0, own_ns=MS, wait_ns=MS + slack), team=2)
    assert stats["contended_regions"] == 0
    assert regions.run(dict(start_ns=0, own_ns=MS, wait_ns=MS + slack + 1))["contended_regions"] == 1
    # With four threads the opener alone would have taken four shares.
    assert regions.run(dict(start_ns=0, own_ns=MS, wait_ns=3 * MS), team=4)["contended_regions"] == 1
    # A late start counts as much as a late end.
    assert regions.run(dict(start_ns=3 * MS, own_ns=MS, wait_ns=0))["contended_regions"] == 2


def test_a_region_after_an_idle_gap_is_judged_with_a_wake_up_of_slack():
    # Workers that went to sleep may take longer than the slack to wake on a virtual machine;
    # behind another library's spinning threads they wait a time slice or more, which the
    # larger slack of a region opened after an idle gap still tells.
    regions = Regions()
    regions.run(ON_TIME)
    cold_slack, idle = tests.COLD_SLACK_NS, tests.IDLE_NS
    assert cold_slack > tests.SLACK_NS
    woken = dict(start_ns=0, own_ns=MS, wait_ns=MS + cold_slack)
    assert regions.run(woken, gap_ns=idle + 1)["contended_regions"] == 0
    behind = dict(start_ns=0, own_ns=MS, wait_ns=MS + cold_slack + 1)
    assert regions.run(behind, gap_ns=idle + 1)["contended_regions"] == 1
    assert regions.run(woken, gap_ns=idle)["contended_regions"] == 2  # hot: the small slack


def test_a_one_thread_region_is_not_judged():
    regions = Regions()
    for _ in range(4):
        stats = regions.run(LATE, team=1)
    assert stats["contended_regions"] == 0 and not stats["backing_off"]
