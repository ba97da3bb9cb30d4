"""The anchor a PyTorch user would run instead of slim-train's quantization: PyTorch's own
tools (torch.ao.quantization) on the same models and data.

  ptq       post-training static quantization of a TorchScript model file with graph-mode
            quantize_jit: int8 per-channel symmetric weights, uint8 per-tensor activations,
            one qconfig per activation observer, calibrated on the first batches of the
            training file; reports top-1 on the eval file for the float and each quantized
            model, and the calibration time.
  qat-step  eager-mode quantization-aware training overhead: median training-step time of a
            CIFAR ResNet-20 before and after prepare_qat.

Prints one JSON object on stdout; progress goes to stderr."""
import argparse
import collections
import json
import os
import statistics
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.ao.quantization import (DeQuantStub, HistogramObserver, MinMaxObserver,
                                   PerChannelMinMaxObserver, QConfig, QuantStub,
                                   fuse_modules_qat, get_default_qat_qconfig, prepare_qat,
                                   quantize_jit)

ACTIVATION_OBSERVERS = {"minmax": MinMaxObserver, "histogram": HistogramObserver}


def log(message):
    """Progress line on stderr (stdout carries only the JSON result)."""
    print(f"pytorch_quant: {message}", file=sys.stderr, flush=True)


def batches(path, batch, limit=None):
    """Yields (inputs, labels) of an HDF5 split in file order, `batch` samples at a time, over
    the first `limit` samples (all when None). Images are normalised as docs/data-format.md
    says; byte text becomes int64 tokens."""
    with h5py.File(path, "r") as f:
        inputs, labels = f["inputs"], f["labels"]
        count = len(labels) if limit is None else min(limit, len(labels))
        if inputs.ndim == 4:
            shape = (1, -1, 1, 1)
            mean = torch.from_numpy(np.asarray(f.attrs["mean"], np.float32)).view(shape)
            std = torch.from_numpy(np.asarray(f.attrs["std"], np.float32)).view(shape)
            scale = 255.0 if inputs.dtype == np.uint8 else 1.0
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            x = torch.from_numpy(inputs[start:stop])
            x = (x.float() / scale - mean) / std if inputs.ndim == 4 else x.long()
            yield x, torch.from_numpy(labels[start:stop])


def top1(model, path, batch):
    """Top-1 accuracy of `model` over the whole split at `path`."""
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in batches(path, batch):
            correct += (model(inputs).argmax(1) == labels).sum().item()
            total += len(labels)
    return correct / total


def qconfig(observer, reduce_range=True):
    """fbgemm's default static qconfig with activation observer `observer`: uint8 per-tensor
    affine activations in 0..127 (reduce_range, spelled as PyTorch's default_observer does),
    int8 per-channel symmetric weights. With reduce_range False the activations take the
    whole 0..255, as onednn's default qconfig has them."""
    activation = ACTIVATION_OBSERVERS[observer].with_args(
        dtype=torch.quint8, qscheme=torch.per_tensor_affine, quant_min=0,
        quant_max=127 if reduce_range else 255)
    weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                qscheme=torch.per_channel_symmetric)
    return QConfig(activation=activation, weight=weight)


def quantized_ops(model):
    """Count of each quantized:: op in the forward graph of `model`, nested blocks included."""
    counts = collections.Counter()
    pending = [model.graph]
    while pending:
        for node in pending.pop().nodes():
            if node.kind().startswith("quantized::"):
                counts[node.kind()] += 1
            pending.extend(node.blocks())
    return dict(sorted(counts.items()))


