"""End-to-end tests of TransformerPrune through the real binary: heads and feed-forward
units removed from PyTorch's own scripted nn.TransformerEncoder give a model that stock
PyTorch loads and that computes what the input model computes with them zeroed; the
builtin transformer prunes with distillation and quantization-aware training in one run
and with loss-based importance over two ranks; a pruned run resumes bit for bit; models
and configs it cannot prune are refused. Quantization-aware training reaches the output
projection and the attention products of PyTorch's nn.MultiheadAttention. Float and
quantized encoders, PyTorch's and the builtin one, export to ONNX files that ONNX Runtime
runs at any batch size, computing what stock PyTorch computes with model.pt.

    SLIM_BUILD_DIR=build python3 tests/e2e/transformer_prune_test.py -v TransformerPruneRun
"""
import unittest

import numpy as np

from e2e_test import CheckpointRuns, loss_lines, run
from export_test import ONNX_CHECK, onnx_runtime_logits, python
from quantization_test import read_json, stock_python_json
from recompute_test import TRANSFORMER

HALF = "TransformerPrune: {pruned_ratio: 0.5}\n"

# Loads the input model and model.pt in stock PyTorch, zeroes in the input model the heads
# and units report.json says were removed, and prints the pruned shapes and the largest
# output difference in evaluation mode (where the input model takes PyTorch's fused path).
COMPARE = """
import json, sys, torch
original, pruned = torch.jit.load(sys.argv[1]), torch.jit.load(sys.argv[2])
report = json.load(open(sys.argv[3]))["transformer_prune"]
modules = dict(original.named_modules())
with torch.no_grad():
    for layer in report["layers"]:
        attention, name = modules[layer["attention"]], layer["layer"]
        heads, dim = attention.num_heads, attention.head_dim
        for head in set(range(heads)) - set(layer["kept_heads"]):
            attention.in_proj_weight.view(3, heads, dim, -1)[:, head] = 0
            attention.in_proj_bias.view(3, heads, dim)[:, head] = 0
            attention.out_proj.weight.view(-1, heads, dim)[:, head] = 0
        encoder = modules[name]
        for unit in set(range(layer["units_before"])) - set(layer["kept_units"]):
            encoder.linear1.weight[unit] = 0
            encoder.linear1.bias[unit] = 0
            encoder.linear2.weight[:, unit] = 0
    original.eval(), pruned.eval()
    x = torch.randn(5, 3, 32, 32)
    difference = (original(x) - pruned(x)).abs().max().item()
layers = dict(pruned.named_modules())
print(json.dumps({"difference": difference,
                  "num_heads": [layers[l["attention"]].num_heads for l in report["layers"]],
                  "in_proj": [list(layers[l["attention"]].in_proj_weight.shape) for l in report["layers"]],
                  "linear1": [list(layers[l["layer"]].linear1.weight.shape) for l in report["layers"]]}))
"""


class PytorchEncoderRuns(CheckpointRuns):
    def pytorch_encoder(self):
        """PyTorch's nn.TransformerEncoder (2 layers, width 32, 4 heads, 64 units) over the
        rows of the test images, scripted from Python."""
        model = self.path("row_transformer.pt")
        script = self.write_config("row_transformer.py", TRANSFORMER)
        code, out, _ = run(["/usr/bin/python3", script, model])
        self.assertEqual(code, 0, out)
        return model

    def check_pruned_encoder_resume(self, name, extra_train=""):
        """Prunes half of the PyTorch encoder's heads and units on 2 ranks, stopped by a
        signal after step 6 and resumed: the run must be the uninterrupted one bit for bit."""
        model = self.pytorch_encoder()
        config = self.ckpt_config(name + ".yaml", extra_train=extra_train, sections=HALF)
        full, resumed = self.path("out", name + "-full"), self.path("out", name + "-resumed")
        args = ("--set", "Global.model=" + model)
        code, out, _ = self.train(config, "--output-dir", full, *args, ranks=2)
        self.assertEqual(code, 0, out)
        self.resumed_run(config, resumed, "1:6:sigterm", 2, *args)
        self.assert_same_run(full, resumed)
        return out


