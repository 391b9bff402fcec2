"""Batches made ahead in a background thread, so mixing overlaps the training step.

Batch k is a pure function of k (the trainer seeds it with ``[seed, k]``), so what a step trains on does not
depend on threading or timing, and a resumed run replays exactly the batches the uninterrupted one saw.
numpy's FFTs, scipy's convolution and soxr release the GIL, so the mixer runs beside torch's kernels.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class Prefetcher:
    """``get(k)`` returns ``make(k)`` for k = start, start + 1, ... in order, made up to ``depth`` ahead."""

    def __init__(self, make: Callable[[int], Any], start: int, depth: int = 3):
        self._make, self._next = make, start
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def _run(self, k: int) -> None:
        while not self._stop.is_set():
            try:
                item = (k, self._make(k), None)
            except BaseException as e:  # surfaced in get(), in the training thread
                item = (k, None, e)
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[2] is not None:
                return
            k += 1

    def get(self, k: int) -> Any:
        if k != self._next:
            raise ValueError(f"batches are made in order: asked for {k}, next is {self._next}")
        got, value, err = self._q.get()
        if err is not None:
            raise err
        self._next = got + 1
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
