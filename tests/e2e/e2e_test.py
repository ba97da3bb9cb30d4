"""End-to-end tests: the real slim-train and slim-data binaries, as a user runs them.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/e2e_test.py TrainingRun.test_two_ranks_write_all_outputs
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import h5py
import numpy as np

BUILD = os.path.abspath(os.environ.get("SLIM_BUILD_DIR", "build"))
SLIM_TRAIN = os.path.join(BUILD, "slim-train")
SLIM_DATA = os.path.join(BUILD, "slim-data")
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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

    def text_config(self, name, seq_len, per_class, sections=""):
        """Byte sequences from three license texts (one class each) under ROOT/text, and a
        config training the builtin transformer on them for 4 steps."""
        licenses = "/usr/share/common-licenses"
        files = [os.path.join(licenses, n) for n in ["Apache-2.0", "GPL-3", "MPL-2.0"]]
        code, out, _ = run([SLIM_DATA, "text", "--out", self.path("text"), "--seq-len",
                            str(seq_len), "--train-per-class", str(per_class),
                            "--eval-per-class", str(per_class // 4), *files])
        self.assertEqual(code, 0, out)
        return self.write_config(name, f"""Global:
  model: builtin:transformer
  train_data: @ROOT@/text/train.h5
  eval_data: @ROOT@/text/eval.h5
  batch_size: 16
  output_dir: @OUT@/{name}
