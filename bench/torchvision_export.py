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
"""
import argparse
import json
import os
import sys

from fmnist_quant import CommandFailed, run

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
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    try:
        for name in args.models:
            rows += measure(name, args)
    except CommandFailed as failure:
        sys.exit(f"torchvision_export: {failure}")
    text = table(rows)
    print(text, end="")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
