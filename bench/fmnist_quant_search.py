"""SlimTrain's post-training quantization search (HyperParameterOptimization) on one
trained FP32 Fashion-MNIST model, against random search and Optuna's TPE:

    /usr/bin/python3 bench/fmnist_quant_search.py --build build --model FLOAT.pt --data DIR \\
        --out OUTDIR [--quick] [--seeds 1 2 3] [--budgets 10 20] [--eval-samples 2000]
        [--samplers tpe random optuna] [--parts throughput quality outcome]

FLOAT.pt and DIR as for fmnist_quant.py. Every search scores a trial by ACT's emd objective
on the eval images (a subset of --eval-samples) over this space: ptq_algo [KL, hist, avg,
mse, abs_max], bias_correct [true, false], weight_quantize_type [channel_wise_abs_max,
abs_max], hist_percent [0.98, 0.9999], batch_num [4, 32] (batches of 64).

  throughput  one random search of --throughput-trials trials with 1, 2 and 4 groups of one
              rank (mpirun -np G, one intra-op thread per rank): trials per hour from the
              search's wall time (exports of improving trials included); parallel efficiency
              rate(G) / (G x rate(1)). This machine has os.cpu_count() cores; groups beyond
              that share them.
  quality     per budget and seed, the best objective of our TPE, of our random sampler, and
              of Optuna's TPESampler (python3-optuna, its defaults) driving the same trial
              function: each Optuna trial is one `slim-train` run of a one-point search (every
              list one value, every range one value, max_quant_count 1), whose objective
              trials.jsonl gives. Ours run with trial_group_size 2 on 2 ranks (sequential).
  replay      search quality over --replay-seeds seeds, with the objective looked up
              instead of run: the space is tabulated by slim-train (a one-group TPE search
              with 10 trials more than the distinct settings without hist, which then runs
              each once, since TPE never repeats a finished trial, and --replay-hist-trials
              random hist trials), and `slim-bench sampler` replays our TPE and random
              samplers on that table (the code slim-train runs; a hist proposal gets the
              nearest tabulated hist trial); Optuna's TPESampler is replayed on the same
              table with the same lookup. Where the quality part ran real searches, their
              best objectives are compared with the replayed ones.
  outcome     on the whole eval set: top-1 of the model one TPE search of the largest
              budget kept (seed 1, the objective emd) against each single PTQ algorithm at
              QuantPost's defaults (hist_percent 0.999, batch_num 10, no bias correction; a
              grid over ptq_algo).

Targets (issue 19): parallel efficiency >= 0.9 at 2 groups (and 4 where cores allow); our
TPE's mean best objective at most random search's and within noise (one standard deviation
over the seeds) of Optuna's. Prints a markdown table and writes OUTDIR/results.md and
OUTDIR/results.json. --quick: one seed, budget 4, 3 throughput trials, 500 eval images.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmnist_quant import log, run, split_facts, subset  # noqa: E402

SPACE = {"ptq_algo": ["KL", "hist", "avg", "mse", "abs_max"], "bias_correct": ["true", "false"],
         "weight_quantize_type": ["channel_wise_abs_max", "abs_max"],
         "hist_percent": [0.98, 0.9999], "batch_num": [4, 32]}
CHOICES = ("ptq_algo", "bias_correct", "weight_quantize_type")
EFFICIENCY_WANTED = 0.9


class Setup:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.model = os.path.abspath(args.model)
        for sub in ("data", "runs", "logs"):
            os.makedirs(os.path.join(self.out, sub), exist_ok=True)
        data = os.path.abspath(args.data)
        self.train_data = os.path.join(data, "train.h5")
        self.full_eval_data = os.path.join(data, "eval.h5")
        self.eval_data = self.full_eval_data
        if args.eval_samples < split_facts(self.full_eval_data)[2]:
            self.eval_data = subset(self.full_eval_data, os.path.join(self.out, "data", "eval.h5"),
                                    args.eval_samples, 7)
        self.runs = 0

    def search(self, name, ranks, section, eval_data=None):
        """One slim-train search with `section` under HyperParameterOptimization, scored on
        `eval_data` (default: the subset): its trial records and report's hpo section."""
        out_dir = os.path.join(self.out, "runs", name)
        config = os.path.join(self.out, "runs", name + ".yaml")
        with open(config, "w") as f:
            f.write(f"""Global:
  model: {self.model}
  train_data: {self.train_data}
  eval_data: {eval_data or self.eval_data}
  batch_size: 64
  eval_batch_size: 250
  intra_op_threads: 1
  seed: 42
  output_dir: {out_dir}
QuantPost:
  batch_size: 64
HyperParameterOptimization:
{section}""")
        run([os.path.join(self.build, "slim-train"), config, "--resume", "none"],
            os.path.join(self.out, "logs", name + ".log"), ranks=ranks)
        self.runs += 1
        with open(os.path.join(out_dir, "hpo", "trials.jsonl")) as f:
            records = [json.loads(line) for line in f]
        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)["hpo"]
        return records, report


