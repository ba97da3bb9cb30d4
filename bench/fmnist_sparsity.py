"""SlimTrain's pruning against PyTorch's own on one trained FP32 model, one command:

    /usr/bin/python3 bench/fmnist_sparsity.py --build build --model FLOAT.pt --data DIR \\
        --out OUTDIR [--quick] [--epochs 1] [--seeds 42 43]

FLOAT.pt is a float TorchScript model trained on DIR/train.h5 (configs/fmnist_train.yaml's
builtin fmnist_resnet; DIR as `slim-data fashion-mnist --out DIR` writes it: train.h5 and
eval.h5). Every run starts from that model and fine-tunes it for --epochs on the same
training images with one recipe, configs/fmnist_qat.yaml's: global batch 128 (64 per rank on
2 ranks), Momentum 0.9, weight decay 5e-4, cosine from lr 0.005 to 0, horizontal flips and no
crops, and the float model itself as soft-label teacher (T = 2, label loss weight 1;
--no-distill trains on the labels alone). For each of --seeds it measures:

  ours      four `mpirun -np 2 slim-train` runs, each with its own config:
              unstructured_50  UnstructurePrune one-shot, 50 % global over every convolution
                               and linear weight but the first and the last
                               (prune_params_type: null)
              asp_2to4         ASPPrune 2:4 on every weight that can take it
              gmp_75           UnstructurePrune GMP to 75 % global (gmp_config omitted: ACT's
                               automatic schedule)
              gmp_50_qat_kd    UnstructurePrune GMP to 50 % + QuantAware (conv2d and linear,
                               channel_wise_abs_max) + distillation, distilled even under
                               --no-distill
            top-1 from report.json's final evaluation (of model.pt; for gmp_50_qat_kd the
            fake-quantized model) and the sparsity reached from its `sparsity` section.
  PyTorch   torch.nn.utils.prune.global_unstructured (L1Unstructured, amount 0.5) over the
            weights our unstructured_50 run of the same seed pruned (its report's layer
            list), on the nn.Module twin of the float model (fmnist_quant.py's ARCHITECTURES),
            then fmnist_quant.py's hand-written fine-tune with the same steps, batch,
            optimizer, schedule, augmentation and, when ours distills, the same loss
            (cross-entropy + KL(teacher/T || student/T)·T²), then prune.remove and top-1 on
            the same eval file.

FP32 top-1 is the float model's, evaluated by PyTorch on the eval file. Targets: 50 %
unstructured and 2:4 within 1 point of it, GMP 75 % within 2 points, GMP 50 % + QAT +
distillation within 1.5 points, each run at the sparsity it asks for, and our 50 % at least
PyTorch's. With several seeds a figure shows the range over seeds and its target is judged
on the worst seed (ours against PyTorch's: the worst of ours against the worst of theirs).

Prints a markdown table (figure, ours, PyTorch's, target, met, note) and writes
OUTDIR/results.md and OUTDIR/results.json (rows plus every raw figure). Our runs live in
OUTDIR/ours/<run>_s<seed>/ next to their configs, every slim-train log in OUTDIR/logs/.
--quick runs one seed on small subsets (512 training, 1,000 eval images) as a smoke test:
its figures mean little, and its runs are too short for the automatic GMP schedule, which
prunes for at least 30 steps, to reach its ratio.

The time a masked training step costs is run_bench.py's `pruning` section.

Uses Debian's python3 with python3-torch and python3-h5py; needs `mpirun` and the build's
slim-train.
"""
import json
import os
import shlex
import sys
import time
from collections import namedtuple

import torch
from torch.nn.utils import prune

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_quant  # noqa: E402  (bench/pytorch_quant.py: top1)
from fmnist_quant import (attempt, distillation_section, fine_tune, fine_tune_section,  # noqa: E402
                          load_twin, log, model_bench_parser, pct, run,
                          split_facts, subset)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBSET_SEED = 42  # draws the training and eval subsets, the same whatever --seeds
ANCHOR_RATIO = 0.5  # PyTorch's anchor prunes this share, as our unstructured_50 run does

