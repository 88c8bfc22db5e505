"""Benchmark: the Fourier operator norm vs power iteration, on every AlexNet convolution.

For each of torchvision AlexNet's five convolutions at its real input size (224, 27, 13, 13, 13; the grid
rounded up to a multiple of the stride), with randomly initialised weights (pretrained ones need a
download), it measures in one run:

* ``Fourier``: ``conv_operator_norm`` (exact: max over frequencies of the largest singular value of the
  D × CΔ² blocks, divided by Δ);
* ``power``: power iteration on the same circular layer (conv and its autograd adjoint), run until it
  agrees with the Fourier value to 1e-4 (relative) — the time to equal accuracy;

and prints both values, both times and their ratio per layer and in total. Usage::

    python benchmarks/spectral.py            # CPU, or the GPU when there is one
    python benchmarks/spectral.py --device cpu --repeats 3
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision

from coursekit.spectral import circular_conv, conv_operator_norm

from _timing import timed


def power_to_agreement(weight, stride, size, target, tol=1e-4, max_iterations=50_000, seed=0):
    """Power iteration on the circular conv until |σ − target| ≤ tol·target; returns (σ, iterations)."""
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(1, weight.shape[1], size, size, generator=generator).to(weight)
    v /= v.norm()
    for iteration in range(1, max_iterations + 1):
        v.requires_grad_(True)
        u = circular_conv(v, weight, stride)
        (w,) = torch.autograd.grad(u, v, grad_outputs=u)
        v = v.detach()
        sigma = (w * v).sum().clamp_min(0).sqrt()
        v = w / w.norm()
        if abs(sigma.item() - target) <= tol * target:
            return sigma.item(), iteration
    return sigma.item(), max_iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3, help="time each method this many times, keep the median")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    convs = [m for m in torchvision.models.alexnet(weights=None).features if isinstance(m, torch.nn.Conv2d)]
    sizes = [224, 27, 13, 13, 13]
    print(f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''} | "
          f"torch {torch.__version__} | threads {torch.get_num_threads()} | AlexNet, random init | median of {args.repeats}")
    conv_operator_norm(convs[1].weight.detach().to(device), 1, (27, 27))  # warm-up
    print(f"\n{'layer':<28}{'grid':>6}{'Fourier':>11}{'power':>11}{'iters':>7}{'Fourier s':>11}{'power s':>10}{'ratio':>8}")
    total_fourier = total_power = 0.0
    for index, (conv, size) in enumerate(zip(convs, sizes), 1):
        weight = conv.weight.detach().to(device)
        stride = conv.stride[0]
        grid = -(-size // stride) * stride
        fourier_times, power_times = [], []
        for _ in range(args.repeats):
            seconds, value = timed(lambda: conv_operator_norm(weight, stride, (grid, grid)).item(), device)
            fourier_times.append(seconds)
            seconds, (sigma, iterations) = timed(lambda: power_to_agreement(weight, stride, grid, value), device)
            power_times.append(seconds)
        t_f, t_p = sorted(fourier_times)[len(fourier_times) // 2], sorted(power_times)[len(power_times) // 2]
        total_fourier += t_f
        total_power += t_p
        shape = "×".join(str(s) for s in weight.shape)
        print(f"conv{index} {shape:<22}{grid:>6}{value:>11.5f}{sigma:>11.5f}{iterations:>7}{t_f:>11.4f}{t_p:>10.4f}{t_p / t_f:>7.1f}x")
    print(f"{'total':<28}{'':>6}{'':>11}{'':>11}{'':>7}{total_fourier:>11.4f}{total_power:>10.4f}{total_power / total_fourier:>7.1f}x")


if __name__ == "__main__":
    main()
