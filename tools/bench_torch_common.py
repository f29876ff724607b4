"""What the PyTorch sides of strata's step benchmarks (bench_model_torch.py, bench_step_torch.py)
share: a step measured exactly as apps/strata/bench_common.cpp measures strata's.

measure(step, settings) runs settings["warmup"] untimed steps and settings["steps"] timed ones, then
settings["profile_steps"] more under torch.autograd.profiler, and returns:
  seconds            time of each timed step
  cpu_seconds        each timed step's CPU time (user + system, every thread of the process)
  rss_increase       VmHWM after the timed steps minus VmRSS just before the first step (bytes; freed
                     memory is returned to the system (malloc_trim) and VmHWM reset through
                     /proc/self/clear_refs first)
  ops                the top 20 ops of the profiler's key_averages by self CPU time:
                     {"name", "calls", "self_seconds"} (names in `exclude`, e.g. record_function
                     ranges, left out)
  ops_total_seconds  the self CPU time of all ops; profiled_seconds the wall time of those steps
  ranges             {name: CPU time per profiled run} of the names in `exclude` (whole ranges)
"""
import ctypes
import re
import time

import torch


def resident():
    with open("/proc/self/status") as f:
        status = f.read()
    kb = lambda key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) * 1024  # noqa: E731
    return kb("VmRSS"), kb("VmHWM")


def measure(step, settings, exclude=()):
    # As the C++ side: memory freed while building goes back to the system before the baseline.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    baseline, _ = resident()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    for _ in range(settings["warmup"]):
        step()
    seconds, cpu_seconds = [], []
    for _ in range(settings["steps"]):
        t0, cpu0 = time.perf_counter(), time.process_time()
        step()
        seconds.append(time.perf_counter() - t0)
        cpu_seconds.append(time.process_time() - cpu0)
    _, peak = resident()

    runs = settings["profile_steps"]
    t0 = time.perf_counter()
    with torch.autograd.profiler.profile() as prof:
        for _ in range(runs):
            step()
    profiled = time.perf_counter() - t0
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    ops = [{"name": e.key, "calls": e.count, "self_seconds": e.self_cpu_time_total * 1e-6}
           for e in events if e.key not in exclude][:20]
    ranges = {e.key: e.cpu_time_total * 1e-6 / runs for e in events if e.key in exclude}
    return {
        "seconds": seconds, "cpu_seconds": cpu_seconds, "rss_increase": peak - baseline, "ops": ops,
        "ops_total_seconds": sum(e.self_cpu_time_total for e in events) * 1e-6, "profiled_seconds": profiled,
        "ranges": ranges,
    }


def environment():
    """The torch build the numbers come from."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available()}