# One of our runs: `section` is the pruning section whose report.json figures it reads,
# `sections` the strategy sections of its config, `tolerance` how far below FP32 top-1 its
# target lets it fall, `ratio` the share of its pruned weights that must end up zero.
OurRun = namedtuple("OurRun", "label section sections tolerance ratio always_distills")

RUNS = {
    "unstructured_50": OurRun(
        "50 % unstructured (one-shot, global)", "UnstructurePrune",
        "UnstructurePrune:\n  ratio: 0.5\n  prune_params_type: null\n", 0.01, 0.5, False),
    "asp_2to4": OurRun("2:4 (ASPPrune, every eligible weight)", "ASPPrune",
                       "ASPPrune:\n  prune_params_name: null\n", 0.01, 0.5, False),
    "gmp_75": OurRun(
        "75 % unstructured (GMP, global)", "UnstructurePrune",
        "UnstructurePrune:\n  prune_strategy: gmp\n  ratio: 0.75\n  prune_params_type: null\n",
        0.02, 0.75, False),
    "gmp_50_qat_kd": OurRun(
        "GMP 50 % + QAT + distillation (fake-quantized model.pt)", "UnstructurePrune",
        "UnstructurePrune:\n  prune_strategy: gmp\n  ratio: 0.5\n  prune_params_type: null\n"
        "QuantAware:\n  quantize_op_types: [conv2d, linear]\n"
        "  weight_quantize_type: channel_wise_abs_max\n", 0.015, 0.5, True),
}


class Setup:
    """What every run shares: the float model, the training and eval files (subsets under
    --quick), the fine-tune recipe (the parsed arguments) and OUTDIR's layout."""

    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.model = os.path.abspath(args.model)
        for sub in ("data", "ours", "logs"):
            os.makedirs(self.path(sub), exist_ok=True)
        data = os.path.abspath(args.data)
        train, evaluation = os.path.join(data, "train.h5"), os.path.join(data, "eval.h5")
        for path in (train, evaluation, self.model):
            if not os.path.exists(path):
                sys.exit(f"fmnist_sparsity: {path} does not exist")
        self.train_data = self.subset_of(train, args.train_samples)
        self.eval_data = self.subset_of(evaluation, args.eval_samples)
        shape, self.num_classes, self.train_images = split_facts(self.train_data)
        self.sample_shape = list(shape)
        self.eval_images = split_facts(self.eval_data)[2]
        self.script = torch.jit.load(self.model).eval()
        self.errors = []

    def subset_of(self, source, count):
        """`source`, or a subset of `count` of its samples in OUTDIR/data/ when that is
        fewer than it holds (count 0: all)."""
        if not count or count >= split_facts(source)[2]:
            return source
        return subset(source, self.path("data", os.path.basename(source)), count, SUBSET_SEED)

    def path(self, *parts):
        """A path under OUTDIR."""
        return os.path.join(self.out, *parts)

    def distills(self, run_spec):
        """Whether our run `run_spec` trains with the float model as teacher."""
        return run_spec.always_distills or not self.args.no_distill


# ---------------------------------------------------------------------------------- ours


def write_config(setup, name, seed, run_spec):
    """OUTDIR/ours/<name>_s<seed>.yaml: the shared fine-tune recipe with `run_spec`'s sections
    (and distillation); returns (config path, output directory)."""
    a = setup.args
    out_dir = setup.path("ours", f"{name}_s{seed}")
    distillation = distillation_section(a) if setup.distills(run_spec) else ""
    path = out_dir + ".yaml"
    with open(path, "w") as f:
        f.write(f"""Global:
  model: {setup.model}
  train_data: {setup.train_data}
  eval_data: {setup.eval_data}
  batch_size: {a.train_batch // a.ranks}
  seed: {seed}
  output_dir: {out_dir}
  intra_op_threads: 1
  loader_threads: 1
  augment:
    random_crop_padding: {a.augment_padding}
    horizontal_flip: {str(a.augment_flip).lower()}
{fine_tune_section(a)}{run_spec.sections}{distillation}""")
    return path, out_dir


