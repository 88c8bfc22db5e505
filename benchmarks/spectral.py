"""Benchmark: the Fourier operator norm vs power iteration, on every AlexNet convolution.

For each of torchvision AlexNet's five convolutions at its real input size (224, 27, 13, 13, 13; the grid
rounded up to a multiple of the stride), with randomly initialised weights (pretrained ones need a
download), it measures in one run:

* ``Fourier``: ``conv_operator_norm`` (exact: max over frequencies of the largest singular value of the
  D × CΔ² blocks, divided by Δ);
* ``certified``: ``conv_operator_norm_certified`` (a lower and an upper bound with
  upper − lower ≤ 1e-4 · lower, float64; polyphase + autocorrelation Gram blocks, Lanczos lower
  bound, Cholesky upper bound);
* ``power``: power iteration on the same circular layer (conv and its autograd adjoint), run until it
  agrees with the Fourier value to 1e-4 (relative) — the time to equal accuracy;

and prints the values, the times and the ratios power / Fourier and power / certified per layer and in
total. All three are timed in the same loop, interleaved, so a busy machine slows them alike. Usage::

    python benchmarks/spectral.py            # CPU, or the GPU when there is one
    python benchmarks/spectral.py --device cpu --repeats 3
"""

from __future__ import annotations

import argparse

import torch
import torchvision

from _timing import timed
from certified_norm import conv_operator_norm_certified
from coursekit.spectral import circular_conv, conv_operator_norm


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
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    convs = [m for m in torchvision.models.alexnet(weights=None).features if isinstance(m, torch.nn.Conv2d)]
    sizes = [224, 27, 13, 13, 13]
    print(
        f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''} | "
        f"torch {torch.__version__} | threads {torch.get_num_threads()} | AlexNet, random init | "
        f"median of {args.repeats}"
    )
    conv_operator_norm(convs[1].weight.detach().to(device), 1, (27, 27))  # warm-up
    conv_operator_norm_certified(convs[1].weight.detach().to(device), 1, (27, 27))
    print(
        f"\n{'layer':<28}{'grid':>6}{'Fourier':>10}{'cert. lower':>13}{'cert. upper':>13}{'power':>10}{'iters':>7}"
        f"{'Fourier s':>11}{'cert. s':>9}{'power s':>9}{'p/F':>7}{'p/cert':>8}"
    )
    totals = [0.0, 0.0, 0.0]
    for index, (conv, size) in enumerate(zip(convs, sizes), 1):
        weight = conv.weight.detach().to(device)
        stride = conv.stride[0]
        grid = -(-size // stride) * stride
        times = [[], [], []]
        for _ in range(args.repeats):
            seconds, value = timed(lambda: conv_operator_norm(weight, stride, (grid, grid)).item(), device)
            times[0].append(seconds)
            seconds, bounds = timed(
                lambda: conv_operator_norm_certified(weight, stride, (grid, grid), tol=1e-4), device
            )
            times[1].append(seconds)
            seconds, (sigma, iterations) = timed(lambda: power_to_agreement(weight, stride, grid, value), device)
            times[2].append(seconds)
        t_f, t_c, t_p = (sorted(t)[len(t) // 2] for t in times)
        for i, t in enumerate((t_f, t_c, t_p)):
            totals[i] += t
        shape = "×".join(str(s) for s in weight.shape)
        print(
            f"conv{index} {shape:<22}{grid:>6}{value:>10.5f}{bounds.lower:>13.6f}{bounds.upper:>13.6f}{sigma:>10.5f}"
            f"{iterations:>7}{t_f:>11.4f}{t_c:>9.4f}{t_p:>9.4f}{t_p / t_f:>6.1f}x{t_p / t_c:>7.1f}x"
        )
    t_f, t_c, t_p = totals
    print(
        f"{'total':<28}{'':>6}{'':>10}{'':>13}{'':>13}{'':>10}{'':>7}{t_f:>11.4f}{t_c:>9.4f}{t_p:>9.4f}"
        f"{t_p / t_f:>6.1f}x{t_p / t_c:>7.1f}x"
    )


if __name__ == "__main__":
    main()
