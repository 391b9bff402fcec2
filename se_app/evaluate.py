"""Evaluation: score the noisy input and every model on a noisy/clean folder pair.

Writes ``per_file.csv`` (one row per system and file: scores and their improvement over the noisy input),
``summary.json``, ``summary.md`` (the paper's layout: rows noisy, dense, then rate x method; columns per
SNR and average) and ``rates.png`` (PESQ and STOI against compression rate).  Scoring runs in a process pool.
Files PESQ rejects score NaN and are counted.

A test set with ``noisy/`` only (real recordings: no clean reference) is scored with DNSMOS P.835 (SIG, BAK,
OVRL; :mod:`se_app.dnsmos`, the ``dnsmos`` extra); with ``clean/`` too, DNSMOS columns join the reference
metrics when the extra is installed.  ``shard`` (K, N) scores the K-th of N parts of the files; the shards'
output folders are joined by :func:`se_app.evalmerge.merge`.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from . import audio, baselines, dnsmos, evalcache, plots, registry, stats
from . import shard as shards
from .enhancer import Enhancer
from .metrics import METRICS, scores
from .plots import method_label as _method
from .conditions import by_condition, by_noise, by_noise_markdown, conditions_markdown
from .testset import condition_of, noise_of, pairs, snr_of, speech_of

log = logging.getLogger(__name__)


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) if x.ndim == 2 else x


def _ref(clean: tuple[np.ndarray, int] | None) -> np.ndarray | None:
    return _mono(clean[0]) if clean is not None else None


def _score_job(args) -> dict:
    """Reference metrics (when there is a clean reference) and DNSMOS (when asked) of one mono estimate."""
    clean, est, rate, with_dnsmos = args
    out = scores(clean, est, rate) if clean is not None else {}
    if with_dnsmos:
        out.update(dnsmos.score(est, rate))
    return out


def inputs(testset: str | Path) -> list[tuple[Path, Path | None]]:
    """(noisy, clean) pairs of DIR/noisy and DIR/clean, or (noisy, None) for every audio file of DIR/noisy
    when there is no DIR/clean (recordings without a reference)."""
    root = Path(testset)
    if (root / "clean").is_dir():
        return pairs(root)
    if not (root / "noisy").is_dir():
        raise FileNotFoundError(f"{root}: expected a folder noisy/ (and clean/ with matching names for "
                                f"PESQ/STOI/SI-SDR)")
    found = [(f, None) for f in sorted((root / "noisy").rglob("*"))
             if f.suffix.lower() in audio.AUDIO_EXTENSIONS and f.is_file() and not f.name.startswith(".")]
    if not found:
        raise ValueError(f"{root}: no audio files in noisy/")
    return found


def systems(names: list[str] | None) -> list[str]:
    """Names to score: ``None`` or an ``all`` entry expands to every registered model (in registry order)."""
    names = list(names or ["all"])
    if "all" in names:
        rows = registry.listing()
        if not rows:
            raise registry.ModelNotFound("no models registered; pass --models NAME_OR_PATH")
        i = names.index("all")
        names[i:i + 1] = [r["name"] for r in rows]
    names = list(dict.fromkeys(names))
    for name in names:  # fail before any work is done, and say every kind of name that would have worked
        if name not in baselines.NAMES:
            try:
                registry.resolve(name)
            except registry.ModelNotFound as e:
                raise registry.ModelNotFound(f"{e}; classical baselines: {', '.join(baselines.NAMES)}") from None
    return names


def evaluate(testset: str | Path, out_dir: str | Path, models: list[str] | None = None, workers: int = 2,
             limit: int | None = None, progress: bool = True, shard: tuple[int, int] | None = None,
             with_dnsmos: str = "auto", compare: list[tuple[str, str]] | None = None, fresh: bool = False) -> dict:
    """Score noisy input and models; returns the summary dict (also written to out_dir).  ``shard`` (K, N):
    only the K-th of N parts of the (limited) file list; ``with_dnsmos``: auto | on | off; ``compare``: (A, B)
    system pairs whose paired differences get bootstrap intervals (se_app/stats.py), per condition too.  Each
    system's scores are cached in out_dir/cache as soon as they are all in (:mod:`se_app.evalcache`), so the same
    call run again after a stop scores only what is missing; ``fresh`` ignores the cache."""
    out = Path(out_dir)
    files = inputs(testset)[:limit]
    total = len(files)
    files = shards.select(files, shard, key=lambda f: str(f[0].relative_to(Path(testset) / "noisy")))
    has_clean = files[0][1] is not None if files else (Path(testset) / "clean").is_dir()
    dn = dnsmos.wanted(with_dnsmos, has_clean)
    names = systems(models)
    stats.check_names(compare or [], ["noisy", *names, *(Path(n).stem for n in names)])
    out.mkdir(parents=True, exist_ok=True)
    loaded = [(audio.read(n), audio.read(c) if c else None, n.name) for n, c in files]
    known = set(registry.read()["models"])
    cache = evalcache.Cache(out, evalcache.files_hash(files), dn, enabled=not fresh)
    rows: list[dict] = []
    meta: dict[str, dict] = {}
    pending: list[tuple[str, str, list]] = []  # (system, model key, [(file, snr, future)]) not yet all scored

    def drain(block: bool) -> None:
        """Collect (and cache) each system whose scores are all in; ``block``: wait for all of them."""
        for item in list(pending):
            system, key, jobs = item
            if block or all(f.done() for *_, f in jobs):
                mine = [{"system": system, "file": name, "snr": snr, **f.result()} for name, snr, f in jobs]
                cache.put(system, key, meta[system], mine)
                rows.extend(mine)
                pending.remove(item)
                bar.update(len(jobs))

    def add(system: str, key: str, m: dict, score: Callable[[], list]) -> None:
        meta[system] = m
        hit = cache.get(system, key)
        if hit is not None:
            log.info("cache: %s scored before; reusing its scores", system)
            rows.extend(hit[1])
            meta[system] = {**hit[0], **{k: m[k] for k in ("registered",) if k in m}}
            bar.update(len(loaded))
        else:
            pending.append((system, key, score()))
        drain(block=False)

    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(loaded) * (len(names) + 1), desc="score", disable=not progress) as bar:
        add("noisy", "noisy", {"kind": "noisy", "method": "noisy", "rate": None, "params": 0, "size_bytes": 0,
                                "rtf": 0.0},
            lambda: [(name, snr_of(name), pool.submit(_score_job, (_ref(c), _mono(n[0]), n[1], dn)))
                     for n, c, name in loaded])
        for model_name in names:
            classical = model_name in baselines.NAMES
            path = None if classical else registry.resolve(model_name)[0]
            enh = baselines.load(model_name) if classical else Enhancer.load(model_name)
            m = {"kind": enh.info["kind"], "method": enh.info["method"], "rate": enh.info["rate"],
                 "params": enh.info["params"], "size_bytes": 0 if classical else registry.size_of(path),
                 "compact_bytes": 0 if classical else stored_bytes(enh), "registered": model_name in known}

            def score(enh=enh, m=m) -> list:
                spent, dur, jobs = 0.0, 0.0, []
                for (x, sr), c, name in tqdm(loaded, desc=f"enhance {enh.name}", disable=not progress,
                                             leave=False):
                    t0 = time.perf_counter()
                    y = enh.enhance(x, sr)
                    spent += time.perf_counter() - t0
                    dur += len(x) / sr
                    jobs.append((name, snr_of(name), pool.submit(_score_job, (_ref(c), _mono(y), sr, dn))))
                m.update(rtf=spent / max(dur, 1e-9), enhance_s=spent, audio_s=dur)
                return jobs

            add(enh.name, evalcache.model_hash(path, model_name), m, score)
        drain(block=True)
    order = {s: i for i, s in enumerate(meta)}
    index = {name: i for i, (*_, name) in enumerate(loaded)}
    rows.sort(key=lambda r: (order[r["system"]], index[r["file"]]))
    base = {(r["file"]): r for r in rows if r["system"] == "noisy"}
    metrics = present(rows)
    for r in rows:
        for m in metrics:
            r[f"{m}_improvement"] = r[m] - base[r["file"]][m]
    info = {"index": shard[0], "count": shard[1], "total_files": total, "testset": str(testset)} if shard else None
    return write_outputs(out, rows, meta, testset, info, compare)


def stored_bytes(enh: Enhancer) -> int:
    """The model's bytes in the compact format (se_app/compact.py): its stored numbers at their precision (a
    quantised checkpoint's bits and scope, else float32), pruning index included: the x axis of the Pareto
    plot."""
    from .compact import storage_bytes

    quant = (enh.info.get("provenance") or {}).get("quantize") or {}
    return storage_bytes(enh.model, quant.get("bits"), scope=quant.get("scope", "wu"))["total"]


def present(rows: list[dict]) -> list[str]:
    """The metrics the rows carry, in table order: reference metrics (when there was a reference), DNSMOS."""
    have = set(rows[0]) if rows else set()
    return [m for m in (*METRICS, *dnsmos.KEYS) if m in have]


def write_outputs(out: Path, rows: list[dict], meta: dict, testset: str | Path, shard: dict | None = None,
                  compare: list[tuple[str, str]] | None = None) -> dict:
    """per_file.csv, summary.json (+ ``shard`` for a shard, whose rows also go to per_file.json at full
    precision for :mod:`se_app.evalmerge`), summary.md, by_noise.md and rates.png; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "per_file.csv", rows)
    summary = _summarise(rows, meta)
    if shard:
        summary["shard"] = shard
        (out / "per_file.json").write_text(json.dumps(rows, allow_nan=True) + "\n")
    noise = noise_of(testset) if "pesq" in present(rows) else {}
    if noise:
        summary["by_noise"] = by_noise(rows, noise)
        (out / "by_noise.md").write_text(by_noise_markdown(summary["by_noise"], list(meta)))
    condition = condition_of(testset)
    if condition:
        summary["conditions"] = by_condition(rows, meta, condition)
    if compare and rows:
        summary["comparisons"] = stats.compare(rows, compare, condition, cluster=speech_of(testset) or None)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    if rows:  # an empty shard (more shards than files) has nothing to plot
        plots.rates(summary, out / "rates.png")
        plots.pareto(summary, out / "pareto.png")
    log.info("wrote %s", ", ".join(str(out / f) for f in ("per_file.csv", "summary.json", "summary.md", "rates.png")))
    return summary


