"""SlimTrain's quantization against PyTorch's own tools on one trained FP32 model, one command:

    /usr/bin/python3 bench/fmnist_quant.py --build build --model FLOAT.pt --data DIR \\
        --out OUTDIR [--quick]

FLOAT.pt is a float TorchScript model trained on DIR/train.h5 (DIR as `slim-data
fashion-mnist --out DIR` writes it: train.h5 and eval.h5). For both sides, on the same float
model and the same data, it measures:

  ours      PTQ (`QuantPost`, every ptq_algo), QAT (`QuantAware`, a short fine-tune) and QAT +
            distillation (the float model as teacher), each one `mpirun -np 2 slim-train` run
            with Global.export [torchscript, torchscript_int8, onnx]; top-1 read from each
            run's report.json (model.pt's final evaluation and each export's own); one
            more PTQ (the first algorithm) in the layout PyTorch's INT8 model has:
            QuantPost.unsigned_activations (uint8 with zero point 0 after a ReLU) and
            Global.export_quantized_output (8-bit logits).
  PyTorch   PTQ with graph-mode quantize_jit (bench/pytorch_quant.py's code path: MinMax and
            Histogram observers, activations in 0..127 as that script has them and in 0..255
            as onednn's default qconfig has them), on the TorchScript file as it is and on the
            same weights in an nn.Module (whose conv+BN pairs quantize_jit folds); eager-mode
            QAT (fuse_modules_qat, prepare_qat, convert) with the same fine-tune budget,
            optimizer, schedule, batch and augmentation as ours.
  latency   one thread, `slim-model bench --json` for every file (LibTorch for .pt, ONNX
            Runtime for .onnx): the frozen FP32 model, our model_int8.pt and model.onnx (from
            the QAT run and from the PyTorch-layout PTQ run), PyTorch's INT8 model
            (quantize_jit of the nn.Module, frozen) and its eager-QAT model (scripted,
            frozen), at batch 1 and 64, in interleaved rounds; the figures are medians over
            the rounds, speedups ratios of those medians.

Both sides calibrate on the same images (OUTDIR/data/calib.h5, drawn from train.h5 with
--seed) and are scored on the same eval file. Prints a markdown table (figure, ours, PyTorch's,
target, met, note) and writes OUTDIR/results.md, OUTDIR/results.json (rows plus every raw
figure) and OUTDIR/raw.json. Our runs live in OUTDIR/ours/<run>/, PyTorch's results and INT8
files in OUTDIR/pytorch/, every command's log in OUTDIR/logs/. --quick runs on small subsets
(KL only, 256 calibration, 512 training and 1,000 eval images, one latency round) as a smoke
test; its figures mean little. --reuse takes the runs a previous invocation with the same
settings finished (ours and PyTorch's) and measures the rest; --report-only prints the table
again from OUTDIR/raw.json.

The nn.Module twin of the float model comes from ARCHITECTURES (builtin resnet20 and
fmnist_resnet so far): a builder whose module's state_dict names equal the TorchScript
model's, with QuantStub/DeQuantStub at the ends and a fuse() for QAT (see
bench/pytorch_quant.py's ResNet20). The first builder whose module loads the file's
state_dict strictly and reproduces its logits is used; to add a model, add a builder there.

Uses Debian's python3 with python3-torch and python3-h5py; needs `mpirun`, the build's
slim-train and slim-model, and (for ONNX) Node.js with onnxruntime-node.
"""
import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization import (DeQuantStub, QuantStub, convert, fuse_modules_qat,
                                   get_default_qat_qconfig, prepare_qat)
from torch.jit._recursive import wrap_cpp_module

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_quant  # noqa: E402  (bench/pytorch_quant.py: PTQ code path, ResNet20)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
PTQ_ALGOS = ["abs_max", "avg", "hist", "mse", "KL"]
EXPORTS = "[torchscript, torchscript_int8, onnx]"
QAT_TOLERANCE = 0.005  # INT8 QAT within 0.5 point of FP32


class FmnistResNet(nn.Module):
    """slim-train's builtin:fmnist_resnet as an eager, quantizable nn.Module with the same
    parameter and buffer names: conv1/bn1/relu stem (32 channels), 2x2 max pool, layer1..
    layer3 of one basic block each (widths 32/64/128, stride 2 entering layer2 and layer3),
    fc on the flattened last map; QuantStub/DeQuantStub at the ends."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        channels, height, width = input_shape
        self.quant = QuantStub()
        self.conv1 = nn.Conv2d(channels, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)
        height, width = height // 2, width // 2
        channels_in = 32
        for stage, width_out in enumerate((32, 64, 128)):
            stride = 2 if stage > 0 else 1
            setattr(self, f"layer{stage + 1}",
                    nn.Sequential(pytorch_quant.BasicBlock(channels_in, width_out, stride)))
            height, width = (height - 1) // stride + 1, (width - 1) // stride + 1
            channels_in = width_out
        self.fc = nn.Linear(channels_in * height * width, num_classes)
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(self.quant(x)))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.dequant(self.fc(torch.flatten(x, 1)))

    def fuse(self):
        fuse_modules_qat(self, [["conv1", "bn1", "relu"]], inplace=True)
        for layer in (self.layer1, self.layer2, self.layer3):
            for block in layer:
                block.fuse()


def build_resnet20(input_shape, num_classes):
    return pytorch_quant.ResNet20(num_classes=num_classes, in_channels=input_shape[0])


# name -> builder(input_shape [C, H, W], num_classes) of an eager, quantizable nn.Module
# whose state_dict names are those of the TorchScript model (slim-train's builtin of that
# name), with QuantStub/DeQuantStub at the ends and fuse() for QAT.
ARCHITECTURES = {"resnet20": build_resnet20, "fmnist_resnet": FmnistResNet}


SCRIPT = os.path.splitext(os.path.basename(sys.argv[0]))[0]


def log(message):
    """`message` on stderr with the running script's name and the time."""
    print(f"{SCRIPT} [{time.strftime('%H:%M:%S')}]: {message}", file=sys.stderr, flush=True)


