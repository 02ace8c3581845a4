"""Training throughput on this machine: images/s for lenet5, convnet_small (the localizer's
and detector's default backbone), resnet18 and mobilenet_v2 at 32 and 64 px, PyTorch's fp32
default against cnnlab's automatic settings (bf16 autocast and/or channels-last per model), plus
the machine's measured matrix-multiply ceiling in the same run.

Run: `.venv/bin/python benchmarks/train_throughput.py [--repeats 5] [--steps 10]`.
Each figure is the median of ``repeats`` timings of ``steps`` training steps (batch 64, AdamW,
synthetic data, augmentation off: this measures the step). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.engine.performance import SpeedSettings, choose_settings
from cnnlab.viz.summary import summarize


def matmul_ceiling(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """Achieved GFLOP/s of an n x n matmul (the machine's practical ceiling for dtype)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        times.append((time.perf_counter() - t) / 4)
    return 2 * n**3 / statistics.median(times) / 1e9


def throughput(
    name: str, size: int, settings: SpeedSettings, steps: int, repeats: int, batch: int = 64
) -> float:
    torch.manual_seed(0)
    channels = cnnlab.registry.get_model_entry(name).input_size[0]
    model = cnnlab.create_model(name, num_classes=10)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    device = torch.device("cpu")

    def step() -> None:
        with settings.autocast(device):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        times.append(time.perf_counter() - t)
    return batch * steps / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument(
        "--models", nargs="+", default=["lenet5", "convnet_small", "resnet18", "mobilenet_v2"]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument(
        "--accuracy-epochs",
        type=int,
        default=5,
        help="also train resnet18 on the digits at 64 px in fp32 and auto (0: skip)",
    )
    args = parser.parse_args()
    ceiling = {"fp32": matmul_ceiling(torch.float32), "bf16": matmul_ceiling(torch.bfloat16)}
    print(
        json.dumps(
            {
                "matmul_gflops": {k: round(v, 1) for k, v in ceiling.items()},
                "threads": torch.get_num_threads(),
            }
        )
    )
    rows = []
    for name in args.models:
        for size in args.sizes:
            if name.startswith("lenet") and size != 32:
                continue
            auto = choose_settings(name, torch.device("cpu"), image_size=size)
            base = throughput(name, size, SpeedSettings(False, False), args.steps, args.repeats)
            fast = throughput(name, size, auto, args.steps, args.repeats)
            channels = cnnlab.registry.get_model_entry(name).input_size[0]
            macs = summarize(cnnlab.create_model(name), (channels, size, size)).total_macs
            train_flops = 3 * 2 * macs  # forward + backward ~ 3x the forward pass
            peak = ceiling["bf16" if auto.bf16 else "fp32"]
            row = {
                "model": name,
                "size": size,
                "auto": auto.to_dict(),
                "fp32_default_img_s": round(base, 1),
                "auto_img_s": round(fast, 1),
                "speedup": round(fast / base, 2),
                "fraction_of_matmul_ceiling": round(fast * train_flops / 1e9 / peak, 3),
            }
            rows.append(row)
            print(json.dumps(row))
    if args.accuracy_epochs:
        print(json.dumps(accuracy_check(args.accuracy_epochs)))


def accuracy_check(epochs: int) -> dict:
    """bf16 must not lose accuracy silently: resnet18 on the digits, fp32 vs the auto setting."""
    import tempfile

    from rich.console import Console

    from cnnlab.config import ClassifyTrainConfig
    from cnnlab.engine.classify import train_classifier

    out = {}
    for precision in ("fp32", "auto"):
        with tempfile.TemporaryDirectory() as tmp:
            config = ClassifyTrainConfig(
                model="resnet18",
                image_size=64,  # under 64 px auto keeps ResNets in fp32
                epochs=epochs,
                precision=precision,
                channels_last="auto" if precision == "auto" else "off",
                out=tmp,
            )
            result = train_classifier(config, Console(stderr=True, quiet=True))
            out[precision] = {
                "test_accuracy": result.test.accuracy,
                "seconds": round(result.seconds, 1),
                "settings": result.settings.to_dict(),
            }
    return {"resnet18_digits_accuracy": out}


if __name__ == "__main__":
    main()
