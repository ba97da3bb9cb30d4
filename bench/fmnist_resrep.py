"""SlimTrain's ResRep against its ChannelPrune (l1_norm) at the same MACs and fine-tuning
budget, on one trained FP32 Fashion-MNIST model:

    /usr/bin/python3 bench/fmnist_resrep.py --build build --model FLOAT.pt --data DIR \\
        --out OUTDIR [--quick] [--epochs 1] [--seeds 42 43] [--macs-ratio 0.5] [--lasso 1.0]
        [--ranking per-group|global]

FLOAT.pt and DIR as for fmnist_channel_prune.py, whose fine-tune recipe (with the float
model as soft-label teacher) both runs share. For each of --seeds:

  ChannelPrune  target_macs_ratio --macs-ratio, l1_norm, channels removed before
                fine-tuning (fmnist_channel_prune.py's run; --ranking per-group, the
                default here: every group loses the same share).
  ResRep        flops_target --macs-ratio, lasso_strength --lasso, the automatic mask
                schedule (masks from a twentieth of the run until a quarter of it); compactors merged
                and masked channels removed at the end.

Latency: `slim-model bench` of the float model and both first-seed models, one thread, at
batch 1 and 64, in --rounds interleaved rounds; medians over the rounds.

Target (issue 20): ResRep's top-1 drop at most ChannelPrune's at the same MACs (worst seed
of each). Prints a markdown table and writes OUTDIR/results.md and OUTDIR/results.json.
"""
import json
import os
import shlex
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_quant  # noqa: E402  (bench/pytorch_quant.py: top1)
from fmnist_channel_prune import (add_latency_options, add_ranking_option,  # noqa: E402
                                  quick_latency, write_results)
from fmnist_channel_prune import run_ours as run_channel_prune  # noqa: E402
from fmnist_quant import attempt, interleaved_latency, log, pct, run  # noqa: E402
from fmnist_sparsity import OurRun, Setup, completed, fine_tune_parser, write_config  # noqa: E402


def run_resrep(setup, seed):
    """Our ResRep run with `seed`: top-1 and MACs from report.json."""
    a = setup.args
    spec = OurRun(f"ResRep to {a.macs_ratio} of the MACs", "ResRep",
                  f"ResRep:\n  flops_target: {a.macs_ratio}\n  lasso_strength: {a.lasso}\n",
                  None, None, True)
    config, out_dir = write_config(setup, "resrep", seed, spec)
    log(f"ours: ResRep, seed {seed} ...")
    start = time.perf_counter()
    run([os.path.join(setup.build, "slim-train"), config, "--resume", "none"],
        setup.path("logs", f"ours_resrep_s{seed}.log"), ranks=a.ranks)
    with open(os.path.join(out_dir, "report.json")) as f:
        report = json.load(f)
    resrep = report["resrep"]
    result = {"dir": out_dir, "model": os.path.join(out_dir, "model.pt"),
              "wall_s": time.perf_counter() - start,
              # model.pt, merged: the evaluations during training see the compactors.
              "top1": report["exports"][0]["eval"]["top1"],
              "top1_before_merge": report["final"]["eval_top1"],
              "macs_before": resrep["macs_before"], "macs_after": resrep["macs_after"],
              "target_reached": resrep["target_reached"]}
    log(f"ours: ResRep seed {seed}: top-1 {result['top1']:.4f}, MACs "
        f"{result['macs_before'] / result['macs_after']:.2f}x fewer")
    return result


def make_rows(raw):
    float_top1 = raw["float_top1"]
    runs = {name: [s[name] for s in raw["seeds"].values() if s[name]]
            for name in ("channel_prune", "resrep")}
    rows = [{"figure": "top-1, FP32", "ours": float_top1, "anchor": None, "met": None}]
    worst = {name: min((r["top1"] for r in results), default=None) for name, results in runs.items()}
    if worst["resrep"] is not None and worst["channel_prune"] is not None:
        rows.append({"figure": "top-1, worst seed", "ours": worst["resrep"],
                     "anchor": worst["channel_prune"], "target": ">= ChannelPrune's",
                     "met": worst["resrep"] >= worst["channel_prune"],
                     "range": {n: [min(r["top1"] for r in v), max(r["top1"] for r in v)]
                               for n, v in runs.items() if v}})
    for name, results in runs.items():
        if results:
            rows.append({"figure": f"MACs kept, {name}",
                         "ours": max(r["macs_after"] / r["macs_before"] for r in results),
                         "anchor": None, "met": None, "unit": "share"})
    base = raw["latency_ms"].get("float", {})
    for batch in ("1", "64"):
        speed = {n: base[batch] / m[batch] for n, m in raw["latency_ms"].items()
                 if base.get(batch) and m.get(batch)}
        if "resrep" in speed:
            rows.append({"figure": f"speedup at batch {batch}", "ours": speed["resrep"],
                         "anchor": speed.get("channel_prune"), "met": None, "unit": "x"})
    return rows


def report(rows, raw, out):
    def text(value, unit):
        if value is None:
            return "—"
        return f"{value:.2f}x" if unit == "x" else (f"{value:.3f}" if unit == "share" else pct(value))

    lines = ["| figure | ResRep | ChannelPrune | target | met |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        unit = r.get("unit", "top-1")
        mark = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['figure']} | {text(r['ours'], unit)} | {text(r['anchor'], unit)} | "
                     f"{r.get('target', '—')} | {mark} |")
    per_seed = [f"seed {seed}: ResRep {pct(s['resrep']['top1']) if s['resrep'] else '—'}, "
                f"ChannelPrune {pct(s['channel_prune']['top1']) if s['channel_prune'] else '—'}"
                for seed, s in raw["seeds"].items()]
    write_results("\n".join(lines) + "\n\n" + "; ".join(per_seed) + "\n", rows, raw, out)


def main():
    parser = fine_tune_parser(__doc__)
    parser.add_argument("--macs-ratio", type=float, default=0.5,
                        help="share of the float model's MACs both may keep")
    parser.add_argument("--lasso", type=float, default=1.0, help="ResRep's lasso_strength")
    add_ranking_option(parser, "per-group")
    add_latency_options(parser)
    args = quick_latency(completed(parser.parse_args(), "fmnist_resrep"))
    torch.set_num_threads(args.threads)
    setup = Setup(args)
    raw = {"command": " ".join(shlex.quote(a) for a in sys.argv), "errors": setup.errors,
           "seeds": {}, "float_top1": pytorch_quant.top1(setup.script, setup.eval_data, 256)}
    log(f"FP32 top-1 {raw['float_top1']:.4f}")
    for seed in args.seeds:
        raw["seeds"][str(seed)] = {
            "channel_prune": attempt(setup.errors, f"ChannelPrune, seed {seed}",
                                     run_channel_prune, setup, seed),
            "resrep": attempt(setup.errors, f"ResRep, seed {seed}", run_resrep, setup, seed)}
    first = raw["seeds"][str(args.seeds[0])]
    files = {"float": setup.model}
    files.update({name: first[name]["model"] for name in ("channel_prune", "resrep") if first[name]})
    raw["latency_trials_ms"], raw["latency_ms"] = interleaved_latency(
        os.path.join(setup.build, "slim-model"), files, ",".join(map(str, setup.sample_shape)),
        args, setup.path("logs"), setup.errors)
    report(make_rows(raw), raw, setup.out)


if __name__ == "__main__":
    main()