def quantize(path, observer, calibration, reduce_range=True):
    """(quantized model, calibration seconds): quantize_jit of the model at `path` (a
    TorchScript file, or a ScriptModule itself), its observers fed the (inputs, labels)
    batches `calibration`, with qconfig(observer, reduce_range). The model is put in eval
    mode first: quantize_jit calls eval() only after calibrating, and a torch.batch_norm call
    that is not folded into its conv would otherwise take the calibration batches'
    statistics."""
    model = (torch.jit.load(path) if isinstance(path, str) else path).eval()
    seconds = []

    def calibrate(prepared, data):
        start = time.perf_counter()
        with torch.no_grad():
            for inputs, _ in data:
                prepared(inputs)
        seconds.append(time.perf_counter() - start)

    quantized = quantize_jit(model, {"": qconfig(observer, reduce_range)}, calibrate,
                             [calibration])
    return quantized, seconds[0]


def default_engine():
    """fbgemm, the x86 server backend, where this PyTorch build has it; onednn otherwise
    (Debian's python3-torch is built without fbgemm)."""
    return "fbgemm" if "fbgemm" in torch.backends.quantized.supported_engines else "onednn"


def ptq(args):
    """Float and post-training-quantized top-1 of args.model, one quantized model per
    observer."""
    engine = args.engine or default_engine()
    if engine not in torch.backends.quantized.supported_engines:
        sys.exit(f"pytorch_quant: quantized engine {engine} is not in this PyTorch build; "
                 f"supported: {', '.join(torch.backends.quantized.supported_engines)}")
    torch.backends.quantized.engine = engine
    observers = args.observers.split(",")
    unknown = [name for name in observers if name not in ACTIVATION_OBSERVERS]
    if unknown:
        sys.exit(f"pytorch_quant: unknown observer {', '.join(unknown)}; "
                 f"valid: {', '.join(ACTIVATION_OBSERVERS)}")

    float_model = torch.jit.load(args.model).eval()
    result = {"bench": "pytorch_ptq", "engine": engine,
              "float_top1": top1(float_model, args.eval_data, args.batch)}
    log(f"float top-1 {result['float_top1']:.4f}")
    calibration = list(batches(args.train_data, args.batch, args.calib_batches * args.batch))
    for observer in observers:
        try:
            model, calib_s = quantize(args.model, observer, calibration)
            accuracy = top1(model, args.eval_data, args.batch)
        except RuntimeError as error:
            sys.exit(f"pytorch_quant: quantize_jit cannot quantize {args.model} ({observer} "
                     f"observer), or its quantized model fails to run: {error}")
        ops = quantized_ops(model)
        if not ops:
            sys.exit(f"pytorch_quant: quantize_jit left {args.model} without quantized ops")
        if "quantized::batch_norm" in ops:
            log("batch_norm was not folded into the convolutions (it is not an nn.BatchNorm2d "
                "after an nn.Conv2d); quantize_jit quantizes its parameters to uint8")
        result[observer] = {"top1": accuracy, "calib_s": calib_s, "ops": ops}
        log(f"{observer}: top-1 {accuracy:.4f}, calibration {calib_s:.2f} s")
    print(json.dumps(result))


class BasicBlock(nn.Module):
    """ResNet basic block, eager-mode quantizable: conv1/bn1/relu1, conv2/bn2, plus the
    shortcut (downsample.0 1x1 conv, downsample.1 BN when the shape changes), then ReLU,
    the add and ReLU through FloatFunctional."""

    def __init__(self, channels_in, channels_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.downsample = None
        if stride != 1 or channels_in != channels_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                nn.BatchNorm2d(channels_out))
        self.add_relu = nn.quantized.FloatFunctional()

    def forward(self, x):
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.add_relu.add_relu(out, shortcut)

    def fuse(self):
        """Fuses conv+bn(+relu) for QAT; the module must be in training mode."""
        fuse_modules_qat(self, [["conv1", "bn1", "relu1"], ["conv2", "bn2"]], inplace=True)
        if self.downsample is not None:
            fuse_modules_qat(self.downsample, [["0", "1"]], inplace=True)


