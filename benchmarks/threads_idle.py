"""Threads 1 vs 2 on an idle machine: python benchmarks/threads_idle.py N (N = torch threads)."""

import sys
import time

import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"))
torch.set_num_threads(int(sys.argv[1]))
from coursekit.attack import lbfgs_attack  # noqa: E402 - after the thread count is set
from coursekit.models import build  # noqa: E402


def steps(name, n, bs):
    torch.manual_seed(0)
    m = build(name)
    opt = torch.optim.Adam(m.parameters())
    x = torch.rand(bs, 1, 28, 28)
    y = torch.randint(0, 10, (bs,))
    t = time.perf_counter()
    for _ in range(n):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    return time.perf_counter() - t


fc = steps("FC100-100-10", 300, 64)
cnn = steps("CNN", 60, 128)
m = build("FC100-100-10").eval()
x = torch.rand(100, 1, 28, 28)
t = time.perf_counter()
lbfgs_attack(m, x, torch.zeros(100, dtype=torch.long), max_iter=50, search_steps=4)
at = time.perf_counter() - t
print(f"threads {sys.argv[1]}: FC100 300 steps {fc:.2f} s | CNN 60 steps {cnn:.2f} s | attack 100 {at:.2f} s")