class CommandFailed(RuntimeError):
    pass


def attempt(errors, what, function, *args):
    """function(*args), or None with the error appended to `errors` (an honest miss, not a
    crash)."""
    try:
        return function(*args)
    except (CommandFailed, RuntimeError, KeyError, OSError) as error:
        log(f"{what} failed: {error}")
        errors.append({"what": what, "error": str(error)})
        return None


def fine_tune_section(a):
    """The TrainConfig of our fine-tuning runs: a.epochs, cosine from a.lr, Momentum 0.9 with
    a.weight_decay, no evaluation or checkpoints during the run."""
    return f"""TrainConfig:
  epochs: {a.epochs}
  eval_iter: 0
  logging_iter: 50
  learning_rate:
    type: CosineAnnealingDecay
    learning_rate: {a.lr}
  optimizer_builder:
    optimizer:
      type: Momentum
      momentum: 0.9
    weight_decay: {a.weight_decay}
  checkpoint:
    every_minutes: 0
"""


def distillation_section(a):
    """Distillation from the float model itself, soft labels at a.temperature, with the
    labels' cross-entropy."""
    return f"""Distillation:
  teacher_model: self
  loss: soft_label
  temperature: {a.temperature}
  label_loss_weight: 1
"""


def run(args, log_path, ranks=None):
    """Runs `args` (under mpirun with `ranks`), its output to `log_path`; raises CommandFailed
    naming the log on a non-zero exit."""
    if ranks:
        args = ["mpirun", "-np", str(ranks)] + args
    with open(log_path, "w") as out:
        out.write("$ " + " ".join(shlex.quote(a) for a in args) + "\n")
        out.flush()
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, text=True, env=ENV)
    if done.returncode != 0:
        with open(log_path) as f:
            tail = "".join(f.readlines()[-15:])
        raise CommandFailed(f"exit {done.returncode}: {' '.join(args)} (log {log_path})\n{tail}")


def subset(source, destination, count, seed):
    """Writes `count` samples of the HDF5 split `source` drawn without replacement with
    `seed` (in file order) to `destination`, attributes copied; returns `destination`."""
    with h5py.File(source, "r") as f:
        total = len(f["labels"])
        count = min(count, total)
        indices = np.sort(np.random.default_rng(seed).choice(total, count, replace=False))
        with h5py.File(destination, "w") as g:
            for key, value in f.attrs.items():
                g.attrs[key] = value
            for key in f:
                data = f[key][indices]
                chunks = (min(256, count),) + data.shape[1:]
                g.create_dataset(key, data=data, chunks=chunks)
    return destination


def load_split(path):
    """(normalised inputs, labels) of a whole HDF5 image split as tensors."""
    inputs, labels = [], []
    for x, y in pytorch_quant.batches(path, 4096):
        inputs.append(x)
        labels.append(y)
    return torch.cat(inputs), torch.cat(labels)


def split_facts(path):
    with h5py.File(path, "r") as f:
        return tuple(f["inputs"].shape[1:]), len(f.attrs["class_names"]), len(f["labels"])


def load_twin(script, eval_data, sample_shape, num_classes):
    """(architecture name, eager nn.Module with the weights of the TorchScript model `script`,
    eval mode): the first ARCHITECTURES builder whose module loads its state_dict strictly and
    reproduces its logits on images of `eval_data`. Raises LookupError naming each miss."""
    state = script.state_dict()
    example = next(pytorch_quant.batches(eval_data, 16))[0]
    with torch.no_grad():
        reference = script(example)
    tried = []
    for name, builder in ARCHITECTURES.items():
        module = builder(sample_shape, num_classes)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            tried.append(f"{name}: {str(error).splitlines()[0]}")
            continue
        module.eval()
        with torch.no_grad():
            difference = (module(example) - reference).abs().max().item()
        if difference > 1e-3 * max(1.0, reference.abs().max().item()):
            tried.append(f"{name}: logits differ by {difference:.3g}")
            continue
        return name, module
    raise LookupError("no builder in ARCHITECTURES matches it: " + "; ".join(tried))