TrainConfig:
  train_iter: 4
  learning_rate: 0.001
  optimizer_builder: {{optimizer: {{type: Adam}}}}
{sections}""")

    def tiny_config(self, name="tiny.yaml", extra_global="", extra_train="", train_iter=8,
                    sections=""):
        return self.write_config(name, f"""Global:
  model: builtin:resnet20
  train_data: @DATA@/train.h5
  eval_data: @DATA@/eval.h5
  batch_size: 16
  output_dir: @OUT@/{name}
{extra_global}TrainConfig:
  train_iter: {train_iter}
  eval_iter: 4
  logging_iter: 2
  learning_rate: 0.05
{extra_train}{sections}""")

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
        config = self.text_config("text.yaml", 64, 64)
        code, out, _ = self.train(config, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("eval at step 4", out)

    def test_saved_builtin_model_trains_from_its_file(self):
        model = self.path("mobilenet.pt")
        code, out, _ = run([os.path.join(BUILD, "slim-model"), "save", "mobilenetv2", model])
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

    def test_cuda_device_without_a_gpu(self):
        if shutil.which("nvidia-smi"):
            self.skipTest("this machine may have a GPU")
        config = self.tiny_config("cuda.yaml", extra_global="  device: cuda\n")
        self.assert_fails(self.train(config, ranks=2), 2, "Global.device", "no CUDA device",
                          "use device: cpu")

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

    def test_error_messages_carry_no_build_paths(self):
        path = self.path("not-hdf5.h5")
        with open(path, "w") as f:
            f.write("not an HDF5 file")
        code, out, _ = self.train(self.tiny_config("not-hdf5.yaml"), "--set",
                                  "Global.train_data=" + path)
        self.assertEqual(code, 3, out)
        self.assertNotIn(SOURCE_DIR, out)

    def test_key_written_twice(self):
        config = self.tiny_config("twice.yaml", sections="Global:\n  batch_size: 8\n")
        self.assert_fails(self.train(config), 2, "Global: written twice (first at line 1)")


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


class Divergence(Workspace):
    """A non-finite loss is caught at the step it happens, before any checkpoint holds it."""

    def test_diverging_optimisation_stops_before_checkpointing_nan_weights(self):
        config = self.tiny_config("diverge.yaml", train_iter=40, extra_train=(
            "  checkpoint: {every_iter: 1, keep: 100}\n"
            "  optimizer_builder: {optimizer: {type: SGD}}\n"))
        out_dir = self.path("out", "diverge")
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set",
                                  "TrainConfig.learning_rate=1.0e+6", ranks=2)
        self.assertEqual(code, 3, out)
        self.assertIn("the optimisation diverged", out)
        for name in checkpoint_files(out_dir):
            for tensor_name, values in checkpoint_tensors(
                    os.path.join(out_dir, "checkpoints", name)).items():
                if values.dtype.kind == "f":
                    self.assertTrue(np.isfinite(values).all(), f"{name}: {tensor_name}")

    def test_non_finite_input_is_a_data_error_naming_the_sample(self):
        path = self.path("float-nan.h5")
        with h5py.File(self.path("data", "train.h5"), "r") as source, h5py.File(path, "w") as f:
            inputs = source["inputs"][()].astype(np.float32)
            inputs[5, 0, 3, 3] = np.nan
            f["inputs"] = inputs
            f["labels"] = source["labels"][()]
            for key, value in source.attrs.items():
                f.attrs[key] = value
        config = self.tiny_config("nan-input.yaml", train_iter=40)
        self.assert_fails(self.train(config, "--set", "Global.train_data=" + path,
                                     "--set", "Global.augment.random_crop_padding=0"),
                          3, "sample 5 of " + path + " is NaN or infinite")


class FashionMnistData(unittest.TestCase):
    """slim-data fashion-mnist on the files of the Debian package dataset-fashion-mnist."""

    def test_converts_both_splits_with_the_published_statistics(self):
        out = tempfile.mkdtemp(prefix="slim-fmnist-")
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        code, log, _ = run([SLIM_DATA, "fashion-mnist", "--out", out])
        self.assertEqual(code, 0, log)
        for split, count in [("train", 60000), ("eval", 10000)]:
            with h5py.File(os.path.join(out, split + ".h5")) as f:
                self.assertEqual(f["inputs"].shape, (count, 1, 28, 28))
                self.assertEqual(np.bincount(f["labels"][()]).tolist(), [count // 10] * 10)
                self.assertEqual(f.attrs["class_names"][9], "ankle boot")
                # The training set's pixel statistics, as published for Fashion-MNIST.
                self.assertAlmostEqual(float(f.attrs["mean"][0]), 0.2860, places=4)
                self.assertAlmostEqual(float(f.attrs["std"][0]), 0.3530, places=4)

    def test_damaged_source_is_a_data_error_naming_the_file(self):
        source = tempfile.mkdtemp(prefix="slim-fmnist-bad-")
        self.addCleanup(shutil.rmtree, source, ignore_errors=True)
        for name in os.listdir("/usr/share/datasets/fashion-mnist"):
            shutil.copy(os.path.join("/usr/share/datasets/fashion-mnist", name), source)
        damaged = os.path.join(source, "t10k-labels-idx1-ubyte.gz")
        with open(damaged, "r+b") as f:
            f.truncate(os.path.getsize(damaged) // 2)
        code, log, _ = run([SLIM_DATA, "fashion-mnist", "--out", source, "--source", source])
        self.assertEqual(code, 3, log)
        self.assertIn(damaged, log)
        os.remove(damaged)
        code, log, _ = run([SLIM_DATA, "fashion-mnist", "--out", source, "--source", source])
        self.assertEqual(code, 3, log)
        self.assertIn("t10k-labels-idx1-ubyte[.gz] is missing", log)


class SlurmScript(unittest.TestCase):
    """scripts/slurm/train.sbatch against stand-in srun/scontrol/scancel that record their
    arguments (the real Slurm runs in the Slurm suite)."""

    def run_script(self, restart_count, exit_code, *args):
        bin_dir = tempfile.mkdtemp(prefix="slim-fake-slurm-")
        self.addCleanup(shutil.rmtree, bin_dir, ignore_errors=True)
        for tool, code in [("srun", exit_code), ("scontrol", 0), ("scancel", 0)]:
            path = os.path.join(bin_dir, tool)
            with open(path, "w") as f:
                f.write(f'#!/bin/sh\necho "{tool} $*" >> {bin_dir}/calls\nexit {code}\n')
            os.chmod(path, 0o755)
        env = dict(os.environ, PATH=bin_dir + ":" + os.environ["PATH"], SLURM_JOB_ID="42",
                   SLURM_RESTART_COUNT=str(restart_count))
        env.pop("SLIM_TRAIN", None)
        done = subprocess.run(["bash", os.path.join(SOURCE_DIR, "scripts", "slurm", "train.sbatch"),
                               "c.yaml", *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)
        with open(os.path.join(bin_dir, "calls")) as f:
            return done.returncode, f.read().splitlines()

    def test_first_run_passes_every_option(self):
        code, calls = self.run_script(0, 0, "--resume", "/r/ckpt-3.h5", "--set", "a.b=1")
        self.assertEqual(code, 0)
        self.assertEqual(calls, ["srun --kill-on-bad-exit=1 build/slim-train c.yaml --resume "
                                 "/r/ckpt-3.h5 --set a.b=1"])

    def test_requeued_run_continues_from_its_own_checkpoint(self):
        code, calls = self.run_script(2, 75, "--resume", "/r/ckpt-3.h5", "--resume-weights-only",
                                      "--resume=none", "--set", "a.b=1", "--dry-run")
        self.assertEqual(code, 75)
        self.assertEqual(calls, ["srun --kill-on-bad-exit=1 build/slim-train c.yaml --set a.b=1 "
                                 "--dry-run", "scontrol requeue 42"])


class FullDisk(Workspace):
    """Checkpoints on a file system that fills up: a tmpfs of a few MB (needs root)."""

    def small_output_dir(self, name, megabytes):
        directory = self.path(name)
        os.makedirs(directory)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                                  directory], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if mounted.returncode != 0:
            self.skipTest("mounting a tmpfs needs root: " + mounted.stdout.decode())
        self.addCleanup(subprocess.run, ["umount", directory])
        return directory

    def run_on(self, directory, name):
        # No eval set: the checkpoints (2.3 MB each) are what fills the disk.
        config = self.write_config(name, f"""Global:
  model: builtin:resnet20
  train_data: @DATA@/train.h5
  batch_size: 16
  output_dir: {directory}/out
