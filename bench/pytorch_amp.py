"""The anchor a PyTorch user would run instead of slim-train's amp_config: eager PyTorch
training steps of the same TorchScript model file under torch.autocast("cpu",
bfloat16), against the same steps in float32.

    python3 bench/pytorch_amp.py --model resnet20.pt --batch 64 --steps 20

Prints one JSON object on stdout: the median step time in float32 and in bfloat16, and
their ratio."""
import argparse
import contextlib
import json
import statistics
import time

import torch
import torch.nn.functional as F


def median_step(model, batch, steps, autocast):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    times = []
    for step in range(steps + 5):
        start = time.perf_counter()
        scope = torch.autocast("cpu", torch.bfloat16) if autocast else contextlib.nullcontext()
        with scope:
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 5:  # warm-up: the profiling executor specialises the graph first
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {}
    for name, autocast in [("fp32_step_s", False), ("bf16_step_s", True)]:
        model = torch.jit.load(args.model)
        model.train()
        result[name] = median_step(model, args.batch, args.steps, autocast)
    result["ratio"] = result["bf16_step_s"] / result["fp32_step_s"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