def fine_tune(model, teacher, train_data, recipe, seed, what, before_step=lambda step: None):
    """Fine-tunes `model` in train mode as our slim-train runs do: recipe.epochs passes over
    `train_data` in batches of recipe.train_batch (order and augmentation drawn with `seed`,
    the last incomplete batch dropped), SGD with momentum 0.9 and recipe.weight_decay, cosine
    from recipe.lr to 0 over the run. The loss is cross-entropy plus, with a `teacher`,
    slim-train's soft_label term KL(teacher/T || student/T)·T² (T = recipe.temperature).
    before_step(step) runs at the start of every step. Returns (steps, seconds)."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    inputs, labels = load_split(train_data)
    per_epoch = len(labels) // recipe.train_batch
    total = per_epoch * recipe.epochs
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9,
                                weight_decay=recipe.weight_decay)
    log(f"{what}: {total} steps of {recipe.train_batch}")
    start = time.perf_counter()
    step = 0
    for _ in range(recipe.epochs):
        order = torch.randperm(len(labels), generator=generator)
        for k in range(per_epoch):
            index = order[k * recipe.train_batch:(k + 1) * recipe.train_batch]
            x = augment(inputs[index], recipe.augment_padding, recipe.augment_flip, generator)
            y = labels[index]
            before_step(step)
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr * (1 + math.cos(math.pi * step / total)) / 2
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            if teacher is not None:
                with torch.no_grad():
                    soft = F.softmax(teacher(x) / recipe.temperature, dim=1)
                loss = loss + recipe.temperature ** 2 * F.kl_div(
                    F.log_softmax(logits / recipe.temperature, dim=1), soft,
                    reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % 50 == 0 or step == total:
                log(f"  step {step}/{total} loss {loss.item():.4f}")
    return total, time.perf_counter() - start


def freeze(module):
    """torch.jit.freeze for modules quantize_jit or convert made, which lack `training`."""
    return wrap_cpp_module(torch._C._freeze_module(module._c))


# ---------------------------------------------------------------------------------- ours


class Ours:
    """slim-train runs: one PTQ per algorithm, QAT, QAT + distillation."""

    def __init__(self, bench):
        self.b = bench
        self.same_config = {}  # run name -> its config equals the one a previous run wrote

    def config(self, name, train_data, sections, batch, augment="", extra_global=""):
        out_dir = self.b.path("ours", name)
        path = self.b.path("ours", f"{name}.yaml")
        previous = None
        if os.path.exists(path):
            with open(path) as f:
                previous = f.read()
        with open(path, "w") as f:
            f.write(text := f"""Global:
  model: {self.b.model}
  train_data: {train_data}
  eval_data: {self.b.eval_data}
  batch_size: {batch}
  seed: {self.b.args.seed}
  output_dir: {out_dir}
  intra_op_threads: 1
  loader_threads: 1
  export: {EXPORTS}
{extra_global}{augment}{sections}""")
        self.same_config[name] = previous == text
        return path, out_dir

    def slim_train(self, name, config, out_dir):
        report_path = os.path.join(out_dir, "report.json")
        if self.b.args.reuse and self.same_config.get(name) and os.path.exists(report_path):
            log(f"ours: {name}: reusing {report_path}")
            wall = None
        else:
            log(f"ours: {name} ...")
            start = time.perf_counter()
            run([self.b.binary("slim-train"), config, "--resume", "none"],
                self.b.path("logs", f"ours_{name}.log"), ranks=self.b.args.ranks)
            wall = time.perf_counter() - start
        with open(report_path) as f:
            report = json.load(f)
        exports = {e["format"]: e for e in report.get("exports", [])}

        def export_top1(fmt):
            entry = exports.get(fmt, {}).get("eval", {})
            return entry.get("top1")

        result = {"dir": out_dir, "wall_s": wall,
                  "float_top1": report.get("float", {}).get("eval_top1"),
                  "model_pt_top1": report["final"]["eval_top1"],
                  "int8_top1": export_top1("torchscript_int8"),
                  "onnx_top1": export_top1("onnx"),
                  "int8_agreement": exports.get("torchscript_int8", {}).get("eval", {}).get(
                      "top1_agreement_with_model_pt"),
                  "report_latency": {fmt: e.get("latency") for fmt, e in exports.items()},
                  "report_input_latency": report.get("input_model", {}).get("latency"),
                  "train_samples_per_s": report.get("train_samples_per_s")}
        log(f"ours: {name}: model.pt {result['model_pt_top1']:.4f}, model_int8.pt "
            f"{result['int8_top1']}, model.onnx {result['onnx_top1']}"
            + (f" ({wall:.0f} s)" if wall is not None else ""))
        return result

    def ptq(self, algo, pytorch_layout=False):
        """PTQ with `algo`; with `pytorch_layout` in the layout of PyTorch's INT8 model:
        activations after a ReLU on the unsigned grid (QuantPost.unsigned_activations) and
        the logits quantized too (Global.export_quantized_output)."""
        a = self.b.args
        name = f"ptq_{algo}" + ("_pytorch_layout" if pytorch_layout else "")
        sections = f"""QuantPost:
  ptq_algo: {algo}
  batch_num: {self.b.calib_count // a.calib_batch}
  batch_size: {a.calib_batch}
  quantize_op_types: [conv2d, depthwise_conv2d, linear]
"""
        if pytorch_layout:
            sections += "  unsigned_activations: true\n"
        config, out_dir = self.config(
            name, self.b.calib_data, sections, self.b.report_batch,
            extra_global="  export_quantized_output: true\n" if pytorch_layout else "")
        return self.slim_train(name, config, out_dir)

    def qat(self, distill):
        a = self.b.args
        name = "qat_distill" if distill else "qat"
        per_rank = a.train_batch // a.ranks
        sections = fine_tune_section(a) + """QuantAware:
  quantize_op_types: [conv2d, depthwise_conv2d, linear]
  weight_quantize_type: channel_wise_abs_max
  activation_quantize_type: moving_average_abs_max
"""
        if a.freeze_bn_step >= 0:
            sections += f"  freeze_bn_step: {a.freeze_bn_step}\n"
        if distill:
            sections += distillation_section(a)
        augment = (f"  augment:\n    random_crop_padding: {a.augment_padding}\n"
                   f"    horizontal_flip: {'true' if a.augment_flip else 'false'}\n")
        config, out_dir = self.config(name, self.b.train_data, sections, per_rank, augment)
        return self.slim_train(name, config, out_dir)


# ------------------------------------------------------------------------------- PyTorch


class PyTorch:
    """PyTorch's own tools: quantize_jit PTQ and eager-mode QAT on the nn.Module twin."""

    def __init__(self, bench):
        self.b = bench
        self.engine = pytorch_quant.default_engine()
        torch.backends.quantized.engine = self.engine
        self.script = torch.jit.load(bench.model).eval()
        self.arch = None

    def twin(self):
        """(architecture name, eager nn.Module with the float model's weights, eval mode)."""
        try:
            self.arch, module = load_twin(self.script, self.b.eval_data, self.b.sample_shape,
                                          self.b.num_classes)
        except LookupError as error:
            sys.exit(f"fmnist_quant: {self.b.model}: {error}")
        return self.arch, module

    def float_top1(self):
        return pytorch_quant.top1(self.script, self.b.eval_data, 256)

    def signature(self):
        """What PyTorch's results depend on: a saved result is reused only when it matches."""
        a = self.b.args
        return {"model": self.b.model, "model_bytes": os.path.getsize(self.b.model),
                "model_mtime": os.path.getmtime(self.b.model), "engine": self.engine,
                "calib_data": self.b.calib_data, "calib_images": self.b.calib_count,
                "calib_batch": a.calib_batch, "train_data": self.b.train_data,
                "eval_data": self.b.eval_data, "epochs": a.epochs, "lr": a.lr,
                "weight_decay": a.weight_decay, "train_batch": a.train_batch,
                "augment": [a.augment_padding, a.augment_flip], "temperature": a.temperature,
                "seed": a.seed, "train_subset": a.train_samples, "eval_subset": a.eval_samples,
                **({"freeze_bn_step": a.freeze_bn_step} if a.freeze_bn_step >= 0 else {})}

    def cached(self, name, function):
        """function() -> result dict, saved as OUTDIR/pytorch/<name>.json; with --reuse a saved
        result of the same signature() is returned instead."""
        path = self.b.path("pytorch", f"{name}.json")
        if self.b.args.reuse and os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("signature") == json.loads(json.dumps(self.signature())):
                log(f"pytorch {name}: reusing {path}")
                return saved["result"]
        result = function()
        with open(path, "w") as f:
            json.dump({"signature": self.signature(), "result": result}, f, indent=2)
        return result

    def ptq(self, variants):
        """Top-1 and calibration time per (source, observer, range) variant; each quantized
        nn.Module (BN folded) is saved frozen for timing (its result's "file")."""
        calibration = None
        results = {}
        for source, observer, reduce_range in variants:
            key = f"{source}/{observer}/{'0..127' if reduce_range else '0..255'}"
            name = "ptq_" + key.replace("/", "_").replace("..", "-")
            if calibration is None:
                calibration = list(pytorch_quant.batches(self.b.calib_data,
                                                         self.b.args.calib_batch))
            results[key] = self.cached(
                name, lambda: self.ptq_one(key, name, source, observer, reduce_range,
                                           calibration))
        return results

    def ptq_one(self, key, name, source, observer, reduce_range, calibration):
        """One quantize_jit variant: its result, the module variants' INT8 model saved."""
        if source == "file":
            model = self.b.model
        else:
            model = torch.jit.script(self.twin()[1])
        try:
            quantized, calib_s = pytorch_quant.quantize(model, observer, calibration,
                                                        reduce_range)
            accuracy = pytorch_quant.top1(quantized, self.b.eval_data, 256)
        except RuntimeError as error:
            log(f"pytorch PTQ {key}: failed: {str(error).splitlines()[0]}")
            return {"error": str(error).splitlines()[0]}
        result = {"top1": accuracy, "calib_s": calib_s,
                  "ops": pytorch_quant.quantized_ops(quantized)}
        log(f"pytorch PTQ {key}: top-1 {accuracy:.4f} (calibration {calib_s:.1f} s)")
        if source == "module":
            result["file"] = self.b.path("pytorch", f"{name}_frozen.pt")
            torch.jit.save(freeze(quantized), result["file"])
        return result

    def qat(self, distill):
        """Eager-mode QAT on the nn.Module twin with our fine-tune's recipe (saved and reused
        like PTQ results); the converted INT8 model is saved scripted and frozen (the
        result's "file")."""
        name = "qat_distill" if distill else "qat"
        return self.cached(name, lambda: self.qat_run(distill, name))

    def qat_run(self, distill, name):
        a = self.b.args
        torch.manual_seed(a.seed)
        _, model = self.twin()
        model.train()
        model.fuse()
        model.qconfig = get_default_qat_qconfig(self.engine)
        prepare_qat(model, inplace=True)

        def freeze_bn_at_its_step(step):
            if step == a.freeze_bn_step:
                # As QuantAware's freeze_bn_step: BatchNorm statistics frozen from here on.
                model.apply(torch.nn.intrinsic.qat.freeze_bn_stats)

        total, train_s = fine_tune(
            model, self.script if distill else None, self.b.train_data, a, a.seed,
            f"pytorch eager QAT{' + distillation' if distill else ''}", freeze_bn_at_its_step)
        model.eval()
        quantized = convert(model, inplace=False)
        accuracy = pytorch_quant.top1(quantized, self.b.eval_data, 256)
        log(f"pytorch eager QAT{' + distillation' if distill else ''}: INT8 top-1 "
            f"{accuracy:.4f} ({train_s:.0f} s training)")
        result = {"top1": accuracy, "train_s": train_s, "steps": total,
                  "samples_per_s": total * a.train_batch / train_s,
                  "qconfig": f"get_default_qat_qconfig('{self.engine}')"}
        try:
            result["file"] = self.b.path("pytorch", f"{name}_int8_frozen.pt")
            torch.jit.save(freeze(torch.jit.script(quantized)), result["file"])
        except RuntimeError as error:
            result.pop("file")
            result["file_error"] = str(error).splitlines()[0]
        return result


def augment(x, padding, flip, generator):
    """Random crop after zero padding (in normalised units) and horizontal flip of half the
    images, as slim-train's augment does."""
    if padding > 0:
        height, width = x.shape[2], x.shape[3]
        padded = F.pad(x, (padding, padding, padding, padding))
        offsets = torch.randint(0, 2 * padding + 1, (len(x), 2), generator=generator).tolist()
        x = torch.stack([padded[i, :, top:top + height, left:left + width]
                         for i, (top, left) in enumerate(offsets)])
    if flip:
        mirror = torch.rand(len(x), generator=generator) < 0.5
        x = x.clone()
        x[mirror] = x[mirror].flip(3)
    return x


# ---------------------------------------------------------------------------------- bench


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.model = os.path.abspath(args.model)
        for sub in ("data", "ours", "pytorch", "logs"):
            os.makedirs(self.path(sub), exist_ok=True)
        data = os.path.abspath(args.data)
        train, evaluation = os.path.join(data, "train.h5"), os.path.join(data, "eval.h5")
        for path in (train, evaluation, self.model):
            if not os.path.exists(path):
                sys.exit(f"fmnist_quant: {path} does not exist")
        shape, self.num_classes, train_count = split_facts(train)
        self.sample_shape = list(shape)
        self.input_shape = ",".join(map(str, shape))
        self.calib_count = args.calib_samples - args.calib_samples % args.calib_batch
        self.calib_data = subset(train, self.path("data", "calib.h5"), self.calib_count,
                                 args.seed)
        if args.train_samples and args.train_samples < train_count:
            self.train_data = subset(train, self.path("data", "train.h5"), args.train_samples,
                                     args.seed + 1)
        else:
            self.train_data = train
        _, _, eval_count = split_facts(evaluation)
        if args.eval_samples and args.eval_samples < eval_count:
            self.eval_data = subset(evaluation, self.path("data", "eval.h5"), args.eval_samples,
                                    args.seed + 2)
        else:
            self.eval_data = evaluation
        # The batch report.json measures latency at besides 1 in our PTQ runs (their own
        # figures; the table's come from the interleaved rounds below).
        self.report_batch = 16 if args.quick else args.batches[-1]
        self.raw = {"errors": []}

    def binary(self, name):
        return os.path.join(self.build, name)

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def attempt(self, what, function, *args):
        """function(*args), or None with the error recorded in raw["errors"]."""
        return attempt(self.raw["errors"], what, function, *args)

    def latency(self, files):
        """Median ms per file and batch over interleaved rounds of slim-model bench."""
        return interleaved_latency(self.binary("slim-model"), files, self.input_shape,
                                   self.args, self.path("logs"), self.raw["errors"])


def interleaved_latency(slim_model, files, input_shape, timing, log_dir, errors):
    """Latency of each of `files` ({name: model file}) by `slim_model bench` on one thread:
    timing.rounds rounds, each timing every file at every batch of timing.batches (the file
    order rotated per round, so drift hits all alike) with timing.iterations (batch 1:
    iterations_b1) after timing.warmup. Returns ({name: {batch: [ms per round]}}, {name:
    {batch: median ms}}); a failed run is recorded in `errors` and skipped."""
    trials = {name: {str(b): [] for b in timing.batches} for name in files}
    for round_index in range(timing.rounds):
        names = list(files)
        names = names[round_index % len(names):] + names[:round_index % len(names)]
        for batch in timing.batches:
            iterations = timing.iterations_b1 if batch == 1 else timing.iterations
            for name in names:
                log_path = os.path.join(log_dir, f"bench_{name}_b{batch}_r{round_index}.log")
                try:
                    run([slim_model, "bench", files[name], "--input-shape", input_shape,
                         "--batch", str(batch), "--threads", "1", "--iterations",
                         str(iterations), "--warmup", str(timing.warmup), "--json"], log_path)
                except CommandFailed as error:
                    errors.append({"what": f"bench {name}", "error": str(error)})
                    continue
                with open(log_path) as f:
                    line = [l for l in f if l.startswith("{")][-1]
                trials[name][str(batch)].append(json.loads(line)["median_ms"])
        log(f"latency round {round_index + 1}/{timing.rounds} done")
    medians = {name: {b: statistics.median(t) if t else None for b, t in per.items()}
               for name, per in trials.items()}
    return trials, medians


def pct(value):
    return "—" if value is None else f"{100 * value:.2f} %"


def model_bench_parser(description):
    """A command line with the arguments every Fashion-MNIST model benchmark takes: --build,
    --model, --data and --out; `description` is the script's docstring."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--model", required=True, help="trained float TorchScript model")
    parser.add_argument("--data", required=True, help="directory with train.h5 and eval.h5")
    parser.add_argument("--out", required=True, help="output directory")
    return parser


def main():
    parser = model_bench_parser(__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small subsets, 2 PTQ algorithms, 1 latency round (smoke test)")
    parser.add_argument("--ranks", type=int, default=2, help="slim-train ranks (mpirun -np)")
    parser.add_argument("--algos", help=f"comma-separated of {','.join(PTQ_ALGOS)} "
                        "(default all; --quick: KL)")
    parser.add_argument("--calib-samples", type=int, help="calibration images, both sides "
                        "(default 1024; --quick 256)")
    parser.add_argument("--calib-batch", type=int, default=32)
    parser.add_argument("--train-samples", type=int,
                        help="QAT training images (default all; --quick 512)")
    parser.add_argument("--eval-samples", type=int, help="eval images (default all; --quick 1000)")
    parser.add_argument("--epochs", type=int, default=1, help="QAT fine-tune epochs")
    parser.add_argument("--lr", type=float, default=0.001, help="QAT peak lr (cosine to 0)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--train-batch", type=int, help="global QAT batch (ours: split over "
                        "the ranks; default 128, --quick 32)")
    parser.add_argument("--freeze-bn-step", type=int, default=-1,
                        help="QAT: BatchNorm statistics frozen from this step on (ours: "
                        "QuantAware.freeze_bn_step, PyTorch: freeze_bn_stats); -1 never")
    parser.add_argument("--augment-padding", type=int, default=2)
    parser.add_argument("--no-augment-flip", dest="augment_flip", action="store_false")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--pytorch-distill", action="store_true",
                        help="also run PyTorch eager QAT with a hand-written soft-label loss "
                        "(torch.ao has no distillation tool)")
    parser.add_argument("--pytorch-variants", help="comma-separated source/observer/range, "
                        "e.g. module/histogram/0..255 (default all 8; --quick 2)")
    parser.add_argument("--rounds", type=int, help="interleaved latency rounds (default 5; "
                        "--quick 1)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--iterations", type=int, default=20,
                        help="timed runs per trial, batch > 1")
    parser.add_argument("--iterations-b1", type=int, default=50,
                        help="timed runs per trial, batch 1")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch threads for PyTorch's calibration, evaluation and QAT")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--report-only", action="store_true",
                        help="print the table again from OUTDIR/raw.json; measures nothing")
    parser.add_argument("--reuse", action="store_true",
                        help="take our runs (OUTDIR/ours/<run>/report.json) and PyTorch's results "
                        "(OUTDIR/pytorch/*.json) that a previous run with the same settings "
                        "left; the rest, and the timing, run again")
    args = parser.parse_args()
    quick = args.quick
    args.algos = (args.algos or ("KL" if quick else ",".join(PTQ_ALGOS))).split(",")
    bad = [a for a in args.algos if a not in PTQ_ALGOS]
    if bad:
        sys.exit(f"fmnist_quant: unknown PTQ algorithm {', '.join(bad)}")
    if args.calib_samples is None:
        args.calib_samples = 256 if quick else 1024
    if args.train_samples is None:
        args.train_samples = 512 if quick else 0
    if args.eval_samples is None:
        args.eval_samples = 1000 if quick else 0
    if args.train_batch is None:
        args.train_batch = 32 if quick else 128
    if args.rounds is None:
        args.rounds = 1 if quick else 5
    if quick:
        args.iterations, args.iterations_b1, args.warmup = 5, 10, 2
    all_variants = [f"{s}/{o}/{r}" for s in ("file", "module") for o in ("minmax", "histogram")
                    for r in ("0..127", "0..255")]
    args.pytorch_variants = (args.pytorch_variants or (
        "module/minmax/0..255,module/histogram/0..255" if quick
        else ",".join(all_variants))).split(",")
    variants = []
    for text in args.pytorch_variants:
        if text not in all_variants:
            sys.exit(f"fmnist_quant: unknown PyTorch variant {text}; valid: "
                     f"{', '.join(all_variants)}")
        source, observer, value_range = text.split("/")
        variants.append((source, observer, value_range == "0..127"))
    torch.set_num_threads(args.threads)

    if args.report_only:
        # The table again from OUTDIR/raw.json, as the last run measured it.
        with open(os.path.join(args.out, "raw.json")) as f:
            raw = json.load(f)
        raw["setup"].setdefault("train_images", split_facts(raw["setup"]["train_data"])[2])
        raw["setup"].setdefault("eval_images", split_facts(raw["setup"]["eval_data"])[2])
        previous = argparse.Namespace(**raw["setup"]["args"])
        bench = argparse.Namespace(args=previous,
                                   path=lambda *parts: os.path.join(args.out, *parts))
        report(bench, make_rows(bench, raw, raw["latency_median_ms"]), raw)
        return

    started = time.perf_counter()
    bench = Bench(args)
    ours, theirs = Ours(bench), PyTorch(bench)
    arch, _ = theirs.twin()
    log(f"model {bench.model}: {arch}, input {bench.input_shape}, {bench.num_classes} classes; "
        f"engine {theirs.engine}; calibration {bench.calib_count} images, QAT on "
        f"{split_facts(bench.train_data)[2]}, eval on {split_facts(bench.eval_data)[2]}")
    raw = bench.raw
    raw["setup"] = {"arch": arch, "engine": theirs.engine, "model": bench.model,
                    "calib_data": bench.calib_data, "train_data": bench.train_data,
                    "eval_data": bench.eval_data, "calib_images": bench.calib_count,
                    "train_images": split_facts(bench.train_data)[2],
                    "eval_images": split_facts(bench.eval_data)[2],
                    "args": vars(args), "torch": torch.__version__,
                    "command": " ".join(shlex.quote(a) for a in sys.argv)}

    # Ours.
    raw["ours"] = {}
    for algo in args.algos:
        raw["ours"][f"ptq_{algo}"] = bench.attempt(f"ours PTQ {algo}", ours.ptq, algo)
    raw["ours"]["ptq_pytorch_layout"] = bench.attempt(
        f"ours PTQ {args.algos[0]}, PyTorch's layout", ours.ptq, args.algos[0], True)
    raw["ours"]["qat"] = bench.attempt("ours QAT", ours.qat, False)
    raw["ours"]["qat_distill"] = bench.attempt("ours QAT + distillation", ours.qat, True)

    # PyTorch's.
    raw["pytorch"] = {"float_top1": theirs.float_top1()}
    log(f"pytorch float top-1 {raw['pytorch']['float_top1']:.4f}")
    raw["pytorch"]["ptq"] = theirs.ptq(variants)
    raw["pytorch"]["qat"] = bench.attempt("pytorch eager QAT", theirs.qat, False)
    if args.pytorch_distill:
        raw["pytorch"]["qat_distill"] = bench.attempt("pytorch eager QAT + distillation",
                                                      theirs.qat, True)

    # Files to time.
    files = {}
    fp32 = bench.path("pytorch", "fp32_frozen.pt")
    torch.jit.save(torch.jit.freeze(torch.jit.load(bench.model).eval()), fp32)
    files["fp32"] = fp32
    timed_run = raw["ours"].get("qat") or next(
        (r for r in raw["ours"].values() if r), None)
    if timed_run:
        files["ours_int8"] = os.path.join(timed_run["dir"], "model_int8.pt")
        files["ours_onnx"] = os.path.join(timed_run["dir"], "model.onnx")
    layout = raw["ours"].get("ptq_pytorch_layout")
    if layout:
        files["ours_int8_layout"] = os.path.join(layout["dir"], "model_int8.pt")
        files["ours_onnx_layout"] = os.path.join(layout["dir"], "model.onnx")
    kept = {k: v for k, v in raw["pytorch"]["ptq"].items() if "file" in v}
    if kept:
        # PyTorch's INT8 model: its most accurate quantize_jit model of the nn.Module (conv
        # and BN folded; all of them have the same ops).
        best_key = max(kept, key=lambda k: kept[k]["top1"])
        files["pytorch_int8"] = kept[best_key]["file"]
        raw["pytorch"]["timed_ptq_variant"] = best_key
    qat_result = raw["pytorch"]["qat"]
    if qat_result and "file" in qat_result:
        files["pytorch_qat_int8"] = qat_result["file"]
    elif qat_result:
        raw["errors"].append({"what": "script PyTorch QAT model",
                              "error": qat_result.get("file_error", "")})
    log(f"latency: {args.rounds} interleaved round(s) of {', '.join(files)} at batch "
        f"{', '.join(map(str, args.batches))}, one thread")
    raw["latency_trials_ms"], medians = bench.latency(files)
    raw["latency_median_ms"] = medians
    raw["wall_s"] = time.perf_counter() - started
    with open(bench.path("raw.json"), "w") as f:
        json.dump(raw, f, indent=2, default=str)

    rows = make_rows(bench, raw, medians)
    report(bench, rows, raw)


def make_rows(bench, raw, medians):
    """The table: figure, ours, PyTorch's, target, met (True/False/None), note."""
    rows = []
    ours, pt = raw["ours"], raw["pytorch"]

    def row(figure, our_value, their_value, target="—", met=None, note="", fmt=pct):
        rows.append({"figure": figure, "ours": our_value, "pytorch": their_value,
                     "ours_text": fmt(our_value), "pytorch_text": fmt(their_value),
                     "target": target, "met": met, "note": note})

    our_float = next((r["float_top1"] for r in ours.values() if r and r.get("float_top1")), None)
    fp32 = our_float if our_float is not None else pt["float_top1"]
    row("FP32 top-1 (input model)", our_float, pt["float_top1"],
        note="SlimTrain's evaluator / PyTorch, same file and eval set")

    our_ptq = {}
    for algo in bench.args.algos:
        r = ours.get(f"ptq_{algo}")
        our_ptq[algo] = r["int8_top1"] if r else None
        row(f"PTQ {algo} top-1, ours (model_int8.pt)", our_ptq[algo], None,
            note=(f"model.pt {pct(r['model_pt_top1'])}, model.onnx {pct(r['onnx_top1'])}"
                  if r else "run failed"))
    their_ptq = {k: v["top1"] for k, v in pt["ptq"].items() if "top1" in v}
    for observer in ("minmax", "histogram"):
        mine = {k: v for k, v in their_ptq.items() if f"/{observer}/" in k}
        if not mine:
            continue
        best = max(mine, key=mine.get)
        row(f"PTQ {observer} top-1, PyTorch quantize_jit", None, mine[best],
            note=f"best of {', '.join(f'{k} {pct(v)}' for k, v in mine.items())}")
    valid = {k: v for k, v in our_ptq.items() if v is not None}
    if valid and their_ptq:
        ours_best = max(valid, key=valid.get)
        their_best = max(their_ptq, key=their_ptq.get)
        difference = round((valid[ours_best] - their_ptq[their_best]) * raw["setup"]["eval_images"])
        onnx = {a: ours[f"ptq_{a}"]["onnx_top1"] for a in valid
                if ours[f"ptq_{a}"].get("onnx_top1") is not None}
        note = (f"ours: {ours_best} (model_int8.pt); PyTorch: {their_best}; {difference:+d} "
                f"of {raw['setup']['eval_images']} eval images")
        if onnx:
            best_onnx = max(onnx, key=onnx.get)
            note += f"; our best model.onnx: {best_onnx} {pct(onnx[best_onnx])}"
        row("best PTQ top-1 (INT8 file)", valid[ours_best], their_ptq[their_best],
            "ours >= PyTorch's", valid[ours_best] >= their_ptq[their_best], note)

    r = ours.get("ptq_pytorch_layout")
    if r:
        row(f"PTQ {bench.args.algos[0]} top-1, PyTorch's layout (model_int8.pt)",
            r["int8_top1"], None,
            note=f"unsigned_activations and export_quantized_output: uint8 after ReLUs and "
                 f"logits on 256 levels, as PyTorch's are; same top-1 as model.pt on "
                 f"{pct(r['int8_agreement'])}, model.onnx {pct(r['onnx_top1'])}")

    floor = fp32 - QAT_TOLERANCE
    for key, label in (("qat", "QAT"), ("qat_distill", "QAT + distillation")):
        r, theirs = ours.get(key), pt.get(key)
        their_top1 = theirs["top1"] if theirs else None
        notes = []
        if r:
            notes.append(f"ours model.pt {pct(r['model_pt_top1'])}, model.onnx "
                         f"{pct(r['onnx_top1'])}")
        if their_top1 is not None:
            notes.append(f"PyTorch {'meets' if their_top1 >= floor else 'misses'} it")
        elif key == "qat_distill":
            notes.append("PyTorch: torch.ao has no distillation (--pytorch-distill adds a "
                         "hand-written soft-label loss)")
        our_top1 = r["int8_top1"] if r else None
        row(f"{label} top-1 (INT8, model_int8.pt / PyTorch converted)", our_top1, their_top1,
            f">= FP32 - 0.5 pt ({pct(floor)})",
            None if our_top1 is None else our_top1 >= floor, "; ".join(notes))

    def ms(value):
        return "—" if value is None else f"{value:.3f} ms"

    def times(value):
        return "—" if value is None else f"{value:.2f}x"

    trials = raw["latency_trials_ms"]

    def round_ratio(numerator, denominator, batch):
        """Median over rounds of numerator/denominator within each round (drift cancels)."""
        a, b = trials.get(numerator, {}).get(batch, []), trials.get(denominator, {}).get(batch, [])
        pairs = [x / y for x, y in zip(a, b) if y]
        return statistics.median(pairs) if pairs and len(a) == len(b) else None

    theirs_name = "pytorch_int8"
    variant = raw["pytorch"].get("timed_ptq_variant")
    for batch in map(str, bench.args.batches):
        base = medians.get("fp32", {}).get(batch)
        row(f"FP32 latency, batch {batch} (frozen TorchScript, LibTorch)", base, base, fmt=ms,
            note="the same file on both sides"
                 + ("; Debian's LibTorch runs float convolutions slowly at batch 1, hence the "
                    "large batch-1 speedups" if batch == "1" else ""))
        their = medians.get(theirs_name, {}).get(batch)
        for name, label in (("ours_int8", "model_int8.pt (LibTorch)"),
                            ("ours_onnx", "model.onnx (ONNX Runtime)"),
                            ("ours_int8_layout", "model_int8.pt, PyTorch's layout (LibTorch)"),
                            ("ours_onnx_layout", "model.onnx, PyTorch's layout (ONNX Runtime)")):
            mine = medians.get(name, {}).get(batch)
            met = None if mine is None or their is None else mine <= their
            note = ""
            if mine and their:
                per_round = round_ratio(name, theirs_name, batch)
                note = f"ours/PyTorch {mine / their:.3f}"
                if per_round is not None:
                    note += f" (median of per-round ratios {per_round:.3f})"
                if 1 < mine / their <= 1.03:
                    note += ", within 3 %: a tie within this machine's noise"
                note += "; "
            row(f"INT8 latency, batch {batch}: {label}", mine, their,
                "<= PyTorch's INT8", met, fmt=ms,
                note=f"{note}PyTorch's: quantize_jit {variant}, frozen")
            speed = base / mine if base and mine else None
            their_speed = base / their if base and their else None
            row(f"INT8 speedup over FP32, batch {batch}: {label}", speed, their_speed, fmt=times,
                note="ratio of medians; same verdict as the latency row")
        qat_ms = medians.get("pytorch_qat_int8", {}).get(batch)
        if qat_ms is not None:
            row(f"INT8 latency, batch {batch}: PyTorch's eager-QAT model (scripted, frozen)",
                None, qat_ms, fmt=ms,
                note=f"speedup over FP32 {base / qat_ms:.2f}x" if base else "")
    return rows


def report(bench, rows, raw):
    def met_text(met):
        return "—" if met is None else ("met" if met else "MISSED")

    lines = ["| figure | ours | PyTorch's | target | met | note |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['ours_text']} | {r['pytorch_text']} | {r['target']} "
                     f"| {met_text(r['met'])} | {r['note']} |")
    setup = raw["setup"]
    header = (f"{setup['arch']} {setup['model']}; engine {setup['engine']}; calibration "
              f"{setup['calib_images']} images; QAT {bench.args.epochs} epoch(s) on "
              f"{setup['train_images']} images at lr {bench.args.lr}; eval "
              f"{setup['eval_images']} images; latency: median of "
              f"{bench.args.rounds} interleaved round(s), one thread"
              + ("; QUICK mode, figures mean little" if bench.args.quick else ""))
    table = "\n".join(lines)
    print(header + "\n\n" + table)
    if raw["errors"]:
        print("\nerrors:\n" + "\n".join(f"- {e['what']}: {e['error'].splitlines()[0]}"
                                        for e in raw["errors"]))
    with open(bench.path("results.md"), "w") as f:
        f.write(header + "\n\n" + table + "\n")
    with open(bench.path("results.json"), "w") as f:
        json.dump({"command": setup.get("command", " ".join(shlex.quote(a) for a in sys.argv)),
                   "quick": bench.args.quick, "rows": rows, "raw": raw}, f, indent=2,
                  default=str)


if __name__ == "__main__":
    main()
