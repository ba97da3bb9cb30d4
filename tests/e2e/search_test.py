"""End-to-end tests of HyperParameterOptimization (the post-training quantization search)
through the real slim-train binary under mpirun.

Run by ctest, one test per case, e.g.:
    SLIM_BUILD_DIR=build python3 tests/e2e/search_test.py QuantSearchRun
"""
import json
import os
import signal
import unittest

from e2e_test import MPI_ENV, SLIM_TRAIN, Workspace, signal_rank_when
from quantization_test import read_json, stock_torch_eval


def trial_log(out_dir):
    with open(os.path.join(out_dir, "hpo", "trials.jsonl")) as f:
        return [json.loads(line) for line in f]


class SearchWorkspace(Workspace):
    def search_config(self, name, section):
        return self.write_config(name + ".yaml", f"""Global:
  model: builtin:resnet20
  train_data: @DATA@/train.h5
  eval_data: @DATA@/eval.h5
  batch_size: 8
  eval_batch_size: 16
  output_dir: @OUT@/{name}
QuantPost:
  batch_size: 8
HyperParameterOptimization:
  ptq_algo: [abs_max, avg, hist, mse, KL]
  bias_correct: [true, false]
  hist_percent: [0.98, 0.9999]
  batch_num: [2, 6]
{section}""")

    def search(self, name, ranks, section, expect=0, env=None):
        config = self.search_config(name, section)
        code, out, _ = self.train(config, ranks=ranks, env=env)
        if expect is not None:
            self.assertEqual(code, expect, out)
        return self.path("out", name), out

    def assert_complete_log(self, records, count):
        self.assertEqual(sorted(r["trial"] for r in records), list(range(count)))
        for record in records:
            self.assertFalse(record["failed"], record)
            self.assertGreater(record["objective"], 0)
            self.assertEqual(set(record["params"]),
                             {"ptq_algo", "bias_correct", "weight_quantize_type", "hist_percent",
                              "batch_num"})

    def assert_chosen_model_exported(self, out_dir):
        """The kept trial is the smallest objective, its model is model.pt, and stock
        PyTorch gets the top-1 the search measured for it."""
        records = trial_log(out_dir)
        report = read_json(out_dir, "report.json")["hpo"]
        best = min(records, key=lambda r: (r["objective"], r["trial"]))
        self.assertEqual(report["chosen_trial"], best["trial"])
        self.assertEqual(report["exported_trial"], best["trial"])
        self.assertEqual(read_json(out_dir, "hpo", "best.json")["trial"], best["trial"])
        theirs = stock_torch_eval(os.path.join(out_dir, "model.pt"), self.path("data", "eval.h5"))
        self.assertEqual(theirs["foreign_ops"], [])
        self.assertAlmostEqual(theirs["top1"], best["top1"], delta=1e-9)
        for name in ["summary.md", "objective.png", "pareto.png"]:
            self.assertTrue(os.path.exists(os.path.join(out_dir, "hpo", name)), name)
        return best


class QuantSearchRun(SearchWorkspace):
    def test_groups_run_trials_in_parallel_and_choose_as_one_rank_does(self):
        section = "  sampler: random\n  seed: 4\n  max_quant_count: 5\n"
        runs = {}
        for name, ranks, group in [("one", 1, 1), ("pairs", 4, 2), ("singles", 4, 1)]:
            out_dir, out = self.search(name, ranks, section + f"  trial_group_size: {group}\n")
            self.assertIn(f"in {ranks // group} group(s) of {group} rank(s)", out)
            records = trial_log(out_dir)
            self.assert_complete_log(records, 5)
            runs[name] = (records, self.assert_chosen_model_exported(out_dir))
        one_records, one_best = runs["one"]
        by_trial = {r["trial"]: r for r in one_records}
        for name in ["pairs", "singles"]:
            records, best = runs[name]
            self.assertEqual(best["trial"], one_best["trial"], name)
            for record in records:
                reference = by_trial[record["trial"]]
                self.assertEqual(record["params"], reference["params"], name)
                self.assertAlmostEqual(record["objective"], reference["objective"],
                                       delta=1e-9 * reference["objective"])
            groups = {r["group"] for r in records}
            self.assertEqual(len(groups), 2 if name == "pairs" else 4, (name, records))

    def test_tpe_search_learns_from_every_finished_trial(self):
        out_dir, out = self.search("tpe", 2, "  max_quant_count: 6\n  objective: metric\n"
                                   "  accuracy_criterion: {absolute: 0.5}\n")
        records = trial_log(out_dir)
        self.assertEqual(sorted(r["trial"] for r in records), list(range(6)))
        for position, record in enumerate(records):  # in the order they finished
            self.assertLessEqual(record["learnt_from"], position, record)
            self.assertTrue(record["passed"])
        self.assertEqual(records[0]["learnt_from"], 0)
        self.assertGreater(records[-1]["learnt_from"], 0)
        report = read_json(out_dir, "report.json")
        self.assertIn("smallest model", report["hpo"]["selection"])
        self.assertEqual(report["hpo"]["stopped_by"], "max_quant_count")
        self.assertIn("model.pt", [f["file"] for f in report["exports"]])


