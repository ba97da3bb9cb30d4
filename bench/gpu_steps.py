"""The step-time table of scripts/gpu_check.sh: our float32, float16 and bfloat16 training
steps on the GPU (the runs fp32, fp16 and bf16 under --runs) against eager PyTorch's
(bench/pytorch_amp.py's JSON lines, one per AMP type), with the MFU of each.

    python3 bench/gpu_steps.py --runs build-gpu/check --pytorch '{...}' '{...}' --out steps.json

MFU: a training step does about three forward passes' work (the forward, and the
backward for the activations and for the weights) at 2 FLOPs a MAC, over the GPU's dense
peak (--peak-tflops: H100/H200 SXM's 67 float32, 989 float16 and bfloat16)."""
import argparse
import json
import os
import statistics

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def our_step(run_dir, skip=2):
    """Median seconds of a logged step in run_dir/metrics.jsonl, after the first `skip`
    lines (start-up); checks that the run trained on CUDA."""
    report = json.load(open(os.path.join(run_dir, "report.json")))
    if not report["device"].startswith("cuda"):
        raise SystemExit(f"{run_dir} trained on {report['device']}, not on CUDA")
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f if '"train"' in line][skip:]
    batch = report["global_batch"]
    return statistics.median(batch / line["samples_per_s"] for line in lines), report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder holding out-fp32, out-fp16, out-bf16")
    parser.add_argument("--pytorch", nargs=2, required=True,
                        help="pytorch_amp.py's output for float16, then for bfloat16")
    parser.add_argument("--peak-tflops", nargs=3, type=float, default=[67, 989, 989],
                        metavar=("FP32", "FP16", "BF16"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    ours, reports = {}, {}
    for run, dtype in DTYPES.items():
        ours[dtype], reports[dtype] = our_step(os.path.join(args.runs, "out-" + run))
    pytorch = dict(zip(["float16", "bfloat16"], map(json.loads, args.pytorch)))
    theirs = {"float32": pytorch["float16"]["fp32_step_s"],
              "float16": pytorch["float16"]["amp_step_s"],
              "bfloat16": pytorch["bfloat16"]["amp_step_s"]}
    report = reports["float32"]
    flops_per_step = 6 * report["input_model"]["macs"] * report["global_batch"]
    peak = dict(zip(["float32", "float16", "bfloat16"], (t * 1e12 for t in args.peak_tflops)))
    mfu = {side: {d: flops_per_step / s / peak[d] for d, s in steps.items()}
           for side, steps in [("ours", ours), ("pytorch", theirs)]}
    summary = {"batch": report["global_batch"], "macs_per_sample": report["input_model"]["macs"],
               "peak_flops": peak, "ours_step_s": ours, "pytorch_step_s": theirs, "mfu": mfu,
               "peak_tensor_mb": {d: r["memory"]["peak_tensor_mb"] for d, r in reports.items()},
               "pytorch": pytorch}
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"{'':9} {'ours s/step':>11} {'vs fp32':>7} {'MFU':>6}   "
          f"{'PyTorch s/step':>14} {'vs fp32':>7} {'MFU':>6}   {'ours/PyTorch':>12}")
    for dtype in ours:
        print(f"{dtype:9} {ours[dtype]:11.4f} {ours[dtype] / ours['float32']:7.2f} "
              f"{mfu['ours'][dtype]:6.1%}   {theirs[dtype]:14.4f} "
              f"{theirs[dtype] / theirs['float32']:7.2f} {mfu['pytorch'][dtype]:6.1%}   "
              f"{ours[dtype] / theirs[dtype]:12.2f}")


if __name__ == "__main__":
    main()
