"""Helpers of the ``se-app`` command line: option types, help with defaults, signals that stop a batch."""
from __future__ import annotations

import argparse
import contextlib
import math
import signal
from collections.abc import Iterator

# train's model options map to ModelConfig fields of another name
_MODEL_FIELDS = {"kind": "kind", "hidden": "hidden", "layers": "layers", "factors": "n_factors",
                 "lookahead": "lookahead"}

TRAIN_OPTIONS = (  # train's TrainConfig options: name, type, help (defaults come from TrainConfig)
    ("steps", int, "training steps"), ("batch", int, "examples per step"),
    ("epoch_steps", int, "steps between validations and checkpoints"), ("seed", int, "random seed"),
    ("batch_offset", int, "draw batch k as batch k + this (a fine-tune: the steps its start model trained)"),
    ("valid_count", int, "valid mixtures scored at each validation"), ("valid_pesq_count", int, "of them scored by PESQ"),
    ("warmup", int, "steps of linear learning-rate warm-up"), ("seconds", float, "length of a training example"),
    ("lr", float, "peak learning rate (cosine decay)"), ("prune_start", float, "pruned kind: pruning starts "
     "at this fraction of the run"), ("prune_end", float, "pruned kind: and reaches its sparsity here"),
    ("noise_speed", float, "> 1: half the noise segments resampled by a factor in [1/x, x]; 0: off"),
    ("speech_fraction", float, "< 1: train on this fixed share of the speech clips"),
    ("kd_weight", float, "with --teacher: loss = (1 - w) x loss to the truth + w x loss to the teacher (a "
     "resumed run that had a teacher keeps its own)"))


def decibels(text: str) -> float:
    """argparse type of ``--atten-limit``: a finite number of dB, zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of decibels") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of decibels >= 0 (the most the noise "
                                         f"may be lowered); leave the option out for no limit")
    return value


def _config_defaults() -> dict[str, object]:
    """Defaults of train's options that are None on the command line ("take the config's"): the dataclass
    defaults of TrainConfig and ModelConfig.  Imported only when a help page is printed (torch is slow)."""
    from dataclasses import MISSING, fields

    from .model import ModelConfig
    from .train import TrainConfig

    out = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    model = {f.name: f.default for f in fields(ModelConfig) if f.default is not MISSING}
    out.update({dest: model[name] for dest, name in _MODEL_FIELDS.items()})
    return out


class DefaultsHelp(argparse.HelpFormatter):
    """Every option's help ends with its default: the argparse default when it has one, else (train's
    None defaults) the training or model config's default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.help == argparse.SUPPRESS or "default" in text or not action.option_strings:
            return text
        default = action.default
        if default is None:
            default = _config_defaults().get(action.dest)
        if default is None or default is False or default == argparse.SUPPRESS:
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        shown = '""' if shown == "" else shown
        return f"{text} (default: {shown})".strip().replace("%", "%%")


def exit_code(signum: int) -> int:
    """The shell's code for a command stopped by a signal: 128 + its number (130 SIGINT, 143 SIGTERM)."""
    return 128 + int(signum)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block SIGTERM stops the work like Ctrl-C does (raising :class:`se_app.batch.Stopped`), so
    the file in progress is discarded and its temporary removed; the old handler is restored after."""
    from .batch import Stopped

    def handler(signum: int, frame: object) -> None:
        raise Stopped(signum)

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
