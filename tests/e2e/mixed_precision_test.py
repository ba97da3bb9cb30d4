"""End-to-end tests of automatic mixed precision (TrainConfig.amp_config) through the real
binary: bfloat16 autocast on the CPU trains close to float32, resumes bit for bit, works
with quantization-aware training and distillation, and float16 on the CPU is refused.

    SLIM_BUILD_DIR=build python3 tests/e2e/mixed_precision_test.py -v MixedPrecisionRun
"""
import unittest

from distillation_test import SELF_DISTILLATION
from e2e_test import CheckpointRuns, loss_lines, run
from quantization_test import QAT, read_json

BFLOAT16 = "  amp_config: {dtype: bfloat16}\n"


class MixedPrecisionRun(CheckpointRuns):
    def test_bfloat16_trains_like_float32_and_resumes_bitwise(self):
        self.check_bitwise_resume("amp-resume", 2, "1:6:sigterm", extra_train=BFLOAT16)
        out_dir = self.path("out", "amp-resume-full")
        report = read_json(out_dir, "report.json")
        self.assertEqual(report["autocast_dtype"], "BFloat16")
        plain = self.path("out", "amp-float32")
        code, out, _ = self.train(self.ckpt_config("amp-resume.yaml", extra_train=BFLOAT16),
                                  "--output-dir", plain, "--set", "TrainConfig.amp_config.enable=false",
                                  ranks=2)
        self.assertEqual(code, 0, out)
        self.assertEqual(read_json(plain, "report.json")["autocast_dtype"], "Float")
        amp_losses = [l[2] for l in loss_lines(out_dir) if l[0] == "train"]
        float_losses = [l[2] for l in loss_lines(plain) if l[0] == "train"]
        self.assertNotEqual(amp_losses, float_losses)
        # bfloat16 keeps 8 bits of mantissa: the first steps agree closely, and the runs
        # drift apart but stay alike on average.
        self.assertAlmostEqual(amp_losses[0], float_losses[0], delta=0.02 * float_losses[0])
        mean = lambda values: sum(values) / len(values)
        self.assertAlmostEqual(mean(amp_losses), mean(float_losses), delta=0.05 * mean(float_losses))

    def test_quant_aware_training_with_distillation_under_autocast(self):
        self.check_bitwise_resume("amp-qat-distill", 2, "1:6:sigterm", extra_train=BFLOAT16,
                                  sections=QAT + SELF_DISTILLATION)

    def test_an_op_without_a_bfloat16_kernel_is_a_config_error(self):
        # LibTorch 1.13 has no bfloat16 backward of ReLU6 (hardtanh) on the CPU, which
        # MobileNetV2 uses: the run must say so and name the key, not fail in LibTorch.
        model = self.path("relu6.pt")
        script = self.write_config("relu6.py", f"""
import torch
m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU6(), torch.nn.Flatten(),
                        torch.nn.Linear(8 * 30 * 30, 10))
torch.jit.script(m).save({model!r})
""")
        code, out, _ = run(["/usr/bin/python3", script])
        self.assertEqual(code, 0, out)
        config = self.tiny_config("amp-relu6.yaml", extra_train=BFLOAT16)
        self.assert_fails(self.train(config, "--set", "Global.model=" + model, ranks=2), 2,
                          "TrainConfig.amp_config: the model uses an op that this LibTorch "
                          "cannot run in BFloat16", "amp_config: {enable: false}")

    def test_float16_on_the_cpu_is_refused(self):
        config = self.tiny_config("amp-fp16.yaml", extra_train="  amp_config: {dtype: float16}\n")
        self.assert_fails(self.train(config), 2, "TrainConfig.amp_config.dtype: float16 autocast "
                          "needs a CUDA device", "use dtype: bfloat16")


if __name__ == "__main__":
    unittest.main()
