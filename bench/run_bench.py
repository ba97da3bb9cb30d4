"""SlimTrain benchmarks side by side with what a user would run instead.

    python3 bench/run_bench.py [--out bench-results] [--smoke] [--only SECTION ...]
    python3 bench/run_bench.py --only fmnist_quant --fmnist-model FLOAT.pt --fmnist-data DIR
    python3 bench/run_bench.py --only fmnist_sparsity --fmnist-model FLOAT.pt --fmnist-data DIR
    python3 bench/run_bench.py --only fmnist_channel_prune --fmnist-model FLOAT.pt --fmnist-data DIR
    python3 bench/run_bench.py --only fmnist_quant_search --fmnist-model FLOAT.pt --fmnist-data DIR

Prints one table (figure, ours, anchor, ratio, target) and writes results.json,
results.md and allreduce_busbw.png under --out. --smoke runs every measurement at a
tiny size (CI uses it to check that the harness still works); its figures mean nothing.
Uses Debian's python3 with python3-torch, python3-h5py and python3-matplotlib.
"""
import argparse
import functools
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")


def run(args, ranks=None):
    if ranks:
        args = ["mpirun", "-np", str(ranks)] + args
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=ENV)
    if done.returncode != 0:
        sys.exit(f"benchmark command failed ({done.returncode}): {' '.join(args)}\n{done.stdout}")
    return done.stdout


def read_json(directory, name):
    with open(os.path.join(directory, name)) as f:
        return json.load(f)


def last_json(output):
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


