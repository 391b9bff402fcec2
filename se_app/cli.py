"""``se-app``: enhance, export, compress, quantize, models, train, make-testset, evaluate.  A thin shell over
the library."""
from __future__ import annotations

import argparse
import functools
import json
import logging
import sys

from . import __version__, cli_compress, cli_train, registry
from .audio import CHANNEL_POLICIES
from .cliutil import decibels, exit_code, stop_on_sigterm
from .shard import argument as shard_arg

log = logging.getLogger("se_app")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)


def cmd_enhance(a: argparse.Namespace) -> int:
    """Exit 0 all enhanced (or skipped), 1 some file failed, 2 usage error, 130/143 stopped by SIGINT/SIGTERM
    (the file in progress is discarded; a re-run resumes, skipping finished outputs)."""
    import signal

    try:
        with stop_on_sigterm():
            return _enhance(a)
    except KeyboardInterrupt as e:  # before or after the batch itself (loading the model, say)
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"se-app: interrupted by {signal.Signals(signum).name} before any file was enhanced",
              file=sys.stderr)
        return exit_code(signum)


def _enhance(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import Interrupted, enhance_all
    from .enhancer import Enhancer

    try:
        enh = Enhancer.load(a.model, atten_limit_db=a.atten_limit, backend=a.backend, streaming=a.streaming,
                            chunk_ms=a.chunk_ms)
    except (registry.ModelNotFound, ValueError, FileNotFoundError) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    print(f"model {enh.name}: {enh.info['kind']}, {enh.info['params']:,} params, rate {enh.info['rate']:.1f}x",
          file=sys.stderr)
    try:
        summary = enhance_all(enh, a.inputs, a.output, a.suffix, a.overwrite, a.channels, progress=not a.quiet,
                              report=lambda s: tqdm.write(s, file=sys.stderr), shard=a.shard)
    except (FileNotFoundError, ValueError) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"se-app: {e}", file=sys.stderr)
        return exit_code(e.signum)
    print(f"done: {summary.line()}", file=sys.stderr)
    for src, why in summary.failed:
        print(f"  failed: {src}: {why}", file=sys.stderr)
    return 0 if summary.ok else 1


def cmd_export(a: argparse.Namespace) -> int:
    from . import checkpoint, export

    try:
        model, cfg, _ = checkpoint.load(registry.resolve(a.model)[0])
        paths = export.export(model, cfg, a.output)
    except (registry.ModelNotFound, ValueError, FileNotFoundError) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    rows = registry.listing()
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models registered in", registry.models_dir() / registry.REGISTRY)
        return 0
    print(f"{'name':<14} {'kind':<7} {'rate':>7} {'params':>9} {'size':>9}  scores")
    for r in rows:
        sc = r["scores"].get("devtest", {}) if isinstance(r["scores"], dict) else {}
        s = ", ".join(f"{k} {v:.3f}" for k, v in sc.items() if isinstance(v, (int, float)))
        if s:  # scores on different dev test sets are not comparable: say which one
            s += " (v2)" if r["scores"].get("devtest_set", "").startswith("dev test set v2") else " (v1)"
        mark = "*" if r["default"] else " "
        print(f"{r['name'] + mark:<14} {r['kind']:<7} {r['rate']:>6.1f}x {r['params']:>9,} "
              f"{r['size_bytes'] / 1024:>7.0f}KB  {s}")
    print("* default; scores: dev test set v1 (84 pairs, 16 kHz) or v2 (300 pairs: clean/reverb/tel), see "
          "docs/quality.md")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .evaluate import evaluate

    names = [m for m in a.models.split(",") if m] or None
    try:
        compare = a.compare
        if a.report:  # the report gives every MPO-vs-pruned difference with its interval
            from .evaluate import systems
            from .report import study_pairs

            compare = list(dict.fromkeys([*(compare or []), *study_pairs(systems(names))]))
        summary = evaluate(a.testset, a.output, names, workers=a.workers, limit=a.limit, progress=not a.quiet,
                           shard=a.shard, with_dnsmos=a.dnsmos, compare=compare, fresh=a.fresh)
        if a.report:
            from pathlib import Path

            from . import report

            command = "se-app " + " ".join(sys.argv[1:] if a.argv is None else a.argv)
            report.write(summary, Path(a.output), Path(a.report), command, Path(a.notes) if a.notes else None)
    except (FileNotFoundError, ValueError, registry.ModelNotFound) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    return 0