class TransformerPruneRun(PytorchEncoderRuns):
    def test_pytorch_encoder_export_is_the_input_model_with_units_zeroed(self):
        model = self.pytorch_encoder()
        out_dir = self.path("out", "tp-encoder")
        config = self.tiny_config("tp-encoder.yaml", sections=HALF)
        # Learning rate 0: the exported weights are the input model's, sliced.
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set", "Global.model=" + model,
                                  "--set", "TrainConfig.learning_rate=0")
        self.assertEqual(code, 0, out)
        self.assertIn("enc.layers.0: heads 4 -> 2", out)
        self.assertIn("feed-forward units 64 -> 32", out)
        result = stock_python_json(COMPARE, model, out_dir + "/model.pt", out_dir + "/report.json")
        self.assertEqual(result["num_heads"], [2, 2])
        self.assertEqual(result["in_proj"], [[48, 32], [48, 32]])
        self.assertEqual(result["linear1"], [[32, 32], [32, 32]])
        self.assertLess(result["difference"], 1e-5)

    def test_resume_is_bitwise_identical_on_two_ranks(self):
        self.check_pruned_encoder_resume("tp-resume")

    def test_builtin_transformer_with_distillation_and_quant_aware_training(self):
        # The teacher is the unpruned model; the pruned layers keep the hidden width, so
        # their outputs distil too.
        sections = HALF + """Distillation:
  teacher_model: self
  node: [logits, layers.1]
  loss: [soft_label, l2]
QuantAware:
  quantize_op_types: [linear, matmul]
"""
        config = self.text_config("tp-distill-qat.yaml", 32, 24, sections=sections)
        code, out, _ = self.train(config, "--set", "Global.export=[torchscript, onnx]")
        self.assertEqual(code, 0, out)
        self.assertIn("layers.1: heads 4 -> 2", out)
        self.assertIn("feed-forward units 256 -> 128", out)
        report = read_json(self.path("out", "tp-distill-qat.yaml", "report.json"))
        self.assertEqual([layer["heads_after"] for layer in report["transformer_prune"]["layers"]], [2, 2])
        self.assertLess(report["transformer_prune"]["parameters_after"],
                        report["transformer_prune"]["parameters_before"])
        # The pruned, quantized model on token ids (int64) in ONNX Runtime.
        tokens = np.random.RandomState(0).randint(0, 256, (5, 32))
        self.assertLess(onnx_against_stock_pytorch(self.path("out", "tp-distill-qat.yaml"),
                                                   tokens), 0.05)

    def test_data_driven_importance_over_two_ranks(self):
        for importance in ["loss_sensitivity", "kl"]:
            with self.subTest(importance=importance):
                sections = (f"TransformerPrune: {{head_ratio: 0.5, ffn_ratio: 0.25, "
                            f"importance: {importance}, batch_num: 2}}\n")
                config = self.text_config(f"tp-{importance}.yaml", 32, 24, sections=sections)
                code, out, _ = self.train(config, ranks=2)
                self.assertEqual(code, 0, out)
                self.assertIn(f"importance {importance}", out)
                self.assertIn("heads 4 -> 2", out)
                self.assertIn("feed-forward units 256 -> 192", out)
                self.assertTrue(loss_lines(self.path("out", f"tp-{importance}.yaml")))


# A scripted nn.TransformerEncoder in PyTorch's default [L, N, E] layout, pre-norm, gelu,
# width 48, 6 heads, over the rows of the test images.
SEQUENCE_FIRST = """
import sys, torch
from torch import nn
torch.manual_seed(0)

class SequenceFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32, 48)
        layer = nn.TransformerEncoderLayer(48, 6, 96, activation="gelu", norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(48, 10)

    def forward(self, x):
        return self.head(self.enc(self.proj(x.flatten(1, 2)).transpose(0, 1)).mean(0))

torch.jit.script(SequenceFirst()).save(sys.argv[1])
"""

# Prints, from model.pt in stock PyTorch, the largest scale of each quantizer of the first
# attention module (0 = it never observed anything).
ATTENTION_QUANTIZERS = """
import json, sys, torch
model = torch.jit.load(sys.argv[1])
attention = dict(model.named_modules())["enc.layers.0.self_attn"]
print(json.dumps({name: float(module.scale.max()) for name, module in attention.named_modules()
                  if name.endswith("_quant")}))
"""


# Runs model.pt in stock PyTorch on the inputs of an .npy file, saves the logits next to it.
STOCK_LOGITS = """
import sys, torch, numpy as np
model = torch.jit.load(sys.argv[1]).eval()
with torch.no_grad():
    np.save(sys.argv[3], model(torch.from_numpy(np.load(sys.argv[2]))).numpy())
print("{}")
"""

# Five test-sized images: a batch size the export never saw (it probes batches of 1 to 3).
IMAGES = np.random.RandomState(0).randn(5, 3, 32, 32).astype(np.float32)


