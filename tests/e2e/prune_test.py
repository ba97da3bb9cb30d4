"""End-to-end tests of UnstructurePrune and ASPPrune through the real slim-train binary.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/prune_test.py PruneRun
"""
import os
import re
import subprocess
import unittest

from e2e_test import CheckpointRuns, Workspace
from quantization_test import read_json, script_torchvision, stock_python_json

# GMP to 50 % over every weight but the first and last: dense for 2 steps, then ratios
# held 2 steps each, rising at steps 2, 4, 6 and 8, the final 0.5 from step 10.
GMP = """UnstructurePrune:
  prune_strategy: gmp
  ratio: 0.5
  prune_params_type: null
  gmp_config: {stable_iterations: 2, pruning_iterations: 8, pruning_steps: 4,
               tunning_iterations: 6}
"""

# Stock PyTorch reads model.pt and prints, per weight of a convolution or linear layer,
# its zeros, elements, whether every group of 4 input channels holds at most 2 non-zeros,
# and whether the weight sits on a symmetric 8-bit grid per output channel.
WEIGHT_FACTS = """
import json, sys, torch
m = torch.jit.load(sys.argv[1])
facts = {}
for name, w in m.named_parameters():
    if not name.endswith("weight") or w.dim() not in (2, 4):
        continue
    rows = (w.permute(0, 2, 3, 1) if w.dim() == 4 else w).reshape(w.shape[0], -1)
    two_four = w.shape[1] % 4 == 0 and bool(
        ((rows.reshape(-1, 4) != 0).sum(1) <= 2).all())
    scale = (w.abs().reshape(w.shape[0], -1).amax(1) / 127).clamp_min(1e-12)
    steps = w.reshape(w.shape[0], -1) / scale[:, None]
    on_grid = bool(((steps - steps.round()).abs() < 1e-3).all())
    facts[name] = {"zeros": int((w == 0).sum()), "elements": w.numel(), "two_four": two_four,
                   "on_int8_grid": on_grid}
print(json.dumps(facts))
"""


def weight_facts(model_path):
    return stock_python_json(WEIGHT_FACTS, model_path)


def sparsity_of(out_dir, section):
    return read_json(out_dir, "report.json")["sparsity"][section]


class PruneWorkspace(CheckpointRuns):
    def check_exported_sparsity(self, out_dir, section):
        """model.pt, read by stock PyTorch, holds the zeros report.json reports, per layer."""
        facts = weight_facts(os.path.join(out_dir, "model.pt"))
        report = sparsity_of(out_dir, section)
        for layer in report["layers"]:
            self.assertEqual(facts[layer["weight"]]["zeros"], layer["zeros"], layer["weight"])
        return facts, report


