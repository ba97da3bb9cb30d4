"""End-to-end tests of Distillation and MultiTeacherDistillation through the real
slim-train binary.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/distillation_test.py DistillationRun
"""
import json
import os
import subprocess
import unittest

from e2e_test import BUILD, SOURCE_DIR, CheckpointRuns, Workspace, checkpoint_tensors, run
from quantization_test import QAT, check_stock_torch_agrees, read_json

# The standard ACT recipe: the float model teaches its quantized self. VID regresses the
# teacher's layer3 through an adapter, so the run also trains and drops one.
SELF_DISTILLATION = """Distillation:
  teacher_model: self
  node: [logits, layer3]
  loss: [soft_label, vid]
  alpha: [1.0, 0.5]
  temperature: 2
  label_loss_weight: 0.5
"""

# A small TorchScript teacher whose `features` are [N, 24, H/4, W/4]: the student's layer3
# ([N, 64, H/4, W/4]) needs a 64 -> 24 adapter.
NARROW_TEACHER = """
import sys, torch
class Features(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 24, 3, stride=4, padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x))
class Narrow(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = Features()
        self.fc = torch.nn.Linear(24, 10)
    def forward(self, x):
        return self.fc(self.features(x).mean([2, 3]))
torch.manual_seed(0)
torch.jit.script(Narrow()).save(sys.argv[1])
"""