def _pairs(text: str) -> list[tuple[str, str]]:
    from .stats import parse_pairs

    try:
        return parse_pairs(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_evaluate_merge(a: argparse.Namespace) -> int:
    from .evalmerge import merge

    try:
        summary = merge(a.shards, a.output)
    except (FileNotFoundError, ValueError) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    print(f"merged {len(a.shards)} shards: {summary['files']} files, {len(summary['systems'])} systems -> "
          f"{a.output}", file=sys.stderr)
    return 0


def cmd_register(a: argparse.Namespace) -> int:
    """Add (or update) a checkpoint in the registry; kind, rate and params are read from the file."""
    import shutil
    from pathlib import Path

    root = registry.models_dir()
    src = Path(a.checkpoint)
    dst = root / f"{a.name}.pt"
    if src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    reg = registry.read(root)
    old = reg["models"].get(a.name, {})
    scores = json.loads(Path(a.scores).read_text()) if a.scores else old.get("scores")
    reg["models"][a.name] = registry.entry_for(dst, root, card=a.card or old.get("card"), scores=scores)
    if a.default or not reg.get("default"):
        reg["default"] = a.name
    registry.write(reg, root)
    print(json.dumps({a.name: reg["models"][a.name]}, indent=2))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="se-app", description="MPO-LSTM speech enhancement")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # -v and -q before or after the subcommand: the subcommands' copies leave the top-level value alone
    # unless given (SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    for parser_, default in ((p, False), (common, argparse.SUPPRESS)):
        parser_.add_argument("-v", "--verbose", action="store_true", default=default,
                             help="debug logging (more detail on each file and error)")
        parser_.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars")
    sub = p.add_subparsers(dest="cmd", required=True,  # every subcommand takes -v and -q too
                           parser_class=functools.partial(argparse.ArgumentParser, parents=[common]))

    e = sub.add_parser("enhance", help="enhance files and folders")
    e.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    e.add_argument("-o", "--output", required=True, help="output folder (same relative paths)")
    e.add_argument("--model", default=None, help="registry name or checkpoint path (default: registry default)")
    e.add_argument("--suffix", default="", help="added to each output file name before the extension")
    e.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    e.add_argument("--channels", choices=CHANNEL_POLICIES, default="each",
                   help="each: enhance every channel on its own; mix: enhance the downmix, write it to all")
    e.add_argument("--atten-limit", type=decibels, default=None, metavar="DB",
                   help="limit noise attenuation to DB decibels (a mask floor); default: no limit")
    e.add_argument("--streaming", action="store_true",
                   help="run each file through the frame-by-frame streaming path a live microphone uses "
                        "(same output)")
    e.add_argument("--chunk-ms", type=float, default=None, metavar="MS",
                   help="streaming chunk length in milliseconds (implies --streaming; default: one hop, 16 ms)")
    e.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="mask network runtime; onnx needs pip install -e '.[onnx]' (default auto: the one "
                        "measured faster, onnx for streaming when installed, else torch)")
    e.add_argument("--shard", type=shard_arg, default=None, metavar="K/N",
                   help="enhance only the K-th (from 1) of N disjoint parts of the sorted inputs, e.g. one task "
                        "of a SLURM array: --shard $((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT")
    e.set_defaults(fn=cmd_enhance)

    x = sub.add_parser("export", help="export a model to ONNX (one streaming step and the whole sequence)")
    x.add_argument("model", nargs="?", default=None, help="registry name or checkpoint path (default: registry default)")
    x.add_argument("-o", "--output", required=True,
                   help="e.g. model.onnx: writes model.step.onnx and model.whole.onnx beside it")
    x.set_defaults(fn=cmd_export)

    cli_compress.add_commands(sub)

    m = sub.add_parser("models", help="list registered models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_models)

    r = sub.add_parser("register", help="copy a checkpoint into models/ and add it to the registry")
    r.add_argument("name")
    r.add_argument("checkpoint")
    r.add_argument("--card", help="model card file, relative to models/")
    r.add_argument("--scores", help="JSON file with scores to record")
    r.add_argument("--default", action="store_true", help="make it the registry default")
    r.set_defaults(fn=cmd_register)

    cli_train.add_commands(sub)

    v = sub.add_parser("evaluate", help="score models on a noisy/clean test set")
    v.add_argument("--testset", required=True, help="folder with noisy/ and clean/ (noisy/ alone: DNSMOS only)")
    v.add_argument("--models", default="all", help="comma-separated registry names / checkpoint paths; 'all' = every registered model; "
                   "'noisereduce' = classical baseline (optional extra)")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("--workers", type=int, default=2, help="processes for scoring")
    v.add_argument("--limit", type=int, default=None, help="score only the first N files")
    v.add_argument("--report", help="also write the compression-study page (e.g. docs/results.md)")
    v.add_argument("--notes", help="Markdown appended to the report verbatim (hand-written discussion)")
    v.add_argument("--shard", type=shard_arg, default=None, metavar="K/N",
                   help="score only the K-th (from 1) of N parts of the files; join the N output folders with "
                        "'se-app evaluate-merge'")
    v.add_argument("--dnsmos", choices=["auto", "on", "off"], default="auto",
                   help="DNSMOS P.835 (SIG, BAK, OVRL; no reference needed; pip install -e '.[dnsmos]'): auto = "
                        "when installed, and always for a test set without clean/")
    v.add_argument("--fresh", action="store_true", help="score every system again, ignoring OUTPUT/cache (a "
                   "re-run otherwise reuses the scores of systems whose model, files and code are unchanged)")
    v.add_argument("--compare", type=_pairs, default=None, metavar="A:B[,C:D]",
                   help="paired differences A minus B over files with 95%% bootstrap intervals (overall and per "
                        "condition), in summary.json and summary.md; significant = interval excludes zero")
    v.set_defaults(fn=cmd_evaluate)

    mg = sub.add_parser("evaluate-merge", help="join the output folders of 'evaluate --shard K/N' runs")
    mg.add_argument("shards", nargs="+", help="the N shard output folders")
    mg.add_argument("-o", "--output", required=True, help="folder for the merged per_file.csv, summary.json, ...")
    mg.set_defaults(fn=cmd_evaluate_merge)
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    a.argv = argv
    _setup_logging(a.verbose)
    if getattr(a, "snrs", None):
        a.snrs = [int(x) if float(x).is_integer() else x for x in a.snrs]
    try:
        return a.fn(a)
    except BrokenPipeError:  # output piped into `head` and the like, which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
