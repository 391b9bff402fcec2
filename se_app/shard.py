"""Shards: split one job over N machines (a SLURM job array, GNU parallel) with ``--shard K/N``.

Shard K of N (K from 1) takes every N-th item of the sorted work list, starting at the K-th: the N shards are
disjoint and together cover the list, whatever order the inputs were named in, and each gets about the same
share (neighbours in a sorted folder, often of similar length, are spread over the shards).  Items are
grouped by their key (for enhancement: the output path), so two inputs that would write the same file always
land in the same shard and shards never write the same file.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def parse(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; ValueError saying what a shard looks like otherwise."""
    try:
        k, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 2/8 (the 2nd of 8 parts, K from 1)") from None
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: need 1 <= K <= N (K counts from 1; with SLURM use "
                         f"$((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT for a 0-based array)")
    return k, n


def argument(text: str) -> tuple[int, int]:
    """argparse type of ``--shard``: usage error (exit 2) with the reason."""
    try:
        return parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[1]) from None


def select(items: Sequence[T], shard: tuple[int, int] | None, key: Callable[[T], str] = str) -> list[T]:
    """The items of shard (K, N) (all of them for None), in the order of their sorted keys.  Items with the
    same key stay together (the group goes to the shard of its position among the sorted distinct keys)."""
    if shard is None:
        return list(items)
    k, n = shard
    keys = sorted({key(it) for it in items})
    mine = {kk for i, kk in enumerate(keys) if i % n == k - 1}
    return sorted((it for it in items if key(it) in mine), key=key)


def label(shard: tuple[int, int] | None) -> str:
    """'shard 2/8' (empty for None), for summaries and logs."""
    return f"shard {shard[0]}/{shard[1]}" if shard else ""