class DistillationWorkspace(Workspace):
    def narrow_teacher(self):
        path, script = self.path("narrow.pt"), self.path("narrow.py")
        if not os.path.exists(path):
            with open(script, "w") as f:  # torch.jit.script reads the class sources
                f.write(NARROW_TEACHER)
            done = subprocess.run(["/usr/bin/python3", script, path],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=300)
            self.assertEqual(done.returncode, 0, done.stdout)
        return path

    def assert_clean_export(self, out_dir):
        """Stock PyTorch runs model.pt, which holds no tap, adapter or teacher."""
        check_stock_torch_agrees(self, out_dir, self.path("data", "eval.h5"))
        script = ("import sys, json, torch; m = torch.jit.load(sys.argv[1]); "
                  "print(json.dumps([n for n, _ in m.named_modules()] + list(m.state_dict())))")
        done = subprocess.run(["/usr/bin/python3", "-c", script, os.path.join(out_dir, "model.pt")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)
        self.assertEqual(done.returncode, 0, done.stdout)
        names = json.loads(done.stdout.splitlines()[-1])
        self.assertIn("layer3.2.conv2", names)
        self.assertEqual([n for n in names if "distill" in n], [])


class DistillationRun(DistillationWorkspace):
    def test_quantized_student_learns_from_its_float_self_on_two_ranks(self):
        config = self.tiny_config("self-qat.yaml", sections=QAT + SELF_DISTILLATION)
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("Distillation: teacher self", out)
        self.assertIn("QuantAware: 22 layer(s) quantized", out)
        out_dir = self.path("out", "self-qat.yaml")
        report = read_json(out_dir, "report.json")
        self.assertEqual(report["distillation"]["adapters"], 1)
        self.assertEqual([t["loss"] for t in report["distillation"]["teachers"][0]["terms"]],
                         ["soft_label", "vid"])
        self.assertEqual(report["quantization"]["layers"], 22)
        # The adapter trains with the student: it is in the checkpoint, on both ranks' behalf.
        tensors = checkpoint_tensors(os.path.join(out_dir, "checkpoints", "ckpt-8.h5"))
        self.assertIn("model/parameters/distill_adapter0.variance_raw", tensors)
        self.assert_clean_export(out_dir)

    def test_two_teachers_with_an_adapter_in_bfloat16(self):
        config = self.tiny_config("two-teachers.yaml", sections=f"""MultiTeacherDistillation:
  teachers:
    - teacher_model: {self.narrow_teacher()}
      node: [[features, layer3]]
      loss: l2
    - teacher_model: self
      loss: soft_label
      temperature: 4
      alpha: 0.5
  teacher_precision: bfloat16
""")
        code, out, _ = self.train(config)
        self.assertEqual(code, 0, out)
        self.assertIn("1 adapter(s)", out)
        out_dir = self.path("out", "two-teachers.yaml")
        distillation = read_json(out_dir, "report.json")["distillation"]
        self.assertEqual(distillation["section"], "MultiTeacherDistillation")
        self.assertEqual(distillation["teacher_precision"], "bfloat16")
        self.assertEqual([t["teacher_model"] for t in distillation["teachers"]],
                         [self.narrow_teacher(), "self"])
        self.assertTrue(distillation["teachers"][0]["terms"][0]["adapter"])
        self.assert_clean_export(out_dir)


# ACT's ocr/configs/ppocrv3_rec_qat_dist.yaml ported as docs/configuration.md says: the
# model is a TorchScript file named by model_dir and model_filename, the data are HDF5
# files, and the tensor linear_43.tmp_1 (the output of the final linear layer) is the
# module path fc. The PaddleOCR keys and sections stay and are ignored with a warning.
# tests/unit/act_configs_test.cpp loads the same file.
ACT_OCR_REC = os.path.join(SOURCE_DIR, "tests", "act_configs", "ppocrv3_rec_qat_dist.yaml")


class ActConfigRun(DistillationWorkspace):
    def test_ported_ocr_recognition_config_trains_with_skd_and_l2_on_two_ranks(self):
        code, out, _ = run([os.path.join(BUILD, "slim-model"), "save", "resnet20", self.path("rec.pt")])
        self.assertEqual(code, 0, out)
        with open(ACT_OCR_REC) as f:
            config = self.write_config("act-ocr-rec.yaml", f.read())
        code, out, _ = self.train(config, "--set", "TrainConfig.train_iter=6", ranks=2)
        self.assertEqual(code, 0, out)
        for ignored in ["Global.params_filename", "Global.character_dict_path",
                        "PostProcess", "Metric", "Eval"]:
            self.assertIn(ignored + ": ignored", out)
        self.assertIn("eval at step 6", out)
        out_dir = self.path("out", "act-ocr-rec")
        report = read_json(out_dir, "report.json")
        terms = report["distillation"]["teachers"][0]["terms"]
        self.assertEqual([(t["loss"], t["student_node"], t["alpha"]) for t in terms],
                         [("skd", "fc", 1.0), ("l2", "fc", 1.0)])
        self.assertEqual(report["distillation"]["teachers"][0]["teacher_model"], "self")
        self.assertEqual(report["distillation"]["label_loss_weight"], 0)
        self.assertTrue(read_json(out_dir, "quant_table.json")["onnx_format"])
        self.assert_clean_export(out_dir)


class DistillationResume(CheckpointRuns):
    def test_two_rank_distillation_resume_is_bitwise_identical(self):
        self.check_bitwise_resume("distill-resume", 2, "1:6:sigterm", sections=SELF_DISTILLATION)


class DistillationBadInput(DistillationWorkspace):
    def distill(self, name, section):
        return self.train(self.tiny_config(name, sections=section), "--dry-run")

    def test_unknown_node_lists_the_module_paths(self):
        self.assert_fails(self.distill("bad-node.yaml", "Distillation:\n  node: [layer9]\n"), 3,
                          "node 'layer9' is not a module of the student", "layer3.2.conv2")

    def test_unmatchable_shapes_name_both(self):
        section = "Distillation:\n  node: [[layer2, layer3]]\n"
        self.assert_fails(self.distill("bad-shape.yaml", section), 3,
                          "teacher 'self' node 'layer2' gives [1, 32, 16, 16]",
                          "student node 'layer3' gives [1, 64, 8, 8]")

    def test_both_sections_are_alternatives(self):
        section = ("Distillation:\n  loss: l2\nMultiTeacherDistillation:\n"
                   "  teachers: [{teacher_model: self}]\n")
        self.assert_fails(self.distill("both.yaml", section), 2,
                          "Distillation and MultiTeacherDistillation are alternatives")

    def test_unknown_loss_gets_a_suggestion(self):
        self.assert_fails(self.distill("bad-loss.yaml", "Distillation:\n  loss: soft_lable\n"), 2,
                          "Distillation.loss", "did you mean 'soft_label'")

    def test_missing_teacher_file(self):
        section = "Distillation:\n  teacher_model: @ROOT@/missing.pt\n"
        code, out, _ = self.distill("no-teacher.yaml", section)
        self.assertEqual(code, 3, out)
        self.assertIn(os.path.join(self.dir, "missing.pt") + "' (Distillation.teacher_model)", out)
        self.assertNotIn("Global.model", out)

    def test_half_precision_teacher_on_cpu_is_refused(self):
        section = "Distillation:\n  teacher_precision: float16\n"
        self.assert_fails(self.distill("half.yaml", section), 2,
                          "Distillation.teacher_precision", "float16", "Use float32")


if __name__ == "__main__":
    unittest.main()