def run_ours(setup, name, seed):
    """One slim-train run of RUNS[name] with `seed`: its top-1, the sparsity it reached and
    the weights it pruned, from its report.json."""
    run_spec = RUNS[name]
    config, out_dir = write_config(setup, name, seed, run_spec)
    log(f"ours: {name}, seed {seed} ...")
    start = time.perf_counter()
    run([os.path.join(setup.build, "slim-train"), config, "--resume", "none"],
        setup.path("logs", f"ours_{name}_s{seed}.log"), ranks=setup.args.ranks)
    wall = time.perf_counter() - start
    with open(os.path.join(out_dir, "report.json")) as f:
        report = json.load(f)
    sparsity = report["sparsity"][run_spec.section]
    result = {"dir": out_dir, "wall_s": wall, "top1": report["final"]["eval_top1"],
              "pruned_weights_sparsity": sparsity["pruned_weights_sparsity"],
              "model_sparsity": sparsity["model_sparsity"],
              "weights": [layer["weight"] for layer in sparsity["layers"]],
              "skipped": sparsity.get("skipped", []),
              "train_samples_per_s": report.get("train_samples_per_s")}
    log(f"ours: {name}, seed {seed}: top-1 {result['top1']:.4f}, pruned weights "
        f"{pct(result['pruned_weights_sparsity'])} zero ({wall:.0f} s)")
    return result


# ------------------------------------------------------------------------------- PyTorch


def pytorch_anchor(setup, seed, weight_names):
    """PyTorch's global L1 pruning to ANCHOR_RATIO over `weight_names` (parameter names of the
    nn.Module twin), our fine-tune recipe with `seed`, prune.remove; its top-1 and the
    sparsity of those weights."""
    torch.manual_seed(seed)
    _, model = load_twin(setup.script, setup.eval_data, setup.sample_shape, setup.num_classes)
    pruned = [(model.get_submodule(name.rpartition(".")[0]), name.rpartition(".")[2])
              for name in weight_names]
    prune.global_unstructured(pruned, pruning_method=prune.L1Unstructured, amount=ANCHOR_RATIO)
    teacher = None if setup.args.no_distill else setup.script
    steps, seconds = fine_tune(model, teacher, setup.train_data, setup.args, seed,
                               f"pytorch prune {ANCHOR_RATIO:.0%}, seed {seed}")
    for module, name in pruned:
        prune.remove(module, name)
    model.eval()
    zeros = sum(int((getattr(m, n) == 0).sum()) for m, n in pruned)
    elements = sum(getattr(m, n).numel() for m, n in pruned)
    result = {"top1": pytorch_quant.top1(model, setup.eval_data, 256),
              "pruned_weights_sparsity": zeros / elements, "steps": steps, "train_s": seconds}
    log(f"pytorch prune {ANCHOR_RATIO:.0%}, seed {seed}: top-1 {result['top1']:.4f}, pruned "
        f"weights {pct(result['pruned_weights_sparsity'])} zero ({seconds:.0f} s training)")
    return result


# ---------------------------------------------------------------------------------- table


def spread(values):
    """The range of `values` over seeds as text ('a – b', one value alone, '—' for none)."""
    if not values:
        return "—"
    low, high = min(values), max(values)
    return pct(low) if low == high else f"{pct(low)} – {pct(high)}"


def per_seed(results, key):
    """{seed: results[seed][key]} over the seeds whose run finished."""
    return {seed: r[key] for seed, r in results.items() if r}


def at_least(value, floor):
    """value >= floor, blind to float rounding in the last digits."""
    return round(value - floor, 9) >= 0