TrainConfig:
  train_iter: 12
  logging_iter: 2
  learning_rate: 0.05
  checkpoint: {{every_iter: 3, keep: 3}}
""")
        return self.train(config, ranks=2)

    def test_failed_checkpoint_with_an_earlier_one_left_keeps_training(self):
        directory = self.small_output_dir("full-4m", 4)
        code, out, _ = self.run_on(directory, "full-4m.yaml")
        self.assertEqual(code, 0, out)
        self.assertIn("the checkpoint at step 6 could not be written", out)
        self.assertIn("No space left on device", out)
        self.assertIn("ckpt-3.h5 is still valid, so training goes on", out)
        self.assertEqual(checkpoint_files(os.path.join(directory, "out")), ["ckpt-3.h5"])
        with h5py.File(os.path.join(directory, "out", "checkpoints", "ckpt-3.h5")) as f:
            self.assertEqual(f["progress"].attrs["step"], 3)
        self.assertTrue(os.path.exists(os.path.join(directory, "out", "model.pt")), out)

    def test_failed_first_checkpoint_stops_with_the_output_error_code(self):
        directory = self.small_output_dir("full-2m", 2)
        code, out, _ = self.run_on(directory, "full-2m.yaml")
        self.assertEqual(code, 5, out)  # not a crash (134, 139) nor a hang
        self.assertIn("the checkpoint at step 3 could not be written", out)
        self.assertIn("No earlier checkpoint is left to resume from", out)
        leftovers = os.listdir(os.path.join(directory, "out", "checkpoints"))
        self.assertEqual(leftovers, [], "a partial checkpoint was left behind")


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
        self.assertNotIn("done in", out)  # rank 0 did not run on to the end
        self.assertFalse(os.path.exists(self.path("out", "fault_exit.yaml", "model.pt")), out)
        self.assertLess(seconds, 60)


def signal_rank_when(args, ranks, trigger, rank, signum):
    """Runs `args` under mpirun -np `ranks` and sends `signum` to MPI rank `rank` as soon as
    a line containing `trigger` is printed; returns (exit code, whole output)."""
    job = subprocess.Popen(["mpirun", "-np", str(ranks)] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=MPI_ENV)
    lines = []
    for line in job.stdout:
        lines.append(line)
        if trigger in line:
            os.kill(rank_process(job.pid, rank), signum)
            break
    out = "".join(lines) + job.communicate(timeout=120)[0]
    return job.returncode, out


def rank_process(launcher_pid, rank):
    """The pid of MPI rank `rank` among the descendants of `launcher_pid`, found by the rank
    Open MPI puts in each process' environment (pids say nothing of the rank order)."""
    found = {}
    for pid in subprocess.run(["pgrep", "-f", "slim-train"], stdout=subprocess.PIPE,
                              text=True).stdout.split():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        ppids = ancestors(int(pid))
        for entry in environ:
            if entry.startswith(b"OMPI_COMM_WORLD_RANK=") and launcher_pid in ppids:
                found[int(entry.split(b"=", 1)[1])] = int(pid)
    if rank not in found:
        raise AssertionError(f"no rank {rank} under process {launcher_pid}: {found}")
    return found[rank]


