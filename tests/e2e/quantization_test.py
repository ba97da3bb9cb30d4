"""End-to-end tests of QuantAware and QuantPost through the real slim-train binary.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/quantization_test.py QuantAwareRun
"""
import json
import os
import signal
import subprocess
import unittest
from xml.etree import ElementTree

import h5py
import numpy as np

from e2e_test import (SLIM_TRAIN, CheckpointRuns, Workspace, checkpoint_tensors,
                      signal_rank_when)

QAT = """QuantAware:
  quantize_op_types: [conv2d, linear]
"""

# Evaluates model.pt in stock PyTorch on the whole eval set and checks that it holds only
# standard ops; prints {"loss", "top1", "foreign_ops"}.
TORCH_EVAL = """
import json, sys, torch, h5py, numpy as np
model_path, data_path = sys.argv[1], sys.argv[2]
f = h5py.File(data_path)
if 'mean' in f.attrs:  # images: normalised floats
    x = torch.from_numpy(f['inputs'][:].astype(np.float32) / 255)
    mean = torch.tensor(f.attrs['mean']).view(1, -1, 1, 1)
    std = torch.tensor(f.attrs['std']).view(1, -1, 1, 1)
    x = (x - mean) / std
else:  # byte sequences: int64 token ids
    x = torch.from_numpy(f['inputs'][:].astype(np.int64))
labels = torch.from_numpy(f['labels'][:])
m = torch.jit.load(model_path)
m.eval()
with torch.no_grad():
    logits = m(x)
ops = set()
def visit(block):
    for node in block.nodes():
        ops.add(node.kind())
        for inner in node.blocks():
            visit(inner)
visit(m.inlined_graph)
print(json.dumps({"loss": torch.nn.functional.cross_entropy(logits, labels).item(),
                  "top1": (logits.argmax(1) == labels).double().mean().item(),
                  "foreign_ops": sorted(k for k in ops
                                        if not k.startswith(("aten::", "prim::")))}))
"""