def make_rows(raw):
    """The table: figure, ours, PyTorch's (each the worst seed's, and the range over seeds as
    text), target, met (True/False; None when nothing finished), note."""
    rows = []

    def row(figure, ours, theirs, target="—", met=None, note="", unit="top-1"):
        rows.append({"figure": figure, "ours": min(ours) if ours else None,
                     "pytorch": min(theirs) if theirs else None, "ours_text": spread(ours),
                     "pytorch_text": spread(theirs), "target": target, "met": met,
                     "note": note, "unit": unit})

    fp32, eval_images = raw["float_top1"], raw["setup"]["eval_images"]
    row("FP32 top-1 (input model)", [], [fp32],
        note=f"PyTorch's evaluation of the float model on the {eval_images} eval images; the "
             "targets below count from it")
    anchor = {seed: s["pytorch"] for seed, s in raw["seeds"].items()}
    for name, run_spec in RUNS.items():
        results = {seed: s["ours"][name] for seed, s in raw["seeds"].items()}
        anchored = name == "unstructured_50"
        top1 = per_seed(results, "top1")
        their_top1 = list(per_seed(anchor, "top1").values()) if anchored else []
        floor = fp32 - run_spec.tolerance
        notes = ([", ".join(f"seed {seed} {pct(value)}" for seed, value in top1.items())]
                 if len(top1) > 1 else [])
        if their_top1:
            notes.append(f"PyTorch {'meets' if at_least(min(their_top1), floor) else 'misses'} "
                         "it")
        failed = [seed for seed, r in results.items() if not r]
        if failed:
            notes.append(f"failed on seed {', '.join(failed)}")
        row(f"{run_spec.label}: top-1", list(top1.values()), their_top1,
            f">= FP32 - {100 * run_spec.tolerance:g} pt ({pct(floor)})",
            at_least(min(top1.values()), floor) if top1 else None, "; ".join(notes))

        reached = list(per_seed(results, "pruned_weights_sparsity").values())
        their_reached = (list(per_seed(anchor, "pruned_weights_sparsity").values())
                         if anchored else [])
        notes = [f"whole model {spread(list(per_seed(results, 'model_sparsity').values()))}"]
        skipped = next((r["skipped"] for r in results.values() if r and r["skipped"]), [])
        if skipped:
            notes.append("left dense: " + ", ".join(f"{s['weight']} ({s['why']})"
                                                    for s in skipped))
        row(f"{run_spec.label}: pruned weights at zero", reached, their_reached,
            f">= {pct(run_spec.ratio)}",
            at_least(min(reached), run_spec.ratio) if reached else None, "; ".join(notes),
            "sparsity")

    ours = per_seed({seed: s["ours"]["unstructured_50"] for seed, s in raw["seeds"].items()},
                    "top1")
    theirs = per_seed(anchor, "top1")
    differences = [f"seed {seed}: {round((ours[seed] - theirs[seed]) * eval_images):+d} of "
                   f"{eval_images} eval images" for seed in ours if seed in theirs]
    row(f"{RUNS['unstructured_50'].label}: top-1, ours against PyTorch's",
        list(ours.values()), list(theirs.values()), "ours >= PyTorch's (worst seeds)",
        at_least(min(ours.values()), min(theirs.values())) if ours and theirs else None,
        "; ".join(differences))
    return rows


def report(rows, raw):
    """Prints the table and writes OUTDIR/results.md and OUTDIR/results.json."""
    def met_text(met):
        return "—" if met is None else ("met" if met else "MISSED")

    setup, a = raw["setup"], raw["setup"]["args"]
    lines = ["| figure | ours | PyTorch's | target | met | note |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['figure']} | {r['ours_text']} | {r['pytorch_text']} | {r['target']} | "
              f"{met_text(r['met'])} | {r['note']} |" for r in rows]
    header = (f"{setup['arch']} {setup['model']}; fine-tune {a['epochs']} epoch(s) on "
              f"{setup['train_images']} images, batch {a['train_batch']}, cosine from lr "
              f"{a['lr']}, "
              + ("no distillation but in the QAT run" if a["no_distill"]
                 else f"soft-label distillation T = {a['temperature']:g}")
              + f"; eval {setup['eval_images']} images; seeds {', '.join(map(str, a['seeds']))}"
              + ("; QUICK mode, figures mean little" if a["quick"] else ""))
    table = "\n".join(lines)
    print(header + "\n\n" + table)
    if raw["errors"]:
        print("\nerrors:\n" + "\n".join(f"- {e['what']}: {e['error'].splitlines()[0]}"
                                        for e in raw["errors"]))
    with open(os.path.join(setup["out"], "results.md"), "w") as f:
        f.write(header + "\n\n" + table + "\n")
    with open(os.path.join(setup["out"], "results.json"), "w") as f:
        json.dump({"command": setup["command"], "quick": a["quick"], "rows": rows, "raw": raw},
                  f, indent=2, default=str)


