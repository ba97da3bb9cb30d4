"""End-to-end tests: the real slim-train and slim-data binaries, as a user runs them.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/e2e_test.py TrainingRun.test_two_ranks_write_all_outputs
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import h5py
import numpy as np

BUILD = os.path.abspath(os.environ.get("SLIM_BUILD_DIR", "build"))
SLIM_TRAIN = os.path.join(BUILD, "slim-train")
SLIM_DATA = os.path.join(BUILD, "slim-data")
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
MPI_ENV.pop("SLIMTRAIN_INJECT_FAULT", None)


def run(args, ranks=None, env=None, timeout=300):
    """Runs a command (under mpirun -np ranks when given); returns (code, output, seconds)."""
    if ranks:
        args = ["mpirun", "-np", str(ranks)] + args
    start = time.monotonic()
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env or MPI_ENV, timeout=timeout)
    return done.returncode, done.stdout, time.monotonic() - start


class Workspace(unittest.TestCase):
    """A temporary directory with a small generated image set."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="slim-e2e-")
        code, out, _ = run([SLIM_DATA, "images", "--out", cls.path("data"), "--train", "384",
                            "--eval", "96", "--seed", "5"])
        assert code == 0, out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, *parts):
        return os.path.join(cls.dir, *parts)

    def write_config(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text.replace("@DATA@", self.path("data")).replace("@OUT@", self.path("out"))
                    .replace("@ROOT@", self.dir))
        return path

    def tiny_config(self, name="tiny.yaml", extra_global="", extra_train=""):
        return self.write_config(name, f"""Global:
  model: builtin:resnet20
  train_data: @DATA@/train.h5
  eval_data: @DATA@/eval.h5
  batch_size: 16
  output_dir: @OUT@/{name}
{extra_global}TrainConfig:
  train_iter: 8
  eval_iter: 4
  logging_iter: 2
  learning_rate: 0.05
{extra_train}""")

    def train(self, config, *args, ranks=1, env=None):
        return run([SLIM_TRAIN, config, *args], ranks=ranks, env=env)

    def assert_fails(self, result, code, *fragments):
        actual, out, _ = result
        self.assertEqual(actual, code, out)
        for fragment in fragments:
            self.assertIn(fragment, out)


