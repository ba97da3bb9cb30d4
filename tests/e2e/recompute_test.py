"""End-to-end tests of activation recompute (TrainConfig.recompute_config) through the real
binary: a run that recomputes modules is the plain run bit for bit (metrics and the final
checkpoint, BatchNorm statistics and quantizer state included), with PyTorch's own
TransformerEncoder and its dropout, with quantization-aware training, distillation and
sharded optimizer state, and it resumes exactly; modules it cannot recompute are refused.

    SLIM_BUILD_DIR=build python3 tests/e2e/recompute_test.py -v RecomputeRun
"""
import unittest

from distillation_test import SELF_DISTILLATION
from e2e_test import CheckpointRuns, metrics, run
from quantization_test import QAT, read_json

RECOMPUTE_BLOCKS = "  recompute_config: {modules: ['layer1.*', 'layer2.*']}\n"
SHARDED = "  sharding_config: {stage: 1}\n"

# PyTorch's nn.TransformerEncoder with dropout over the rows of a 3x32x32 image.
TRANSFORMER = """
import sys, torch
from torch import nn
torch.manual_seed(0)

class RowTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.2, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.enc(self.proj(x.flatten(1, 2))).mean(1))

torch.jit.script(RowTransformer()).save(sys.argv[1])
"""


class RecomputeRun(CheckpointRuns):
    def check_recompute_changes_nothing(self, name, recompute, ranks=2, args=(), sections="",
                                        extra_train=""):
        """Trains one config plainly and recomputing `recompute` (a recompute_config line);
        both runs must match bit for bit. Returns the recomputing run's output."""
        outputs = []
        for label, line in [("plain", ""), ("recompute", recompute)]:
            config = self.ckpt_config(f"{name}-{label}.yaml", extra_train=extra_train + line,
                                      sections=sections)
            code, out, _ = self.train(config, "--output-dir", self.path("out", f"{name}-{label}"),
                                      *args, ranks=ranks)
            self.assertEqual(code, 0, out)
            outputs.append(out)
        self.assert_same_run(self.path("out", name + "-plain"), self.path("out", name + "-recompute"))
        return outputs[1]

    def test_recomputed_blocks_train_exactly_as_kept_ones(self):
        out = self.check_recompute_changes_nothing("recompute-resnet", RECOMPUTE_BLOCKS)
        self.assertIn("activation recompute: the activations of layer1.0, layer1.1, layer1.2, "
                      "layer2.0, layer2.1, layer2.2 are recomputed in backward", out)
        # The recomputed blocks' activations are not held from forward to backward: the peak
        # tensor memory of the first two steps (before evaluation and checkpoints) falls.
        memory = lambda label: next(line["peak_tensor_mb"] for line in metrics(
            self.path("out", f"recompute-resnet-{label}")) if line["event"] == "train")
        for plain, recomputed in zip(memory("plain"), memory("recompute")):
            self.assertLess(recomputed, 0.8 * plain)

    def test_pytorch_transformer_encoder_layers_replay_their_dropout(self):
        model = self.path("row_transformer.pt")
        script = self.write_config("row_transformer.py", TRANSFORMER)
        code, out, _ = run(["/usr/bin/python3", script, model])
        self.assertEqual(code, 0, out)
        out = self.check_recompute_changes_nothing(
            "recompute-transformer", "  recompute_config: {modules: ['enc.layers.*']}\n",
            args=["--set", "Global.model=" + model])
        self.assertIn("the activations of enc.layers.0, enc.layers.1 are recomputed", out)

    def test_with_quant_aware_training_distillation_and_sharding(self):
        # The quantizers' observers and the BatchNorms move once per step, not twice; the
        # distilled node (layer3) stays outside the recomputed modules.
        self.check_recompute_changes_nothing("recompute-qat-distill", RECOMPUTE_BLOCKS,
                                             sections=QAT + SELF_DISTILLATION,
                                             extra_train=SHARDED)

    def test_resume_is_bitwise_identical(self):
        self.check_bitwise_resume("recompute-resume", 2, "1:6:sigterm",
                                  extra_train=RECOMPUTE_BLOCKS + SHARDED, sections=QAT)


class RecomputeRefusals(CheckpointRuns):
    def test_unknown_module_names_the_closest(self):
        config = self.tiny_config("recompute-unknown.yaml",
                                  extra_train="  recompute_config: {modules: [layer4]}\n")
        self.assert_fails(self.train(config), 2,
                          "TrainConfig.recompute_config.modules: 'layer4' names no module of "
                          "the model; did you mean 'layer1'?")

    def test_paddle_checkpoints_key_is_explained(self):
        config = self.tiny_config("recompute-paddle.yaml",
                                  extra_train="  recompute_config: {checkpoints: [conv2d_1.tmp_0]}\n")
        self.assert_fails(self.train(config), 2, "TrainConfig.recompute_config.checkpoints",
                          "write modules:")

    def test_a_module_holding_a_distilled_node_is_refused(self):
        config = self.tiny_config("recompute-tapped.yaml", sections=SELF_DISTILLATION,
                                  extra_train="  recompute_config: {modules: [layer3]}\n")
        self.assert_fails(self.train(config), 2, "module 'layer3' holds 'layer3', whose output "
                                                 "a distillation loss reads")


if __name__ == "__main__":
    unittest.main()
