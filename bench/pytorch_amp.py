"""The anchor a PyTorch user would run instead of slim-train's amp_config: eager PyTorch
training steps of the same TorchScript model file under torch.autocast, against the same
steps in float32. On the CPU it autocasts to bfloat16; on CUDA to --dtype, with
torch.cuda.amp.GradScaler for float16.

    python3 bench/pytorch_amp.py --model resnet20.pt --batch 64 --steps 20
    python3 bench/pytorch_amp.py --model resnet56.pt --device cuda --dtype float16

Prints one JSON object on stdout: the median step time in float32 and under autocast,
their ratio, and the images per second of each."""
import argparse
import contextlib
import json
import statistics
import time

import torch
import torch.nn.functional as F


def median_step(model, batch, steps, device, dtype):
    """Median seconds of one SGD step with momentum; `dtype` None: float32."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.cuda.amp.GradScaler() if dtype == torch.float16 else None
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=generator).to(device)
    y = torch.randint(0, 10, (batch,), generator=generator).to(device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for step in range(steps + 5):
        synchronize()
        start = time.perf_counter()
        scope = torch.autocast(device.type, dtype) if dtype else contextlib.nullcontext()
        with scope:
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad()
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        synchronize()
        if step >= 5:  # warm-up: the profiling executor specialises the graph first
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
        if args.dtype != "bfloat16":
            parser.error("--dtype float16 needs --device cuda")
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    result = {"device": args.device, "dtype": args.dtype, "batch": args.batch}
    for name, autocast in [("fp32_step_s", None), ("amp_step_s", dtype)]:
        model = torch.jit.load(args.model, map_location=device)
        model.train()
        result[name] = median_step(model, args.batch, args.steps, device, autocast)
    result["ratio"] = result["amp_step_s"] / result["fp32_step_s"]
    result["fp32_images_per_s"] = args.batch / result["fp32_step_s"]
    result["amp_images_per_s"] = args.batch / result["amp_step_s"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
