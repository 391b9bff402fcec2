"""The compression study v2 (issue 16) as a table of training jobs, their state on disk, and a runner.

Every model sees the same number of training examples on the issue-12 recipe (reverberation, band limits,
babble, clipping; ``cmag`` loss; look-ahead 2):

- ``dense-init``: a dense LSTM trained ``base`` steps from scratch: the common starting point.
- ``dense``, ``pruned-<N>x``, ``mpo-<N>x-svd``: its final weights (``last.pt``, exactly ``base`` steps) fine-tuned
  ``tune`` more steps (the same lower learning rate and schedule), uncompressed, magnitude-pruned (gradual cubic
  schedule over the first half, then fine-tuning at the final sparsity) or cut to MPO by SVD.  The fine-tune draws
  batches ``base`` .. ``base + tune - 1`` (``--batch-offset``), so ``base + tune`` distinct batches in all.
- ``mpo-<N>x``: an MPO-LSTM trained from scratch ``base + tune`` steps: the same batches 0 .. ``base + tune - 1``.
- Variants at 20x and 100x (issue 16 item 2): the "mountain" bond profile, three and five local tensors,
  distillation from ``dense`` (MPO from scratch; pruning too, so neither side lacks a tool the other has),
  and one-shot pruning.

Each job is a resumable ``se-app train`` run in ``ROOT/<name>``; a job is done when its log reaches its steps.
Jobs that start from another model wait for it.  The runner keeps ``workers`` jobs going, one thread each;
runners started side by side share the work through claim files (``ROOT/<name>.claim``).
"""
from __future__ import annotations

import csv
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
RATES = (5, 10, 20, 50, 100)
VARIANT_RATES = (20, 100)
RECIPE = ("--loss", "cmag", "--lookahead", "2")
SCRATCH_LR = ("--lr", "1e-3", "--warmup", "100")
TUNE_LR = ("--lr", "3e-4", "--warmup", "50")


@dataclass(frozen=True)
class Job:
    """One training run: its name (folder and registry name), steps, ``se-app train`` options, and the jobs
    whose best checkpoint it starts from or distils from (they must be done first)."""

    name: str
    steps: int
    args: tuple[str, ...]
    needs: tuple[str, ...] = ()
    what: str = ""
    group: str = "main"  # "main": the paper-style table; "variant": issue 16 item 2


def jobs(base: int = 2000, tune: int = 2000, root: str = "checkpoints/study2") -> list[Job]:
    """The study's jobs, in a sensible order (the common start first, then one of each kind per rate)."""
    init = f"{root}/dense-init/last.pt"  # its final weights: exactly ``base`` steps (best.pt may be earlier)
    teacher = f"{root}/dense/best.pt"  # the dense reference as shipped
    total = base + tune
    tune_lr = (*TUNE_LR, "--batch-offset", str(base))
    out = [Job("dense-init", base, ("--kind", "dense", *SCRATCH_LR), what="dense, from scratch (common start)"),
           Job("dense", tune, ("--kind", "dense", "--init-from", init, *tune_lr), ("dense-init",),
               "dense, fine-tuned (uncompressed reference)")]
    for r in RATES:
        out += [Job(f"mpo-{r}x", total, ("--kind", "mpo", "--rate", str(r), *SCRATCH_LR),
                    what="MPO from scratch, uniform bonds, 4 local tensors"),
                Job(f"pruned-{r}x", tune, ("--kind", "pruned", "--rate", str(r), "--init-from", init, *tune_lr,
                                           "--prune-start", "0", "--prune-end", "0.5"), ("dense-init",),
                    "magnitude pruning of dense-init, gradual (cubic) then fine-tuned"),
                Job(f"mpo-{r}x-svd", tune, ("--kind", "mpo", "--rate", str(r), "--init-from", init, *tune_lr),
                    ("dense-init",), "MPO by SVD of dense-init, fine-tuned")]
    for r in VARIANT_RATES:
        mpo = ("--kind", "mpo", "--rate", str(r), *SCRATCH_LR)
        out += [Job(f"mpo-{r}x-mountain", total, (*mpo, "--bond-profile", "mountain"), what="MPO, mountain bonds",
                    group="variant"),
                Job(f"mpo-{r}x-f3", total, (*mpo, "--factors", "3"), what="MPO, 3 local tensors", group="variant"),
                Job(f"mpo-{r}x-f5", total, (*mpo, "--factors", "5"), what="MPO, 5 local tensors", group="variant"),
                Job(f"mpo-{r}x-kd", total, (*mpo, "--teacher", teacher), ("dense",),
                    "MPO from scratch, distilled from dense", "variant"),
                Job(f"pruned-{r}x-kd", tune, ("--kind", "pruned", "--rate", str(r), "--init-from", init, *tune_lr,
                                              "--prune-start", "0", "--prune-end", "0.5", "--teacher", teacher),
                    ("dense-init", "dense"), "pruning as pruned-<N>x, distilled from dense", "variant"),
                Job(f"pruned-{r}x-oneshot", tune, ("--kind", "pruned", "--rate", str(r), "--init-from", init,
                                                   *tune_lr, "--prune-start", "0", "--prune-end", "0"),
                    ("dense-init",), "one-shot magnitude pruning, then fine-tuned", "variant")]
    return out


def steps_done(run: Path) -> int:
    """The last validated step of a run folder (0 when it has not validated yet)."""
    path = run / "log.csv"
    if not path.exists():
        return 0
    rows = list(csv.DictReader(open(path)))
    return int(rows[-1]["step"]) if rows else 0