class QuantSearchResume(SearchWorkspace):
    SECTION = "  seed: 3\n  max_quant_count: 5\n  trial_group_size: 2\n"

    def test_killed_search_resumes_without_repeats_and_the_same_choice(self):
        whole, _ = self.search("whole", 2, self.SECTION)
        env = dict(MPI_ENV, SLIMTRAIN_INJECT_FAULT="1:4:exit")
        killed, _ = self.search("killed", 2, self.SECTION, expect=None, env=env)
        self.assertEqual(len(trial_log(killed)), 3)
        resumed, out = self.search("killed", 2, self.SECTION)
        self.assertIn("3 trial(s) finished", out)
        expected = {r["trial"]: r["params"] for r in trial_log(whole)}
        records = trial_log(resumed)
        self.assert_complete_log(records, 5)
        self.assertEqual({r["trial"]: r["params"] for r in records}, expected)
        self.assertEqual(self.assert_chosen_model_exported(resumed)["trial"],
                         self.assert_chosen_model_exported(whole)["trial"])

    def test_sigterm_stops_with_75_keeping_the_best_model_and_the_search_resumes(self):
        config = self.search_config("signal", self.SECTION)
        code, out = signal_rank_when([SLIM_TRAIN, config], 2, "is the best so far", 1,
                                     signal.SIGTERM)
        self.assertEqual(code, 75, out)
        out_dir = self.path("out", "signal")
        logged = trial_log(out_dir)
        self.assertGreaterEqual(len(logged), 1)
        self.assertLess(len(logged), 5)
        self.assertIn(read_json(out_dir, "hpo", "best.json")["trial"], [r["trial"] for r in logged])
        self.assertTrue(os.path.exists(os.path.join(out_dir, "model.pt")))
        _, out = self.search("signal", 2, self.SECTION)
        self.assertIn(f"{len(logged)} trial(s) finished", out)
        self.assert_complete_log(trial_log(out_dir), 5)
        self.assert_chosen_model_exported(out_dir)

    def test_resume_under_other_settings_is_refused_and_resume_none_starts_afresh(self):
        self.search("changed", 1, "  max_quant_count: 2\n")
        _, out = self.search("changed", 1, "  weight_quantize_type: [abs_max]\n  max_quant_count: 3\n", expect=2)
        self.assertIn("outside this config's search space", out)
        self.assertIn("--resume none", out)
        _, out = self.search("changed", 1, "  objective: metric\n  max_quant_count: 3\n", expect=2)
        self.assertIn('was searched with {"accuracy_criterion":null,"objective":"emd"', out)
        out_dir = self.path("out", "changed")
        self.train(self.path("changed.yaml"), "--resume", "none")
        moved = [d for d in os.listdir(out_dir) if d.startswith("hpo.moved-")]
        self.assertEqual(len(moved), 1)
        self.assertEqual(len(trial_log(out_dir)), 3)
        with open(os.path.join(out_dir, moved[0], "trials.jsonl")) as f:
            self.assertEqual(len(f.readlines()), 2)

    def test_time_budget_stops_the_search_and_keeps_the_best_model(self):
        out_dir, _ = self.search("budget", 1, "  max_quant_count: 50\n  time_budget_minutes: 0.0001\n")
        records = trial_log(out_dir)
        self.assertLess(len(records), 50)
        self.assertEqual(read_json(out_dir, "report.json")["hpo"]["stopped_by"],
                         "time_budget_minutes")
        self.assert_chosen_model_exported(out_dir)


class QuantSearchBadInput(SearchWorkspace):
    def refused(self, name, text, *fragments, ranks=1):
        config = self.write_config(name + ".yaml", f"""Global:
  model: builtin:resnet20
  train_data: @DATA@/train.h5
  eval_data: @DATA@/eval.h5
  output_dir: @OUT@/{name}
{text}""")
        self.assert_fails(self.train(config, ranks=ranks), 2, *fragments)

    def test_search_without_quant_post(self):
        self.refused("alone", "HyperParameterOptimization:\n  max_quant_count: 3\n",
                     "HyperParameterOptimization needs a QuantPost section")

    def test_bad_candidates_ranges_and_samplers_name_the_key(self):
        for name, line, fragment in [
                ("empty", "ptq_algo: []", "HyperParameterOptimization.ptq_algo: the candidate list is empty"),
                ("range", "hist_percent: [0.999, 0.98]", "HyperParameterOptimization.hist_percent: the range's low end"),
                ("sampler", "sampler: smac", "HyperParameterOptimization.sampler"),
                ("algo", "ptq_algo: [hist, kl]", "HyperParameterOptimization.ptq_algo")]:
            self.refused(name, f"QuantPost:\nHyperParameterOptimization:\n  {line}\n", fragment)

    def test_groups_that_do_not_divide_the_ranks(self):
        self.refused("groups", "QuantPost:\nHyperParameterOptimization:\n  trial_group_size: 2\n",
                     "trial_group_size: 3 ranks do not split into groups of 2", ranks=3)


if __name__ == "__main__":
    unittest.main()
