"""End-to-end tests of Global.export: integer TorchScript and ONNX files, checked by the
runtimes that load them (stock PyTorch, ONNX Runtime through tools/onnx_run.mjs, and
python3-onnx's checker), never only by our own code.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/export_test.py ExportRun
"""
import json
import os
import subprocess
import unittest

import h5py
import numpy as np

from e2e_test import SLIM_DATA, SOURCE_DIR, Workspace, run

ONNX_RUNNER = os.path.join(SOURCE_DIR, "tools", "onnx_run.mjs")

# Runs a TorchScript file in stock PyTorch on the normalised inputs of an HDF5 file; prints
# its logits' path (.npy) and the op kinds of its graph.
TORCH_RUN = """
import json, sys, torch, h5py, numpy as np
model_path, data_path, out_path, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.backends.quantized.engine = 'onednn'
f = h5py.File(data_path)
x = torch.from_numpy(f['inputs'][:count].astype(np.float32) / 255)
x = (x - torch.tensor(f.attrs['mean']).view(1, -1, 1, 1)) / torch.tensor(f.attrs['std']).view(1, -1, 1, 1)
np.save(out_path + '.input.npy', x.numpy())
m = torch.jit.load(model_path)
m.eval()
with torch.no_grad():
    logits = torch.cat([m(x[i:i + 256]) for i in range(0, len(x), 256)])
np.save(out_path, logits.numpy())
ops = set()
def visit(block):
    for node in block.nodes():
        ops.add(node.kind())
        for inner in node.blocks():
            visit(inner)
visit(m.inlined_graph)
print(json.dumps(sorted(ops)))
"""

# Checks an ONNX file with python3-onnx; prints its opset, op types and the axes of its
# per-channel DequantizeLinear nodes.
ONNX_CHECK = """
import json, sys, onnx
from onnx import numpy_helper
model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
axes = []
for n in model.graph.node:
    if n.op_type == 'DequantizeLinear' and n.input[0] in init and init[n.input[0]].ndim > 1:
        scale = init[n.input[1]]
        axes.append(next((a.i for a in n.attribute if a.name == 'axis'), 1) if scale.ndim == 1 else None)
print(json.dumps({"opset": model.opset_import[0].version,
                  "ops": sorted({n.op_type for n in model.graph.node}),
                  "weight_axes": axes}))
"""


# A scripted model with an operator ONNX has no counterpart for, in the second block of an
# nn.ModuleList, as nn.TransformerEncoder holds its layers.
ODD_MODEL = """
import sys, torch
from torch import nn

class Odd(nn.Module):
    def forward(self, x):
        return torch.erfinv(x.clamp(-0.5, 0.5))

class Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.ReLU(), Odd()])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = Body()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))

torch.jit.script(Model()).save(sys.argv[1])
"""