def space_section(space):
    return "".join(f"  {key}: [{', '.join(map(str, values))}]\n" for key, values in space.items())


def throughput(setup):
    trials = setup.args.throughput_trials
    rates = {}
    for groups in (1, 2, 4):
        _, report = setup.search(f"throughput_g{groups}", groups, space_section(SPACE) +
                                 f"  sampler: random\n  seed: 1\n  max_quant_count: {trials}\n")
        rates[groups] = trials / report["search_wall_s"] * 3600
        log(f"throughput: {groups} group(s): {rates[groups]:.0f} trials/h")
    return rates


def setting(params):
    """What a trial's result depends on: hist_percent only with ptq_algo hist."""
    return tuple((key, value) for key, value in sorted(params.items())
                 if key != "hist_percent" or params["ptq_algo"] == "hist")


def ours(setup, sampler, seed, budget):
    records, _ = setup.search(f"{sampler}_s{seed}_b{budget}", 2, space_section(SPACE) +
                              f"  sampler: {sampler}\n  seed: {seed}\n  max_quant_count: "
                              f"{budget}\n  trial_group_size: 2\n")
    best = min(records, key=lambda r: r["objective"])
    repeats = len(records) - len({setting(r["params"]) for r in records})
    return {"objective": best["objective"], "top1": best["top1"], "params": best["params"],
            "repeats": repeats}


