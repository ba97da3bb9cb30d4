"""SlimTrain's ChannelPrune against PyTorch's structured pruning on one trained FP32 model:

    /usr/bin/python3 bench/fmnist_channel_prune.py --build build --model FLOAT.pt --data DIR \\
        --out OUTDIR [--quick] [--epochs 1] [--seeds 42 43] [--macs-ratio 0.5]
        [--ranking global|per-group | --ratios JSON]

FLOAT.pt and DIR as for fmnist_sparsity.py (configs/fmnist_train.yaml's model and the
`slim-data fashion-mnist` files); the fine-tune recipe is that script's, with the float
model as soft-label teacher. For each of --seeds:

  ours     `mpirun -np 2 slim-train` with ChannelPrune target_macs_ratio --macs-ratio
           (l1_norm; --ranking global, the default: global_pruning, the channels of all
           groups ranked together; per-group: every group loses the same share; the ratio
           is raised until the counted MACs meet the target; --ratios: a pruned_ratio
           map instead, for channel counts chosen by hand) and distillation from the
           unpruned model; top-1 of model.pt from report.json, MACs before and after, and
           the share of the prunable channels removed.
  PyTorch  torch.nn.utils.prune.ln_structured (L1, dim 0: whole output channels) on every
           convolution of the nn.Module twin of the float model, at the one ratio whose
           removal from every group would meet --macs-ratio (per-group ranking's ratio,
           read once from a `slim-train --dry-run` of that target), the same fine-tune (steps, batch,
           optimizer, schedule, augmentation, distillation loss) in Python, prune.remove,
           top-1 on the same eval file. Its channels are zero, not gone: the model keeps
           its shapes.

Latency: `slim-model bench` of the float model, our model.pt and PyTorch's pruned model
(scripted), one thread, at batch 1 and 64, in --rounds interleaved rounds; medians over the
rounds, speedups against the float model.

Targets (issue 14): our top-1 at most 1 point below FP32 at 2x fewer MACs, at least
PyTorch's, and at least 1.6x faster at batch 64; PyTorch's masks bring no speedup. With
several seeds the worst seed is judged. Prints a markdown table and writes OUTDIR/results.md
and OUTDIR/results.json. --quick runs one seed on small subsets as a smoke test.
"""
import json
import os
import re
import shlex
import subprocess
import sys
import time

import torch
from torch.nn.utils import prune

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_quant  # noqa: E402  (bench/pytorch_quant.py: top1)
from fmnist_quant import (ENV, CommandFailed, attempt, fine_tune, interleaved_latency,  # noqa: E402
                          load_twin, log, pct, run)
from fmnist_sparsity import (OurRun, Setup, at_least, completed, fine_tune_parser,  # noqa: E402
                             write_config)

DROP_ALLOWED = 0.01
SPEEDUP_WANTED = 1.6


def prune_section(args):
    """Our ChannelPrune section: --ratios' map, else the MACs target ranked as --ranking
    says."""
    if args.ratios:
        return f"ChannelPrune:\n  pruned_ratio: {json.dumps(args.ratios)}\n"
    ranking = "  global_pruning: true\n" if args.ranking == "global" else ""
    return f"ChannelPrune:\n  target_macs_ratio: {args.macs_ratio}\n{ranking}"


def run_ours(setup, seed):
    """Our ChannelPrune run with `seed`: top-1, MACs, parameters, the share of the prunable
    channels removed, and the config it ran."""
    spec = OurRun(f"ChannelPrune to {setup.args.macs_ratio} of the MACs", "ChannelPrune",
                  prune_section(setup.args), DROP_ALLOWED, None, True)
    config, out_dir = write_config(setup, "channel_prune", seed, spec)
    log(f"ours: ChannelPrune, seed {seed} ...")
    start = time.perf_counter()
    run([os.path.join(setup.build, "slim-train"), config, "--resume", "none"],
        setup.path("logs", f"ours_channel_prune_s{seed}.log"), ranks=setup.args.ranks)
    with open(os.path.join(out_dir, "report.json")) as f:
        report = json.load(f)
    pruned = report["channel_prune"]
    result = {"dir": out_dir, "model": os.path.join(out_dir, "model.pt"),
              "wall_s": time.perf_counter() - start, "top1": report["final"]["eval_top1"],
              "macs_before": pruned["macs_before"], "macs_after": pruned["macs_after"],
              "parameters_before": pruned["parameters_before"],
              "parameters_after": pruned["parameters_after"],
              "channels_removed": 1 - sum(g["channels_after"] for g in pruned["groups"]) /
              sum(g["channels_before"] for g in pruned["groups"]),
              "channels_kept": {g["name"]: g["channels_after"] for g in pruned["groups"]},
              "config": config}
    log(f"ours: seed {seed}: top-1 {result['top1']:.4f}, MACs "
        f"{result['macs_before'] / result['macs_after']:.2f}x fewer, "
        f"{result['channels_removed']:.1%} of the channels removed")
    return result


