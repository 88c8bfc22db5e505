"""The attack sharded by image over processes: real torchrun runs (gloo, CPU) against the
unsharded attack in this process."""

import os
import socket
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from coursekit.attack import AttackResult, min_distortion_attack
from distributed_worker import IMAGES, OPTIONS, as_dict, tiny_problem
from sharding import (  # benchmarks/sharding.py (conftest puts benchmarks/ on sys.path)
    ProcessGroup,
    _interleave,
    _pad,
    init_from_env,
    local_device,
    shard_indices,
    sharded_min_distortion_attack,
    shutdown,
)

HERE = Path(__file__).resolve().parent
FIELDS = [f.name for f in fields(AttackResult)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torchrun(world: int, out: Path) -> list[dict]:
    """Run the worker on ``world`` CPU processes; returns each rank's record."""
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES="",
        COURSEKIT_THREADS="1",
        OMP_NUM_THREADS="1",
        COURSEKIT_PROGRESS="off",
        PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), str(HERE)]),
    )
    env.pop("COURSEKIT_DEVICE", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={world}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(HERE / "distributed_worker.py"),
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]


@pytest.fixture(
    scope="module", params=[pytest.param(w, marks=pytest.mark.slow) for w in (2, 3)], ids=["2 ranks", "3 ranks"]
)
def ranks(request, tmp_path_factory):
    return run_torchrun(request.param, tmp_path_factory.mktemp(f"ranks{request.param}"))


@pytest.fixture(scope="module")
def unsharded():
    """The attack on the whole batch, and on the first 1 and 2 images, in this process."""
    model, x, y = tiny_problem()
    return {n: as_dict(min_distortion_attack(model, x[:n], y[:n], **OPTIONS)) for n in (IMAGES, 1, 2)}


def assert_same(got: dict, want: dict) -> None:
    """Field by field: equal values (NaN where NaN), dtypes and shapes. Exact: each image's attack
    is independent of the others in its batch (OPTIONS), and this tiny model's rows come out of
    the same CPU kernels whatever the batch size."""
    assert set(got) == set(FIELDS)
    for name in FIELDS:
        a, b = got[name], want[name]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a.isnan(), b.isnan()), name
        assert torch.equal(a[~a.isnan()], b[~b.isnan()]), name


def test_every_rank_gets_the_unsharded_result_in_order(ranks, unsharded):
    want = unsharded[IMAGES]
    assert want["success"].all() and (want["distortion"] > 0).sum() == IMAGES - 1  # a real attack
    assert len(set(want["distortion"].tolist())) == IMAGES  # so that an order mix-up shows
    for r, record in enumerate(ranks):
        assert (record["rank"], record["world_size"], record["device"]) == (r, len(ranks), "cpu")
        assert_same(record["all"], want)


def test_a_rank_with_no_image(ranks, unsharded):
    for record in ranks:
        assert_same(record["few"], unsharded[len(ranks) - 1])


def test_an_error_on_one_rank_is_raised_on_all(ranks):
    kind, message = ranks[1]["bad_pixel"]
    assert kind == "ValueError" and "x must lie in" in message
    for record in ranks[:1] + ranks[2:]:
        assert record["bad_pixel"] == ["RuntimeError", "the sharded attack failed on rank(s) [1]; see their errors"]


def test_different_batches_on_different_ranks_are_refused(ranks):
    sizes = [IMAGES - r for r in range(len(ranks))]
    for record in ranks:
        assert record["sizes"] == [
            "ValueError",
            f"x must be the same whole batch on every rank; got sizes {sizes} by rank",
        ]


def test_without_a_process_group_it_is_min_distortion_attack(monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert init_from_env() == ProcessGroup(0, 1, local_device())
    assert not dist.is_initialized()
    model, x, y = tiny_problem(3)
    options = {"num_classes": 4, "search_steps": 2, "max_iter": 10, "progress_bar": False}  # default check_every
    assert_same(
        as_dict(sharded_min_distortion_attack(model, x, y, **options)),
        as_dict(min_distortion_attack(model, x, y, **options)),
    )
    shutdown()  # nothing to tear down: no error


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_shards_partition_the_batch_and_interleave_back(world):
    for n in range(0, 13):
        shards = [shard_indices(n, r, world) for r in range(world)]
        assert torch.equal(torch.cat(shards).sort().values, torch.arange(n))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
        rows = -(-n // world)
        values = torch.arange(n) * 10 + 1  # distinct, never the zero padding
        padded = [_pad(values[s], rows) for s in shards]
        assert torch.equal(_interleave(padded, n), values)


def test_bad_input_names_the_argument(monkeypatch):
    model, x, y = tiny_problem(4)
    with pytest.raises(ValueError, match=r"y must be a tensor of shape \(4,\)"):
        sharded_min_distortion_attack(model, x, y[:3])
    with pytest.raises(ValueError, match="x must be a torch.Tensor batch"):
        sharded_min_distortion_attack(model, x.numpy(), y)
    with pytest.raises(ValueError, match="rank"):
        shard_indices(4, 2, 2)
    with pytest.raises(ValueError, match="backend"):
        init_from_env("mpi")
    with pytest.raises(TypeError, match="timeout must be a datetime.timedelta"):
        init_from_env(timeout=60)
    monkeypatch.setenv("RANK", "first")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK must be a non-negative int, got 'first'"):
        init_from_env()