class ResNet20(nn.Module):
    """CIFAR ResNet-20 of He et al. 2016: conv1/bn1/relu (16 channels), layer1..layer3 of
    three basic blocks of widths 16/32/64 (stride 2 entering layer2 and layer3), global
    average pool, fc; QuantStub/DeQuantStub at the ends. Parameter and buffer names are those
    of slim-train's builtin:resnet20, so its state_dict loads here (`in_channels` 1 for
    Fashion-MNIST's grey images)."""

    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        self.quant = QuantStub()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        layers, channels_in = [], 16
        for stage in range(3):
            width = 16 << stage
            blocks = [BasicBlock(channels_in if block == 0 else width, width,
                                 2 if stage > 0 and block == 0 else 1) for block in range(3)]
            layers.append(nn.Sequential(*blocks))
            channels_in = width
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        self.dequant = DeQuantStub()

    def forward(self, x):
        """Logits [batch, num_classes] of images [batch, in_channels, H, W]."""
        x = self.relu(self.bn1(self.conv1(self.quant(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))

    def fuse(self):
        """Fuses every conv+bn(+relu) for QAT, as PyTorch's QAT tutorial does."""
        fuse_modules_qat(self, [["conv1", "bn1", "relu"]], inplace=True)
        for layer in (self.layer1, self.layer2, self.layer3):
            for block in layer:
                block.fuse()


def median_step_s(model, inputs, labels, warmup, steps):
    """Median seconds of a training step (forward, cross-entropy, backward, SGD momentum
    step) over `steps` steps after `warmup` untimed ones."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def qat_step(args):
    """Median training-step time of ResNet-20 in float and after fuse + prepare_qat."""
    torch.manual_seed(0)
    inputs = torch.randn(args.batch, 3, 32, 32)
    labels = torch.randint(0, 10, (args.batch,))
    fp32_s = median_step_s(ResNet20(), inputs, labels, args.warmup, args.steps)
    log(f"fp32 step {fp32_s * 1e3:.1f} ms")
    model = ResNet20().train()
    model.fuse()
    model.qconfig = get_default_qat_qconfig("fbgemm")
    prepare_qat(model, inplace=True)
    qat_s = median_step_s(model, inputs, labels, args.warmup, args.steps)
    log(f"QAT step {qat_s * 1e3:.1f} ms")
    print(json.dumps({"bench": "pytorch_qat_step", "batch": args.batch,
                      "threads": torch.get_num_threads(), "fp32_step_s": fp32_s,
                      "qat_step_s": qat_s, "ratio": qat_s / fp32_s}))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch intra-op threads (default: all cores)")
    commands = parser.add_subparsers(dest="command", required=True)

    ptq_parser = commands.add_parser("ptq", parents=[common],
                                     help="post-training static quantization (quantize_jit)")
    ptq_parser.add_argument("--model", required=True, help="TorchScript model file")
    ptq_parser.add_argument("--train-data", required=True, help="HDF5 split to calibrate on")
    ptq_parser.add_argument("--eval-data", required=True, help="HDF5 split to score top-1 on")
    ptq_parser.add_argument("--calib-batches", type=int, default=10)
    ptq_parser.add_argument("--batch", type=int, default=64)
    ptq_parser.add_argument("--observers", default="minmax,histogram",
                            help=f"comma-separated, of: {', '.join(ACTIVATION_OBSERVERS)}")
    ptq_parser.add_argument("--engine", help="quantized backend (default: fbgemm where the "
                            "build has it, else onednn)")
    ptq_parser.set_defaults(run=ptq)

    qat_parser = commands.add_parser("qat-step", parents=[common],
                                     help="eager-mode QAT step-time overhead")
    qat_parser.add_argument("--batch", type=int, default=64)
    qat_parser.add_argument("--steps", type=int, default=20)
    qat_parser.add_argument("--warmup", type=int, default=5)
    qat_parser.set_defaults(run=qat_step)

    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.run(args)


if __name__ == "__main__":
    main()