def per_group_ratio(setup):
    """The ratio that every group must lose for --macs-ratio (per-group ranking), from a dry
    run of that target."""
    spec = OurRun("the anchor's ratio", "ChannelPrune",
                  f"ChannelPrune:\n  target_macs_ratio: {setup.args.macs_ratio}\n",
                  DROP_ALLOWED, None, True)
    config, _ = write_config(setup, "anchor_ratio", setup.args.seeds[0], spec)
    done = subprocess.run([os.path.join(setup.build, "slim-train"), config, "--dry-run"],
                          capture_output=True, text=True, env=ENV)
    found = re.search(r"reached at pruned_ratio ([0-9.]+)", done.stdout + done.stderr)
    if done.returncode != 0 or not found:
        raise CommandFailed(f"no per-group ratio from the dry run of {config}:\n{done.stderr}")
    return float(found.group(1))


def pytorch_anchor(setup, seed, ratio):
    """ln_structured at `ratio` on every convolution of the twin, fine-tuned with `seed`:
    its top-1 and its scripted file."""
    torch.manual_seed(seed)
    _, model = load_twin(setup.script, setup.eval_data, setup.sample_shape, setup.num_classes)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        prune.ln_structured(conv, "weight", amount=ratio, n=1, dim=0)
    teacher = None if setup.args.no_distill else setup.script
    steps, seconds = fine_tune(model, teacher, setup.train_data, setup.args, seed,
                               f"pytorch ln_structured {ratio:.3f}, seed {seed}")
    for conv in convs:
        prune.remove(conv, "weight")
    model.eval()
    path = setup.path("pytorch", f"ln_structured_s{seed}.pt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.jit.script(model).save(path)
    zero_rows = sum(int((c.weight.flatten(1).abs().sum(1) == 0).sum()) for c in convs)
    result = {"top1": pytorch_quant.top1(model, setup.eval_data, 256), "model": path,
              "zero_channels": zero_rows, "steps": steps, "train_s": seconds}
    log(f"pytorch ln_structured, seed {seed}: top-1 {result['top1']:.4f} ({zero_rows} zero "
        f"output channels, {seconds:.0f} s training)")
    return result


def make_rows(raw):
    """Rows as run_bench.py reads them: figure, ours, pytorch (None: no PyTorch figure),
    target, met (None: no target), unit ("top-1" fraction or "x" ratio)."""
    float_top1 = raw["float_top1"]
    seeds = [s for s in raw["seeds"].values() if s["ours"]]
    ours = [s["ours"] for s in seeds]
    theirs = [s["pytorch"] for s in seeds if s["pytorch"]]
    rows = []

    def row(figure, ours_value, pytorch_value, target, met, unit):
        rows.append({"figure": figure, "ours": ours_value, "pytorch": pytorch_value,
                     "target": target, "met": met, "unit": unit})

    if ours:
        worst = min(r["top1"] for r in ours)
        row("top-1, worst seed", worst, None, f">= FP32 {pct(float_top1)} - 1 pt",
            at_least(worst, float_top1 - DROP_ALLOWED), "top-1")
        if theirs:
            mean = sum(r["top1"] for r in ours) / len(ours)
            their_mean = sum(r["top1"] for r in theirs) / len(theirs)
            row("top-1, mean over seeds", mean, their_mean, ">= PyTorch's",
                at_least(mean, their_mean), "top-1")
        fewer = min(r["macs_before"] / r["macs_after"] for r in ours)
        row("MACs, x fewer than FP32", fewer, 1.0, ">= 2x", fewer >= 1.999, "x")
    medians = raw.get("latency_ms", {})
    base = medians.get("float", {})
    for batch in ("1", "64"):
        speed = {name: base[batch] / m[batch] if base.get(batch) and m.get(batch) else None
                 for name, m in medians.items()}
        if speed.get("ours") is None:
            continue
        wanted = batch == "64"
        row(f"speedup at batch {batch}", speed["ours"], speed.get("pytorch"),
            f">= {SPEEDUP_WANTED}x" if wanted else "—",
            speed["ours"] >= SPEEDUP_WANTED if wanted else None, "x")
    return rows


def text(value, unit):
    if value is None:
        return "—"
    return pct(value) if unit == "top-1" else f"{value:.2f}x"


def report(rows, raw, out):
    lines = ["| figure | ours | PyTorch | target | met |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        mark = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['figure']} | {text(r['ours'], r['unit'])} | "
                     f"{text(r['pytorch'], r['unit'])} | {r['target']} | {mark} |")
    per_seed = [f"seed {seed}: ours {pct(s['ours']['top1'])}, PyTorch "
                f"{pct(s['pytorch']['top1']) if s['pytorch'] else '—'}"
                for seed, s in raw["seeds"].items() if s["ours"]]
    write_results("\n".join(lines) + "\n\n" + "; ".join(per_seed) + "\n", rows, raw, out)


def write_results(body, rows, raw, out):
    """Prints the markdown `body` and writes it to OUT/results.md, rows and raw figures to
    OUT/results.json."""
    print(body)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(body)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"rows": rows, "raw": raw}, f, indent=1)