def metrics(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def torch_eval(model_path, inputs_path):
    """Loads model.pt in stock PyTorch and returns its logits on the first 4 eval samples."""
    script = f"""
import torch, h5py, numpy as np
f = h5py.File({inputs_path!r})
x = torch.from_numpy(f['inputs'][:4].astype(np.float32) / 255)
mean = torch.tensor(f.attrs['mean']).view(1, -1, 1, 1)
std = torch.tensor(f.attrs['std']).view(1, -1, 1, 1)
m = torch.jit.load({model_path!r})
m.eval()
with torch.no_grad():
    print(m((x - mean) / std).shape)
"""
    return subprocess.run(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


class TrainingRun(Workspace):
    def test_two_ranks_write_all_outputs(self):
        config = self.tiny_config()
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("[rank 0] step 8/8", out)
        self.assertNotIn("[rank 1] step", out)  # progress from rank 0 only
        out_dir = self.path("out", "tiny.yaml")
        for name in ["config.resolved.yaml", "metrics.jsonl", "model.pt", "model_best.pt",
                     "report.json"]:
            self.assertTrue(os.path.isfile(os.path.join(out_dir, name)), name)
        lines = metrics(out_dir)
        train_lines = [l for l in lines if l["event"] == "train"]
        eval_lines = [l for l in lines if l["event"] == "eval"]
        self.assertEqual([l["step"] for l in train_lines], [2, 4, 6, 8])
        for line in train_lines:
            for key in ["step", "epoch", "loss", "lr", "samples_per_s"]:
                self.assertIn(key, line)
        self.assertEqual([l["step"] for l in eval_lines], [4, 8])
        self.assertTrue(0 <= eval_lines[-1]["eval_top1"] <= 1)
        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)
        self.assertEqual(report["ranks"], 2)
        self.assertEqual(report["steps"], 8)
        self.assertEqual(report["global_batch"], 32)
        self.assertEqual(report["parameters"], 272474)
        self.assertAlmostEqual(report["final"]["eval_top1"], eval_lines[-1]["eval_top1"])
        with open(os.path.join(out_dir, "config.resolved.yaml")) as f:
            resolved = f.read()
        self.assertIn("eval_batch_size: 16", resolved)
        loaded = torch_eval(os.path.join(out_dir, "model.pt"), self.path("data", "eval.h5"))
        self.assertEqual(loaded.returncode, 0, loaded.stdout)
        self.assertIn("torch.Size([4, 10])", loaded.stdout)

    def test_one_rank_runs_are_bitwise_repeatable(self):
        config = self.tiny_config("repeat.yaml", extra_global="  seed: 7\n")
        runs = []
        for attempt in range(2):
            out_dir = self.path("out", f"repeat{attempt}")
            code, out, _ = self.train(config, "--output-dir", out_dir)
            self.assertEqual(code, 0, out)
            runs.append([(l["step"], l.get("loss"), l.get("eval_loss")) for l in metrics(out_dir)])
        self.assertEqual(runs[0], runs[1])

    def test_accumulation_and_schedule_options_train(self):
        config = self.tiny_config("accumulate.yaml", extra_train="""  accumulate_steps: 2
  optimizer_builder:
    optimizer: {type: AdamW}
    weight_decay: 0.01
    grad_clip: {type: ClipGradByGlobalNorm, clip_norm: 1.0}
""")
        code, out, _ = self.train(config, "--set", "TrainConfig.learning_rate=0.001", ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("8 steps of 64 samples", out)

    def test_text_transformer(self):
        licenses = "/usr/share/common-licenses"
        files = [os.path.join(licenses, n) for n in ["Apache-2.0", "GPL-3", "MPL-2.0"]]
        code, out, _ = run([SLIM_DATA, "text", "--out", self.path("text"), "--seq-len", "64",
                            "--train-per-class", "64", "--eval-per-class", "16", *files])
        self.assertEqual(code, 0, out)
        config = self.write_config("text.yaml", """Global:
  model: builtin:transformer
  train_data: @ROOT@/text/train.h5
  eval_data: @ROOT@/text/eval.h5
  batch_size: 16
  output_dir: @OUT@/text
TrainConfig:
  train_iter: 4
  learning_rate: 0.001
  optimizer_builder: {optimizer: {type: Adam}}
""")
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("eval at step 4", out)

    def test_saved_builtin_model_trains_from_its_file(self):
        model = self.path("mobilenet.pt")
        code, out, _ = run([os.path.join(BUILD, "slim-model"), "mobilenetv2", model])
        self.assertEqual(code, 0, out)
        config = self.tiny_config("fromfile.yaml")
        code, out, _ = self.train(config, "--set", "Global.model=" + model,
                                  "--set", "TrainConfig.train_iter=2", ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("eval at step 2", out)

    def test_dry_run_prints_plan_and_trains_nothing(self):
        config = self.tiny_config("dry.yaml")
        code, out, _ = self.train(config, "--dry-run", ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("# resolved configuration", out)
        self.assertIn("steps: 8 of 32 samples", out)
        self.assertIn("272474 parameters", out)
        self.assertFalse(os.path.exists(self.path("out", "dry.yaml")))


class BadInput(Workspace):
    def test_help_and_version(self):
        code, out, _ = run([SLIM_TRAIN, "--help"])
        self.assertEqual(code, 0)
        self.assertIn("exit codes", out)
        code, out, _ = run([SLIM_TRAIN, "--version"])
        self.assertEqual(code, 0)
        self.assertIn("slim-train", out)

    def test_unknown_option(self):
        self.assert_fails(run([SLIM_TRAIN, "x.yaml", "--dry-rn"]), 2, "did you mean --dry-run")

    def test_malformed_yaml(self):
        config = self.write_config("malformed.yaml", "Global:\n  model: [oops\n")
        self.assert_fails(self.train(config), 2, "malformed.yaml:", "malformed YAML")

    def test_unknown_key_with_suggestion(self):
        config = self.tiny_config("typo.yaml", extra_train="  epoch: 3\n")
        self.assert_fails(self.train(config, ranks=2), 2, "typo.yaml:12", "TrainConfig.epoch",
                          "did you mean 'epochs'")

    def test_wrong_type(self):
        config = self.tiny_config("type.yaml", extra_global="  seed: abc\n")
        self.assert_fails(self.train(config), 2, "Global.seed", "expected an integer")

    def test_missing_config_file(self):
        self.assert_fails(run([SLIM_TRAIN, self.path("absent.yaml")]), 2, "cannot be read")

    def test_missing_model_file(self):
        config = self.tiny_config("nomodel.yaml")
        self.assert_fails(self.train(config, "--set", "Global.model=" + self.path("none.pt")), 3,
                          "none.pt", "cannot be read")

    def test_unknown_builtin_model(self):
        config = self.tiny_config("builtin.yaml")
        self.assert_fails(self.train(config, "--set", "Global.model=builtin:resnet18"), 2,
                          "resnet20, resnet56")

    def test_missing_data_file(self):
        config = self.tiny_config("nodata.yaml")
        self.assert_fails(self.train(config, "--set", "Global.train_data=absent.h5"), 3,
                          "absent.h5", "cannot be read")

    def test_data_with_wrong_layout(self):
        path = self.path("flat.h5")
        with h5py.File(path, "w") as f:
            f["inputs"] = np.zeros((10, 3, 32), np.uint8)
            f["labels"] = np.zeros(10, np.int64)
            f.attrs["kind"] = "image"
        config = self.tiny_config("layout.yaml")
        self.assert_fails(self.train(config, "--set", "Global.train_data=" + path), 3,
                          "flat.h5", "/inputs has 3 dimensions", "docs/data-format.md")

    def test_label_out_of_range(self):
        path = self.path("labels.h5")
        shutil.copy(self.path("data", "train.h5"), path)
        with h5py.File(path, "r+") as f:
            f["labels"][7] = 10
        config = self.tiny_config("labels.yaml")
        self.assert_fails(self.train(config, "--set", "Global.train_data=" + path, ranks=2), 3,
                          "label 10 of sample 7 is out of range")

    def test_model_output_does_not_match_classes(self):
        model = self.path("five.pt")
        script = self.write_config("five.py", f"""
import torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 5)
    def forward(self, x):
        return self.fc(x.flatten(1))
torch.jit.script(M()).save({model!r})
""")
        code, out, _ = run(["/usr/bin/python3", script])
        self.assertEqual(code, 0, out)
        config = self.tiny_config("five.yaml")
        self.assert_fails(self.train(config, "--set", "Global.model=" + model), 3,
                          "returned shape [1, 5]", "10 classes")


class RankFailure(Workspace):
    """A rank that dies, hangs or raises ends the whole job within a bounded time."""

    def run_with_fault(self, mode):
        config = self.tiny_config(f"fault_{mode}.yaml", extra_global="  comm_timeout_s: 5\n")
        env = dict(MPI_ENV, SLIMTRAIN_INJECT_FAULT=f"1:3:{mode}")
        return self.train(config, ranks=2, env=env)

    def test_rank_that_raises_aborts_the_job(self):
        code, out, seconds = self.run_with_fault("raise")
        self.assertEqual(code, 3, out)
        self.assertIn("[rank 1] error: fault injected", out)
        self.assertLess(seconds, 60)

    def test_rank_that_hangs_is_detected_by_the_deadline(self):
        code, out, seconds = self.run_with_fault("hang")
        self.assertEqual(code, 4, out)
        self.assertIn("did not complete within 5 s", out)
        self.assertLess(seconds, 60)

    def test_rank_that_dies_ends_the_job(self):
        code, out, seconds = self.run_with_fault("exit")
        self.assertNotEqual(code, 0, out)
        self.assertRegex(out, r"Process name: \[\[\d+,1\],1\]")
        self.assertLess(seconds, 60)


if __name__ == "__main__":
    unittest.main()
