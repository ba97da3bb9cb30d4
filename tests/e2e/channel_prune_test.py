"""End-to-end tests of ChannelPrune through the real slim-train binary.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/channel_prune_test.py ChannelPruneRun
"""
import os
import unittest

from e2e_test import CheckpointRuns, Workspace, run
from distillation_test import SELF_DISTILLATION
from quantization_test import (QAT, check_stock_torch_agrees, read_json, script_torchvision,
                               stock_python_json)

HALF = "ChannelPrune:\n  pruned_ratio: 0.5\n"

# Stock PyTorch reads model.pt and prints its parameter count and the shape of every
# parameter.
MODEL_FACTS = """
import json, sys, torch
m = torch.jit.load(sys.argv[1])
shapes = {name: list(p.shape) for name, p in m.named_parameters()}
print(json.dumps({"parameters": sum(p.numel() for p in m.parameters()), "shapes": shapes}))
"""


def model_facts(model_path):
    return stock_python_json(MODEL_FACTS, model_path)


class ChannelPruneWorkspace(CheckpointRuns):
    def run_pruned(self, name, model=None, sections=HALF, ranks=2, args=()):
        """Prunes, fine-tunes 4 steps and exports; checks stock PyTorch loads a model.pt
        with the reported parameters and channels and gets our eval loss. Returns the
        report's channel_prune entry and the log."""
        config = self.tiny_config(name + ".yaml", train_iter=4, sections=sections,
                                  extra_global="  eval_batch_size: 16\n")
        model_args = ["--set", f"Global.model={model}"] if model else []
        code, out, _ = self.train(config, *model_args, *args, ranks=ranks)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", name + ".yaml")
        pruned = read_json(out_dir, "report.json")["channel_prune"]
        facts = model_facts(os.path.join(out_dir, "model.pt"))
        self.assertEqual(facts["parameters"], pruned["parameters_after"])
        for group in pruned["groups"]:
            for producer, kept in group["output_channels_after"].items():
                self.assertEqual(facts["shapes"][producer][0], kept, producer)
        self.assertLess(pruned["macs_after"], pruned["macs_before"])
        # Accuracy, MACs and speed before (the input model) and after (model.pt).
        report = read_json(out_dir, "report.json")
        self.assertEqual(report["input_model"]["macs"], pruned["macs_before"])
        self.assertEqual(report["exports"][0]["macs"], pruned["macs_after"])
        self.assertEqual(report["input_model"]["eval"]["samples"],
                         report["exports"][0]["eval"]["samples"])
        self.assertIn("batch_16", report["exports"][0]["speedup"])
        check_stock_torch_agrees(self, out_dir, self.path("data", "eval.h5"))
        return pruned, out