def select(names: list[str], known: list[Job]) -> list[Job]:
    """The named jobs and every job they need, recursively, in study order.  KeyError for an unknown name."""
    by_name = {j.name: j for j in known}
    want, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in by_name:
            raise KeyError(name)
        if name not in want:
            want.add(name)
            stack.extend(by_name[name].needs)
    return [j for j in known if j.name in want]


def state(job: Job, root: Path, known: list[Job]) -> str:
    """done | partial (started, not finished: resumable) | ready | waiting (for the jobs it needs, from ``known``)."""
    done = steps_done(root / job.name)
    if done >= job.steps:
        return "done"
    if done > 0:
        return "partial"
    steps = {j.name: j.steps for j in known}
    return "ready" if all(steps_done(root / n) >= steps[n] for n in job.needs) else "waiting"


def command(job: Job, data: str, root: Path, minutes: float | None) -> list[str]:
    """The ``se-app train`` command of a job (resumable: run it again and it continues)."""
    cmd = [sys.executable, "-m", "se_app", "-q", "train", "--data", data, "-o", str(root / job.name),
           "--steps", str(job.steps), *RECIPE, *job.args, "--threads", "1", "--resume"]
    return cmd + (["--max-minutes", f"{minutes:.1f}"] if minutes is not None else [])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


def claim(root: Path, name: str) -> bool:
    """Take job ``name`` for this process: ``root/<name>.claim`` holds its pid, so a second runner (started when a
    core frees up, or in another terminal) skips the job instead of training the same folder twice.  A claim whose
    process has died (a killed runner) is taken over.  The claim is written whole or not at all (a hard link)."""
    path = root / f"{name}.claim"
    tmp = root / f".{name}.claim.{os.getpid()}.{threading.get_ident()}"
    tmp.write_text(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                try:
                    pid = int(path.read_text())
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    return False
                path.unlink(missing_ok=True)  # stale: its runner is gone
        return False
    finally:
        tmp.unlink(missing_ok=True)


def release(root: Path, name: str) -> None:
    (root / f"{name}.claim").unlink(missing_ok=True)


def run(todo: list[Job], data: str, root: Path, workers: int = 2, minutes: float = 150.0,
        launch: Callable[..., object] = subprocess.run, min_start_minutes: float = 10.0) -> list[str]:
    """Run unfinished jobs, ``workers`` at a time, until all are done or ``minutes`` are spent: a job starts only
    with ``min_start_minutes`` left and stops (resumably) at its first validation after the deadline.  Jobs wait for
    the jobs they need; one that fails leaves its dependants waiting; one claimed by another live runner is left to
    it.  Returns the names finished."""
    deadline = time.time() + 60 * minutes
    root.mkdir(parents=True, exist_ok=True)
    pending = [j for j in todo if state(j, root, todo) != "done"]
    finished: list[str] = []
    running: set[str] = set()
    lock = threading.Lock()  # pending, running and finished are shared by the workers

    def next_job() -> tuple[Job | None, bool]:
        """(a job to run now, whether anything may still become ready)."""
        with lock:
            for j in pending:
                if state(j, root, todo) in ("ready", "partial") and claim(root, j.name):
                    pending.remove(j)
                    running.add(j.name)
                    return j, True
            return None, bool(pending) and bool(running)

    def worker() -> None:
        while (deadline - time.time()) / 60 >= min_start_minutes:
            j, hope = next_job()
            if j is None:
                if not hope:
                    return
                time.sleep(5)  # a job it needs is still running
                continue
            try:
                with open(root / f"{j.name}.log", "a") as logf:
                    launch(command(j, data, root, (deadline - time.time()) / 60), stdout=logf,
                           stderr=subprocess.STDOUT, check=False)
            except OSError as e:  # could not start it: say so, leave it for the next run
                log.error("study: %s could not start: %s", j.name, e)
            finally:
                release(root, j.name)
                with lock:
                    running.discard(j.name)
            if state(j, root, todo) == "done":
                with lock:
                    finished.append(j.name)
                log.info("study: %s done", j.name)
            else:  # stopped by the deadline (resumable) or failed: say so, leave it for the next run
                log.warning("study: %s stopped at step %d of %d", j.name, steps_done(root / j.name), j.steps)

    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(worker) for _ in range(workers)]:
            f.result()
    return finished


def table(root: Path, todo: list[Job]) -> str:
    """A Markdown table of the jobs: name, what, steps done / planned, state, the valid scores of the last
    checkpoint (what the study ships once the job is done: loss on 48 mixtures, PESQ and STOI on 16), and the best
    valid PESQ with its step (among checkpoints at the run's final sparsity: a pruned run's earlier, denser ones
    do not count)."""
    lines = ["| job | what | steps | state | valid loss | valid PESQ | valid STOI | best valid PESQ (step) |",
             "|---|---|---|---|---|---|---|---|"]
    for j in todo:
        rows = list(csv.DictReader(open(root / j.name / "log.csv"))) if (root / j.name / "log.csv").exists() else []
        last = rows[-1] if rows else None
        cells = [f"{float(last[k]):.4f}" if k == "val_loss" else f"{float(last[k]):.3f}"
                 for k in ("val_loss", "val_pesq", "val_stoi")] if last else ["-", "-", "-"]
        final = [r for r in rows if abs(float(r["sparsity"]) - float(last["sparsity"])) < 1e-3] if last else []
        best = max(final, key=lambda r: float(r["val_pesq"]), default=None)
        cells.append(f"{float(best['val_pesq']):.3f} ({best['step']})" if best else "-")
        lines.append(f"| {j.name} | {j.what} | {steps_done(root / j.name)} / {j.steps} | {state(j, root, todo)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - python -m se_app.study: the plan
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "checkpoints/study2"), jobs()))