def stock_python_json(script, *args):
    """Runs `script` in Debian's python3 (stock PyTorch) with `args`; returns the JSON its
    last line prints."""
    done = subprocess.run(["/usr/bin/python3", "-c", script, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout
    return json.loads(done.stdout.splitlines()[-1])


def stock_torch_eval(model_path, data_path):
    return stock_python_json(TORCH_EVAL, model_path, data_path)


def script_torchvision(test, name):
    """Saves torchvision's `name` (10 classes, seeded) scripted by stock PyTorch into the
    test's workspace; returns the path."""
    model_path = test.path(name + ".pt")
    script = (f"import torch, torchvision\ntorch.manual_seed(0)\n"
              f"torch.jit.script(torchvision.models.{name}(num_classes=10)).save({model_path!r})")
    done = subprocess.run(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    test.assertEqual(done.returncode, 0, done.stdout)
    return model_path


def read_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def check_stock_torch_agrees(test, out_dir, data_path, relative_delta=5e-3):
    """Stock PyTorch runs out_dir/model.pt with standard ops only and gets our final eval
    loss within relative_delta. The default allows for folded BatchNorms (folding
    reassociates w*gamma/sigma, so a few activations land across a rounding step) and for
    the biases model.pt carries on the integer kernels' accumulator grid (each moved by up
    to half a step after the final evaluation)."""
    theirs = stock_torch_eval(os.path.join(out_dir, "model.pt"), data_path)
    test.assertEqual(theirs["foreign_ops"], [])
    ours = read_json(out_dir, "report.json")["final"]["eval_loss"]
    test.assertAlmostEqual(theirs["loss"], ours, delta=relative_delta * ours)
    return theirs


class QuantAwareRun(Workspace):
    def test_two_ranks_train_and_export_a_model_stock_pytorch_runs(self):
        config = self.tiny_config("qat.yaml", sections=QAT)
        out_dir = self.path("out", "qat.yaml")
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("QuantAware: 22 layer(s) quantized", out)
        report = read_json(out_dir, "report.json")
        table = read_json(out_dir, "quant_table.json")
        self.assertEqual(len(table["layers"]), 22)
        self.assertEqual(report["quantization"]["layers"], 22)
        self.assertLess(report["quantization"]["parameter_bytes_quantized"],
                        report["quantization"]["parameter_bytes_float32"] / 3)
        # Stock PyTorch runs the export with standard ops and gets our eval numbers: those of
        # the trained model up to the biases moved onto their grid, those of our own
        # evaluation of model.pt exactly.
        theirs = check_stock_torch_agrees(self, out_dir, self.path("data", "eval.h5"))
        self.assertAlmostEqual(theirs["top1"], report["final"]["eval_top1"], delta=1.5 / 96)
        model_pt = next(e for e in report["exports"] if e["file"] == "model.pt")
        self.assertAlmostEqual(theirs["top1"], model_pt["eval"]["top1"], delta=0.5 / 96)
        # Every quantized weight lies on its grid: weight / scale are integers within range.
        tensors = checkpoint_tensors(os.path.join(out_dir, "checkpoints", "ckpt-8.h5"))
        check = ("import sys, json, torch; m = torch.jit.load(sys.argv[1]); "
                 "print(json.dumps({n: p.tolist() for n, p in m.named_parameters() "
                 "if n == 'layer2.0.conv1.weight'}))")
        done = subprocess.run(["/usr/bin/python3", "-c", check, os.path.join(out_dir, "model.pt")],
                              stdout=subprocess.PIPE, text=True, timeout=120)
        weight = np.array(json.loads(done.stdout)["layer2.0.conv1.weight"])
        layer = next(l for l in table["layers"] if l["name"] == "layer2.0.conv1")
        scale = np.array(layer["weight"]["scale"]).reshape(-1, 1, 1, 1)
        levels = weight / scale
        self.assertLess(np.abs(levels - np.round(levels)).max(), 1e-3)
        self.assertLessEqual(np.abs(np.round(levels)).max(), 127)
        # Activation scales in the checkpoint are the exported ones.
        self.assertAlmostEqual(float(tensors["model/buffers/layer2.0.conv1.input_quant.scale"][0]),
                               layer["input"]["scale"][0], places=6)

    def test_bits_pact_and_per_tensor_options_train(self):
        sections = QAT + """  weight_bits: 4
  activation_bits: 6
  weight_quantize_type: abs_max
  activation_quantize_type: range_abs_max
  window_size: 3
  use_pact: true
  onnx_format: true
  not_quant_pattern: [fc, layer1]
  freeze_bn_step: 4
"""
        config = self.tiny_config("qat-options.yaml", sections=sections)
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        # layer1 is left in float: its six BatchNorms stay; those of the other 15 convs fold.
        self.assertIn("15 BatchNorm(s) fold into their convolution from step 4", out)
        out_dir = self.path("out", "qat-options.yaml")
        table = read_json(out_dir, "quant_table.json")
        names = [layer["name"] for layer in table["layers"]]
        self.assertEqual(len(names), 22 - 1 - 6)
        self.assertFalse(any(name == "fc" or name.startswith("layer1.") for name in names))
        self.assertEqual({len(layer["weight"]["scale"]) for layer in table["layers"]}, {1})
        self.assertEqual(table["layers"][0]["weight"]["quant_max"], 7)
        self.assertEqual(table["layers"][0]["input"]["quant_max"], 31)
        check_stock_torch_agrees(self, out_dir, self.path("data", "eval.h5"))
        # The export holds folded weights: folded BatchNorms are a bare per-channel bias.
        check = ("import sys, json, torch; m = torch.jit.load(sys.argv[1]); "
                 "print(json.dumps({n: t.tolist() for n, t in m.state_dict().items() "
                 "if '.bn' in n and n.endswith(('weight', 'running_mean'))}))")
        done = subprocess.run(["/usr/bin/python3", "-c", check, os.path.join(out_dir, "model.pt")],
                              stdout=subprocess.PIPE, text=True, timeout=120)
        bn = json.loads(done.stdout)
        self.assertEqual(set(bn["layer2.0.bn1.weight"]), {1.0})
        self.assertEqual(set(bn["layer3.1.bn2.running_mean"]), {0.0})
        self.assertNotEqual(set(bn["layer1.0.bn1.weight"]), {1.0})
        # One PACT alpha per quantized layer, starting at 20, in the optimizer (momentum).
        tensors = checkpoint_tensors(os.path.join(out_dir, "checkpoints", "ckpt-8.h5"))
        alphas = [n for n in tensors if n.startswith("model/parameters/") and n.endswith(".alpha")]
        self.assertEqual(len(alphas), len(names))
        self.assertTrue(all(abs(float(tensors[n][0]) - 20) < 1 for n in alphas))
        momenta = [n for n in tensors if n.startswith("optimizer/") and ".alpha" in n]
        self.assertEqual(len(momenta), len(names))


    def test_transformer_matmuls_and_linears_train_and_export(self):
        config = self.text_config("qat-text", 32, 32,
                                  "QuantAware:\n  quantize_op_types: [linear, matmul]\n")
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "qat-text")
        table = read_json(out_dir, "quant_table.json")
        matmuls = table["matmuls"]
        self.assertGreaterEqual(len(matmuls), 2)
        self.assertIn(f", {len(matmuls)} matmul(s) quantized", out)
        for matmul in matmuls:
            self.assertRegex(matmul["name"], r"\.matmul[01]$")
            self.assertGreater(matmul["input"]["scale"][0], 0)
            self.assertGreater(matmul["other"]["scale"][0], 0)
        check_stock_torch_agrees(self, out_dir, self.path("text", "eval.h5"))


class QuantAwareResume(CheckpointRuns):
    def test_two_rank_qat_resume_is_bitwise_identical(self):
        # BatchNorms freeze at step 4, before the stop: the resumed run must freeze them too.
        self.check_bitwise_resume("qat-resume", 2, "1:6:sigterm",
                                  sections=QAT + "  freeze_bn_step: 4\n")

    def test_checkpoint_of_a_plain_run_is_refused(self):
        config = self.ckpt_config("plain-then-qat.yaml")
        out_dir = self.path("out", "plain-then-qat")
        code, out, _ = self.train(config, "--output-dir", out_dir)
        self.assertEqual(code, 0, out)
        qat = self.ckpt_config("qat-after-plain.yaml", sections=QAT)
        result = self.train(qat, "--output-dir", out_dir, "--set", "TrainConfig.train_iter=20")
        self.assert_fails(result, 3, "strategies: checkpoint none, config QuantAware",
                          "layer1.0.conv1.input_quant.scale")


class QuantPostRun(Workspace):
    def ptq(self, name, algo, ranks, extra="", batch_num=6, train_data="@DATA@/train.h5"):
        config = self.write_config(name + ".yaml", f"""Global:
  model: builtin:resnet20
  train_data: {train_data}
  eval_data: @DATA@/eval.h5
  output_dir: @OUT@/{name}
QuantPost:
  ptq_algo: {algo}
  batch_num: {batch_num}
  batch_size: 16
{extra}""")
        code, out, _ = self.train(config, ranks=ranks)
        self.assertEqual(code, 0, out)
        self.assertIn("QuantPost: 22 layer(s)", out)
        self.last_output = out
        out_dir = self.path("out", name)
        table = read_json(out_dir, "quant_table.json")
        return {layer["name"]: layer["input"]["scale"][0] for layer in table["layers"]}, out_dir

    def test_scales_do_not_depend_on_the_number_of_ranks(self):
        for algo in ["abs_max", "hist"]:
            one, _ = self.ptq("ptq-1-" + algo, algo, 1)
            two, _ = self.ptq("ptq-2-" + algo, algo, 2)
            self.assertEqual(one, two, algo)

    def test_every_algorithm_calibrates_and_exports(self):
        abs_max, _ = self.ptq("ptq-abs_max", "abs_max", 2)
        for algo in ["avg", "hist", "mse", "KL"]:
            scales, out_dir = self.ptq("ptq-" + algo, algo, 2, "  bias_correct: true\n")
            for name, scale in scales.items():
                self.assertLessEqual(scale, abs_max[name] * (1 + 1e-6), (algo, name))
                self.assertGreater(scale, 0, (algo, name))
            report = read_json(out_dir, "report.json")
            self.assertEqual(report["quantization"]["ptq_algo"], algo)
            check_stock_torch_agrees(self, out_dir, self.path("data", "eval.h5"), 1e-3)
        # The first layer's input is the normalised image: calibrated on every sample, its
        # abs_max threshold is the largest |x| of the file.
        everything, _ = self.ptq("ptq-abs_max-all", "abs_max", 1, batch_num=24)
        with h5py.File(self.path("data", "train.h5")) as f:
            x = f["inputs"][()].astype(np.float32) / 255
            mean = np.array(f.attrs["mean"]).reshape(1, -1, 1, 1)
            std = np.array(f.attrs["std"]).reshape(1, -1, 1, 1)
        expected = np.abs((x - mean) / std).max() / 127
        self.assertAlmostEqual(everything["conv1"], expected, delta=1e-6 * expected)

    def test_class_sorted_file_calibrates_on_every_class(self):
        path = self.path("sorted.h5")
        with h5py.File(self.path("data", "train.h5")) as source, h5py.File(path, "w") as f:
            order = np.argsort(source["labels"][()], kind="stable")
            f["inputs"] = source["inputs"][()][order]
            f["labels"] = source["labels"][()][order]
            for key, value in source.attrs.items():
                f.attrs[key] = value
        self.ptq("ptq-sorted", "abs_max", 2, train_data=path)
        self.assertIn("calibrating on 96 samples drawn across " + path + " (10 of 10 classes)",
                      self.last_output)


    def test_ctrl_c_during_calibration_stops_at_once_with_75(self):
        config = self.write_config("ptq-interrupted.yaml", """Global:
  model: builtin:resnet20
  train_data: @DATA@/train.h5
  output_dir: @OUT@/ptq-interrupted
QuantPost:
  ptq_algo: mse
  batch_num: 24
  batch_size: 16
""")
        code, out = signal_rank_when([SLIM_TRAIN, config], 1, "QuantPost: 22 layer(s)", 0,
                                     signal.SIGINT)
        self.assertEqual(code, 75, out)
        self.assertIn("stopped by a signal outside the training loop", out)
        self.assertFalse(os.path.exists(self.path("out", "ptq-interrupted", "model.pt")), out)


class QuantSensitivity(Workspace):
    def test_two_ranks_rank_every_layer_and_write_table_json_and_png(self):
        config = self.tiny_config("sens.yaml", sections="QuantPost:\n  ptq_algo: abs_max\n"
                                  "  weight_bits: 4\n  activation_bits: 4\n"
                                  "  batch_num: 4\n  batch_size: 16\n")
        out_dir = self.path("out", "sens.yaml")
        code, out, _ = self.train(config, "--analyze", "quant", ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("| 1 | ", out)
        result = read_json(out_dir, "sensitivity.json")
        layers = result["layers"]
        self.assertEqual(len(layers), 22)
        drops = [layer["top1_drop_points"] for layer in layers]
        self.assertEqual(drops, sorted(drops, reverse=True))
        for layer in layers:
            self.assertAlmostEqual(layer["top1_drop_points"],
                                   (result["float"]["top1"] - layer["top1"]) * 100, places=9)
        # The suggestion is a prefix of the ranking.
        suggested = result["suggested_not_quant_pattern"]
        self.assertEqual(suggested, [layer["layer"] for layer in layers[:len(suggested)]])
        # The chart as PNG and SVG; the SVG's description lists every layer's bar.
        with open(os.path.join(out_dir, "sensitivity.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        svg = ElementTree.parse(os.path.join(out_dir, "sensitivity.svg")).getroot()
        description = svg.find("{http://www.w3.org/2000/svg}desc").text
        for layer in layers:
            self.assertIn(layer["layer"] + ":", description)
        with open(os.path.join(out_dir, "sensitivity.md")) as f:
            self.assertIn("# Quantization sensitivity", f.read())
        # No model is written, and the float top-1 is the one a QuantPost run measures.
        self.assertFalse(os.path.exists(os.path.join(out_dir, "model.pt")))
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        report = read_json(out_dir, "report.json")
        self.assertEqual(result["float"]["top1"], report["float"]["eval_top1"])
        self.assertEqual(result["all_quantized"]["top1"], report["final"]["eval_top1"])

    def test_bad_requests_are_refused(self):
        plain = self.tiny_config("sens-plain.yaml")
        self.assert_fails(self.train(plain, "--analyze", "quant"), 2,
                          "--analyze quant needs a QuantPost or QuantAware section")
        self.assert_fails(self.train(plain, "--analyze", "channels"), 2,
                          "the analyses available are 'quant'")
        no_eval = self.tiny_config("sens-no-eval.yaml", sections=QAT)
        self.assert_fails(self.train(no_eval, "--analyze", "quant", "--set", "Global.eval_data=''"),
                          2, "--analyze quant measures accuracy on Global.eval_data")


class QuantBadInput(Workspace):
    def config_with(self, name, section):
        return self.tiny_config(name, sections=section)

    def test_unknown_op_type_is_named_with_a_suggestion(self):
        config = self.config_with("bad-op.yaml", "QuantAware:\n  quantize_op_types: [conv2dd]\n")
        self.assert_fails(self.train(config), 2, "QuantAware.quantize_op_types",
                          "did you mean 'conv2d'")

    def test_bits_out_of_range(self):
        config = self.config_with("bad-bits.yaml", "QuantAware:\n  weight_bits: 17\n")
        self.assert_fails(self.train(config), 2, "QuantAware.weight_bits")

    def test_model_without_quantizable_layer(self):
        config = self.config_with("no-layer.yaml",
                                  "QuantAware:\n  quantize_op_types: [depthwise_conv2d]\n")
        self.assert_fails(self.train(config), 3, "no layer to quantize", "layer1.0.conv1 (conv2d)")

    def test_pattern_matching_nothing_warns_with_the_module_paths(self):
        config = self.config_with("no-match.yaml",
                                  QAT + "  not_quant_pattern: [layer9]\n")
        code, out, _ = self.train(config, "--dry-run")
        self.assertEqual(code, 0, out)
        self.assertIn("not_quant_pattern 'layer9' matches no module", out)
        self.assertIn("layer3.2.conv2", out)
        self.assertIn("strategies: QuantAware", out)

    def test_quant_aware_and_quant_post_together(self):
        config = self.config_with("both.yaml", QAT + "QuantPost:\n  ptq_algo: KL\n")
        self.assert_fails(self.train(config), 2, "QuantAware and QuantPost are alternatives")


class RealArchitectures(Workspace):
    """torchvision models nobody here wrote: script, quantize-aware train, export, reload."""

    def check_torchvision(self, name, layers, adds, batch_norms):
        model_path = script_torchvision(self, name)
        config = self.write_config(name + ".yaml", f"""Global:
  model: {model_path}
  train_data: @DATA@/train.h5
  eval_data: @DATA@/eval.h5
  batch_size: 8
  output_dir: @OUT@/{name}
TrainConfig:
  train_iter: 3
  learning_rate: 0.01
QuantAware:
  is_full_quantize: true
  freeze_bn_step: 1
""")
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        # is_full_quantize takes the residual adds too: one per block class instance, also
        # where a block without a residual connection never runs its add (mobilenet_v2).
        self.assertIn(f"QuantAware: {layers} layer(s), {adds} add(s) quantized", out)
        # Every convolution of these models feeds a BatchNorm; stock PyTorch's loss on the
        # folded export below equals ours.
        self.assertIn(f"QuantAware: {batch_norms} BatchNorm(s) fold", out)
        out_dir = self.path("out", name)
        check_stock_torch_agrees(self, out_dir, self.path("data", "eval.h5"))

    def test_torchvision_resnet18(self):
        self.check_torchvision("resnet18", 21, 8, 20)

    def test_torchvision_mobilenet_v2(self):
        self.check_torchvision("mobilenet_v2", 53, 17, 52)


if __name__ == "__main__":
    unittest.main()