class ChannelPruneRun(ChannelPruneWorkspace):
    def test_resnet20_halves_every_group_on_two_ranks(self):
        pruned, out = self.run_pruned("resnet20")
        self.assertEqual(len(pruned["groups"]), 12)
        for group in pruned["groups"]:
            self.assertEqual(group["channels_after"], group["channels_before"] // 2, group["name"])
            for producer, kept in group["output_channels_after"].items():
                self.assertEqual(kept, group["channels_after"], producer)
        # Both sides of every convolution halve: about 4x fewer MACs.
        self.assertLess(pruned["macs_after"], 0.27 * pruned["macs_before"])
        self.assertIn("ChannelPrune: MACs 40.81 M -> ", out)
        self.assertIn("kept whole: fc.weight: the model's output", out)

    def test_macs_target_is_met_by_the_counted_model(self):
        pruned, out = self.run_pruned("target", sections="ChannelPrune:\n  target_macs_ratio: 0.5\n")
        ratio = pruned["macs_after"] / pruned["macs_before"]
        self.assertLessEqual(ratio, 0.5)
        self.assertGreater(ratio, 0.45)
        self.assertIn("ChannelPrune: target_macs_ratio 0.5 reached at pruned_ratio", out)

    def test_global_ranking_with_round_to(self):
        pruned, _ = self.run_pruned("global", sections=(
            "ChannelPrune:\n  pruned_ratio: 0.5\n  global_pruning: true\n  round_to: 8\n"
            "  criterion: bn_scale\n  ignored_layers: [layer3.0.conv1]\n"))
        kept = {group["name"]: group["channels_after"] for group in pruned["groups"]}
        self.assertEqual(kept["layer3.0.conv1"], 64)
        for group in pruned["groups"]:
            self.assertEqual(group["channels_after"] % 8, 0, group["name"])
        # One ranking over the groups: they do not all lose the same share.
        shares = {g["channels_after"] / g["channels_before"] for g in pruned["groups"]
                  if g["name"] != "layer3.0.conv1"}
        self.assertGreater(len(shares), 1)

    def test_with_distillation_from_the_unpruned_model_and_quantization(self):
        _, out = self.run_pruned("distill-qat", sections=HALF + QAT + SELF_DISTILLATION)
        # The teacher is the input model, with all its parameters; layer3's 32 remaining
        # channels are mapped to the teacher's 64 by an adapter.
        self.assertIn("Distillation: teacher self (272474 parameters", out)
        self.assertIn("Distillation: 1 adapter(s)", out)


class ChannelPruneArchitectures(ChannelPruneWorkspace):
    """50 % on the bundled models and on torchvision models scripted by stock PyTorch."""

    def test_builtin_resnet56_and_mobilenetv2(self):
        pruned, _ = self.run_pruned("resnet56", model="builtin:resnet56", ranks=1)
        self.assertEqual(len(pruned["groups"]), 30)
        pruned, _ = self.run_pruned("mobilenetv2", model="builtin:mobilenetv2")
        # Each expansion group spans its 1x1 convolution and the depthwise one after it.
        names = {tuple(group["producers"]) for group in pruned["groups"]}
        self.assertIn(("layers.1.conv1.weight", "layers.1.conv2.weight"), names)

    def test_torchvision_resnet18(self):
        pruned, _ = self.run_pruned("tv-resnet18", model=script_torchvision(self, "resnet18"))
        self.assertEqual(len(pruned["groups"]), 12)

    def test_torchvision_mobilenet_v2(self):
        pruned, _ = self.run_pruned("tv-mobilenet_v2", model=script_torchvision(self, "mobilenet_v2"))
        # Scripted nn.Conv2d holds groups as a constant of its code; ChannelPrune makes it an
        # attribute, so each depthwise convolution is pruned with the expansion before it
        # (the first one with the stem).
        producers = [group["producers"] for group in pruned["groups"]]
        self.assertIn(["features.0.0.weight", "features.1.conv.0.0.weight"], producers)
        self.assertIn(["features.2.conv.0.0.weight", "features.2.conv.1.0.weight"], producers)
        self.assertNotIn("features.2.conv.1.0.weight",
                         [p for k in pruned["kept_whole"] for p in k["producers"]])
        # Expansions and bottleneck streams both halve: well over 2x fewer MACs.
        self.assertLess(pruned["macs_after"], 0.4 * pruned["macs_before"])

    def test_scripted_convolutions_with_bias_and_a_depthwise_one(self):
        # nn.Conv2d's bias is an Optional[Tensor] attribute; its groups a class constant.
        model = self.path("biased.pt")
        script = self.write_config("biased.py", f"""
import torch
from torch import nn
torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(),
                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
torch.jit.script(m).save({model!r})
""")
        code, out, _ = run(["/usr/bin/python3", script])
        self.assertEqual(code, 0, out)
        pruned, _ = self.run_pruned("biased", model=model)
        self.assertEqual([g["producers"] for g in pruned["groups"]], [["0.weight", "2.weight"]])
        self.assertEqual(pruned["groups"][0]["channels_after"], 4)

    def test_torchvision_shufflenet_v2(self):
        pruned, _ = self.run_pruned("tv-shufflenet", model=script_torchvision(self, "shufflenet_v2_x0_5"))
        self.assertIn("conv5.0", [group["name"] for group in pruned["groups"]])
        # The last stage's stream: chunks and shuffles tie 8 rows of each producer into one
        # coupled channel.
        stage4 = next(g for g in pruned["groups"] if "stage4.0.branch1.2.weight" in g["producers"])
        self.assertEqual(stage4["output_channels_after"]["stage4.0.branch1.2.weight"],
                         8 * stage4["channels_after"])


ITERATIVE = "ChannelPrune:\n  pruned_ratio: 0.5\n  prune_schedule: iterative\n  n_steps: 8\n"


class ChannelPruneResume(ChannelPruneWorkspace):
    def test_resume_after_pruning_is_bitwise_identical(self):
        self.check_bitwise_resume("cp-resume", 2, "1:6:sigterm", sections=HALF)

    def test_iterative_schedule_rises_during_training_and_resumes_bitwise(self):
        # 16 steps, 8 rises: one before training, then after steps 1 to 7; the stop after
        # step 6 falls between two rises.
        self.check_bitwise_resume("cp-iterative", 2, "1:6:sigterm", sections=ITERATIVE)
        out_dir = self.path("out", "cp-iterative-full")
        pruned = read_json(out_dir, "report.json")["channel_prune"]
        self.assertEqual(pruned["rises_done"], 8)
        for group in pruned["groups"]:
            self.assertEqual(group["channels_after"], group["channels_before"] // 2, group["name"])
        facts = model_facts(os.path.join(out_dir, "model.pt"))
        self.assertEqual(facts["parameters"], pruned["parameters_after"])

    def test_unpruned_checkpoint_is_refused_unless_weights_only(self):
        dense = self.ckpt_config("dense.yaml")
        out_dir = self.path("out", "dense")
        code, out, _ = self.train(dense, "--output-dir", out_dir, "--set", "TrainConfig.train_iter=3")
        self.assertEqual(code, 0, out)
        pruned = self.ckpt_config("pruned.yaml", sections=HALF)
        checkpoint = os.path.join(out_dir, "checkpoints", "ckpt-3.h5")
        self.assert_fails(self.train(pruned, "--resume", checkpoint), 3,
                          "strategies: checkpoint none, config ChannelPrune",
                          "layer1.0.conv1.weight", "--resume-weights-only")
        code, out, _ = self.train(pruned, "--resume", checkpoint, "--resume-weights-only",
                                  "--set", "TrainConfig.train_iter=2")
        self.assertEqual(code, 0, out)
        self.assertIn("training starts at step 0", out)


class ChannelPruneSensitivity(Workspace):
    def test_groups_of_the_unpruned_model_and_ratios_for_a_macs_target(self):
        config = self.tiny_config("analyze.yaml", sections="ChannelPrune:\n  target_macs_ratio: 0.6\n")
        code, out, _ = self.train(config, "--analyze", "prune", ranks=2)
        self.assertEqual(code, 0, out)
        out_dir = self.path("out", "analyze.yaml")
        report = read_json(out_dir, "prune_sensitivity.json")
        self.assertEqual(report["dense"]["macs"], 40813184)  # the unpruned resnet20
        self.assertEqual(len(report["groups"]), 12)
        for group in report["groups"]:
            self.assertEqual([r["ratio"] for r in group["results"]],
                             [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
            macs = [r["macs"] for r in group["results"]]
            self.assertEqual(macs, sorted(macs, reverse=True), group["group"])
            self.assertLess(macs[-1], report["dense"]["macs"])
        self.assertGreater(report["dense"]["latency_ms"], 0)
        for group in report["groups"]:
            self.assertTrue(all(r["latency_ms"] > 0 for r in group["results"]), group["group"])
        self.assertEqual(report["latency"], {"batch": 16, "threads": 1})
        target = report["macs_target"]
        self.assertEqual(target["target_macs_ratio"], 0.6)
        for pick in (target, report["latency_aware"]):
            self.assertTrue(pick["pruned_ratio"])
            self.assertLess(pick["macs_ratio"], 0.75)
            self.assertGreater(pick["latency_ms"], 0)
        with open(os.path.join(out_dir, "prune_sensitivity.md")) as f:
            markdown = f.read()
        self.assertIn("| group |", markdown)
        self.assertIn("ChannelPrune:\n  pruned_ratio:\n", markdown)
        self.assertIn("Latency-aware", markdown)
        self.assertIn("| layer1.0.conv1 |", markdown.split("## Latency of each group")[1])
        for name in ("prune_sensitivity.png", "prune_sensitivity.svg"):
            self.assertTrue(os.path.getsize(os.path.join(out_dir, name)) > 0)
        self.assertFalse(os.path.exists(os.path.join(out_dir, "model.pt")))


class ChannelPruneBadInput(Workspace):
    def check_refused(self, name, sections, code, *fragments, args=()):
        config = self.tiny_config(name, train_iter=2, sections=sections)
        self.assert_fails(self.train(config, *args), code, *fragments)

    def test_ratio_outside_the_unit_interval(self):
        self.check_refused("ratio.yaml", "ChannelPrune:\n  pruned_ratio: 1.0\n", 2,
                           "ratio.yaml:", "ChannelPrune.pruned_ratio", "must lie in [0, 1)")
        self.check_refused("map.yaml", "ChannelPrune:\n  pruned_ratio: {layer1.*: -0.1}\n", 2,
                           "ChannelPrune.pruned_ratio.layer1.*")

    def test_prune_params_name_that_matches_nothing_suggests_a_close_name(self):
        self.check_refused("name.yaml", "ChannelPrune:\n  prune_params_name: [layer1.0.conv.weight]\n",
                           2, "name.yaml:", "ChannelPrune.prune_params_name: 'layer1.0.conv.weight'",
                           "did you mean 'layer1.0.conv")

    def test_named_layer_behind_an_unsupported_operation(self):
        # A grouped convolution that is not depthwise keeps its channels.
        model = self.path("grouped.pt")
        script = self.write_config("grouped.py", f"""
import torch
from torch import nn
m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=2), nn.Flatten(),
                  nn.Linear(8 * 28 * 28, 10))
torch.jit.script(m).save({model!r})
""")
        code, out, _ = run(["/usr/bin/python3", script])
        self.assertEqual(code, 0, out)
        self.check_refused("grouped.yaml", "ChannelPrune:\n  prune_params_name: [1.weight]\n",
                           3, "grouped.yaml:", "ChannelPrune.prune_params_name: the output "
                           "channels of '1.weight' cannot be removed", "a grouped convolution",
                           "aten::conv2d in 1",
                           args=("--set", f"Global.model={model}"))

    def test_macs_target_that_pruning_cannot_reach(self):
        self.check_refused("unreachable.yaml", "ChannelPrune:\n  target_macs_ratio: 0.5\n"
                           "  prune_params_name: [layer3.0.conv1.weight]\n", 2,
                           "unreachable.yaml:", "ChannelPrune.target_macs_ratio: 0.5",
                           "bound what pruning can remove")

    def test_iterative_schedule_with_quantization(self):
        self.check_refused("iter-qat.yaml", ITERATIVE + QAT, 2,
                           "prune_schedule: iterative changes the model's shapes during training, "
                           "and QuantAware is set up for the shapes before it")

    def test_target_and_ratio_together_and_quant_post(self):
        self.check_refused("both.yaml", "ChannelPrune:\n  pruned_ratio: 0.3\n  target_macs_ratio: 0.5\n",
                           2, "target_macs_ratio: sets the ratio itself; remove pruned_ratio")
        self.check_refused("post.yaml", HALF + "QuantPost:\n", 2,
                           "ChannelPrune needs fine-tuning and QuantPost only calibrates")


if __name__ == "__main__":
    unittest.main()
