"""The compression study v2 job table and runner (se_app/study.py), without training anything."""
import csv
import sys
from pathlib import Path

import pytest

from se_app import study
from se_app.cli import parser
from se_app.train import LOG_FIELDS


def _log(root: Path, name: str, step: int, rows: list[tuple[float, float]] | None = None) -> None:
    """A training log ending at ``step``: one row per (valid PESQ, sparsity) of ``rows``, 250 steps apart."""
    rows = rows or [(1.5, 0.0)]
    (root / name).mkdir(parents=True, exist_ok=True)
    with open(root / name / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, LOG_FIELDS)
        w.writeheader()
        for i, (pesq, sparsity) in enumerate(rows):
            w.writerow({"step": step - 250 * (len(rows) - 1 - i), "epoch": 1, "train_loss": 0.06,
                        "val_loss": 0.05 + i / 1000, "val_pesq": pesq, "val_stoi": 0.7, "lr": 1e-4,
                        "sparsity": sparsity, "elapsed_s": 1.0})


def test_every_model_sees_the_same_examples_and_starts_from_jobs_that_come_first():
    todo = study.jobs(base=300, tune=200)
    names = [j.name for j in todo]
    assert len(set(names)) == len(names)
    by = {j.name: j for j in todo}
    for j in todo:
        assert all(names.index(n) < names.index(j.name) for n in j.needs)
        start = j.args[j.args.index("--init-from") + 1] if "--init-from" in j.args else ""
        before = sum(by[n].steps for n in j.needs if start.endswith(f"/{n}/last.pt"))  # its final weights
        assert j.name == "dense-init" or j.steps + before == 500, j.name
        # a fine-tune draws the batches after its start model's: base + tune distinct batches, as from scratch
        offset = int(j.args[j.args.index("--batch-offset") + 1]) if "--batch-offset" in j.args else 0
        assert offset == before and ("--init-from" in j.args) == (offset > 0)
    main = {j.name for j in todo if j.group == "main"}
    for r in study.RATES:
        assert {f"mpo-{r}x", f"pruned-{r}x", f"mpo-{r}x-svd"} <= main
    for r in study.VARIANT_RATES:
        assert {f"mpo-{r}x-mountain", f"mpo-{r}x-f3", f"mpo-{r}x-f5", f"mpo-{r}x-kd", f"pruned-{r}x-kd"} <= set(names)


def test_every_job_command_is_a_valid_train_command():
    for j in study.jobs():
        cmd = study.command(j, "../shared/data", Path("runs/s"), 12.0)
        assert cmd[1:3] == ["-m", "se_app"]
        a = parser().parse_args(cmd[3:])
        assert a.fn.__name__ == "cmd_train" and a.steps == j.steps and a.resume and a.max_minutes == 12.0
        assert a.loss == "cmag" and a.lookahead == 2 and a.output == f"runs/s/{j.name}"
        assert (a.kind == "pruned") == j.name.startswith("pruned")


def test_state_follows_the_logs_and_select_adds_what_a_job_needs(tmp_path):
    todo = study.jobs(base=300, tune=200)
    by = {j.name: j for j in todo}
    assert study.state(by["mpo-20x-svd"], tmp_path, todo) == "waiting"
    _log(tmp_path, "dense-init", 250)
    assert study.state(by["dense-init"], tmp_path, todo) == "partial"
    assert study.state(by["mpo-20x-svd"], tmp_path, todo) == "waiting"
    _log(tmp_path, "dense-init", 300)
    assert study.state(by["dense-init"], tmp_path, todo) == "done"
    assert study.state(by["mpo-20x-svd"], tmp_path, todo) == "ready"
    assert [j.name for j in study.select(["mpo-20x-kd"], todo)] == ["dense-init", "dense", "mpo-20x-kd"]
    with pytest.raises(KeyError):
        study.select(["mpo-7x"], todo)
    assert "| dense-init | " in study.table(tmp_path, todo) and "300 / 300 | done" in study.table(tmp_path, todo)