def python(script, *args):
    done = subprocess.run(["/usr/bin/python3", "-c", script, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert done.returncode == 0, done.stdout
    return json.loads(done.stdout.splitlines()[-1])


def read_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def onnx_runtime_logits(onnx_path, inputs):
    """Runs the ONNX file in ONNX Runtime (npm onnxruntime-node) on `inputs` (token ids
    stay int64, anything else goes as float32); returns its logits."""
    input_path, output_path = onnx_path + ".in", onnx_path + ".out"
    inputs.astype(np.int64 if inputs.dtype.kind in "iu" else np.float32).tofile(input_path)
    code, out, _ = run(["node", ONNX_RUNNER, "run", onnx_path, input_path, output_path,
                        "--shape", ",".join(map(str, inputs.shape))])
    assert code == 0, out
    shape = json.loads(out.strip().splitlines()[-1])["output_shape"]
    return np.fromfile(output_path, dtype=np.float32).reshape(shape)


class ExportWorkspace(Workspace):
    def stock_torch_logits(self, model_path, data_path, count):
        out = model_path + ".logits.npy"
        ops = python(TORCH_RUN, model_path, data_path, out, str(count))
        return np.load(out), ops

    def check_exports(self, out_dir, data_path, count):
        """The three files of a quantized run: stock PyTorch runs model.pt and model_int8.pt
        (integer kernels, no float convolution left), ONNX Runtime runs model.onnx (QDQ,
        opset >= 13, per-channel weights on axis 0). Returns the logits of each file."""
        reference, _ = self.stock_torch_logits(os.path.join(out_dir, "model.pt"), data_path, count)
        int8, ops = self.stock_torch_logits(os.path.join(out_dir, "model_int8.pt"), data_path,
                                            count)
        self.assertIn("quantized::conv2d", " ".join(ops))
        self.assertNotIn("aten::conv2d", ops)
        onnx_path = os.path.join(out_dir, "model.onnx")
        facts = python(ONNX_CHECK, onnx_path)
        self.assertGreaterEqual(facts["opset"], 13)
        self.assertIn("QuantizeLinear", facts["ops"])
        self.assertIn("DequantizeLinear", facts["ops"])
        self.assertTrue(facts["weight_axes"])
        self.assertEqual(set(facts["weight_axes"]), {0})
        onnx = onnx_runtime_logits(onnx_path, np.load(
            os.path.join(out_dir, "model.pt.logits.npy.input.npy")))
        return {"model.pt": reference, "model_int8.pt": int8, "model.onnx": onnx}


class ExportRun(ExportWorkspace):
    """Fashion-MNIST (the Debian package): a briefly trained ResNet-20, quantized after
    training, exported in every format and checked by the runtimes that load them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        full = cls.path("fmnist-full")
        code, out, _ = run([SLIM_DATA, "fashion-mnist", "--out", full])
        assert code == 0, out
        for split, count in [("train", 8192), ("eval", 2000)]:
            with h5py.File(os.path.join(full, split + ".h5")) as source, \
                    h5py.File(cls.path("fmnist-" + split + ".h5"), "w") as subset:
                subset["inputs"] = source["inputs"][:count]
                subset["labels"] = source["labels"][:count]
                for key, value in source.attrs.items():
                    subset.attrs[key] = value

    def fmnist_config(self, name, sections, model="builtin:resnet20", extra_global=""):
        return self.write_config(name + ".yaml", f"""Global:
  model: {model}
  train_data: @ROOT@/fmnist-train.h5
  eval_data: @ROOT@/fmnist-eval.h5
  batch_size: 64
  output_dir: @OUT@/{name}
  augment: {{random_crop_padding: 0, horizontal_flip: false}}
{extra_global}{sections}""")

    def test_trained_model_quantized_after_training_agrees_in_every_runtime(self):
        train = self.fmnist_config("float", """TrainConfig:
  train_iter: 120
  learning_rate: {type: LinearWarmup, warmup_steps: 20, start_lr: 0.01, learning_rate: 0.05}
""")
        code, out, _ = self.train(train, ranks=2)
        self.assertEqual(code, 0, out)
        ptq = self.fmnist_config("ptq", """QuantPost:
  algo: KL
  batch_nums: 8
""", model="@OUT@/float/model.pt",
            extra_global="  export: [torchscript, torchscript_int8, onnx]\n")
        code, out, _ = self.train(ptq, ranks=2)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "ptq")
        report = read_json(out_dir, "report.json")
        files = {entry["file"]: entry for entry in report["exports"]}
        self.assertEqual(sorted(files), ["model.onnx", "model.pt", "model_int8.pt"])
        self.assertIn(report["torchscript_int8"]["quantized_engine"], ["onednn", "fbgemm", "x86"])
        input_macs = report["input_model"]["macs"]
        self.assertGreater(input_macs, 10**6)
        for entry in files.values():
            # The same network: the MACs counted from each graph are the input model's.
            self.assertEqual(entry["macs"], input_macs)
            self.assertGreater(entry["latency"]["batch_1"]["median_ms"], 0)
            self.assertGreater(entry["latency"]["batch_64"]["median_ms"], 0)
            self.assertGreaterEqual(entry["eval"]["top1_agreement_with_model_pt"], 0.985)
            self.assertEqual(entry["eval"]["samples"], 2000)
        self.assertLess(files["model_int8.pt"]["file_bytes"], files["model.pt"]["file_bytes"] / 2.5)
        self.assertLess(files["model.onnx"]["file_bytes"], files["model.pt"]["file_bytes"] / 2.5)
        # The model trained far enough for the agreement to mean something.
        self.assertGreater(report["final"]["eval_top1"], 0.6)
        logits = self.check_exports(out_dir, self.path("fmnist-eval.h5"), 2000)
        for name in ["model_int8.pt", "model.onnx"]:
            agreement = (logits[name].argmax(1) == logits["model.pt"].argmax(1)).mean()
            self.assertGreaterEqual(agreement, 0.985, name)
        with open(os.path.join(out_dir, "tradeoff.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertIn("model_int8.pt: top1", out)
        self.check_quantized_output()
        self.check_unsigned_activations()

    def check_quantized_output(self):
        """Global.export_quantized_output: the logits go onto a calibrated 8-bit grid and the
        classifier runs as quantized::linear, in stock PyTorch and in ONNX Runtime."""
        ptq = self.fmnist_config("ptq-output", """QuantPost:
  algo: KL
  batch_nums: 8
""", model="@OUT@/float/model.pt",
            extra_global="  export: [torchscript, torchscript_int8, onnx]\n"
                         "  export_quantized_output: true\n")
        code, out, _ = self.train(ptq, ranks=2)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "ptq-output")
        report = read_json(out_dir, "report.json")
        self.assertEqual(report["torchscript_int8"]["quantized_outputs"], 1)
        self.assertEqual(report["torchscript_int8"]["float_layers"], [])
        logits = self.check_exports(out_dir, self.path("fmnist-eval.h5"), 2000)
        _, ops = self.stock_torch_logits(os.path.join(out_dir, "model_int8.pt"),
                                         self.path("fmnist-eval.h5"), 16)
        self.assertIn("quantized::linear", ops)
        self.assertNotIn("aten::linear", ops)
        for name in ["model_int8.pt", "model.onnx"]:
            # The logits lie on one grid of 256 levels.
            self.assertLessEqual(len(np.unique(logits[name])), 256, name)
            agreement = (logits[name].argmax(1) == logits["model.pt"].argmax(1)).mean()
            self.assertGreaterEqual(agreement, 0.98, name)

    def check_unsigned_activations(self):
        """QuantPost.unsigned_activations: the layers after a ReLU get the unsigned grid,
        the first layer (normalised images, negative too) the symmetric one, and both
        runtimes agree with model.pt as on the symmetric grid."""
        ptq = self.fmnist_config("ptq-unsigned", """QuantPost:
  algo: KL
  batch_nums: 8
  unsigned_activations: true
""", model="@OUT@/float/model.pt",
            extra_global="  export: [torchscript, torchscript_int8, onnx]\n")
        code, out, _ = self.train(ptq, ranks=2)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "ptq-unsigned")
        grids = {layer["name"]: (layer["input"]["quant_min"], layer["input"]["quant_max"])
                 for layer in read_json(out_dir, "quant_table.json")["layers"]}
        self.assertEqual(grids.pop("conv1"), (-127, 127))
        self.assertEqual(set(grids.values()), {(0, 255)})
        logits = self.check_exports(out_dir, self.path("fmnist-eval.h5"), 2000)
        for name in ["model_int8.pt", "model.onnx"]:
            agreement = (logits[name].argmax(1) == logits["model.pt"].argmax(1)).mean()
            self.assertGreaterEqual(agreement, 0.985, name)

    def qat_int8_error(self, name, op_types):
        """QAT on 2 ranks quantizing `op_types`, exported to model_int8.pt: (the relative
        L2 distance of its logits to model.pt's per eval sample, the run's log)."""
        config = self.fmnist_config(name, f"""QuantAware:
  quantize_op_types: [{op_types}]
TrainConfig:
  train_iter: 60
  learning_rate: 0.05
""", extra_global="  export: [torchscript, torchscript_int8]\n")
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        data = self.path("fmnist-eval.h5")
        out_dir = self.path("out", name)
        reference, _ = self.stock_torch_logits(os.path.join(out_dir, "model.pt"), data, 2000)
        int8, ops = self.stock_torch_logits(os.path.join(out_dir, "model_int8.pt"), data, 2000)
        self.assertIn("quantized::add_relu", ops)
        error = np.linalg.norm(int8 - reference, axis=1) / np.linalg.norm(reference, axis=1)
        return error, out

    def test_quantized_residual_adds_make_the_integer_model_round_as_model_pt(self):
        """With elementwise_add the evaluated model rounds each residual add's operands and
        sum where the integer kernels do, with their grids: model_int8.pt then computes
        what model.pt computes, but for rounding ties that the kernels' integer
        requantization breaks the other way."""
        error, out = self.qat_int8_error("qat-adds", "conv2d, linear, elementwise_add")
        self.assertIn("QuantAware: 22 layer(s), 9 add(s) quantized", out)
        adds = read_json(self.path("out", "qat-adds"), "quant_table.json")["adds"]
        self.assertEqual(len(adds), 9)
        for add in adds:
            self.assertRegex(add["name"], r"^layer\d\.\d\.add0$")
            for role in ["input", "other", "output"]:
                self.assertGreater(add[role]["scale"][0], 0, add["name"] + " " + role)
        layers_only, _ = self.qat_int8_error("qat-layers", "conv2d, linear")
        self.assertLess(np.median(error), 0.1 * np.median(layers_only))

    def test_float_model_round_trips_to_onnx(self):
        config = self.fmnist_config("float-onnx", """TrainConfig:
  train_iter: 2
  learning_rate: 0.01
""", extra_global="  export: [torchscript, onnx]\n")
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "float-onnx")
        reference, _ = self.stock_torch_logits(os.path.join(out_dir, "model.pt"),
                                               self.path("fmnist-eval.h5"), 256)
        onnx = onnx_runtime_logits(os.path.join(out_dir, "model.onnx"), np.load(
            os.path.join(out_dir, "model.pt.logits.npy.input.npy")))
        np.testing.assert_allclose(onnx, reference, rtol=1e-3, atol=1e-4)
        self.assertEqual(python(ONNX_CHECK, os.path.join(out_dir, "model.onnx"))["weight_axes"], [])


class ExportArchitectures(ExportWorkspace):
    """torchvision's resnet18 and mobilenet_v2 (scripted here with python3-torch, BatchNorm
    statistics taken from the data), quantized after training and exported. With random
    weights top-1 is mostly ties, so the check is that each export departs from model.pt
    by no more than model.pt departs from the float model: the export adds no error of
    its own beyond the quantization."""

    def check_torchvision(self, name):
        model_path = self.path(name + ".pt")
        script = f"""
import torch, torchvision, h5py, numpy as np
torch.manual_seed(0)
f = h5py.File({self.path("data", "train.h5")!r})
x = torch.from_numpy(f['inputs'][:256].astype(np.float32) / 255)
x = (x - torch.tensor(f.attrs['mean']).view(1, -1, 1, 1)) / torch.tensor(f.attrs['std']).view(1, -1, 1, 1)
m = torchvision.models.{name}(num_classes=10)
for module in m.modules():
    if isinstance(module, torch.nn.BatchNorm2d):
        module.momentum = None
m.train()
with torch.no_grad():
    for i in range(0, 256, 32):
        m(x[i:i + 32])
m.eval()
torch.jit.script(m).save({model_path!r})
"""
        done = subprocess.run(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stdout)
        config = self.write_config(name + ".yaml", f"""Global:
  model: {model_path}
  train_data: @DATA@/train.h5
  eval_data: @DATA@/eval.h5
  batch_size: 16
  output_dir: @OUT@/{name}
  export: [torchscript, torchscript_int8, onnx]
QuantPost:
  algo: abs_max
  batch_nums: 4
  is_full_quantize: true
""")
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        data = self.path("data", "eval.h5")
        logits = self.check_exports(self.path("out", name), data, 96)
        float_logits, _ = self.stock_torch_logits(model_path, data, 96)
        quantization_error = np.median(np.linalg.norm(logits["model.pt"] - float_logits, axis=1))
        for export in ["model_int8.pt", "model.onnx"]:
            export_error = np.median(np.linalg.norm(logits[export] - logits["model.pt"], axis=1))
            self.assertLessEqual(export_error, 1.5 * quantization_error, export)

    def test_torchvision_resnet18(self):
        self.check_torchvision("resnet18")

    def test_torchvision_mobilenet_v2(self):
        self.check_torchvision("mobilenet_v2")


class ExportBadInput(Workspace):
    """Formats that cannot be written are refused at start-up, before any training."""

    def test_unknown_format_lists_the_valid_ones(self):
        config = self.tiny_config("unknown.yaml", extra_global="  export: [tensorrt]\n")
        self.assert_fails(self.train(config), 2, "Global.export", "tensorrt",
                          "torchscript, torchscript_int8, onnx")

    def test_integer_export_of_a_float_model_is_refused(self):
        config = self.tiny_config("float-int8.yaml", extra_global="  export: [torchscript_int8]\n")
        self.assert_fails(self.train(config), 2, "torchscript_int8 needs a quantized model")
        self.assertFalse(os.path.exists(self.path("out", "float-int8.yaml", "model.pt")))

    def test_quantized_output_of_a_float_last_layer_is_refused(self):
        config = self.tiny_config(
            "float-logits.yaml", sections="QuantPost:\n  quantize_op_types: [conv2d]\n",
            extra_global="  export: [torchscript, torchscript_int8]\n"
                         "  export_quantized_output: true\n")
        self.assert_fails(self.train(config), 2, "Global.export_quantized_output: the model "
                          "returns no output of a quantized layer",
                          "quantize_op_types")
        self.assertFalse(os.path.exists(self.path("out", "float-logits.yaml", "model.pt")))

    def test_layer_onnx_cannot_express_is_named(self):
        model = self.path("odd.pt")
        script = self.path("odd.py")
        with open(script, "w") as f:
            f.write(ODD_MODEL)  # scripting reads the classes' source from a file
        code, out, _ = run(["/usr/bin/python3", script, model])
        self.assertEqual(code, 0, out)
        config = self.tiny_config("odd-onnx.yaml", extra_global="  export: [onnx]\n")
        self.assert_fails(self.train(config, "--set", "Global.model=" + model), 2,
                          "onnx cannot express", "aten::erfinv in layer 'body.blocks.1'")
        self.assertFalse(os.path.exists(self.path("out", "odd-onnx.yaml", "model.pt")))


if __name__ == "__main__":
    unittest.main()