def _write_csv(path: Path, rows: list[dict]) -> None:
    ms = present(rows)
    cols = ["system", "file", "snr", *ms, *(f"{m}_improvement" for m in ms)]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in cols})


def _mean(vals: list[float]) -> float:
    v = [x for x in vals if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _snr_key(s: str) -> float:
    return math.inf if s == "all" else float(s)


def _summarise(rows: list[dict], meta: dict) -> dict:
    snrs = sorted({r["snr"] for r in rows}, key=_snr_key)
    out = {"snrs": snrs, "files": len({r["file"] for r in rows}), "systems": {}}
    metrics = present(rows)
    for system, m in meta.items():
        mine = [r for r in rows if r["system"] == system]
        entry = dict(m)
        entry["pesq_nan"] = sum(1 for r in mine if math.isnan(r.get("pesq", 0.0)))
        for metric in metrics:
            entry[metric] = {s: _mean([r[metric] for r in mine if r["snr"] == s]) for s in snrs}
            entry[metric]["avg"] = _mean([r[metric] for r in mine])
        out["systems"][system] = entry
    return out


def _order(summary: dict) -> list[str]:
    sy = summary["systems"]
    rank = {"noisy": 0, "classical": 1, "dense": 2}
    return sorted(sy, key=lambda n: (rank.get(sy[n]["kind"], 3), sy[n]["rate"] or 0, _method(sy[n]), n))


def markdown(summary: dict) -> str:
    snrs = summary["snrs"]
    lines = [f"Files: {summary['files']} per system.  PESQ NaN (rejected) counts are listed per system.", ""]
    first = next(iter(summary["systems"].values()), {})
    for metric, label in (("pesq", "PESQ"), ("stoi", "STOI"), ("estoi", "ESTOI"), ("si_sdr", "SI-SDR (dB)"),
                          ("dnsmos_sig", "DNSMOS SIG"), ("dnsmos_bak", "DNSMOS BAK"), ("dnsmos_ovrl", "DNSMOS OVRL")):
        if metric not in first:
            continue
        head = ["system", "method", "rate"] + [f"{s} dB" if s != "all" else "all" for s in snrs] + ["avg"]
        lines += [f"### {label}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in _order(summary):
            e = summary["systems"][name]
            rate = f"{e['rate']:.1f}x" if e["rate"] else "-"
            vals = [f"{e[metric][s]:.3f}" for s in snrs] + [f"**{e[metric]['avg']:.3f}**"]
            lines.append("| " + " | ".join([name, _method(e), rate] + vals) + " |")
        lines.append("")
    lines += ["### Models", "", "| system | method | rate | params | file size | RTF (1 thread) | PESQ NaN |",
              "|---|---|---|---|---|---|---|"]
    for name in _order(summary):
        e = summary["systems"][name]
        rate = f"{e['rate']:.1f}x" if e["rate"] else "-"
        lines.append(f"| {name} | {_method(e)} | {rate} | {e['params']:,} | {e['size_bytes'] / 1024:.0f} KB | "
                     f"{e['rtf']:.4f} | {e['pesq_nan']} |")
    if summary.get("conditions"):
        lines += ["", "## By condition", "", conditions_markdown(summary["conditions"], _order(summary))]
    if summary.get("comparisons"):
        lines += ["", stats.markdown(summary["comparisons"])]
    return "\n".join(lines) + "\n"