def optuna_study(seed, budget, trial_function):
    """Optuna's TPESampler (its defaults) over SPACE for `budget` trials, each point scored
    by trial_function(point, trial number): the study."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        point = {key: trial.suggest_categorical(key, SPACE[key]) for key in CHOICES}
        point["hist_percent"] = trial.suggest_float("hist_percent", *SPACE["hist_percent"])
        point["batch_num"] = trial.suggest_int("batch_num", *SPACE["batch_num"])
        return trial_function(point, trial.number)

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=budget)
    return study


def optuna_tpe(setup, seed, budget):
    def run_trial(point, number):
        one = {key: [value] if key in CHOICES else [value, value] for key, value in point.items()}
        records, _ = setup.search(f"optuna_s{seed}_b{budget}_t{number}", 2,
                                  space_section(one) + "  max_quant_count: 1\n"
                                  "  trial_group_size: 2\n")
        return records[0]["objective"]

    study = optuna_study(seed, budget, run_trial)
    return {"objective": study.best_value, "params": study.best_params}


def tabulate(setup):
    """Trial records covering the space: every distinct setting without hist once, and
    random hist trials."""
    others = {**SPACE, "ptq_algo": [a for a in SPACE["ptq_algo"] if a != "hist"]}
    del others["hist_percent"]
    settings = (len(others["ptq_algo"]) * len(others["bias_correct"]) *
                len(others["weight_quantize_type"]) * (SPACE["batch_num"][1] - SPACE["batch_num"][0] + 1))
    # A few trials more than settings: a proposal draws a new point uniformly up to 1,000
    # times, so with one setting left it is missed with probability (1 - 1/settings)^1000.
    records, _ = setup.search("table_settings", 2, space_section(others) + "  sampler: tpe\n"
                              f"  seed: 1\n  max_quant_count: {settings + 10}\n"
                              "  trial_group_size: 2\n")
    distinct = len({setting(r["params"]) for r in records})
    log(f"replay: the table holds {distinct} of the {settings} settings without hist")
    hist = {**SPACE, "ptq_algo": ["hist"]}
    hist_records, _ = setup.search("table_hist", 2, space_section(hist) + "  sampler: random\n"
                                   f"  seed: 1\n  max_quant_count: {setup.args.replay_hist_trials}\n"
                                   "  trial_group_size: 2\n")
    return records + hist_records, f"{distinct} of {settings}"


def nearest_objective(table, params):
    """The objective of the record of `table` that is the same trial as `params`, else of the
    nearest one with the same candidates (ranges that matter, scaled to their widths), as
    `slim-bench sampler` looks it up."""
    key = setting(params)
    exact = [r for r in table if setting(r["params"]) == key]
    if exact:
        return exact[0]["objective"]
    ranges = ["batch_num"] + (["hist_percent"] if params["ptq_algo"] == "hist" else [])

    def distance(record):
        return sum(((record["params"][k] - params[k]) / (SPACE[k][1] - SPACE[k][0])) ** 2
                   for k in ranges)
    same = [r for r in table if all(r["params"][k] == params[k] for k in CHOICES)]
    return min(same, key=distance)["objective"]


def optuna_replayed(table, seed, budget):
    return optuna_study(seed, budget, lambda point, _: nearest_objective(table, point)).best_value


def replay(setup, quality):
    """Best objectives per budget of our TPE, our random sampler and Optuna's TPE over
    seeds 1..--replay-seeds on the tabulated space, and how many real searches of the
    quality part the replay reproduced."""
    table, coverage = tabulate(setup)
    table_path = os.path.join(setup.out, "data", "table.jsonl")
    space_path = os.path.join(setup.out, "data", "space.json")
    with open(table_path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in table)
    with open(space_path, "w") as f:
        json.dump(SPACE, f)
    seeds = setup.args.replay_seeds
    budgets = ",".join(map(str, setup.args.budgets))
    log_path = os.path.join(setup.out, "logs", "replay.log")
    run([os.path.join(setup.build, "slim-bench"), "sampler", "--space", space_path, "--table",
         table_path, "--budgets", budgets, "--seeds", str(seeds)], log_path)
    with open(log_path) as f:
        result = json.loads(f.readlines()[-1])
    for budget in setup.args.budgets:
        log(f"replay: Optuna, budget {budget}, {seeds} seeds")
        result["budgets"][str(budget)]["optuna"] = [optuna_replayed(table, seed, budget)
                                                    for seed in range(1, seeds + 1)]
    reproduced = checked = 0
    for budget, by_sampler in quality.items():
        for sampler in ("tpe", "random"):
            for seed, real in zip(setup.args.seeds, by_sampler.get(sampler, [])):
                if seed <= seeds:
                    checked += 1
                    replayed = result["budgets"].get(budget, {}).get(sampler, [])[seed - 1]
                    reproduced += abs(replayed - real["objective"]) <= 1e-12
    result.update({"table_trials": len(table), "settings_tabulated": coverage, "real_searches_checked": checked,
                   "real_searches_reproduced": reproduced})
    return result


def paired(ours_values, anchor_values):
    """(mean difference, paired t, ours better, ties, anchor better)."""
    differences = [a - b for a, b in zip(ours_values, anchor_values)]
    mean, sd = mean_sd(differences)
    t = mean / (sd / len(differences) ** 0.5) if sd > 0 else 0.0
    return (mean, t, sum(d < 0 for d in differences), sum(d == 0 for d in differences),
            sum(d > 0 for d in differences))


def outcome(setup):
    """On the whole eval set: each single algorithm at QuantPost's defaults, and the model
    one TPE search kept."""
    records, _ = setup.search("single_algorithms", 2, "  ptq_algo: [KL, hist, avg, mse, abs_max]\n"
                              "  bias_correct: [false]\n  hist_percent: 0.999\n  batch_num: 10\n"
                              "  sampler: grid\n  max_quant_count: 5\n  trial_group_size: 2\n",
                              setup.full_eval_data)
    singles = {r["params"]["ptq_algo"]: {"objective": r["objective"], "top1": r["top1"]}
               for r in records}
    budget = max(setup.args.budgets)
    records, report = setup.search("kept_full_eval", 2, space_section(SPACE) +
                                   f"  seed: 1\n  max_quant_count: {budget}\n"
                                   "  trial_group_size: 2\n", setup.full_eval_data)
    kept = next(r for r in records if r["trial"] == report["chosen_trial"])
    return {"singles": singles, "kept": {"top1": kept["top1"], "objective": kept["objective"],
                                         "params": kept["params"]},
            "float_top1": report["float"]["top1"]}


def mean_sd(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def make_rows(raw, args):
    rows = []

    def row(figure, ours_value, anchor, target, met, note, text=None, anchor_name=None):
        rows.append({"figure": figure, "ours": ours_value, "pytorch": anchor, "target": target,
                     "met": met, "note": note, "unit": "",
                     "ours_text": text or f"{ours_value:.4g}",
                     "pytorch_text": "—" if anchor is None else f"{anchor:.4g}",
                     "anchor_name": anchor_name})

    rates = raw.get("throughput", {})
    if rates:
        row("trials per hour, 1 group", rates["1"], None, "", None, "one rank, one thread")
    cores = os.cpu_count()
    for groups in ("2", "4") if rates else ():
        efficiency = rates[groups] / (int(groups) * rates["1"])
        allowed = int(groups) <= cores
        row(f"parallel efficiency, {groups} groups", efficiency, None,
            f">= {EFFICIENCY_WANTED}" if allowed else "(cores allow fewer)",
            efficiency >= EFFICIENCY_WANTED if allowed else None,
            f"{rates[groups]:.0f} trials/h; {cores} cores")
    quality_rows = "quality" in args.parts and "tpe" in args.samplers
    for budget in args.budgets if quality_rows else ():
        quality = raw["quality"][str(budget)]
        tpe, tpe_sd = mean_sd([q["objective"] for q in quality["tpe"]])
        repeats = sum(q["repeats"] for q in quality["tpe"])
        if "random" in args.samplers:
            random, random_sd = mean_sd([q["objective"] for q in quality["random"]])
            wins = sum(t["objective"] < r["objective"]
                       for t, r in zip(quality["tpe"], quality["random"]))
            row(f"best emd in {budget} trials, TPE vs random", tpe, random, "<= random",
                tpe <= random, f"mean of {len(args.seeds)} seed(s); sd ours {tpe_sd:.2g}, "
                f"random {random_sd:.2g}; TPE better in {wins}; TPE repeated {repeats} "
                f"setting(s) in all", anchor_name="our random sampler")
        if "optuna" in args.samplers:
            optuna_mean, optuna_sd = mean_sd([q["objective"] for q in quality["optuna"]])
            row(f"best emd in {budget} trials, TPE vs Optuna TPE", tpe, optuna_mean,
                "within noise", tpe <= optuna_mean + max(tpe_sd, optuna_sd),
                f"sd ours {tpe_sd:.2g}, Optuna {optuna_sd:.2g}", anchor_name="Optuna's TPESampler")
    replayed = raw.get("replay")
    for budget in args.budgets if replayed else ():
        bests = replayed["budgets"][str(budget)]
        tpe = statistics.mean(bests["tpe"])
        for anchor, anchor_name in (("random", "our random sampler"),
                                    ("optuna", "Optuna's TPESampler")):
            anchor_mean = statistics.mean(bests[anchor])
            difference, t, better, ties, worse = paired(bests["tpe"], bests[anchor])
            row(f"best emd in {budget} trials, {replayed['seeds']} seeds replayed, TPE vs {anchor}",
                tpe, anchor_mean, "<= anchor" if anchor == "random" else "within noise",
                tpe <= anchor_mean if anchor == "random" else t < 2,
                f"paired t {t:.1f}; ours better in {better}, equal in {ties}, worse in {worse}; "
                f"{replayed['table_trials']} tabulated trials ({replayed['settings_tabulated']} settings "
                f"without hist); lookups {replayed['lookups']}; "
                f"real searches reproduced {replayed['real_searches_reproduced']} of "
                f"{replayed['real_searches_checked']}", anchor_name=anchor_name)
    if "outcome" not in raw:
        return rows
    singles = raw["outcome"]["singles"]
    best_single = max(singles, key=lambda algo: singles[algo]["top1"])
    kept = raw["outcome"]["kept"]
    row(f"top-1 of the kept model ({max(args.budgets)} trials, whole eval set)", kept["top1"],
        singles[best_single]["top1"], ">= best single - 0.001",
        kept["top1"] >= singles[best_single]["top1"] - 0.001,
        f"float {raw['outcome']['float_top1']:.4f}; kept {kept['params']}; singles: "
        + ", ".join(f"{a} {v['top1']:.4f}" for a, v in singles.items()),
        anchor_name=f"best single PTQ algorithm ({best_single})")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build")
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--throughput-trials", type=int, default=12)
    parser.add_argument("--eval-samples", type=int, default=2000)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "random", "optuna"],
                        choices=["tpe", "random", "optuna"], help="the quality part's samplers")
    parser.add_argument("--replay-seeds", type=int, default=200)
    parser.add_argument("--replay-hist-trials", type=int, default=120)
    parser.add_argument("--parts", nargs="+", choices=["throughput", "quality", "replay", "outcome"],
                        help="default: all; under --quick all but replay")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budgets, args.throughput_trials, args.eval_samples = [1], [4], 3, 500
        args.replay_seeds, args.replay_hist_trials = 10, 40
    if args.parts is None:
        args.parts = ["throughput", "quality", "outcome"] + ([] if args.quick else ["replay"])
    setup = Setup(args)
    start = time.perf_counter()
    raw = {"args": vars(args), "quality": {}}
    if "throughput" in args.parts:
        raw["throughput"] = {str(g): r for g, r in throughput(setup).items()}
    for budget in args.budgets if "quality" in args.parts else ():
        raw["quality"][str(budget)] = {name: [] for name in args.samplers}
        for seed in args.seeds:
            log(f"quality: budget {budget}, seed {seed}")
            results = raw["quality"][str(budget)]
            for sampler in args.samplers:
                results[sampler].append(optuna_tpe(setup, seed, budget) if sampler == "optuna"
                                        else ours(setup, sampler, seed, budget))
    if "replay" in args.parts:
        raw["replay"] = replay(setup, raw["quality"])
    if "outcome" in args.parts:
        raw["outcome"] = outcome(setup)
    raw["wall_s"] = time.perf_counter() - start
    rows = make_rows(raw, args)
    lines = ["| figure | ours | anchor | anchor is | target | met | note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['figure']} | {r['ours_text']} | {r['pytorch_text']} | "
              f"{r['anchor_name'] or '—'} | {r['target']} | "
              f"{'—' if r['met'] is None else ('met' if r['met'] else 'MISSED')} | {r['note']} |"
              for r in rows]
    header = (f"{args.model}; emd on {split_facts(setup.eval_data)[2]} eval images; seeds "
              f"{', '.join(map(str, args.seeds))}; {setup.runs} slim-train runs in "
              f"{raw['wall_s'] / 60:.0f} min" + ("; QUICK mode, figures mean little"
                                                if args.quick else ""))
    table = header + "\n\n" + "\n".join(lines) + "\n"
    print(table)
    with open(os.path.join(setup.out, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(setup.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "raw": raw}, f, indent=2)


if __name__ == "__main__":
    main()