def onnx_against_stock_pytorch(out_dir, inputs):
    """The largest difference between the logits of out_dir/model.onnx in ONNX Runtime and
    of out_dir/model.pt in stock PyTorch on `inputs`, relative to the largest logit."""
    inputs_path, logits_path = out_dir + "/inputs.npy", out_dir + "/logits.npy"
    np.save(inputs_path, inputs)
    python(STOCK_LOGITS, out_dir + "/model.pt", inputs_path, logits_path)
    reference = np.load(logits_path)
    onnx = onnx_runtime_logits(out_dir + "/model.onnx", inputs)
    return float(np.abs(onnx - reference).max() / np.abs(reference).max())


class TransformerOnnxExport(PytorchEncoderRuns):
    def test_float_encoders_in_both_layouts_compute_what_pytorch_computes(self):
        # PyTorch's layers check ranks and layouts in branches; the export keeps only the
        # path the input's extents take, with the batch extent computed at run time.
        for name, script in [("batch-first", TRANSFORMER), ("sequence-first", SEQUENCE_FIRST)]:
            with self.subTest(name):
                model = self.path(name + ".pt")
                code, out, _ = run(["/usr/bin/python3", self.write_config(name + ".py", script),
                                    model])
                self.assertEqual(code, 0, out)
                out_dir = self.path("out", "onnx-" + name)
                config = self.tiny_config("onnx-" + name + ".yaml", train_iter=2,
                                          extra_global="  export: [torchscript, onnx]\n")
                code, out, _ = self.train(config, "--output-dir", out_dir,
                                          "--set", "Global.model=" + model)
                self.assertEqual(code, 0, out)
                self.assertLess(onnx_against_stock_pytorch(out_dir, IMAGES), 1e-5)


