"""TransformerPrune on the bundled text task: half the heads and feed-forward units of a
trained builtin transformer removed, fine-tuned with and without distillation:

    /usr/bin/python3 bench/text_transformer_prune.py --build build --out OUTDIR [--quick]
        [--seeds 1 2 3] [--base-steps 1000] [--tune-steps 300]

Data: `slim-data text` windows of 64 bytes from three licence texts of Debian's
common-licenses, one class each (eval windows from the tail of each text). The FP32 model is builtin:transformer trained --base-steps steps (Adam, cosine from 3e-3;
fine-tuning from 1e-3), batch 32.
For each of --seeds:

  distilled  TransformerPrune pruned_ratio 0.5 (weight_norm) on the FP32 model, fine-tuned
             --tune-steps steps with the unpruned model as soft-label teacher.
  plain      the same without distillation (labels only).

Top-1 of model.pt from report.json on the eval windows; latency of the FP32 and pruned
model.pt by `slim-model bench` on one thread at batch 1 and 64, in --rounds interleaved
rounds, medians over the rounds.

Target (issue 20): the distilled models at most 1.5 points below FP32 (the worst seed
judged); the speedup is reported. Prints a markdown table and writes OUTDIR/results.md and
OUTDIR/results.json. --quick runs one seed with few steps as a smoke test.
"""
import argparse
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmnist_quant import interleaved_latency, log, pct, run  # noqa: E402

LICENSES = ["Apache-2.0", "GPL-3", "MPL-2.0"]
SEQ_LEN = 64
DROP_ALLOWED = 0.015


def config_text(data, out_dir, model, steps, seed, learning_rate, sections=""):
    return f"""Global:
  model: {model}
  train_data: {data}/train.h5
  eval_data: {data}/eval.h5
  batch_size: 32
  seed: {seed}
  output_dir: {out_dir}
TrainConfig:
  train_iter: {steps}
  eval_iter: {steps}
  logging_iter: 50
  learning_rate: {{type: CosineAnnealingDecay, learning_rate: {learning_rate}}}
  optimizer_builder: {{optimizer: {{type: Adam}}}}
{sections}"""


def make_text_data(args, per_class):
    """`slim-data text` windows of SEQ_LEN bytes of LICENSES under OUT/text: per_class =
    (train, eval) windows per class."""
    run([os.path.join(args.build, "slim-data"), "text", "--out", os.path.join(args.out, "text"),
         "--seq-len", str(SEQ_LEN), "--train-per-class", str(per_class[0]),
         "--eval-per-class", str(per_class[1]),
         *(os.path.join("/usr/share/common-licenses", n) for n in LICENSES)],
        os.path.join(args.out, "logs", "data.log"))


def train(args, name, model, steps, seed, learning_rate, sections="", extra_args=()):
    """Runs slim-train on one config (and `extra_args`); returns its report.json."""
    out_dir = os.path.join(args.out, name)
    config = os.path.join(args.out, name + ".yaml")
    with open(config, "w") as f:
        f.write(config_text(os.path.join(args.out, "text"), out_dir, model, steps, seed,
                            learning_rate, sections))
    log(f"{name}: {steps} steps ...")
    run([os.path.join(args.build, "slim-train"), config, "--resume", "none", *extra_args],
        os.path.join(args.out, "logs", name + ".log"))
    with open(os.path.join(out_dir, "report.json")) as f:
        return json.load(f)


def top1(report):
    return report["exports"][0]["eval"]["top1"]


