"""The builtin transformer quantized and deployed: quantization-aware training of every
projection and both attention products, exported as integer TorchScript and as QDQ ONNX,
against the FP32 model in LibTorch and in ONNX Runtime:

    /usr/bin/python3 bench/text_transformer_quant.py --build build --out OUTDIR [--quick]
        [--seeds 1 2 3] [--base-steps 1000] [--tune-steps 300]

Data and FP32 model as bench/text_transformer_prune.py (64-byte windows of three licence
texts; builtin:transformer trained --base-steps steps), exported as model.pt and
model.onnx. For each of --seeds, QuantAware with quantize_op_types [linear, matmul] fine-
tunes the FP32 model --tune-steps steps (Adam, cosine from 5e-4) and exports model.pt,
model_int8.pt and model.onnx; the same fine-tune without quantization is the control
that separates what quantization costs from what more steps on this memorised task do.

Top-1 of every file on the eval windows (report.json: model_int8.pt in LibTorch,
model.onnx in ONNX Runtime); latency of the FP32 and the first seed's files by
`slim-model bench` on one thread at batch 1 and 64, in --rounds interleaved rounds,
medians over the rounds.

Reported (issue 20 sets no target for them): top-1 of each file against FP32 and against
the float fine-tune of the same seed, and speed against the FP32 model in the same
runtime. Prints a markdown table and writes OUTDIR/results.md and OUTDIR/results.json.
--quick runs one seed with few steps.
"""
import json
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmnist_quant import interleaved_latency, pct  # noqa: E402
from text_transformer_prune import SEQ_LEN, text_bench_setup, train  # noqa: E402

QAT = "QuantAware: {quantize_op_types: [linear, matmul]}\n"
FILES = ["model.pt", "model_int8.pt", "model.onnx"]


def file_top1(report):
    """{file name: top-1} of every file report.json evaluated."""
    return {os.path.basename(e["file"]): e["eval"]["top1"] for e in report["exports"]}


def main():
    args = text_bench_setup(__doc__.splitlines()[0])

    base = train(args, "fp32", "builtin:transformer", args.base_steps, 42, 0.003,
                 extra_args=["--set", "Global.export=[torchscript, onnx]"])
    fp32_dir = os.path.join(args.out, "fp32")
    qat = {seed: train(args, f"qat_s{seed}", os.path.join(fp32_dir, "model.pt"),
                       args.tune_steps, seed, 0.0005, QAT,
                       ["--set", "Global.export=[torchscript, torchscript_int8, onnx]"])
           for seed in args.seeds}
    control = {seed: train(args, f"float_tune_s{seed}", os.path.join(fp32_dir, "model.pt"),
                           args.tune_steps, seed, 0.0005)
               for seed in args.seeds}

    qat_dir = os.path.join(args.out, f"qat_s{args.seeds[0]}")
    files = {"fp32.pt": os.path.join(fp32_dir, "model.pt"),
             "fp32.onnx": os.path.join(fp32_dir, "model.onnx"),
             "int8.pt": os.path.join(qat_dir, "model_int8.pt"),
             "qdq.onnx": os.path.join(qat_dir, "model.onnx")}
    timing = types.SimpleNamespace(rounds=args.rounds, batches=[1, 64], iterations=20,
                                   iterations_b1=200, warmup=5)
    errors = []
    trials, medians = interleaved_latency(os.path.join(args.build, "slim-model"), files,
                                          str(SEQ_LEN), timing, os.path.join(args.out, "logs"),
                                          errors)
    fp32 = file_top1(base)
    tuned = [file_top1(control[seed])["model.pt"] for seed in args.seeds]
    per_file = {name: [file_top1(qat[seed])[name] for seed in args.seeds] for name in FILES}
    md = [f"| file | top-1, seeds {' / '.join(map(str, args.seeds))} | mean drop to the float "
          f"fine-tune | drop to FP32 |", "| --- | --- | --- | --- |"]
    for name, values in [("float fine-tune model.pt", tuned)] + [
            ("QAT " + name, values) for name, values in per_file.items()]:
        to_tuned = sum(t - v for t, v in zip(tuned, values)) / len(values)
        md.append(f"| {name} | {' / '.join(pct(v) for v in values)} | {100 * to_tuned:.2f} pt | "
                  f"{100 * (fp32['model.pt'] - sum(values) / len(values)):.2f} pt |")
    md += ["", "| latency, one thread | batch 1 | batch 64 |", "| --- | --- | --- |"]
    for name in files:
        md.append(f"| {name} | " + " | ".join(
            "—" if medians[name][b] is None else f"{medians[name][b]:.3f} ms" for b in ("1", "64"))
                  + " |")
    for quantized, reference in [("int8.pt", "fp32.pt"), ("qdq.onnx", "fp32.onnx"),
                                 ("qdq.onnx", "fp32.pt")]:
        ratios = [medians[reference][b] / medians[quantized][b]
                  if medians[reference][b] and medians[quantized][b] else None for b in ("1", "64")]
        md.append(f"| speedup {quantized} over {reference} | " +
                  " | ".join("—" if r is None else f"{r:.2f}x" for r in ratios) + " |")
    md.append(f"\nFP32 model.onnx top-1 {pct(fp32.get('model.onnx'))}; seeds {args.seeds}, "
              f"{args.base_steps} + {args.tune_steps} steps")
    print("\n".join(md))
    raw = {"seeds": args.seeds, "fp32_top1": fp32, "qat_top1": per_file, "float_tune_top1": tuned,
           "latency_trials_ms": trials, "latency_medians_ms": medians, "errors": errors,
           "macs": {"fp32": base["input_model"]["macs"],
                    "qat_quantized": qat[args.seeds[0]]["exports"][-1].get("macs_quantized")}}
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(raw, f, indent=2)
    if errors:
        sys.exit(f"{len(errors)} command(s) failed: see results.json")


if __name__ == "__main__":
    main()
