"""End-to-end tests of ZeRO stage 1 (TrainConfig.sharding_config) through the real binary:
sharded runs are unsharded runs bit for bit, with each rank holding its share of the
optimizer state; they resume exactly, on other rank counts and without sharding, and with
the strategies that add parameters (QuantAware's PACT alphas), mask the optimizer state
(UnstructurePrune, ASPPrune) or change the model's structure (ChannelPrune, ResRep,
TransformerPrune).

    SLIM_BUILD_DIR=build python3 tests/e2e/sharding_test.py -v ShardingRun
"""
import unittest

from channel_prune_test import ITERATIVE
from distillation_test import SELF_DISTILLATION
from e2e_test import CheckpointRuns
from prune_test import GMP
from quantization_test import QAT, read_json
from resrep_test import RESREP
from transformer_prune_test import PytorchEncoderRuns

SHARDED = ["--set", "TrainConfig.sharding_config.stage=1"]


class ShardingRuns(CheckpointRuns):
    """The helper the sharding suites share, without tests of its own."""

    def check_sharding_changes_nothing(self, name, ranks, args=(), sections=""):
        """Trains one config unsharded and sharded on `ranks`; both runs must match bit for
        bit (metrics and the final checkpoint, optimizer state included). Returns both
        reports."""
        config = self.ckpt_config(name + ".yaml", sections=sections)
        reports = []
        for label, sharding in [("plain", []), ("sharded", SHARDED)]:
            out_dir = self.path("out", f"{name}-{label}")
            code, out, _ = self.train(config, "--output-dir", out_dir, *args, *sharding,
                                      ranks=ranks)
            self.assertEqual(code, 0, out)
            reports.append(read_json(out_dir, "report.json"))
        self.assertIn("ZeRO stage 1: the optimizer state is sharded over %d rank(s)" % ranks, out)
        self.assert_same_run(self.path("out", name + "-plain"), self.path("out", name + "-sharded"))
        return reports


class ShardingRun(ShardingRuns):
    def test_momentum_on_two_ranks_and_adamw_on_four_with_clipping_and_accumulation(self):
        plain, sharded = self.check_sharding_changes_nothing("zero-momentum", 2)
        self.assertEqual(sharded["sharding_stage"], 1)
        whole = plain["memory"]["optimizer_state_mb"]
        shares = sharded["memory"]["optimizer_state_mb"]
        self.assertEqual(len(shares), 2)
        self.assertAlmostEqual(sum(shares), whole[0], places=6)
        for share in shares:
            self.assertLess(share, 0.75 * whole[0])
        self.assertTrue(all(rss > 0 for rss in sharded["memory"]["peak_rss_mb"]))
        self.check_sharding_changes_nothing("zero-adamw", 4, [
            "--set", "TrainConfig.optimizer_builder.optimizer.type=AdamW",
            "--set", "TrainConfig.optimizer_builder.grad_clip=0.5",
            "--set", "TrainConfig.accumulate_steps=2", "--set", "Global.batch_size=8"])

    def test_refuses_stages_it_does_not_have(self):
        config = self.tiny_config("zero-stage2.yaml")
        self.assert_fails(self.train(config, "--set", "TrainConfig.sharding_config.stage=2"), 2,
                          "TrainConfig.sharding_config.stage: stage 2 is not supported "
                          "(stage 2/3 not supported)")


class ShardingResume(CheckpointRuns):
    def test_sharded_resume_is_bitwise_identical(self):
        self.check_bitwise_resume("zero-resume", 2, "1:6:sigterm",
                                  extra_train="  sharding_config: {stage: 1}\n")

    def test_sharded_checkpoint_resumes_unsharded_on_one_rank(self):
        self.check_rank_change("zero-to-plain", 2, 1, first_args=SHARDED)

    def test_two_ranks_resume_sharded_on_four(self):
        self.check_rank_change("zero-two-to-four", 2, 4, second_args=SHARDED)


SHARDED_TRAIN = "  sharding_config: {stage: 1}\n"


class ShardingStrategies(ShardingRuns, PytorchEncoderRuns):
    def test_quant_aware_with_distillation_resumes_bitwise(self):
        self.check_bitwise_resume("zero-qat-distill", 2, "1:6:sigterm",
                                  extra_train="  sharding_config: {stage: 1}\n",
                                  sections=QAT + SELF_DISTILLATION)

    def test_gradual_magnitude_pruning_is_unsharded_pruning_bit_for_bit(self):
        # The masks zero each rank's share of the momentum; the pruned weights stay zero.
        plain, sharded = self.check_sharding_changes_nothing("zero-gmp", 2, sections=GMP)
        self.assertEqual(sharded["sparsity"], plain["sparsity"])

    def test_channel_pruning_during_training_is_unsharded_pruning_bit_for_bit(self):
        # Eight rises reshape the parameters during the run; the state follows each time.
        plain, sharded = self.check_sharding_changes_nothing("zero-prune", 2, sections=ITERATIVE)
        self.assertEqual(sharded["channel_prune"]["rises_done"], 8)
        self.assertLess(max(sharded["memory"]["optimizer_state_mb"]),
                        plain["memory"]["optimizer_state_mb"][0])

    def test_pruning_strategies_resume_bitwise(self):
        # Each is stopped at step 6 and resumed with its masks, compactors or removed
        # channels, and each rank's share of the optimizer state, as they were.
        for name, sections in [("zero-asp", "ASPPrune:\n"), ("zero-resrep", RESREP),
                               ("zero-prune-resume", ITERATIVE)]:
            with self.subTest(strategy=name):
                self.check_bitwise_resume(name, 2, "1:6:sigterm", extra_train=SHARDED_TRAIN,
                                          sections=sections)

    def test_transformer_pruning_resumes_bitwise(self):
        out = self.check_pruned_encoder_resume("zero-tp", extra_train=SHARDED_TRAIN)
        self.assertIn("ZeRO stage 1: the optimizer state is sharded over 2 rank(s)", out)

if __name__ == "__main__":
    unittest.main()