class PruneRun(PruneWorkspace):
    def test_gmp_reaches_the_target_at_the_scheduled_step(self):
        config = self.tiny_config("gmp.yaml", train_iter=12, sections=GMP)
        out_dir = self.path("out", "gmp.yaml")
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        ratios = {int(step): float(ratio) for step, ratio in
                  re.findall(r"UnstructurePrune: step (\d+): ratio ([0-9.]+)", out)}
        self.assertEqual(sorted(ratios), [2, 4, 6, 8, 10], out)
        self.assertAlmostEqual(ratios[2], 0.15)
        self.assertAlmostEqual(ratios[4], 0.15 + 0.35 * (1 - 0.75 ** 3), places=4)
        self.assertLess(ratios[8], 0.5)
        self.assertAlmostEqual(ratios[10], 0.5)
        facts, report = self.check_exported_sparsity(out_dir, "UnstructurePrune")
        self.assertAlmostEqual(report["pruned_weights_sparsity"], 0.5, places=4)
        # prune_params_type null: every convolution and linear weight but the first and last.
        self.assertNotIn("conv1.weight", [l["weight"] for l in report["layers"]])
        self.assertNotIn("fc.weight", [l["weight"] for l in report["layers"]])
        self.assertEqual(facts["conv1.weight"]["zeros"], 0)
        self.assertLess(report["pruned_weights_csr_bytes"], report["pruned_weights_dense_bytes"])

    def test_ranks_match_one_process_with_the_global_batch(self):
        """2 ranks with batch 8 end where 1 rank with batch 16 ends: the same masks, and the
        same weights up to float summation order (a model without BatchNorm)."""
        model = self.path("mlp.pt")
        script = ("import torch\ntorch.manual_seed(0)\n"
                  "m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 32),"
                  " torch.nn.ReLU(), torch.nn.Linear(32, 16), torch.nn.ReLU(),"
                  " torch.nn.Linear(16, 10))\n"
                  f"torch.jit.script(m).save({model!r})\n")
        done = subprocess.run(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stdout)
        sections = GMP.replace("prune_params_type: null", "prune_params_type: null\n"
                               "  skip_first_last: false")
        config = self.tiny_config("global-batch.yaml", train_iter=12, sections=sections)
        outputs = {}
        for ranks, batch in [(2, 8), (1, 16)]:
            out_dir = self.path("out", f"global-batch-{ranks}")
            code, out, _ = self.train(config, "--output-dir", out_dir, "--set",
                                      f"Global.model={model}", "--set",
                                      f"Global.batch_size={batch}", ranks=ranks)
            self.assertEqual(code, 0, out)
            outputs[ranks] = out_dir
        compare = f"""
import torch
a = dict(torch.jit.load({os.path.join(outputs[2], "model.pt")!r}).named_parameters())
b = dict(torch.jit.load({os.path.join(outputs[1], "model.pt")!r}).named_parameters())
for name in a:
    assert torch.equal(a[name] == 0, b[name] == 0), name + ": masks differ"
    assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-5), name
print("same")
"""
        done = subprocess.run(["/usr/bin/python3", "-c", compare], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stdout)
        self.assertEqual(sparsity_of(outputs[2], "UnstructurePrune")["pruned_weights_sparsity"],
                         sparsity_of(outputs[1], "UnstructurePrune")["pruned_weights_sparsity"])

    def test_gmp_with_qat_and_distillation_in_one_run(self):
        """Pruned weights stay exactly zero through quantization: the weight quantizer sees
        the masked weight, and zero is on every symmetric grid."""
        sections = GMP + """QuantAware:
  quantize_op_types: [conv2d, linear]
Distillation:
  teacher_model: self
  loss: soft_label
"""
        config = self.tiny_config("kd-gmp-qat.yaml", train_iter=12, sections=sections)
        out_dir = self.path("out", "kd-gmp-qat.yaml")
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        facts, report = self.check_exported_sparsity(out_dir, "UnstructurePrune")
        self.assertAlmostEqual(report["pruned_weights_sparsity"], 0.5, places=4)
        for layer in report["layers"]:
            self.assertTrue(facts[layer["weight"]]["on_int8_grid"], layer["weight"])

    def test_threshold_and_conv1x1_only(self):
        sections = "UnstructurePrune:\n  prune_mode: threshold\n  threshold: 0.05\n"
        config = self.tiny_config("threshold.yaml", train_iter=2, sections=sections)
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        # resnet20's only 1x1 convolutions are its two downsampling shortcuts.
        layers = sparsity_of(self.path("out", "threshold.yaml"), "UnstructurePrune")["layers"]
        self.assertEqual(sorted(l["weight"] for l in layers),
                         ["layer2.0.downsample.0.weight", "layer3.0.downsample.0.weight"])
        self.assertTrue(all(l["zeros"] > 0 for l in layers), layers)


    def test_gmp_longer_than_the_run_warns(self):
        # ACT's automatic schedule prunes for at least 30 steps: 4 steps end at its start.
        sections = "UnstructurePrune:\n  prune_strategy: gmp\n  ratio: 0.5\n"
        config = self.tiny_config("gmp-short.yaml", train_iter=4, sections=sections)
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        self.assertIn("UnstructurePrune: gmp reaches ratio 0.5 at step 30, after the run's 4 "
                      "steps: the model will end at ratio 0.1500", out)


class PruneResume(PruneWorkspace):
    def test_resume_mid_schedule_is_bitwise_identical(self):
        # Stopped after step 6, when the ratio has risen three times of four.
        self.check_bitwise_resume("gmp-resume", 2, "1:6:sigterm", sections=GMP)

    def test_weights_only_resume_from_a_dense_checkpoint_starts_pruning(self):
        dense = self.ckpt_config("dense.yaml")
        out_dir = self.path("out", "dense")
        code, out, _ = self.train(dense, "--output-dir", out_dir)
        self.assertEqual(code, 0, out)
        pruned = self.ckpt_config("from-dense.yaml",
                                  sections="UnstructurePrune:\n  ratio: 0.6\n"
                                           "  prune_params_type: null\n")
        newest = os.path.join(out_dir, "checkpoints", "ckpt-16.h5")
        code, out, _ = self.train(pruned, "--resume", newest, "--resume-weights-only",
                                  "--set", "TrainConfig.train_iter=2")
        self.assertEqual(code, 0, out)
        self.assertIn("training starts at step 0", out)
        self.assertIn("UnstructurePrune: step 0: ratio 0.6000", out)
        report = sparsity_of(self.path("out", "from-dense.yaml"), "UnstructurePrune")
        self.assertAlmostEqual(report["pruned_weights_sparsity"], 0.6, places=4)