class AttentionQuantization(PytorchEncoderRuns):
    def quantize_aware(self, name, op_types, exports):
        """QAT of PyTorch's encoder quantizing `op_types`, exporting `exports`: (the output
        directory, the log)."""
        model = self.pytorch_encoder()
        out_dir = self.path("out", name)
        config = self.tiny_config(name + ".yaml",
                                  sections=f"QuantAware: {{quantize_op_types: [{op_types}]}}\n",
                                  extra_global=f"  export: [{exports}]\n")
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set", "Global.model=" + model)
        self.assertEqual(code, 0, out)
        return out_dir, out

    def test_every_projection_and_attention_product_is_quantized(self):
        out_dir, out = self.quantize_aware("attention-qat", "linear, matmul",
                                           "torchscript, torchscript_int8, onnx")
        # proj; 2 layers of in_proj, out_proj, linear1, linear2; the head. 2 products a layer.
        self.assertIn("QuantAware: 10 layer(s), 4 matmul(s) quantized", out)
        self.assertIn("quantized weights: 17728 of the 17728", out)
        scales = stock_python_json(ATTENTION_QUANTIZERS, out_dir + "/model.pt")
        self.assertEqual(sorted(scales), ["input_quant", "matmul0_input_quant",
                                          "matmul0_other_quant", "matmul1_input_quant",
                                          "matmul1_other_quant", "out_proj.input_quant",
                                          "out_proj.weight_quant", "weight_quant"])
        for name, scale in scales.items():
            self.assertGreater(scale, 1e-6, name)  # observed during training
        report = read_json(out_dir, "report.json")
        self.assertEqual(report["quantization"]["weight_share"], 1.0)
        table = read_json(out_dir, "quant_table.json")
        self.assertIn("enc.layers.0.self_attn.in_proj_weight",
                      [layer["weight"]["tensor"] for layer in table["layers"]])
        # 96 rows of 32 pixels: proj; per layer the q, k, v, output and feed-forward
        # weights once per row and two 96 x 96 x 32 attention products; the head once.
        tokens, width, units = 96, 32, 64
        layer = tokens * (4 * width * width + 2 * width * units) + 2 * tokens * tokens * width
        macs = tokens * width * width + 2 * layer + width * 10
        # The input model, counted on PyTorch's fused kernel, and the quantized one alike.
        self.assertEqual(report["input_model"]["macs"], macs)
        # Every linear of the encoder runs an integer kernel (they sit in branches of
        # nn.TransformerEncoder's graph); only the classifier, whose output leaves the
        # model, stays float.
        self.assertEqual(report["torchscript_int8"]["float_layers"], ["head"])
        self.assertGreaterEqual(report["torchscript_int8"]["integer_ops"], 12)
        self.assertEqual(len(report["exports"]), 3)
        for entry in report["exports"]:
            self.assertEqual(entry["macs"], macs, entry["file"])
            self.assertEqual(entry["macs_quantized"], macs, entry["file"])
            self.assertGreaterEqual(entry["eval"]["top1_agreement_with_model_pt"], 0.99,
                                    entry["file"])
        # The ONNX file holds the quantization as QDQ pairs, weights per output channel:
        # axis 0 for Gemm (2-D inputs: out_proj, the head), axis 1 for the [in, out]
        # weights of MatMul (3-D inputs). ONNX Runtime's logits differ from the fake-quant
        # model's by rounding steps only.
        facts = python(ONNX_CHECK, out_dir + "/model.onnx")
        self.assertIn("QuantizeLinear", facts["ops"])
        self.assertEqual(set(facts["weight_axes"]), {0, 1})
        self.assertLess(onnx_against_stock_pytorch(out_dir, IMAGES), 0.05)

    def test_residual_adds_are_quantized_and_the_attention_masks_are_not(self):
        out_dir, out = self.quantize_aware("attention-adds", "linear, elementwise_add",
                                           "torchscript, torchscript_int8")
        # x + self_attn(x) and x + ff(x) in each of the 2 layers; the mask adds inside
        # nn.MultiheadAttention stay float.
        self.assertIn("QuantAware: 10 layer(s), 4 add(s) quantized", out)
        adds = [add["name"] for add in read_json(out_dir, "quant_table.json")["adds"]]
        self.assertEqual(adds, ["enc.layers.0.add0", "enc.layers.0.add1", "enc.layers.1.add0",
                                "enc.layers.1.add1"])

    def test_post_training_quantization_calibrates_the_packed_projection(self):
        # Sequence-first layout, pre-norm, gelu: PyTorch's attention takes its own code
        # (bmm, baddbmm) in the input model rather than the fused kernel.
        model = self.path("sequence_first.pt")
        code, out, _ = run(["/usr/bin/python3", self.write_config("sequence_first.py",
                                                                  SEQUENCE_FIRST), model])
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "attention-ptq")
        sections = ("QuantPost: {quantize_op_types: [linear, matmul], ptq_algo: mse, "
                    "bias_correct: true, batch_num: 2, batch_size: 16}\n")
        config = self.tiny_config("attention-ptq.yaml", sections=sections)
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set", "Global.model=" + model)
        self.assertEqual(code, 0, out)
        self.assertIn("QuantPost: 10 layer(s), 4 matmul(s)", out)
        table = {layer["name"]: layer for layer in read_json(out_dir, "quant_table.json")["layers"]}
        projection = table["enc.layers.1.self_attn"]
        self.assertEqual(projection["weight"]["tensor"], "enc.layers.1.self_attn.in_proj_weight")
        self.assertEqual(len(projection["weight"]["scale"]), 144)  # q, k, v rows, per channel
        self.assertGreater(projection["input"]["scale"][0], 1e-6)  # calibrated
        scales = stock_python_json(ATTENTION_QUANTIZERS, out_dir + "/model.pt")
        self.assertGreater(scales["input_quant"], 1e-6)
        # The input model's attention products (bmm) count as the quantized model's
        # (matmul) do.
        report = read_json(out_dir, "report.json")
        self.assertEqual(report["exports"][0]["macs"], report["input_model"]["macs"])


class TransformerPruneRefusals(CheckpointRuns):
    def test_model_without_encoder_layers_says_what_was_looked_for(self):
        code, out, _ = self.train(self.tiny_config("tp-resnet.yaml", sections=HALF))
        self.assertEqual(code, 3, out)
        self.assertIn("builtin:resnet20 has no Transformer encoder layer: looked for an "
                      "nn.MultiheadAttention", out)

    def test_layers_that_name_no_encoder_layer_list_the_model_s(self):
        sections = "TransformerPrune: {pruned_ratio: 0.5, layers: ['blocks.*']}\n"
        config = self.text_config("tp-layers.yaml", 32, 8, sections=sections)
        code, out, _ = self.train(config)
        self.assertEqual(code, 2, out)
        self.assertIn("TransformerPrune.layers: 'blocks.*' names no encoder layer; the model's are "
                      "layers.0, layers.1", out)

    def test_ratio_out_of_range(self):
        config = self.text_config("tp-ratio.yaml", 32, 8, sections="TransformerPrune: {ffn_ratio: 1.5}\n")
        code, out, _ = self.train(config)
        self.assertEqual(code, 2, out)
        self.assertIn("TransformerPrune.ffn_ratio: must lie in [0, 1)", out)


if __name__ == "__main__":
    unittest.main()