def ancestors(pid):
    """The parent pids of `pid` up to init."""
    chain = []
    while pid > 1:
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def checkpoint_files(out_dir):
    directory = os.path.join(out_dir, "checkpoints")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def checkpoint_tensors(path):
    """Every dataset under /model and /optimizer of a checkpoint, by path."""
    tensors = {}
    with h5py.File(path, "r") as f:
        for group in ["model", "optimizer"]:
            f[group].visititems(lambda name, obj: tensors.__setitem__(
                group + "/" + name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return tensors


def loss_lines(out_dir):
    """The metrics lines without timings: what a resumed run must reproduce."""
    return [(l["event"], l["step"], l.get("loss"), l.get("eval_loss"), l.get("eval_top1"))
            for l in metrics(out_dir)]


class CheckpointRuns(Workspace):
    """Helpers for runs that checkpoint, stop and resume; the strategy suites reuse them
    without inheriting the Checkpoints tests."""

    def ckpt_config(self, name, extra_train="", extra_global="", sections=""):
        return self.tiny_config(name, extra_global=extra_global, train_iter=16, extra_train=(
            "  checkpoint: {every_iter: 3, keep: 3}\n" + extra_train), sections=sections)

    def stop_by_signal(self, config, out_dir, fault, *args, ranks=1):
        """Runs with a sigterm fault injected and expects exit 75; returns the output."""
        env = dict(MPI_ENV, SLIMTRAIN_INJECT_FAULT=fault)
        code, out, _ = self.train(config, "--output-dir", out_dir, *args, ranks=ranks, env=env)
        self.assertEqual(code, 75, out)
        return out

    def resumed_run(self, config, out_dir, fault, ranks, *args):
        """Runs with a fault injected (expecting exit 75), then resumes; returns the output."""
        out = self.stop_by_signal(config, out_dir, fault, *args, ranks=ranks)
        self.assertIn("stopped by a signal after step 6", out)
        code, out, _ = self.train(config, "--output-dir", out_dir, *args, ranks=ranks)
        self.assertEqual(code, 0, out)
        self.assertIn("resuming from " + os.path.join(out_dir, "checkpoints", "ckpt-6.h5"), out)
        return out

    def assert_same_run(self, expected_dir, actual_dir):
        self.assertEqual(loss_lines(expected_dir), loss_lines(actual_dir))
        expected = checkpoint_tensors(os.path.join(expected_dir, "checkpoints", "ckpt-16.h5"))
        actual = checkpoint_tensors(os.path.join(actual_dir, "checkpoints", "ckpt-16.h5"))
        self.assertEqual(sorted(expected), sorted(actual))
        for name in expected:
            self.assertTrue(np.array_equal(expected[name], actual[name]), name)

    def check_bitwise_resume(self, name, ranks, fault, extra_train="", sections=""):
        config = self.ckpt_config(name + ".yaml", extra_train=extra_train, sections=sections)
        full, resumed = self.path("out", name + "-full"), self.path("out", name + "-resumed")
        code, out, _ = self.train(config, "--output-dir", full, ranks=ranks)
        self.assertEqual(code, 0, out)
        self.resumed_run(config, resumed, fault, ranks)
        self.assert_same_run(full, resumed)

    def mlp_model(self):
        """A model without BatchNorm, so the numbers do not depend on the per-rank batch."""
        model = self.path("mlp.pt")
        if not os.path.exists(model):
            script = self.write_config("mlp.py", f"""
import torch
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 32), torch.nn.ReLU(),
                        torch.nn.Linear(32, 10))
torch.jit.script(m).save({model!r})
""")
            code, out, _ = run(["/usr/bin/python3", script])
            self.assertEqual(code, 0, out)
        return model

    def check_rank_change(self, name, first_ranks, second_ranks, first_args=(), second_args=()):
        """A run stopped at step 6 on first_ranks (with first_args) and resumed on
        second_ranks (with second_args) ends as one that ran on first_ranks throughout, up
        to float summation order: the global batch stays 32 samples."""
        config = self.ckpt_config(name + ".yaml")
        batch = {1: "32", 2: "16", 4: "8"}
        model = ["--set", "Global.model=" + self.mlp_model()]
        first = [*model, *first_args, "--set", "Global.batch_size=" + batch[first_ranks]]
        second = [*model, *second_args, "--set", "Global.batch_size=" + batch[second_ranks]]
        full, resumed = self.path("out", name + "-full"), self.path("out", name + "-resumed")
        code, out, _ = self.train(config, "--output-dir", full, *first, ranks=first_ranks)
        self.assertEqual(code, 0, out)
        self.stop_by_signal(config, resumed, "0:6:sigterm", *first, ranks=first_ranks)
        code, out, _ = self.train(config, "--output-dir", resumed, *second, ranks=second_ranks)
        self.assertEqual(code, 0, out)
        self.assertIn("written by %d rank(s)" % first_ranks, out)
        self.assertNotIn("batch arithmetic changed", out)
        # Same samples in the same global batches: equal up to float summation order.
        expected, actual = loss_lines(full), loss_lines(resumed)
        self.assertEqual([l[:2] for l in expected], [l[:2] for l in actual])
        for e, a in zip(expected, actual):
            for x, y in zip(e[2:], a[2:]):
                if x is not None:
                    self.assertAlmostEqual(x, y, places=4)
        final = lambda d: checkpoint_tensors(os.path.join(d, "checkpoints", "ckpt-16.h5"))
        for key, value in final(full).items():
            np.testing.assert_allclose(final(resumed)[key], value, rtol=1e-4, atol=1e-5,
                                       err_msg=key)



class Checkpoints(CheckpointRuns):
    """Checkpoints through the real binary: exact resume, rank changes, faults, signals."""

    def test_one_rank_resume_is_bitwise_identical(self):
        # 24 micro-batches per epoch, 2 per step: epoch 1 starts at step 12.
        self.check_bitwise_resume("bitwise1", 1, "0:6:sigterm", "  accumulate_steps: 2\n")

    def test_two_rank_resume_is_bitwise_identical(self):
        # 12 batches per epoch over 2 ranks: epoch 1 starts at step 12.
        self.check_bitwise_resume("bitwise2", 2, "1:6:sigterm")

    def test_stop_checkpoint_does_not_change_the_run(self):
        # The uninterrupted run writes no checkpoint before the end; the other one stops
        # at step 6 and resumes. The stop's checkpoint must leave every rank's BatchNorm
        # statistics as they were, so both end bit for bit alike.
        config = self.ckpt_config("observe.yaml")
        full, resumed = self.path("out", "observe-full"), self.path("out", "observe-resumed")
        code, out, _ = self.train(config, "--output-dir", full, "--set",
                                  "TrainConfig.checkpoint.every_iter=0", ranks=2)
        self.assertEqual(code, 0, out)
        self.resumed_run(config, resumed, "1:6:sigterm", 2, "--set",
                         "TrainConfig.checkpoint.every_iter=0")
        self.assert_same_run(full, resumed)
        with h5py.File(os.path.join(resumed, "checkpoints", "ckpt-16.h5")) as f:
            per_rank = f["model/rank_buffers/bn1.running_mean"][()]
        self.assertEqual(per_rank.shape[0], 2)
        self.assertFalse(np.array_equal(per_rank[0], per_rank[1]))

    def test_resume_from_two_ranks_on_one(self):
        self.check_rank_change("two-to-one", 2, 1)

    def test_resume_from_one_rank_on_two(self):
        self.check_rank_change("one-to-two", 1, 2)

    def test_other_global_batch_continues_at_the_sample_offset(self):
        config = self.ckpt_config("rebatch.yaml")
        out_dir = self.path("out", "rebatch")
        self.stop_by_signal(config, out_dir, "0:6:sigterm")
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set",
                                  "Global.batch_size=32")
        self.assertEqual(code, 0, out)
        # 6 batches of 16 = sample 96 of epoch 0 = batch 3 of 32.
        self.assertIn("continuing at sample 96 of epoch 0 as step 3 (was 6)", out)

    def test_kill_during_checkpoint_write_keeps_the_previous_one(self):
        config = self.ckpt_config("killwrite.yaml")
        full, killed = self.path("out", "killwrite-full"), self.path("out", "killwrite")
        code, out, _ = self.train(config, "--output-dir", full, ranks=2)
        self.assertEqual(code, 0, out)
        env = dict(MPI_ENV, SLIMTRAIN_INJECT_FAULT="0:6:kill_in_write")
        code, out, seconds = self.train(config, "--output-dir", killed, ranks=2, env=env)
        self.assertNotEqual(code, 0, out)
        self.assertLess(seconds, 60)
        self.assertEqual(checkpoint_files(killed), ["ckpt-3.h5", "ckpt-6.h5.tmp"])
        code, out, _ = self.train(config, "--output-dir", killed, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("resuming from " + os.path.join(killed, "checkpoints", "ckpt-3.h5"), out)
        self.assertNotIn("ckpt-6.h5.tmp", checkpoint_files(killed))
        self.assert_same_run(full, killed)

    def test_damaged_checkpoints_are_detected_and_skipped(self):
        config = self.ckpt_config("damaged.yaml")
        out_dir = self.path("out", "damaged")
        self.stop_by_signal(config, out_dir, "0:9:sigterm")
        directory = os.path.join(out_dir, "checkpoints")
        self.assertEqual(checkpoint_files(out_dir), ["ckpt-3.h5", "ckpt-6.h5", "ckpt-9.h5"])
        newest, middle = os.path.join(directory, "ckpt-9.h5"), os.path.join(directory, "ckpt-6.h5")
        os.truncate(newest, os.path.getsize(newest) // 2)
        with h5py.File(middle, "r") as f:
            weight = f["model/parameters/layer3.2.conv2.weight"]
            offset = weight.id.get_offset() + 1000
        with open(middle, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0xFF]))
        self.assert_fails(self.train(config, "--output-dir", out_dir, "--resume", middle), 3,
                          "ckpt-6.h5' is damaged")
        code, out, _ = self.train(config, "--output-dir", out_dir)
        self.assertEqual(code, 0, out)
        self.assertIn("warning: skipped checkpoint '" + newest + "' is damaged", out)
        self.assertIn("warning: skipped checkpoint '" + middle + "' is damaged", out)
        self.assertIn("resuming from " + os.path.join(directory, "ckpt-3.h5"), out)

    def test_mismatched_model_is_refused_with_the_differences(self):
        config = self.ckpt_config("mismatch.yaml")
        out_dir = self.path("out", "mismatch")
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set",
                                  "TrainConfig.train_iter=3")
        self.assertEqual(code, 0, out)
        self.assert_fails(
            self.train(config, "--output-dir", out_dir, "--set", "Global.model=builtin:resnet56",
                       ranks=2),
            3, "does not match this run", "missing in the checkpoint: parameter layer1.3.conv1.weight",
            "--resume-weights-only")
        self.assert_fails(
            self.train(config, "--output-dir", out_dir, "--set",
                       "TrainConfig.optimizer_builder.optimizer.type=Adam"),
            3, "optimizer: checkpoint Momentum, config Adam")
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set",
                                  "Global.model=builtin:resnet56", "--resume-weights-only",
                                  "--set", "TrainConfig.train_iter=2")
        self.assertEqual(code, 0, out)
        self.assertIn("training starts at step 0", out)
        self.assertIn("not loaded from the checkpoint: layer1.3.conv1.weight", out)

    def test_checkpoint_is_self_describing_and_resume_none_keeps_it(self):
        config = self.ckpt_config("describe.yaml")
        out_dir = self.path("out", "describe")
        code, out, _ = self.train(config, "--output-dir", out_dir, ranks=2)
        self.assertEqual(code, 0, out)
        self.assertEqual(checkpoint_files(out_dir), ["ckpt-12.h5", "ckpt-15.h5", "ckpt-16.h5"])
        final = os.path.join(out_dir, "checkpoints", "ckpt-16.h5")
        script = f"""
import h5py, torch, numpy as np
f = h5py.File({final!r}, "r")
assert f.attrs["format"] == "slimtrain-checkpoint", f.attrs["format"]
assert f.attrs["world_size"] == 2 and f.attrs["format_version"] == 1
assert "resnet20" in f.attrs["config"]
assert f["progress"].attrs["step"] == 16 and f["trainer"].attrs["finished"] == 1
assert f["rng/cpu"].shape[0] == 2
def fletcher64(data):  # the documented checksum, computed independently
    raw = np.ascontiguousarray(data).tobytes()
    words = np.frombuffer(raw + bytes(-len(raw) % 8), "<u8")
    weights = np.arange(len(words), 0, -1, dtype=np.uint64)
    return [int(words.sum(dtype=np.uint64)), int((words * weights).sum(dtype=np.uint64))]
model = torch.jit.load({os.path.join(out_dir, "model.pt")!r})
for name, value in model.named_parameters():
    dataset = f["model/parameters/" + name]
    assert np.array_equal(dataset[()], value.detach().numpy()), name
    assert list(dataset.attrs["fletcher64"]) == fletcher64(dataset[()]), name
    assert f["optimizer/state/" + name + "/momentum_buffer"].shape == tuple(value.shape)
print("checked", len(list(model.named_parameters())))
"""
        done = subprocess.run(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout)
        self.assertIn("checked 65", done.stdout)
        code, out, _ = self.train(config, "--output-dir", out_dir, "--resume", "none",
                                  "--set", "TrainConfig.train_iter=2")
        self.assertEqual(code, 0, out)
        self.assertIn("--resume none: starting from scratch", out)
        moved = [d for d in os.listdir(out_dir) if d.startswith("checkpoints.replaced-")]
        self.assertEqual(len(moved), 1, os.listdir(out_dir))
        self.assertIn("ckpt-16.h5", os.listdir(os.path.join(out_dir, moved[0])))

    def test_slow_checkpoint_write_outlasts_the_collective_deadline(self):
        # Rank 0's write of step 3 stalls 8 s; at step 6 it waits for it while the other
        # rank waits for rank 0: under Global.io_timeout_s, not the 3 s comm_timeout_s.
        config = self.ckpt_config("slow.yaml", extra_global="  comm_timeout_s: 3\n")
        env = dict(MPI_ENV, SLIMTRAIN_INJECT_FAULT="0:3:slow_write")
        code, out, _ = self.train(config, "--output-dir", self.path("out", "slow"), ranks=2,
                                  env=env)
        self.assertEqual(code, 0, out)
        self.assertEqual(checkpoint_files(self.path("out", "slow")),
                         ["ckpt-12.h5", "ckpt-15.h5", "ckpt-16.h5"])

    def test_later_checkpoints_of_another_run_are_moved_aside_not_resumed(self):
        config = self.ckpt_config("lineage.yaml")
        out_dir = self.path("out", "lineage")
        code, out, _ = self.train(config, "--output-dir", out_dir)
        self.assertEqual(code, 0, out)
        self.assertEqual(checkpoint_files(out_dir), ["ckpt-12.h5", "ckpt-15.h5", "ckpt-16.h5"])
        newest = os.path.join(out_dir, "checkpoints", "ckpt-16.h5")
        code, out, _ = self.train(config, "--output-dir", out_dir, "--resume", newest,
                                  "--resume-weights-only", "--set", "TrainConfig.train_iter=8")
        self.assertEqual(code, 0, out)
        self.assertIn("checkpoints after step 0 belong to another run", out)
        # Pruning kept this run's own files, so a resume continues this run.
        self.assertEqual(checkpoint_files(out_dir), ["ckpt-3.h5", "ckpt-6.h5", "ckpt-8.h5"])
        moved = [d for d in os.listdir(out_dir) if d.startswith("checkpoints.replaced-")]
        self.assertEqual(len(moved), 1, os.listdir(out_dir))
        self.assertEqual(sorted(os.listdir(os.path.join(out_dir, moved[0]))),
                         ["ckpt-12.h5", "ckpt-15.h5", "ckpt-16.h5"])

    def test_ranks_that_see_different_checkpoints_stop_with_a_clear_error(self):
        # Node-local output directories: rank 0 sees the checkpoints of an earlier run,
        # rank 1 an empty directory. Every rank must take part in the agreement.
        config = self.ckpt_config("local.yaml")
        seen, empty = self.path("out", "local-0"), self.path("out", "local-1")
        code, out, _ = self.train(config, "--output-dir", seen, "--set",
                                  "TrainConfig.train_iter=3")
        self.assertEqual(code, 0, out)
        args = [config, "--set", "Global.comm_timeout_s=20"]
        code, out, seconds = run(["mpirun", "-np", "1", SLIM_TRAIN, *args, "--output-dir", seen,
                                  ":", "-np", "1", SLIM_TRAIN, *args, "--output-dir", empty])
        self.assertEqual(code, 2, out)
        self.assertIn("the ranks found different checkpoints to resume from (no checkpoint on "
                      "some, the checkpoint of step 3 on others)", out)
        self.assertLess(seconds, 60)

    def test_sigterm_to_one_rank_checkpoints_and_exits_75(self):
        config = self.ckpt_config("sigterm.yaml")
        out_dir = self.path("out", "sigterm")
        args = ["mpirun", "-np", "2", SLIM_TRAIN, config, "--output-dir", out_dir,
                "--set", "TrainConfig.train_iter=60", "--set", "TrainConfig.checkpoint.every_iter=0"]
        job = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=MPI_ENV)
        log = os.path.join(out_dir, "metrics.jsonl")
        deadline = time.monotonic() + 120
        while not (os.path.exists(log) and os.path.getsize(log) > 0):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        rank_1 = rank_process(job.pid, 1)
        os.kill(rank_1, signal.SIGTERM)
        time.sleep(0.05)
        os.kill(rank_1, signal.SIGTERM)  # a second signal must not break the write
        out, _ = job.communicate(timeout=120)
        self.assertEqual(job.returncode, 75, out)
        self.assertIn("[rank 1] warning: received Terminated", out)
        files = checkpoint_files(out_dir)
        self.assertEqual(len(files), 1, files)
        stopped_at = int(files[0][len("ckpt-"):-len(".h5")])
        self.assertLess(stopped_at, 60)
        code, out, _ = self.train(config, "--output-dir", out_dir, "--set",
                                  "TrainConfig.train_iter=60", ranks=2)
        self.assertEqual(code, 0, out)
        self.assertIn("at step %d " % stopped_at, out)
        self.assertIn("[rank 0] step 60/60", out)


if __name__ == "__main__":
    unittest.main()
