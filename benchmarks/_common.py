"""Shared helpers for the benchmarks: run a case in a fresh process and measure time and peak memory."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
import traceback
from typing import Any, Callable


def _child(fn: Callable[..., dict[str, Any]], args: tuple, q: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        out = fn(*args)  # fn loads its inputs, calls mark(), then does the timed work
        q.put(out)
    except Exception:  # noqa: BLE001 - report, never hide
        q.put({"error": traceback.format_exc(limit=3)})


def run_isolated(fn: Callable[..., dict[str, Any]], *args: Any, timeout_s: float = 1800) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh spawned process; it returns a dict of measurements."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    try:
        out = q.get(timeout=timeout_s)
    except Exception:  # noqa: BLE001
        p.kill()
        return {"error": f"timed out after {timeout_s:.0f} s"}
    p.join()
    return out


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class Meter:
    """Time a block; sample resident memory every 2 ms and report the peak above the start (MB).

    ``ru_maxrss`` alone cannot do this: it is a high-water mark for the whole process, which the
    untimed input loading has usually already raised.
    """

    def __enter__(self) -> Meter:
        import gc
        import threading

        gc.collect()
        self.base_mb = _current_rss_mb()
        self._peak = self.base_mb
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.is_set():
                self._peak = max(self._peak, _current_rss_mb())
                self._stop.wait(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self._peak, _current_rss_mb())
        self.extra_mb = max(self.peak_mb - self.base_mb, 0.0)