def add_latency_options(parser):
    """The interleaved latency options this script and fmnist_resrep.py share."""
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--iterations-b1", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)


def add_ranking_option(parser, default):
    """--ranking, our ChannelPrune run's ranking; this script and fmnist_resrep.py share it."""
    parser.add_argument("--ranking", choices=["global", "per-group"], default=default,
                        help="our ChannelPrune ranking: global_pruning, or one share per group")


def quick_latency(args):
    """--quick's latency settings: one short round."""
    if args.quick:
        args.rounds, args.iterations, args.iterations_b1, args.warmup = 1, 5, 10, 2
    return args


def main():
    parser = fine_tune_parser(__doc__)
    parser.add_argument("--macs-ratio", type=float, default=0.5,
                        help="share of the float model's MACs ours may keep")
    add_ranking_option(parser, "global")
    parser.add_argument("--ratios", type=json.loads,
                        help="a ChannelPrune pruned_ratio map (JSON) instead of the MACs target")
    add_latency_options(parser)
    args = quick_latency(completed(parser.parse_args(), "fmnist_channel_prune"))
    torch.set_num_threads(args.threads)
    setup = Setup(args)
    raw = {"command": " ".join(shlex.quote(a) for a in sys.argv), "torch": torch.__version__,
           "train_images": setup.train_images, "eval_images": setup.eval_images,
           "errors": setup.errors, "seeds": {}}
    raw["float_top1"] = pytorch_quant.top1(setup.script, setup.eval_data, 256)
    log(f"FP32 top-1 {raw['float_top1']:.4f}")
    ratio = attempt(setup.errors, "per-group ratio", per_group_ratio, setup)
    raw["pytorch_ratio"] = ratio
    for seed in args.seeds:
        ours = attempt(setup.errors, f"ours, seed {seed}", run_ours, setup, seed)
        theirs = ratio and attempt(setup.errors, f"pytorch, seed {seed}", pytorch_anchor, setup,
                                   seed, ratio)
        raw["seeds"][str(seed)] = {"ours": ours, "pytorch": theirs}
    first = raw["seeds"][str(args.seeds[0])]
    files = {"float": setup.model}
    for name in ("ours", "pytorch"):
        if first[name]:
            files[name] = first[name]["model"]
    shape = ",".join(map(str, setup.sample_shape))
    raw["latency_trials_ms"], raw["latency_ms"] = interleaved_latency(
        os.path.join(setup.build, "slim-model"), files, shape, args, setup.path("logs"),
        setup.errors)
    report(make_rows(raw), raw, setup.out)


if __name__ == "__main__":
    main()