# ----------------------------------------------------------------------------------- main


def measure_seed(setup, seed):
    """Our runs and PyTorch's anchor with `seed`; a failure is recorded, not raised."""
    ours = {name: attempt(setup.errors, f"ours {name}, seed {seed}", run_ours, setup, name,
                          seed) for name in RUNS}
    reference = ours["unstructured_50"]
    if reference is None:
        setup.errors.append({"what": f"pytorch prune, seed {seed}",
                             "error": "not run: it prunes the weights our unstructured_50 run "
                                      "pruned, and that run failed"})
        theirs = None
    else:
        theirs = attempt(setup.errors, f"pytorch prune, seed {seed}", pytorch_anchor, setup,
                         seed, reference["weights"])
    return {"ours": ours, "pytorch": theirs}


def fine_tune_parser(description):
    """model_bench_parser(description) with the fine-tune recipe, --quick, --seeds, --ranks
    and the subset sizes; fmnist_channel_prune.py shares it."""
    parser = model_bench_parser(description)
    parser.add_argument("--quick", action="store_true",
                        help="one seed on small subsets (smoke test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42],
                        help="one set of runs per seed (--quick: the first only)")
    parser.add_argument("--ranks", type=int, default=2, help="slim-train ranks (mpirun -np)")
    parser.add_argument("--train-samples", type=int,
                        help="training images (default all; --quick 512)")
    parser.add_argument("--eval-samples", type=int, help="eval images (default all; --quick 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="fine-tune epochs")
    parser.add_argument("--lr", type=float, default=0.005, help="peak lr (cosine to 0)")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--train-batch", type=int, default=128,
                        help="global batch (ours: split over the ranks)")
    parser.add_argument("--augment-padding", type=int, default=0)
    parser.add_argument("--no-augment-flip", dest="augment_flip", action="store_false")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--no-distill", action="store_true",
                        help="fine-tune on the labels alone (the QAT run still distills)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads for PyTorch's fine-tune and evaluation")
    return parser


def completed(args, script):
    """`args` with --quick's defaults filled in; exits naming `script` when the batch does
    not split over the ranks."""
    if args.train_samples is None:
        args.train_samples = 512 if args.quick else 0
    if args.eval_samples is None:
        args.eval_samples = 1000 if args.quick else 0
    if args.quick:
        args.seeds = args.seeds[:1]
    if args.train_batch % args.ranks:
        sys.exit(f"{script}: --train-batch {args.train_batch} does not split over "
                 f"{args.ranks} ranks")
    return args


def main():
    args = completed(fine_tune_parser(__doc__).parse_args(), "fmnist_sparsity")
    torch.set_num_threads(args.threads)
    setup = Setup(args)
    try:
        arch, _ = load_twin(setup.script, setup.eval_data, setup.sample_shape,
                            setup.num_classes)
    except LookupError as error:
        sys.exit(f"fmnist_sparsity: {setup.model}: {error}")
    raw = {"setup": {"arch": arch, "model": setup.model, "train_data": setup.train_data,
                     "eval_data": setup.eval_data, "train_images": setup.train_images,
                     "eval_images": setup.eval_images, "out": setup.out, "args": vars(args),
                     "torch": torch.__version__,
                     "command": " ".join(shlex.quote(a) for a in sys.argv)},
           "errors": setup.errors}
    raw["float_top1"] = pytorch_quant.top1(setup.script, setup.eval_data, 256)
    log(f"model {setup.model}: {arch}, FP32 top-1 {raw['float_top1']:.4f}; fine-tune on "
        f"{setup.train_images} images, eval on {setup.eval_images}; seeds "
        f"{', '.join(map(str, args.seeds))}")
    started = time.perf_counter()
    raw["seeds"] = {str(seed): measure_seed(setup, seed) for seed in args.seeds}
    raw["wall_s"] = time.perf_counter() - started
    report(make_rows(raw), raw)


if __name__ == "__main__":
    main()