class Bench:
    def __init__(self, build, out, smoke):
        self.build, self.out, self.smoke = build, out, smoke
        self.rows = []
        self.results = {}
        self.steps = 4 if smoke else 20
        self.batch = 8 if smoke else 64

    def binary(self, name):
        return os.path.join(self.build, name)

    def path(self, name):
        return os.path.join(self.out, name)

    def row(self, figure, ours, anchor, anchor_name, target, met, unit="s"):
        ratio = ours / anchor if anchor else float("nan")
        self.rows.append({"figure": figure, "ours": ours, "anchor": anchor,
                          "anchor_name": anchor_name, "ratio": ratio, "target": target,
                          "met": met, "unit": unit})

    def prepare(self):
        os.makedirs(self.out, exist_ok=True)
        run([self.binary("slim-data"), "images", "--out", self.path("data"),
             "--train", "1024" if self.smoke else "4096", "--eval", "64", "--seed", "3"])
        run([self.binary("slim-model"), "save", "resnet20", self.path("resnet20.pt")])

    def slim_train_step(self, ranks, sections="", name="train", model=None, data=None):
        """Median step time of slim-train (per rank, steady state), from metrics.jsonl;
        `sections` adds strategy sections (or TrainConfig lines) to the config; `model`
        and `data` default to resnet20 on the generated images."""
        out_dir = self.path(f"{name}_np{ranks}")
        config = self.path(f"{name}.yaml")
        with open(config, "w") as f:
            f.write(f"""Global:
  model: {model or self.path('resnet20.pt')}
  train_data: {data or self.path('data/train.h5')}
  batch_size: {self.batch}
  output_dir: {out_dir}
  intra_op_threads: 1
  loader_threads: 1
TrainConfig:
  train_iter: {self.steps + 5}
  logging_iter: 1
  learning_rate: 0.01
{sections}""")
        run([self.binary("slim-train"), config, "--resume", "none"], ranks=ranks)
        with open(os.path.join(out_dir, "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f if '"train"' in line][5:]
        return statistics.median(self.batch * ranks / l["samples_per_s"] for l in lines)

    def floor_step(self, concurrent):
        """The bare LibTorch loop; `concurrent` copies at once share the machine as ranks do."""
        args = [self.binary("slim-bench"), "floor", "--model", self.path("resnet20.pt"),
                "--batch", str(self.batch), "--steps", str(self.steps), "--threads", "1"]
        procs = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=ENV)
                 for _ in range(concurrent)]
        return statistics.mean(last_json(p.communicate()[0])["median_step_s"] for p in procs)

    def pytorch_ddp_step(self):
        return last_json(run(["/usr/bin/python3", os.path.join(ROOT, "bench", "pytorch_ddp.py"),
                              "--model", self.path("resnet20.pt"), "--batch", str(self.batch),
                              "--steps", str(self.steps)], ranks=2))["median_step_s"]

    def interleaved(self, measure):
        """{name: [result per trial]} of the functions in `measure` (name -> function), called
        in turn once a round, 3 rounds (1 under --smoke): on a shared machine the speed drifts
        by tens of percent between runs, and interleaving spreads the drift evenly."""
        trials = {name: [] for name in measure}
        for _ in range(1 if self.smoke else 3):
            for name, function in measure.items():
                trials[name].append(function())
        return trials

    def training_step(self):
        """Our step at 1 and 2 ranks against the bare LibTorch loop and PyTorch DDP, each
        figure the median over interleaved trials."""
        measure = {"floor_1": lambda: self.floor_step(1),
                   "slim_1": lambda: self.slim_train_step(1),
                   "floor_2_concurrent": lambda: self.floor_step(2),
                   "slim_2": lambda: self.slim_train_step(2),
                   "pytorch_ddp_2": self.pytorch_ddp_step}
        trials = self.interleaved(measure)
        self.results["training_step"] = {"trials": trials}
        floor1, ours1, floor2, ours2, ddp2 = (statistics.median(trials[n]) for n in measure)
        self.row("step, 1 rank", ours1, floor1, "bare LibTorch loop", "<= 1.05",
                 ours1 <= 1.05 * floor1)
        self.row("step, 2 ranks (per rank)", ours2, floor2, "2 bare loops at once", "<= 1.05",
                 ours2 <= 1.05 * floor2)
        self.row("step, 2 ranks", ours2, ddp2, "PyTorch DDP (gloo), 2 ranks", "< 1",
                 ours2 < ddp2)
        return ours2

    def allreduce(self):
        result = last_json(run([self.binary("slim-bench"), "allreduce", "--max-mb",
                                "1" if self.smoke else "256"], ranks=2))
        self.results["allreduce"] = result
        for row in result["rows"]:
            if row["bytes"] in (4096, 1 << 20, 64 << 20, 256 << 20):
                size = f"{row['bytes'] // 1024} KB" if row["bytes"] < 1 << 20 else \
                    f"{row['bytes'] >> 20} MB"
                self.row(f"allreduce busBw {size}", row["slim_bus_gbs"], row["mpi_bus_gbs"],
                         "MPI_Allreduce busBw", ">= 0.9",
                         row["slim_bus_gbs"] >= 0.9 * row["mpi_bus_gbs"], "GB/s")
        largest = result["rows"][-1]
        self.row("allreduce busBw vs memcpy", largest["slim_bus_gbs"], result["memcpy_gbs"],
                 "memcpy bandwidth", "info", True, "GB/s")
        self.plot_allreduce(result)

    def overlap(self):
        result = last_json(run([self.binary("slim-bench"), "overlap", "--model",
                                self.path("resnet20.pt"), "--batch", str(self.batch),
                                "--steps", "2" if self.smoke else "8",
                                "--bucket-mb", "0.25,1,5,25"], ranks=2))
        self.results["overlap"] = result
        for row in result["rows"]:
            label = f"{row['bucket_mb']} MB buckets ({row['buckets']})"
            self.row(f"allreduce / backward, {label}", row["comm_s"], row["compute_s"],
                     "forward+backward time", "info", True)
            self.row(f"allreduce hidden, {label}", row["hidden_share"], 1.0, "all of it",
                     "info", True, "share")

    def loader(self, step_s):
        result = last_json(run([self.binary("slim-bench"), "loader", "--data",
                                self.path("data/train.h5"), "--batch", str(self.batch),
                                "--threads", "1"]))
        self.results["loader"] = result
        consumption = self.batch / step_s
        self.row("loader samples/s (1 thread)", result["samples_per_s"], consumption,
                 "samples/s one rank consumes", ">= 1", result["samples_per_s"] >= consumption,
                 "samples/s")

    def checkpoint(self):
        """Checkpoint stall and write rate against a raw fwrite + fsync of the same bytes."""
        mobilenet = self.path("mobilenetv2.pt")
        run([self.binary("slim-model"), "save", "mobilenetv2", mobilenet])
        cases = {"MobileNetV2": ["--model", mobilenet],
                 "synthetic": ["--synthetic-mb", "8" if self.smoke else "256"]}
        self.results["checkpoint"] = {}
        for name, source in cases.items():
            result = last_json(run([self.binary("slim-bench"), "checkpoint", *source, "--dir",
                                    self.path("checkpoint-bench"), "--repeats",
                                    "1" if self.smoke else "3"]))
            self.results["checkpoint"][name] = result
            label = f"{name}, {result['file_bytes'] / 1e6:.0f} MB"
            # Small files are dominated by HDF5's per-dataset metadata, not by bandwidth.
            large = result["file_bytes"] >= 100e6
            self.row(f"checkpoint write MB/s ({label})", result["write_mb_s"], result["raw_mb_s"],
                     "fwrite + fsync of the same bytes", ">= 0.8" if large else "info",
                     result["write_mb_s"] >= 0.8 * result["raw_mb_s"] or not large, "MB/s")
            synchronous = result["snapshot_s"] + result["write_s"]
            self.row(f"checkpoint training pause ({label})", result["snapshot_s"], synchronous,
                     "pause of a synchronous write", "< 1", result["snapshot_s"] < synchronous)

    def overhead_trials(self, section, sections, name, pytorch):
        """Interleaved trials of our float32 step, our step with `sections` (a run called
        `name`) and the PyTorch anchor command `pytorch`, which prints its own "ratio";
        kept under results[section]. Returns the medians: (float32 step, our step, PyTorch's
        ratio)."""
        trials = self.interleaved({"fp32": lambda: self.slim_train_step(1),
                                   name: lambda: self.slim_train_step(1, sections, name),
                                   "pytorch": lambda: last_json(run(pytorch))})
        self.results[section] = trials
        return (statistics.median(trials["fp32"]), statistics.median(trials[name]),
                statistics.median(r["ratio"] for r in trials["pytorch"]))

    def quantization(self):
        """QAT step time over FP32 step time, ours and PyTorch eager QAT's (same model
        architecture, batch and thread count), from interleaved trials."""
        qat = "QuantAware:\n  quantize_op_types: [conv2d, linear]\n"
        pytorch = ["/usr/bin/python3", os.path.join(ROOT, "bench", "pytorch_quant.py"), "qat-step",
                   "--batch", str(self.batch), "--steps", str(self.steps), "--threads", "1"]
        fp32, ours, theirs = self.overhead_trials("quantization", qat, "qat", pytorch)
        self.row("QAT step, 1 rank", ours, fp32, "our FP32 step", "<= 1.3", ours <= 1.3 * fp32)
        self.row("QAT/FP32 step ratio", ours / fp32, theirs, "PyTorch eager QAT/FP32 ratio", "< 1",
                 ours / fp32 < theirs, "x")

    def distillation(self):
        """Step time with one and with two teachers (each a frozen copy of the student,
        distilled on the logits) over plain training, from interleaved trials."""
        one = "Distillation:\n  teacher_model: self\n  label_loss_weight: 1\n"
        two = ("MultiTeacherDistillation:\n  teachers: [{teacher_model: self}, "
               "{teacher_model: self, loss: soft_label}]\n  label_loss_weight: 1\n")
        trials = self.interleaved({"plain": lambda: self.slim_train_step(1),
                                   "one": lambda: self.slim_train_step(1, one, "distill1"),
                                   "two": lambda: self.slim_train_step(1, two, "distill2")})
        self.results["distillation"] = trials
        plain, one, two = (statistics.median(trials[n]) for n in ("plain", "one", "two"))
        # A teacher adds one forward without autograd: about a third of a training step.
        self.row("step with 1 teacher, 1 rank", one, plain, "plain step", "<= 1.5",
                 one <= 1.5 * plain)
        self.row("step with 2 teachers, 1 rank", two, plain, "plain step", "<= 2",
                 two <= 2 * plain)

    def pruning(self):
        """Masked step time (UnstructurePrune, one-shot 50 % of every convolution and linear
        weight but the first and the last) over our dense step, from interleaved trials."""
        masked = "UnstructurePrune:\n  ratio: 0.5\n  prune_params_type: null\n"
        trials = self.interleaved({"dense": lambda: self.slim_train_step(1),
                                   "masked": lambda: self.slim_train_step(1, masked, "prune")})
        self.results["pruning"] = trials
        dense, ours = statistics.median(trials["dense"]), statistics.median(trials["masked"])
        self.row("masked step (UnstructurePrune 50 %), 1 rank", ours, dense, "our dense step",
                 "<= 1.1", ours <= 1.1 * dense)

    def mixed_precision(self):
        """bfloat16 autocast against float32, ours and eager PyTorch's on the same model
        file, one rank, from interleaved trials."""
        amp = "  amp_config: {dtype: bfloat16}\n"
        pytorch = ["/usr/bin/python3", os.path.join(ROOT, "bench", "pytorch_amp.py"), "--model",
                   self.path("resnet20.pt"), "--batch", str(self.batch), "--steps",
                   str(self.steps)]
        fp32, ours, theirs = self.overhead_trials("mixed_precision", amp, "amp", pytorch)
        self.row("bf16 autocast step, 1 rank", ours, fp32, "our float32 step", "report",
                 True)
        self.row("bf16/float32 step ratio", ours / fp32, theirs,
                 "eager PyTorch autocast bf16/float32", "<= 1.05", ours / fp32 <= 1.05 * theirs,
                 "x")

    def sharding(self):
        """ZeRO stage 1 against unsharded data parallelism on 2 and 4 ranks (4 share two
        cores here): step time from interleaved trials, and the largest rank's optimizer
        state against 1/N of the whole, from report.json."""
        zero = "  sharding_config: {stage: 1}\n"
        measure = {}
        for ranks in (2, 4):
            measure[f"plain_{ranks}"] = lambda r=ranks: self.slim_train_step(r, name="ddp")
            measure[f"zero_{ranks}"] = lambda r=ranks: self.slim_train_step(r, zero, "zero")
        trials = self.interleaved(measure)
        self.results["sharding"] = {"trials": trials}
        for ranks in (2, 4):
            plain, ours = (statistics.median(trials[f"{k}_{ranks}"]) for k in ("plain", "zero"))
            self.row(f"ZeRO-1 step, {ranks} ranks", ours, plain, "unsharded step", "<= 1.1",
                     ours <= 1.1 * plain)
            state = lambda name: read_json(self.path(f"{name}_np{ranks}"), "report.json")[
                "memory"]["optimizer_state_mb"]
            whole, shares = state("ddp")[0], state("zero")
            self.results["sharding"][f"state_mb_{ranks}"] = {"unsharded": whole, "zero": shares}
            self.row(f"ZeRO-1 optimizer state, largest rank of {ranks}", max(shares),
                     whole / ranks, f"1/{ranks} of the unsharded state", "<= 1.1",
                     max(shares) <= 1.1 * whole / ranks, "MiB")

    def recompute(self):
        """Activation recompute of every residual block of ResNet-56 (generated 32x32
        images) and of every encoder layer of the builtin transformer (256-byte sequences)
        against keeping the activations, one rank: step time from interleaved trials, peak
        CPU tensor memory and peak resident memory from report.json."""
        run([self.binary("slim-model"), "save", "resnet56", self.path("resnet56.pt")])
        licenses = "/usr/share/common-licenses"
        run([self.binary("slim-data"), "text", "--out", self.path("text"), "--seq-len", "256",
             "--train-per-class", "256", "--eval-per-class", "16",
             *(os.path.join(licenses, n) for n in ["Apache-2.0", "GPL-3", "MPL-2.0"])])
        setups = {
            "ResNet-56": (self.path("resnet56.pt"), None, "['layer1.*', 'layer2.*', 'layer3.*']"),
            "transformer": ("builtin:transformer", self.path("text/train.h5"), "['layers.*']"),
        }
        measure = {}
        for label, (model, data, modules) in setups.items():
            tag = label.lower().replace("-", "")
            recompute = f"  recompute_config: {{modules: {modules}}}\n"
            for mode, lines in [("keep", ""), ("recompute", recompute)]:
                measure[f"{tag}_{mode}"] = functools.partial(
                    self.slim_train_step, 1, lines, f"{tag}_{mode}", model, data)
        trials = self.interleaved(measure)
        self.results["recompute"] = {"trials": trials}
        for label in setups:
            tag = label.lower().replace("-", "")
            keep, ours = (statistics.median(trials[f"{tag}_{m}"]) for m in ("keep", "recompute"))
            memory = {m: read_json(self.path(f"{tag}_{m}_np1"), "report.json")["memory"]
                      for m in ("keep", "recompute")}
            self.results["recompute"][f"{tag}_memory"] = memory
            self.row(f"recompute step, {label}", ours, keep, "step keeping activations",
                     "<= 1.5", ours <= 1.5 * keep)
            tensors = {m: memory[m]["peak_tensor_mb"][0] for m in memory}
            self.row(f"recompute peak tensor memory, {label}", tensors["recompute"],
                     tensors["keep"], "keeping activations", "<= 0.7",
                     tensors["recompute"] <= 0.7 * tensors["keep"], "MiB")
            # glibc keeps freed tensor memory in its heap: resident memory falls less.
            rss = {m: memory[m]["peak_rss_mb"][0] for m in memory}
            self.row(f"recompute peak RSS, {label}", rss["recompute"], rss["keep"],
                     "keeping activations", "report", True, "MiB")

    def fmnist_script(self, section, model, data, fallback_anchor):
        """bench/<section>.py (ours against PyTorch's own on a trained Fashion-MNIST model;
        --quick under --smoke): its rows that carry a target, those without a PyTorch figure
        against `fallback_anchor`; a row's unit is its "unit", else ms for latency and top-1."""
        if not model or not data:
            sys.exit(f"run_bench: the {section} section needs --fmnist-model (a float "
                     "TorchScript model trained on it) and --fmnist-data (slim-data fashion-mnist "
                     "--out DIR)")
        out = self.path(section)
        run(["/usr/bin/python3", os.path.join(ROOT, "bench", f"{section}.py"), "--build",
             self.build, "--model", os.path.abspath(model), "--data", os.path.abspath(data),
             "--out", out] + (["--quick"] if self.smoke else []))
        with open(os.path.join(out, "results.md")) as f:
            print(f.read())
        with open(os.path.join(out, "results.json")) as f:
            rows = json.load(f)["rows"]
        self.results[section] = rows
        for r in rows:
            if r["met"] is None:
                continue
            unit = r.get("unit", "ms" if "latency" in r["figure"] else "top-1")
            anchor = r["pytorch"] if r["pytorch"] is not None else float("nan")
            named = r.get("anchor_name") or "PyTorch's own"
            self.row(r["figure"], r["ours"], anchor, named if r["pytorch"] is not None
                     else fallback_anchor, r["target"], r["met"], unit)

    def plot_allreduce(self, result):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib missing: no allreduce plot (apt-get install python3-matplotlib)")
            return
        sizes = [r["bytes"] for r in result["rows"]]
        plt.figure(figsize=(6, 4))
        plt.plot(sizes, [r["slim_bus_gbs"] for r in result["rows"]], "o-", label="SlimTrain")
        plt.plot(sizes, [r["mpi_bus_gbs"] for r in result["rows"]], "s--", label="MPI_Allreduce")
        plt.xscale("log", base=2)
        plt.xlabel("message size (bytes)")
        plt.ylabel("busBw (GB/s)")
        plt.title(f"allreduce, {result['ranks']} ranks")
        plt.legend()
        plt.grid(True, alpha=0.3)
        plt.tight_layout()
        plt.savefig(self.path("allreduce_busbw.png"), dpi=100)

    def report(self):
        header = f"{'figure':44} {'ours':>10} {'anchor':>10} {'ratio':>7}  {'target':8} anchor"
        lines = [header, "-" * len(header)]
        md = ["| figure | ours | anchor | ratio | target | met | anchor is |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.rows:
            lines.append(f"{r['figure']:44} {r['ours']:10.4g} {r['anchor']:10.4g} "
                         f"{r['ratio']:7.3f}  {r['target']:8} {r['anchor_name']} ({r['unit']})"
                         + ("" if r["met"] else "  MISSED"))
            md.append(f"| {r['figure']} | {r['ours']:.4g} {r['unit']} | {r['anchor']:.4g} | "
                      f"{r['ratio']:.3f} | {r['target']} | {'yes' if r['met'] else 'no'} | "
                      f"{r['anchor_name']} |")
        print("\n".join(lines))
        with open(self.path("results.json"), "w") as f:
            json.dump({"rows": self.rows, "raw": self.results, "smoke": self.smoke}, f, indent=2)
        with open(self.path("results.md"), "w") as f:
            f.write("\n".join(md) + "\n")


SECTIONS = ["step", "allreduce", "overlap", "loader", "checkpoint", "quantization",
            "distillation", "pruning", "sharding", "mixed_precision", "recompute"]
# Section -> anchor of its rows without a PyTorch figure; run only when asked for, on a
# trained Fashion-MNIST model (--fmnist-model, --fmnist-data).
FMNIST_SECTIONS = {"fmnist_quant": "FP32 top-1 - 0.5 pt", "fmnist_sparsity": "its target",
                   "fmnist_channel_prune": "its target", "fmnist_quant_search": "its target"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", nargs="+", choices=SECTIONS + list(FMNIST_SECTIONS),
                        default=SECTIONS, help="measure only these sections (the loader needs "
                        "the step; the fmnist_ sections, not run by default, need "
                        "--fmnist-model and --fmnist-data)")
    parser.add_argument("--fmnist-model", help="float TorchScript model trained on Fashion-MNIST "
                        "(for --only fmnist_quant / fmnist_sparsity)")
    parser.add_argument("--fmnist-data", help="directory of slim-data fashion-mnist's "
                        "train.h5/eval.h5 (for --only fmnist_quant / fmnist_sparsity)")
    args = parser.parse_args()
    bench = Bench(os.path.abspath(args.build), os.path.abspath(args.out), args.smoke)
    bench.prepare()
    step = bench.training_step() if {"step", "loader"} & set(args.only) else None
    for section in ("allreduce", "overlap", "checkpoint", "quantization", "distillation",
                    "pruning", "sharding", "mixed_precision", "recompute"):
        if section in args.only:
            getattr(bench, section)()
    if "loader" in args.only:
        bench.loader(step)
    for section, fallback_anchor in FMNIST_SECTIONS.items():
        if section in args.only:
            bench.fmnist_script(section, args.fmnist_model, args.fmnist_data, fallback_anchor)
    bench.report()


if __name__ == "__main__":
    main()