def text_bench_setup(description):
    """The command line every text-task benchmark takes (--build, --out, --quick, --seeds,
    --base-steps, --tune-steps, --rounds; --quick: one seed, few steps, one round), with
    OUT/logs made and the text data written; returns the arguments."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--build", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--base-steps", type=int, default=1000)
    parser.add_argument("--tune-steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.base_steps, args.tune_steps, args.rounds = args.seeds[:1], 20, 10, 1
    args.build, args.out = os.path.abspath(args.build), os.path.abspath(args.out)
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    make_text_data(args, (200, 50) if args.quick else (2000, 300))
    return args


def main():
    args = text_bench_setup(__doc__.splitlines()[0])
    base = train(args, "fp32", "builtin:transformer", args.base_steps, 42, 0.003)
    float_model = os.path.join(args.out, "fp32", "model.pt")
    prune = "TransformerPrune: {pruned_ratio: 0.5}\n"
    distill = "Distillation: {teacher_model: self, node: [logits], loss: [soft_label], temperature: 2}\n"
    runs = {"distilled": prune + distill, "plain": prune}
    results = {name: {} for name in runs}
    for seed in args.seeds:
        for name, sections in runs.items():
            results[name][seed] = train(args, f"{name}_s{seed}", float_model, args.tune_steps, seed,
                                        0.001, sections)

    timing = types.SimpleNamespace(rounds=args.rounds, batches=[1, 64], iterations=20,
                                   iterations_b1=200, warmup=5)
    errors = []
    files = {"fp32": float_model,
             "pruned": os.path.join(args.out, f"distilled_s{args.seeds[0]}", "model.pt")}
    trials, medians = interleaved_latency(os.path.join(args.build, "slim-model"), files,
                                          str(SEQ_LEN), timing, os.path.join(args.out, "logs"),
                                          errors)
    fp32 = top1(base)
    worst = {name: min(top1(r) for r in per.values()) for name, per in results.items()}
    prune_report = results["distilled"][args.seeds[0]]["transformer_prune"]
    rows = [
        {"figure": "top-1, FP32 builtin transformer", "ours": fp32, "target": "report", "met": None},
    ]
    for name in runs:
        values = [top1(r) for r in results[name].values()]
        rows.append({"figure": f"top-1, half the heads and units, {name} (worst seed)",
                     "ours": worst[name], "range": [min(values), max(values)],
                     "fp32": fp32, "drop_pt": 100 * (fp32 - worst[name]),
                     "target": "FP32 - 1.5 pt" if name == "distilled" else "report",
                     "met": (fp32 - worst[name] <= DROP_ALLOWED) if name == "distilled" else None})
    for batch in ("1", "64"):
        speedup = medians["fp32"][batch] / medians["pruned"][batch]
        rows.append({"figure": f"latency, batch {batch}, pruned", "ours": medians["pruned"][batch],
                     "fp32": medians["fp32"][batch], "speedup": speedup, "unit": "ms",
                     "target": "report", "met": None})
    raw = {"seeds": args.seeds, "base_steps": args.base_steps, "tune_steps": args.tune_steps,
           "parameters": [prune_report["parameters_before"], prune_report["parameters_after"]],
           "macs": [prune_report["macs_before"], prune_report["macs_after"]],
           "top1": {name: {str(s): top1(r) for s, r in per.items()} for name, per in results.items()},
           "latency_trials_ms": trials, "latency_medians_ms": medians, "errors": errors}
    md = ["| figure | ours | FP32 | note |", "| --- | --- | --- | --- |"]
    for r in rows:
        if "speedup" in r:
            md.append(f"| {r['figure']} | {r['ours']:.3f} ms | {r['fp32']:.3f} ms | "
                      f"{r['speedup']:.2f}x faster |")
        elif "range" in r:
            md.append(f"| {r['figure']} | {pct(r['ours'])} (seeds: {pct(r['range'][0])} to "
                      f"{pct(r['range'][1])}) | {pct(r['fp32'])} | drop {r['drop_pt']:.2f} pt"
                      f"{'' if r['met'] is None else (', met' if r['met'] else ', MISSED')} |")
        else:
            md.append(f"| {r['figure']} | {pct(r['ours'])} | | |")
    md.append(f"\nparameters {raw['parameters'][0]} -> {raw['parameters'][1]}, MACs "
              f"{raw['macs'][0]} -> {raw['macs'][1]}; seeds {args.seeds}, {args.base_steps} + "
              f"{args.tune_steps} steps")
    print("\n".join(md))
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "raw": raw}, f, indent=2)
    if errors:
        sys.exit(f"{len(errors)} command(s) failed: see results.json")


if __name__ == "__main__":
    main()