class PruneArchitectures(PruneWorkspace):
    """ASPPrune on torchvision models it did not see before: what cannot take 2:4 is
    skipped and listed, everything else is 2:4 in the file stock PyTorch loads."""

    def check_asp(self, name, expect_skipped):
        model = script_torchvision(self, name)
        config = self.tiny_config(name + ".yaml", train_iter=2, sections="ASPPrune:\n",
                                  extra_global="  eval_batch_size: 16\n")
        code, out, _ = self.train(config, "--set", f"Global.model={model}")
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", name + ".yaml")
        facts, report = self.check_exported_sparsity(out_dir, "ASPPrune")
        skipped = {entry["weight"] for entry in report["skipped"]}
        for weight in expect_skipped:
            self.assertIn(weight, skipped)
            self.assertIn(f"ASPPrune: {weight} stays dense", out)
        pruned = {layer["weight"] for layer in report["layers"]}
        for layer in report["layers"]:
            self.assertTrue(facts[layer["weight"]]["two_four"], layer["weight"])
            self.assertAlmostEqual(layer["sparsity"], 0.5, places=6)
        # Every convolution and linear weight is either 2:4 or listed as skipped.
        self.assertEqual(pruned | skipped, set(facts))
        self.assertFalse(pruned & skipped)

    def test_torchvision_resnet18(self):
        # The stem sees 3 input channels.
        self.check_asp("resnet18", ["conv1.weight"])

    def test_torchvision_mobilenet_v2(self):
        # The stem, and every depthwise convolution (one input channel per group).
        self.check_asp("mobilenet_v2", ["features.0.0.weight", "features.1.conv.0.0.weight",
                                        "features.2.conv.1.0.weight"])


class PruneSensitivity(PruneWorkspace):
    def test_analysis_writes_the_table_and_suggests_ratios(self):
        config = self.tiny_config("analyze.yaml", sections="UnstructurePrune:\n"
                                                           "  prune_params_type: null\n")
        code, out, _ = self.train(config, "--analyze", "prune", ranks=2)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "analyze.yaml")
        for name in ["prune_sensitivity.md", "prune_sensitivity.png", "prune_sensitivity.svg"]:
            self.assertTrue(os.path.getsize(os.path.join(out_dir, name)) > 0, name)
        report = read_json(out_dir, "prune_sensitivity.json")
        # resnet20: every convolution and linear weight but the stem and the classifier.
        self.assertEqual(len(report["weights"]), 20)
        dense = report["dense"]["top1"]
        for weight in report["weights"]:
            self.assertEqual([r["ratio"] for r in weight["results"]], [0.3, 0.5, 0.7, 0.9])
            tolerated = [r["ratio"] for r in weight["results"]
                         if (dense - r["top1"]) * 100 <= report["tolerated_top1_drop_points"]]
            expected = 0
            for r in weight["results"]:
                if r["ratio"] not in tolerated:
                    break
                expected = r["ratio"]
            self.assertEqual(weight["suggested_ratio"], expected, weight)
        self.assertFalse(os.path.exists(os.path.join(out_dir, "model.pt")))

    def test_analysis_needs_eval_data(self):
        config = self.tiny_config("analyze-no-eval.yaml")
        text = open(config).read().replace("  eval_data: " + self.path("data", "eval.h5") + "\n", "")
        with open(config, "w") as f:
            f.write(text)
        self.assert_fails(self.train(config, "--analyze", "prune"), 2,
                          "--analyze prune measures accuracy on Global.eval_data")


class PruneBadInput(Workspace):
    def check_refused(self, name, sections, *fragments, args=()):
        config = self.tiny_config(name, train_iter=2, sections=sections)
        self.assert_fails(self.train(config, *args), 2, *fragments)

    def test_ratio_outside_the_open_unit_interval(self):
        self.check_refused("ratio.yaml", "UnstructurePrune:\n  ratio: 1.0\n",
                           "ratio.yaml:", "UnstructurePrune.ratio", "strictly between 0 and 1")

    def test_unknown_prune_params_type(self):
        self.check_refused("type.yaml", "UnstructurePrune:\n  prune_params_type: conv1x1\n",
                           "UnstructurePrune.prune_params_type", "conv1x1_only")

    def test_prune_params_name_that_matches_nothing_lists_close_names(self):
        self.check_refused("name.yaml", "ASPPrune:\n  prune_params_name: [layer1.0.conv.weight]\n",
                           "ASPPrune.prune_params_name: 'layer1.0.conv.weight'",
                           "nearest: 'layer1.0.conv1.weight'")

    def test_sections_that_cannot_combine(self):
        self.check_refused("both.yaml", "UnstructurePrune:\n  ratio: 0.5\nASPPrune:\n",
                           "UnstructurePrune and ASPPrune would both mask the same weights")


if __name__ == "__main__":
    unittest.main()