def test_table_gives_the_final_checkpoint_and_the_best_at_final_sparsity(tmp_path):
    todo = study.jobs(base=300, tune=750)
    # a pruned run: its best PESQ came while it was still denser than its rate, which does not count
    _log(tmp_path, "pruned-5x", 750, [(1.70, 0.5), (1.62, 0.8), (1.64, 0.8)])
    row = next(r for r in study.table(tmp_path, todo).splitlines() if r.startswith("| pruned-5x |"))
    assert row.endswith("| 0.0520 | 1.640 | 0.700 | 1.640 (750) |")


def test_runner_runs_jobs_after_what_they_need_and_skips_finished_ones(tmp_path):
    todo = study.select(["pruned-20x", "mpo-20x"], study.jobs(base=300, tune=200))
    _log(tmp_path, "mpo-20x", 500)  # already finished: not launched again
    order = []

    def launch(cmd, **kw):
        name = Path(cmd[cmd.index("-o") + 1]).name
        job = next(j for j in todo if j.name == name)
        assert study.state(job, tmp_path, todo) in ("ready", "partial")
        order.append(name)
        _log(tmp_path, name, job.steps)

    done = study.run(todo, "data", tmp_path, workers=2, minutes=30, launch=launch)
    assert order == ["dense-init", "pruned-20x"] and sorted(done) == ["dense-init", "pruned-20x"]


def test_a_failed_job_is_reported_and_its_dependants_are_not_started(tmp_path):
    todo = study.select(["mpo-20x-svd"], study.jobs(base=300, tune=200))
    order = []
    done = study.run(todo, "data", tmp_path, workers=2, minutes=30, launch=lambda cmd, **kw: order.append(cmd))
    assert len(order) == 1 and done == [] and study.state(todo[1], tmp_path, todo) == "waiting"


def test_two_workers_never_take_the_same_job_and_a_launch_that_cannot_start_does_not_hang(tmp_path, monkeypatch):
    import threading
    import time

    todo = [j for j in study.jobs(base=300, tune=200) if not j.needs][:6]  # six jobs ready at once
    launched, slow = [], study.state

    def state(job, root, known):  # widen the window in which two workers could pick the same job
        time.sleep(0.01)
        return slow(job, root, known)

    monkeypatch.setattr(study, "state", state)

    def launch(cmd, **kw):
        name = Path(cmd[cmd.index("-o") + 1]).name
        launched.append((name, threading.get_ident()))
        _log(tmp_path, name, next(j.steps for j in todo if j.name == name))

    done = study.run(todo, "data", tmp_path, workers=2, minutes=10, launch=launch, min_start_minutes=0)
    names = [n for n, _ in launched]
    assert sorted(names) == sorted(j.name for j in todo) == sorted(done)  # each once
    assert len({t for _, t in launched}) == 2  # both workers worked

    def broken(cmd, **kw):
        raise FileNotFoundError("se-app")

    t0 = time.time()
    todo = study.select(["dense"], study.jobs(base=300, tune=200))
    assert study.run(todo, "data", tmp_path / "b", workers=2, minutes=10, launch=broken, min_start_minutes=0) == []
    assert time.time() - t0 < 30  # dense waits for dense-init, which could not start: nobody waits forever


def test_a_job_claimed_by_a_live_runner_is_left_to_it_and_a_dead_runners_claim_is_taken_over(tmp_path):
    import os
    import subprocess

    todo = study.select(["mpo-20x", "mpo-100x"], study.jobs(base=300, tune=200))
    (tmp_path / "mpo-20x.claim").write_text(str(os.getpid()))  # another runner (alive) is training it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "mpo-100x.claim").write_text(dead.stdout.strip())  # its runner was killed
    launched = []

    def launch(cmd, **kw):
        name = Path(cmd[cmd.index("-o") + 1]).name
        assert (tmp_path / f"{name}.claim").read_text() == str(os.getpid())  # held while it trains
        launched.append(name)
        _log(tmp_path, name, 500)

    assert study.run(todo, "data", tmp_path, workers=2, minutes=10, launch=launch, min_start_minutes=0) == ["mpo-100x"]
    assert launched == ["mpo-100x"] and not (tmp_path / "mpo-100x.claim").exists()
    assert (tmp_path / "mpo-20x.claim").exists() and not list(tmp_path.glob(".*claim*"))
