"""Export agreement on trained torchvision models, one command:

    /usr/bin/python3 bench/torchvision_export.py --build build --data DIR --out OUTDIR \\
        [--models resnet18 mobilenet_v2] [--epochs 2] [--reuse]

DIR is what `slim-data fashion-mnist --out DIR` writes. For each torchvision model (built
with num_classes=10 and its first convolution taking one grey channel, otherwise as
torchvision has it, then scripted), `mpirun -np 2 slim-train` trains it in FP32 for
--epochs on Fashion-MNIST, then quantizes it after training (QuantPost, abs_max) twice,
the layers alone and with the residual adds (`elementwise_add`), each with
Global.export [torchscript, torchscript_int8, onnx]. The table gives each file's top-1 on
the 10,000 eval images and its top-1 agreement with model.pt, as the run's report.json
has them (each export evaluated by its own runtime: LibTorch for model_int8.pt, ONNX
Runtime for model.onnx), next to the issue's bar of 99 % agreement. Writes
OUTDIR/results.md and OUTDIR/results.json; runs and logs live in OUTDIR/<model>/.

The end-to-end tests run the same exports on untrained weights, where top-1 is mostly
ties; this is the figure on weights that have learnt something.

Latency, side by side with torch.ao.quantization on the same trained weights: PyTorch's
INT8 model is quantize_fx with onednn's default qconfig mapping (per-channel weights,
histogram-calibrated uint8 activations), calibrated on the first 1,024 training images,
scripted and frozen; ours are the layers + adds PTQ run above (float logits, symmetric
activations) and one more in PyTorch's layout (unsigned_activations,
export_quantized_output). One thread, `slim-model bench` at --batches (default 1 and 16,
the issue's anchor), medians of --rounds interleaved rounds, and the ratio to the frozen
FP32 file. Adds OUTDIR/latency.md and a "latency" entry to results.json.
"""
import argparse
import json
import os
import statistics
import sys
import types

from fmnist_quant import CommandFailed, interleaved_latency, run

AGREEMENT_BAR = 0.99

# Replaces the first convolution of each model with one taking a single channel.
GREY_STEM = {
    "resnet18": "m.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)",
    "mobilenet_v2": "m.features[0][0] = torch.nn.Conv2d(1, 32, 3, 2, 1, bias=False)",
}

GLOBAL = """Global:
  model: {model}
  train_data: {data}/train.h5
  eval_data: {data}/eval.h5
  batch_size: 64
  seed: 42
  output_dir: {out}
"""

TRAIN = GLOBAL + """  augment:
    random_crop_padding: 0
    horizontal_flip: true
TrainConfig:
  epochs: {epochs}
  eval_iter: 100000
  logging_iter: 100
  learning_rate:
    type: LinearWarmup
    warmup_steps: 60
    start_lr: 0.01
    learning_rate:
      type: CosineAnnealingDecay
      learning_rate: 0.05
  optimizer_builder:
    optimizer:
      type: Momentum
      momentum: 0.9
    weight_decay: 0.0005
"""

QUANTIZE = GLOBAL + """  export: [torchscript, torchscript_int8, onnx]
QuantPost:
  ptq_algo: abs_max
  batch_num: 16
  batch_size: 64
  quantize_op_types: [{op_types}]
"""

# The quantized op types of each PTQ run: the layers alone, and with the residual adds
# (their operands and results), which the integer model rounds too.
OP_TYPES = {"layers": "conv2d, depthwise_conv2d, linear",
            "layers + adds": "conv2d, depthwise_conv2d, linear, elementwise_add"}


def script_model(name, path, log_path):
    """Writes torchvision's `name` with a grey stem, scripted, to `path`."""
    code = (f"import torch, torchvision\ntorch.manual_seed(0)\n"
            f"m = torchvision.models.{name}(num_classes=10)\n{GREY_STEM[name]}\n"
            f"torch.jit.script(m.eval()).save({path!r})\n")
    run(["/usr/bin/python3", "-c", code], log_path)


