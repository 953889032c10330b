"""Cluster.together: independent reads made at once, with the errors of the same reads made in order.

Pure logic: the reads are stand-ins that wait on events, so which finishes first is chosen by
the test, not by timing.
"""

from __future__ import annotations

import threading

import pytest

from kubectl_waypoint.errors import ClusterUnavailable
from kubectl_waypoint.kube.client import Cluster


def cluster() -> Cluster:
    return Cluster(target=None)  # together() never touches the connection


def test_results_come_in_the_order_of_the_reads_not_of_their_ends():
    second_done = threading.Event()

    def first():
        assert second_done.wait(10)  # ends after the second
        return "first"

    def second():
        second_done.set()
        return "second"

    assert cluster().together([first, second, lambda: "third"]) == ["first", "second", "third"]


def test_when_several_fail_the_error_of_the_first_read_in_order_is_raised():
    later_failed = threading.Event()

    def first():
        assert later_failed.wait(10)
        raise ClusterUnavailable("first read's error")

    def second():
        later_failed.set()
        raise ClusterUnavailable("second read's error")

    with pytest.raises(ClusterUnavailable, match="first read's error"):
        cluster().together([first, second])


def test_no_read_starts_once_one_has_given_up_on_the_server():
    started: list[int] = []
    failed = threading.Event()

    def failing():
        started.append(1)
        failed.set()
        raise ClusterUnavailable("gave up")

    def waiting():
        started.append(0)
        assert failed.wait(10)
        return "done"

    def later(number):
        return lambda: started.append(number)

    with pytest.raises(ClusterUnavailable, match="gave up"):
        cluster().together([waiting, failing, later(2), later(3)], lanes=2)
    assert sorted(started) == [0, 1]


def test_no_more_reads_run_at_once_than_there_are_lanes():
    running, most = 0, 0
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)  # the three lanes meet once, all busy

    def read(number):
        def run():
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            if number < 3:
                barrier.wait()
            with lock:
                running -= 1
            return number
        return run

    assert cluster().together([read(n) for n in range(8)], lanes=3) == list(range(8))
    assert most == 3


def test_a_read_that_is_not_a_cluster_failure_does_not_stop_the_others():
    ran: list[str] = []

    def refused():
        raise KeyError("not a server failure")

    def after():
        ran.append("after")

    with pytest.raises(KeyError):
        cluster().together([refused, after, after], lanes=2)
    assert ran == ["after", "after"]
