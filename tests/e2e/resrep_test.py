"""End-to-end tests of ResRep through the real binary: compactors trained on two ranks
reach the MACs target, the merged model.pt has no compactor and runs in stock PyTorch,
distillation from the unpruned model combines, a stopped run resumes bit for bit (masks
and compactors), and targets and models it cannot handle are refused.

    SLIM_BUILD_DIR=build python3 tests/e2e/resrep_test.py -v ResRepRun
"""
import unittest

from distillation_test import SELF_DISTILLATION
from e2e_test import CheckpointRuns
from quantization_test import QAT, read_json, script_torchvision, stock_python_json

# Masks from step 2, every 2 steps, 24 channels at a time: the 16-step runs reach the target.
RESREP = """ResRep:
  flops_target: 0.5
  lasso_strength: 0.01
  before_mask_iters: 2
  mask_interval: 2
  num_per_mask: 24
"""

# Loads model.pt in stock PyTorch; prints its module names with "compactor" in them and the
# shape of its output on two images.
STOCK_RUN = """
import json, sys, torch
model = torch.jit.load(sys.argv[1]).eval()
with torch.no_grad():
    shape = list(model(torch.randn(2, 3, 32, 32)).shape)
print(json.dumps({"compactors": [n for n, _ in model.named_modules() if "compactor" in n],
                  "shape": shape}))
"""


class ResRepRun(CheckpointRuns):
    def test_macs_target_reached_and_merged_model_is_clean(self):
        out_dir = self.path("out", "resrep")
        config = self.tiny_config("resrep.yaml", train_iter=16, sections=RESREP)
        code, out, _ = self.train(config, "--output-dir", out_dir, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("(target reached)", out)
        report = read_json(out_dir, "report.json")["resrep"]
        self.assertTrue(report["target_reached"])
        self.assertLessEqual(report["macs_after"], 0.5 * report["macs_before"])
        self.assertGreater(report["macs_after"], 0.3 * report["macs_before"])
        self.assertTrue(any(g["channels_after"] < g["channels_before"] for g in report["groups"]))
        result = stock_python_json(STOCK_RUN, out_dir + "/model.pt")
        self.assertEqual(result, {"compactors": [], "shape": [2, 10]})

    def test_torchvision_resnet18_whose_batch_norms_share_one_class(self):
        # Every BatchNorm of the scripted model is one TorchScript class, so those outside
        # the groups hold frozen identity compactors too; all are merged away.
        model = script_torchvision(self, "resnet18")
        out_dir = self.path("out", "resrep-resnet18")
        # The automatic count per event: resnet18 needs far more channels than 24 a time.
        sections = "ResRep: {flops_target: 0.5, before_mask_iters: 2, mask_interval: 2}\n"
        config = self.tiny_config("resrep-resnet18.yaml", train_iter=16, sections=sections)
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set", "Global.model=" + model,
                                  ranks=2)
        self.assertEqual(code, 0, out)
        report = read_json(out_dir, "report.json")["resrep"]
        self.assertLessEqual(report["macs_after"], 0.5 * report["macs_before"])
        result = stock_python_json(STOCK_RUN, out_dir + "/model.pt")
        self.assertEqual(result, {"compactors": [], "shape": [2, 10]})

    def test_with_distillation_from_the_unpruned_model(self):
        config = self.tiny_config("resrep-distill.yaml", train_iter=16,
                                  sections=RESREP + SELF_DISTILLATION)
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        report = read_json(self.path("out", "resrep-distill.yaml", "report.json"))
        self.assertIn("distillation", report)
        self.assertLessEqual(report["resrep"]["macs_after"], 0.5 * report["resrep"]["macs_before"])

    def test_resume_is_bitwise_identical_on_two_ranks(self):
        self.check_bitwise_resume("resrep-resume", 2, "1:6:sigterm", sections=RESREP)


class ResRepRefusals(CheckpointRuns):
    def test_unreachable_target_names_the_reachable_share(self):
        sections = "ResRep: {flops_target: 0.02, num_at_least: 8}\n"
        code, out, _ = self.train(self.tiny_config("resrep-far.yaml", sections=sections))
        self.assertEqual(code, 2, out)
        self.assertIn("ResRep.flops_target: 0.02 cannot be reached: keeping num_at_least 8", out)
        self.assertIn("set flops_target to at least 0.", out)

    def test_quantization_in_the_same_run_is_refused(self):
        code, out, _ = self.train(self.tiny_config("resrep-qat.yaml", sections=RESREP + QAT))
        self.assertEqual(code, 2, out)
        self.assertIn("ResRep merges its compactors into the convolutions only at the end", out)

    def test_model_without_batch_norm_is_refused(self):
        code, out, _ = self.train(self.tiny_config("resrep-mlp.yaml", sections=RESREP),
                                  "--set", "Global.model=" + self.mlp_model())
        self.assertEqual(code, 3, out)
        self.assertIn("ResRep: no prunable channel group", out)
        self.assertIn("ChannelPrune, or its Transformer encoder layers with TransformerPrune", out)


if __name__ == "__main__":
    unittest.main()
