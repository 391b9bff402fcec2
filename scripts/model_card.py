"""Write a model card (Markdown) for a trained run: data, steps, time, hardware, valid and dev-test scores.

python scripts/model_card.py NAME RUN_DIR [--devtest EVAL_DIR/summary.json] > models/NAME.md
"""
from __future__ import annotations

import argparse
import csv
import json
import platform
from pathlib import Path

from se_app import checkpoint


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("run", type=Path)
    p.add_argument("--devtest", type=Path)
    p.add_argument("--system", help="the model's name in the dev-test summary, when not NAME (e.g. a file path)")
    p.add_argument("--command", default="")
    p.add_argument("--checkpoint", type=Path, help="the shipped file, when it is not RUN/best.pt (post-filter)")
    a = p.parse_args()
    ck = checkpoint.read(a.checkpoint or a.run / "best.pt")
    prov, mc = ck["provenance"], ck["model"]
    log = list(csv.DictReader(open(a.run / "log.csv")))
    best = ck["scores"]["valid"]  # the shipped checkpoint's own validation (a resumed log may mix valid sets)
    la = mc.get("lookahead", 0)
    timing = (f"with a look-ahead of {la} frames ({16 * la} ms; streaming latency {32 + 16 * la} ms)" if la
              else "causal (streaming latency 32 ms)")
    out = [f"# {a.name}", "",
           f"- kind: **{mc['kind']}**, 2-layer LSTM mask estimator, {timing}, hidden {mc['hidden']}, "
           f"257-bin log-power input, sigmoid mask output",
           f"- recurrent weights W and U: compression {ck['rate']:.2f}x; stored parameters {ck['params']:,} "
           f"(including biases, feature statistics excluded, and the dense 257 x {mc['hidden']} output layer)"]
    if mc["kind"] == "mpo":
        how = (f"initialised by SVD truncation of the W and U of `{prov.get('init_from') or 'the trained dense LSTM'}`, "
               "then fine-tuned" if prov.get("init") == "svd" else "trained from scratch")
        profile = f" ({mc['bond_profile']} profile)" if mc.get("bond_profile", "uniform") != "uniform" else ""
        out.append(f"- MPO: {mc['n_factors']} local tensors per matrix, bond dimensions {mc['bonds']}{profile}, {how}")
    if mc["kind"] == "pruned":
        t = prov.get("train", {})
        when = ("at once at the start, then fine-tuned" if t.get("prune_end") == t.get("prune_start") else
                f"reached gradually (cubic schedule from {t.get('prune_start', 0.1):g} to {t.get('prune_end', 0.6):g} "
                f"of the run), then fine-tuned at that sparsity")
        out.append(f"- pruning: per-matrix magnitude (each W and U keeps the same share of its largest weights; "
                   f"biases and the output layer are not pruned) of `{prov.get('init_from') or 'the trained dense LSTM'}`, "
                   f"sparsity {mc['sparsity']:.4f}, {when}")
    pf = prov.get("postfilter")
    if pf:
        table = ", ".join(f"{r['power']:g}: {r['pesq']:.3f}/{r['stoi']:.3f}" for r in pf["table"])
        out.append(f"- post-filter: mask raised to the power {mc.get('mask_power')} before it is applied, chosen "
                   f"on {pf['files']} valid mixtures by the rule '{pf['rule']}' (power: valid PESQ/STOI = {table})")
    t = prov.get("train", {})
    recipe = (f"; recipe (shares of examples): reverberation {t['reverb']:g} (real train RIRs and {t['sim_rooms']} "
              f"simulated rooms, target `{t['target']}`), band-limited {t['bandlimit']:g}, babble {t['babble']:g}, "
              f"clipping {t['clipping']:g} (docs/quality.md)") if "reverb" in t else ""
    out += [f"- data: `{prov.get('data')}` train split only (speech, real noise and RIRs; 8 kHz speech with band "
            f"mask), mixed on the fly, SNR -5..20 dB" + recipe
            + (f"; half the noise segments resampled by a factor in [1/{t['noise_speed']:g}, "
               f"{t['noise_speed']:g}]" if t.get("noise_speed", 0) > 1 else ""),
            f"- training: {prov.get('steps')} steps of batch {t.get('batch')} x {t.get('seconds')} s, Adam lr "
            f"{t.get('lr')} warm-up + cosine, loss `{t.get('loss')}`, seed {t.get('seed')}",
            f"- time: {prov.get('train_seconds', 0) / 60:.0f} min on {prov.get('threads')} CPU thread "
            f"({platform.processor() or platform.machine()}, sharing 2 cores with a second training run)",
            f"- checkpoint: step {prov.get('steps')} of {log[-1]['step']}, "
            f"{'the final weights' if str(prov.get('steps')) == str(log[-1]['step']) else 'the best by valid PESQ'} "
            f"(valid: {t.get('valid_count', 48)} fixed mixtures, PESQ/STOI on {t.get('valid_pesq_count', 16)} of them)",
            f"- valid: loss {float(best['val_loss']):.4f}, PESQ {float(best['val_pesq']):.3f}, "
            f"STOI {float(best['val_stoi']):.3f}"]
    if t.get("teacher"):
        out.insert(-3, f"- distillation: loss = {1 - t['kd_weight']:g} x the `{t.get('loss', 'irm')}` loss to the truth + "
                       f"{t['kd_weight']:g} x the same loss to the output of `{t['teacher']}` (its mask for `irm`, its "
                       f"enhanced spectrum for `cmag`; se_app/losses.py)")
    if a.devtest and a.devtest.exists():
        s = json.loads(a.devtest.read_text())
        key = a.system or a.name
        sy = s["systems"].get(key)
        if sy:
            out += ["", f"## Dev test set ({s['files']} pairs; `{a.devtest}`)", "",
                    "| set | | PESQ | STOI | ESTOI | SI-SDR dB |", "|---|---|---|---|---|---|"]
            parts = [("all", s)] + list(s.get("conditions", {}).items())
            for part, ps in parts:
                for label, k in (("noisy", "noisy"), (a.name, key)):
                    e = ps["systems"][k]
                    out.append(f"| {part} | {label} | {e['pesq']['avg']:.3f} | {e['stoi']['avg']:.3f} | "
                               f"{e['estoi']['avg']:.3f} | {e['si_sdr']['avg']:.2f} |")
    if a.command:
        out += ["", "Trained with:", "", f"```\n{a.command}\n```"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
