"""Slurm end to end: a real one-node cluster (scripts/slurm/local_cluster.sh: slurmctld,
slurmd and munged of Debian 12) runs scripts/slurm/train.sbatch as users would: sbatch on
two tasks, the time-limit warning, preemption by a higher-priority partition, a rank that
dies, and srun against mpirun. Each stopped run must end bitwise where an uninterrupted
mpirun run ends. Skipped, with the reason, only where the daemons cannot start.

Run by ctest, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/slurm_test.py -v SlurmJobs
"""
import os
import re
import subprocess
import time
import unittest

from e2e_test import MPI_ENV, SLIM_TRAIN, SOURCE_DIR, CheckpointRuns

CLUSTER = os.path.join(SOURCE_DIR, "scripts", "slurm", "local_cluster.sh")
TRAIN_SBATCH = os.path.join(SOURCE_DIR, "scripts", "slurm", "train.sbatch")
JOB_DEADLINE_S = 240  # any one job of these tests, generously


class SlurmJobs(CheckpointRuns):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.state = cls.path("slurm")
        done = subprocess.run([CLUSTER, "start", cls.state], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)
        if done.returncode != 0:
            super().tearDownClass()
            raise unittest.SkipTest("the Slurm daemons cannot start on this machine:\n" +
                                    done.stdout)
        cls.env = dict(MPI_ENV, SLURM_CONF=os.path.join(cls.state, "slurm.conf"),
                       SLIM_TRAIN=SLIM_TRAIN)

    @classmethod
    def tearDownClass(cls):
        subprocess.run([CLUSTER, "stop", cls.state], timeout=120)
        super().tearDownClass()

    def slurm(self, *args, env=None):
        """Runs a Slurm client command; returns its output, failing the test on an error."""
        done = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env or self.env, timeout=JOB_DEADLINE_S)
        self.assertEqual(done.returncode, 0, done.stdout)
        return done.stdout.strip()

    def submit(self, name, config, *options, fault=None):
        """sbatch of train.sbatch with 2 tasks on `config`; returns (job id, log path)."""
        log = self.path(name + ".log")
        env = dict(self.env, SLIMTRAIN_INJECT_FAULT=fault) if fault else self.env
        job = self.slurm("sbatch", "--parsable", "--nodes=1", "--ntasks=2",
                         f"--output={log}", f"--chdir={SOURCE_DIR}", *options, TRAIN_SBATCH,
                         config, "--output-dir", self.path("out", name), env=env)
        return job.split(";")[0], log

    def job_field(self, job, field):
        """`field` of `scontrol show job` for `job` (e.g. JobState, Restarts, ExitCode)."""
        text = self.slurm("scontrol", "show", "job", "-o", job)
        found = re.search(rf"\b{field}=(\S+)", text)
        return found.group(1) if found else ""

    def wait_for(self, predicate, what, timeout=JOB_DEADLINE_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        self.fail(f"timed out after {timeout} s waiting for {what}")

    def log_text(self, log):
        if not os.path.exists(log):
            return ""
        with open(log) as f:
            return f.read()

    def wait_for_end(self, job):
        """Waits until `job` is done, through any requeue, and returns its final state. A
        requeued job starts again once its step credential expires (AuthInfo=cred_expire=10
        in local_cluster.sh): releasing it earlier makes its tasks fail to launch."""
        ended = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL")
        self.wait_for(lambda: self.job_field(job, "JobState") in ended, f"job {job} to end")
        return self.job_field(job, "JobState")

    def reference(self, config):
        """The uninterrupted run of `config` on 2 ranks under mpirun."""
        out_dir = self.path("out", os.path.basename(config) + "-reference")
        if not os.path.exists(out_dir):
            code, out, _ = self.train(config, "--output-dir", out_dir, ranks=2)
            self.assertEqual(code, 0, out)
        return out_dir

    def test_batch_script_trains_on_two_tasks(self):
        config = self.ckpt_config("sbatch.yaml")
        job, log = self.submit("sbatch", config)
        self.assertEqual(self.wait_for_end(job), "COMPLETED", self.log_text(log))
        text = self.log_text(log)
        self.assertIn("on 2 rank(s)", text)
        for name in ["model.pt", "metrics.jsonl", "report.json"]:
            self.assertTrue(os.path.exists(self.path("out", "sbatch", name)), name)
        self.assert_same_run(self.reference(config), self.path("out", "sbatch"))

    def check_stop_requeue_resume(self, name, stop):
        """Submits a run whose checkpoint at step 3 stalls 8 s (the slow_write fault), calls
        `stop(job)` during the stall, and expects a checkpoint, exit 75, a requeue, a resumed
        second run, and the uninterrupted run's result bitwise. Returns the log text."""
        config = self.ckpt_config(name + ".yaml")
        job, log = self.submit(name, config, fault="0:3:slow_write")
        self.wait_for(lambda: "step 2/16" in self.log_text(log), "step 2")
        stop(job)
        self.assertEqual(self.wait_for_end(job), "COMPLETED", self.log_text(log))
        text = self.log_text(log)
        self.assertIn("requeueing job " + job, text)
        self.assertEqual(self.job_field(job, "Restarts"), "1", text)
        self.assertIn("requeued (restart 1): continuing with --resume auto", text)
        self.assertRegex(text, r"resuming from \S+ckpt-\d+\.h5")
        self.assert_same_run(self.reference(config), self.path("out", name))
        return text

    def test_time_limit_warning_checkpoints_requeues_and_resumes(self):
        # What --signal=B:USR1@120 delivers before the time limit, sent now.
        self.check_stop_requeue_resume(
            "usr1", lambda job: self.slurm("scancel", "--batch", "--signal=USR1", job))

    def test_preemption_by_a_higher_priority_partition(self):
        def preempt(job):
            # Every CPU of the node for one second, in the partition that preempts `train`.
            self.slurm("sbatch", "--parsable", "--partition=urgent", "--ntasks=4",
                       f"--output={self.path('urgent.log')}", "--wrap", "sleep 1")
        text = self.check_stop_requeue_resume("preempted", preempt)
        self.assertIn("stopped after a checkpoint", text)

    def test_dead_rank_ends_the_step_and_a_requeue_resumes(self):
        config = self.ckpt_config("dead.yaml")
        start = time.monotonic()
        job, log = self.submit("dead", config, fault="1:5:exit")
        self.assertEqual(self.wait_for_end(job), "FAILED", self.log_text(log))
        self.assertLess(time.monotonic() - start, 120, self.log_text(log))
        job, log = self.submit("dead", config)
        self.assertEqual(self.wait_for_end(job), "COMPLETED", self.log_text(log))
        self.assertRegex(self.log_text(log), r"resuming from \S+ckpt-3\.h5")
        self.assert_same_run(self.reference(config), self.path("out", "dead"))

    def test_srun_with_four_tasks_agrees_with_mpirun(self):
        config = self.ckpt_config("four.yaml")
        out = self.slurm("srun", "--ntasks=4", "--mpi=pmix", SLIM_TRAIN, config,
                         "--output-dir", self.path("out", "four-srun"))
        self.assertIn("on 4 rank(s)", out)
        code, out, _ = self.train(config, "--output-dir", self.path("out", "four-mpirun"),
                                  ranks=4)
        self.assertEqual(code, 0, out)
        self.assert_same_run(self.path("out", "four-mpirun"), self.path("out", "four-srun"))


if __name__ == "__main__":
    unittest.main()
