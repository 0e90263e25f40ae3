#!/usr/bin/env python3
"""When a core sits idle, and what wakes it: reads `perf script -F time,event,trace`
of `sched:sched_switch` events recorded on one core (`perf record -C N`) from
stdin and prints the idle share of the recording, the idle time by the thread
that ran next (what the core was waiting for: the fsync thread after a disk
completion, the HTTP worker after the network) and by what ran last, and the
idle intervals by length. Used by `bench/profile.sh p2-idle`. Asserts nothing.
"""
import collections
import re
import sys

SWITCH = re.compile(
    r"\s*([\d.]+):\s+sched:sched_switch: prev_comm=(.*?) prev_pid=\d+ prev_prio=\d+ "
    r"prev_state=(\S+) ==> next_comm=(.*?) next_pid="
)
LENGTHS = [(20e-6, "< 20 µs"), (100e-6, "20-100 µs"), (500e-6, "100-500 µs"), (float("inf"), ">= 500 µs")]


def main():
    first = last = idle_since = None
    went_idle_after = None
    total = 0.0
    ended_by = collections.Counter()
    ended_count = collections.Counter()
    began_after = collections.Counter()
    by_length = collections.Counter()
    for line in sys.stdin:
        m = SWITCH.match(line)
        if not m:
            continue
        t = float(m.group(1))
        prev, state, nxt = m.group(2), m.group(3), m.group(4)
        first = t if first is None else first
        last = t
        if nxt.startswith("swapper"):
            idle_since, went_idle_after = t, f"{prev} ({state})"
        elif prev.startswith("swapper") and idle_since is not None:
            d = t - idle_since
            total += d
            ended_by[nxt] += d
            ended_count[nxt] += 1
            began_after[went_idle_after] += d
            by_length[next(name for bound, name in LENGTHS if d < bound)] += d
            idle_since = None
    if first is None or last == first:
        print("no sched_switch events: was the core recorded?")
        return
    span = last - first
    print(f"idle {1e3 * total:.1f} ms of {1e3 * span:.1f} ms recorded ({100 * total / span:.1f} %)")
    print("idle time by the thread that ran next (what the core waited for):")
    for name, d in ended_by.most_common(6):
        print(f"  {name:<20} {1e3 * d:8.1f} ms in {ended_count[name]} intervals")
    print("idle time by the thread that ran before (its state: S sleeping, D disk, I idle kworker):")
    for name, d in began_after.most_common(6):
        print(f"  {name:<30} {1e3 * d:8.1f} ms")
    print("idle time by interval length:")
    for _, name in LENGTHS:
        print(f"  {name:<12} {1e3 * by_length[name]:8.1f} ms")


if __name__ == "__main__":
    main()
