"""``se-app compress`` and ``quantize``: make a trained model smaller without training (truncation, int8)."""
from __future__ import annotations

import argparse
import sys

from . import registry


def cmd_compress(a: argparse.Namespace) -> int:
    from .compress import compress_file, describe

    try:
        info = compress_file(a.model, a.rate, a.output)
    except (registry.ModelNotFound, ValueError, FileNotFoundError) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    print(describe(info))
    print(f"wrote {a.output}: use it with 'se-app enhance --model {a.output} ...', or register it with "
          f"'se-app register NAME {a.output}'", file=sys.stderr)
    return 0


def cmd_quantize(a: argparse.Namespace) -> int:
    from .quantize import describe, quantize_file

    try:
        info = quantize_file(a.model, a.output, a.compact, a.bits, a.scope)
    except (registry.ModelNotFound, ValueError, FileNotFoundError) as e:
        print(f"se-app: error: {e}", file=sys.stderr)
        return 2
    print(describe(info))
    print(f"wrote {a.output}" + (f" and {a.compact}" if a.compact else "") + ": use the checkpoint as any other "
          f"('se-app enhance --model {a.output} ...', 'se-app register NAME {a.output}')", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The two subcommands, added to ``se-app``'s subparsers."""
    c = sub.add_parser("compress", help="truncate a trained MPO (bond dimensions) or dense model (rank, by SVD) "
                       "to a higher compression rate, without training")
    c.add_argument("model", help="registry name or checkpoint path of an MPO, dense or low-rank model")
    c.add_argument("--rate", type=float, required=True,
                   help="target compression rate of W and U (as 'se-app models' reports it), at least the model's")
    c.add_argument("-o", "--output", required=True, help="checkpoint to write (e.g. mpo-40x.pt)")
    c.set_defaults(fn=cmd_compress)

    qz = sub.add_parser("quantize", help="quantise W and U (int8: MPO local tensors, pruned values), with "
                        "--scope all also the output layer's weights, without training")
    qz.add_argument("model", help="registry name or checkpoint path")
    qz.add_argument("-o", "--output", required=True, help="checkpoint of the fake-quant model (e.g. mpo-20x-int8.pt)")
    qz.add_argument("--compact", help="also write the compact file (.npz: int8 values, scales, sparse index)")
    qz.add_argument("--bits", type=int, default=8, help="bits per stored value, 2 to 8 (default 8)")
    qz.add_argument("--scope", choices=("wu", "all"), default="wu",
                    help="what to quantise: wu = W and U only (default); all = also the output layer's weight "
                    "matrix (biases and feature statistics stay float32 in both)")
    qz.set_defaults(fn=cmd_quantize)