def slim_train(build, config_text, directory, stem):
    """Writes `config_text` to directory/stem.yaml and runs slim-train on it on two ranks."""
    config = os.path.join(directory, stem + ".yaml")
    with open(config, "w") as f:
        f.write(config_text)
    run([os.path.join(build, "slim-train"), config], os.path.join(directory, stem + ".log"), 2)


# torch.ao.quantization's INT8 model of a trained scripted torchvision model: argv is the
# model name, the scripted FP32 file, the training data (HDF5) and the output file.
PYTORCH_FX = """
import sys, h5py, numpy as np, torch, torchvision
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
name, scripted, data, out = sys.argv[1:5]
torch.backends.quantized.engine = 'onednn'
m = getattr(torchvision.models, name)(num_classes=10)
{stem}
m.load_state_dict(torch.jit.load(scripted).state_dict())
m.eval()
f = h5py.File(data)
x = torch.from_numpy(f['inputs'][:1024].astype(np.float32) / 255)
x = (x - torch.tensor(f.attrs['mean']).view(1, -1, 1, 1)) / torch.tensor(f.attrs['std']).view(1, -1, 1, 1)
prepared = prepare_fx(m, get_default_qconfig_mapping('onednn'), example_inputs=(x[:1],))
with torch.no_grad():
    for i in range(0, len(x), 64):
        prepared(x[i:i + 64])
torch.jit.save(torch.jit.freeze(torch.jit.script(convert_fx(prepared)).eval()), out)
torch.jit.save(torch.jit.freeze(torch.jit.load(scripted).eval()), out + '.fp32.pt')
"""

PYTORCH_LAYOUT = "  unsigned_activations: true\n"

# The timed files: name in logs, label in the table.
TIMED = {"fp32": "FP32 (frozen)", "pytorch_int8": "PyTorch quantize_fx INT8",
         "ours_int8": "ours model_int8.pt", "ours_layout": "ours model_int8.pt, PyTorch's layout"}


def latency(name, args):
    """Times the FP32 file, PyTorch's quantize_fx INT8 model and our two INT8 files of
    `name` (trained and quantized by measure()); returns {file: {batch: median ms}}."""
    directory = os.path.join(args.out, name)
    trained = os.path.join(directory, "fp32", "model.pt")
    layout_dir = os.path.join(directory, "ptq_layout")
    config = QUANTIZE.format(model=trained, data=args.data, out=layout_dir,
                             op_types=OP_TYPES["layers + adds"]) + PYTORCH_LAYOUT
    config = config.replace("  export: [", "  export_quantized_output: true\n  export: [")
    slim_train(args.build, config, directory, "ptq_layout")
    theirs = os.path.join(directory, "pytorch_fx_int8.pt")
    run(["/usr/bin/python3", "-c", PYTORCH_FX.format(stem=GREY_STEM[name]), name, trained,
         os.path.join(args.data, "train.h5"), theirs], os.path.join(directory, "pytorch_fx.log"))
    files = {"fp32": theirs + ".fp32.pt", "pytorch_int8": theirs,
             "ours_int8": os.path.join(directory, "ptq1", "model_int8.pt"),
             "ours_layout": os.path.join(layout_dir, "model_int8.pt")}
    log_dir = os.path.join(directory, "logs")
    os.makedirs(log_dir, exist_ok=True)
    timing = types.SimpleNamespace(rounds=args.rounds, batches=args.batches, iterations=20,
                                   iterations_b1=100, warmup=5)
    errors = []
    trials, medians = interleaved_latency(os.path.join(args.build, "slim-model"), files,
                                          "1,28,28", timing, log_dir, errors)
    if errors:
        raise CommandFailed(f"timing {name}: {errors[0]['error']}")
    ratios = {}
    for file in files:
        ratios[file] = {}
        for batch, times in trials[file].items():
            theirs_times = trials["pytorch_int8"][batch]
            ratios[file][batch] = statistics.median(t / p for t, p in zip(times, theirs_times))
    return {"medians_ms": medians, "per_round_ratio_to_pytorch": ratios}


