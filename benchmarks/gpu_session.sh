#!/usr/bin/env bash
# What a session runs on a lent GPU machine (the device tool), one stage per call:
#   bash benchmarks/gpu_session.sh setup-tests-bench   # CUDA tests, attack and spectral benchmarks
#   bash benchmarks/gpu_session.sh chapters 01 05      # execute chapters (full profile) into $OUT
#   bash benchmarks/gpu_session.sh record 60000        # Tables 1-2 at the paper's scale, recorded
#     (src/coursekit/records/table{1,2}.json with provenance; copied to $OUT: commit them from there)
# The machine has torch but no Jupyter stack: the wheels in .whl/ (made on the dev machine with
# `pip download --only-binary=:all: --python-version 3.12 ...`, see the device tool's README) are
# installed into /tmp/site first. Executed notebooks and logs are written under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if [ -d .whl ] && [ ! -d /tmp/site/nbclient ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH
export COURSEKIT_CACHE=$PWD/.cache/coursekit COURSEKIT_PROGRESS=text PYTHONUNBUFFERED=1
stage=${1:-setup-tests-bench}
shift || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
case $stage in
  setup-tests-bench)
    python3 -m pytest tests -m "not browser" -q -p no:cacheprovider -x 2>&1 | tail -15 | tee "$OUT/tests.log"
    python3 benchmarks/spectral.py 2>&1 | tee "$OUT/spectral.log"
    python3 benchmarks/attack.py --images 500 --skip-classic --skip-cw 2>&1 | tail -8 | tee "$OUT/attack500.log"
    python3 benchmarks/attack.py --images 10000 --skip-classic --skip-cw 2>&1 | tail -8 | tee "$OUT/attack10000.log"
    python3 benchmarks/attack.py --images 50000 --split train --skip-classic --skip-cw 2>&1 | tail -8 | tee "$OUT/attack50000.log"
    python3 benchmarks/attack_quality.py --images 2000 2>&1 | tee "$OUT/attack_quality.log"
    python3 -m torch.distributed.run --nproc_per_node=2 benchmarks/sharded_attack.py --images 10000 --compare 2>&1 \
      | tail -6 | tee "$OUT/sharded2.log"  # two processes on one GPU (gloo): the design's test
    ;;
  chapters)
    python3 - "$OUT" "$@" <<'PY'
import glob, os, sys, time

import jupytext
import nbformat
from nbclient import NotebookClient

out = sys.argv[1]
for chapter in sys.argv[2:]:
    path = glob.glob(f"book/{chapter}_*.md")[0]
    notebook = jupytext.read(path)
    client = NotebookClient(notebook, timeout=int(os.environ.get("CELL_TIMEOUT", "3600")), kernel_name="python3", resources={"metadata": {"path": "book"}})
    start = time.time()
    try:
        client.execute()
        status = "ok"
    except Exception as error:  # keep going: the executed part is still written
        status = f"FAILED: {str(error)[-600:]}"
    nbformat.write(notebook, f"{out}/{path.split('/')[-1][:-3]}.ipynb")
    print(f"chapter {chapter}: {status} in {time.time() - start:.0f} s", flush=True)
PY
    tar -C "$COURSEKIT_CACHE" -cf "$OUT/models.tar" models
    ;;
  profile)
    python3 - "$@" <<'PY'
import sys, time, torch
from torch.profiler import ProfilerActivity, profile
from coursekit.attack import lbfgs_attack
from coursekit.data import load_mnist
from coursekit.train import train

x, y = load_mnist("test")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
model = train("FC100-100-10")
for p in model.parameters():
    p.requires_grad_(False)
xs, ys = x[:n].cuda(), y[:n].cuda()
lbfgs_attack(model, xs[:64], (ys[:64] + 1) % 10)
torch.cuda.synchronize(); start = time.perf_counter()
result = lbfgs_attack(model, xs, (ys + 1) % 10)
torch.cuda.synchronize(); seconds = time.perf_counter() - start
print(f"{n} images: {seconds:.2f} s = {n / seconds:.0f} ex/s, success {result.success.float().mean():.4f}, "
      f"evaluations/image {result.evaluations.float().mean():.1f}, max {result.evaluations.max().item()}")
failed = (~result.success).nonzero().squeeze(1)
print("failures:", len(failed), "c of failures:", result.c[failed][:10].tolist())
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    lbfgs_attack(model, xs, (ys + 1) % 10)
    torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))
PY
    ;;
  record)
    python3 benchmarks/record_tables.py --profile paper --images "${1:-60000}" 2>&1 | tee "$OUT/record.log"
    cp src/coursekit/records/*.json "$OUT/"
    ;;
  tables12)
    python3 - "$@" <<'PY'
import sys, time, torch
from coursekit.config import resolve_profile
from coursekit.data import load_mnist
from coursekit.models import TABLE1_MODELS
from coursekit.train import evaluate, train
from coursekit.transfer import transfer_table

count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
x, y = load_mnist("train")
xt, yt = load_mnist("test")
subset = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:count]
zoo = {name: train(name) for name in TABLE1_MODELS}
print(f"profile {resolve_profile()}; training/test error of the full-profile zoo:")
for name, model in zoo.items():
    print(f"  {name:14s} train {evaluate(model, x, y):.4f} test {evaluate(model, xt, yt):.4f}")
start = time.perf_counter()
table = transfer_table(zoo, zoo, x[subset], y[subset], noise_stddevs=(0.1, 0.3), cache=False, progress_bar=False)
print(f"Table 1/2 on {count} training images: {time.perf_counter() - start:.0f} s")
import pandas as pd
pd.set_option("display.width", 250)
print((table.errors * 100).round(1).to_string())
for name, result in table.adversarial.items():
    print(f"  {name:14s} success {result.success.float().mean():.4f} av. min. distortion {result.distortion.mean():.4f}")
PY
    ;;
  timing)
    python3 - "$@" <<'PY'
import sys, time, torch
from coursekit.attack import min_distortion_attack
from coursekit.data import load_mnist
from coursekit.models import TABLE1_MODELS
from coursekit.train import train

x, y = load_mnist("train")
count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
for name in TABLE1_MODELS:
    model = train(name)
    torch.cuda.synchronize(); start = time.perf_counter()
    result = min_distortion_attack(model, x[:count], y[:count], progress_bar=False)
    torch.cuda.synchronize(); seconds = time.perf_counter() - start
    print(f"{name:14s} {count} images x 9 targets: {seconds:6.1f} s = {9 * count / seconds:8.0f} attacks/s, "
          f"success {result.success.float().mean():.3f}, distortion {result.distortion.mean():.4f}", flush=True)
PY
    tar -C "$COURSEKIT_CACHE" -cf "$OUT/models.tar" models
    ;;
esac