def latency_table(results):
    lines = ["| model | file | batch | median ms | x FP32 speed | / PyTorch's INT8 (per-round "
             "median) |", "| --- | --- | --- | --- | --- | --- |"]
    for name, result in results.items():
        medians = result["medians_ms"]
        for file, per_batch in medians.items():
            for batch, ms in per_batch.items():
                speedup = medians["fp32"][batch] / ms
                ratio = result["per_round_ratio_to_pytorch"][file][batch]
                lines.append(f"| {name} | {TIMED[file]} | {batch} | {ms:.3f} | {speedup:.2f}x | "
                             f"{ratio:.3f} |")
    return "\n".join(lines) + "\n"


def measure(name, args):
    """Trains, quantizes and exports `name`; returns its rows of the table."""
    directory = os.path.join(args.out, name)
    os.makedirs(directory, exist_ok=True)
    untrained = os.path.join(directory, "untrained.pt")
    script_model(name, untrained, os.path.join(directory, "script.log"))
    trained_dir = os.path.join(directory, "fp32")
    if not (args.reuse and os.path.exists(os.path.join(trained_dir, "report.json"))):
        slim_train(args.build, TRAIN.format(model=untrained, data=args.data, out=trained_dir,
                                            epochs=args.epochs), directory, "fp32")
    with open(os.path.join(trained_dir, "report.json")) as f:
        fp32_top1 = json.load(f)["exports"][0]["eval"]["top1"]
    rows = [{"model": name, "quantized": "—", "file": "FP32 model.pt", "top1": fp32_top1,
             "agreement": None}]
    for index, (quantized, op_types) in enumerate(OP_TYPES.items()):
        stem = f"ptq{index}"
        quant_dir = os.path.join(directory, stem)
        slim_train(args.build, QUANTIZE.format(model=os.path.join(trained_dir, "model.pt"),
                                               data=args.data, out=quant_dir,
                                               op_types=op_types), directory, stem)
        with open(os.path.join(quant_dir, "report.json")) as f:
            exports = json.load(f)["exports"]
        for export in exports:
            agreement = export["eval"].get("top1_agreement_with_model_pt")
            rows.append({"model": name, "quantized": quantized, "file": export["file"],
                         "top1": export["eval"]["top1"], "agreement": agreement})
    return rows


def table(rows):
    lines = ["| model | quantized | file | top-1 | top-1 agreement with model.pt | bar |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        agreement = row["agreement"]
        shown = "—" if agreement is None or row["file"] == "model.pt" else f"{100 * agreement:.2f} %"
        verdict = ("—" if shown == "—" else
                   ("met" if agreement >= AGREEMENT_BAR else "MISSED"))
        lines.append(f"| {row['model']} | {row['quantized']} | {row['file']} | "
                     f"{100 * row['top1']:.2f} % | {shown} | {verdict} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="the build directory")
    parser.add_argument("--data", required=True, help="slim-data fashion-mnist's output")
    parser.add_argument("--out", required=True, help="where runs and results go")
    parser.add_argument("--models", nargs="+", default=list(GREY_STEM), choices=list(GREY_STEM))
    parser.add_argument("--epochs", type=int, default=2, help="FP32 training epochs")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an FP32 model that an earlier run trained in OUTDIR")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved latency rounds")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--no-latency", action="store_true",
                        help="agreement only, no comparison with torch.ao's quantize_fx")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows, timings = [], {}
    try:
        for name in args.models:
            rows += measure(name, args)
            if not args.no_latency:
                timings[name] = latency(name, args)
    except CommandFailed as failure:
        sys.exit(f"torchvision_export: {failure}")
    text = table(rows)
    print(text, end="")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    if timings:
        text = latency_table(timings)
        print("\n" + text, end="")
        with open(os.path.join(args.out, "latency.md"), "w") as f:
            f.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"agreement": rows, "latency": timings}, f, indent=1)


if __name__ == "__main__":
    main()
