"""The one validated cache loader: atomic writes, digests, schemas; and each cache that uses it."""

import builtins
import io

import pytest
import torch

from coursekit import cache
from coursekit.cache import CacheMismatch, check_record, load_cached, save_record

SCHEMA = {"x": (torch.float32, ("N", 3)), "y": (torch.int64, ("N",)), "info": {"name": str}}


def _record(n=4, value=1.0):
    return {"x": torch.full((n, 3), value), "y": torch.arange(n), "info": {"name": "a"}}


def test_round_trip_returns_the_record(tmp_path):
    path = tmp_path / "r.pt"
    save_record(_record(), path)
    loaded = load_cached(path, SCHEMA, {"N": 4})
    assert torch.equal(loaded["x"], _record()["x"]) and loaded["info"] == {"name": "a"}
    assert cache.DIGEST_KEY not in loaded


def test_a_crash_mid_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    """Simulated crash: torch.save writes half the bytes, then the process 'dies'."""
    path = tmp_path / "r.pt"
    save_record(_record(value=1.0), path)
    before = path.read_bytes()
    real_save = torch.save

    def crashing_save(obj, stream):
        real_save(obj, stream)
        stream.seek(len(before) // 2)
        stream.truncate()
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(cache.torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_record(_record(value=2.0), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.equal(load_cached(path, SCHEMA)["x"], _record(value=1.0)["x"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pt"]  # no temporary file left


def test_a_flipped_byte_is_caught_by_the_digest(tmp_path):
    path = tmp_path / "r.pt"
    save_record(_record(), path)
    raw = torch.load(path, weights_only=True)
    raw["x"][1, 2] = 1.0000001  # one changed value, the old digest kept
    torch.save(raw, path)
    with pytest.warns(UserWarning, match="digest"):
        assert load_cached(path, SCHEMA) is None
    assert not path.exists()  # removed, so that the caller rebuilds it


def test_a_file_that_cannot_be_read_is_kept(tmp_path, monkeypatch):
    """Issue 24 item 10: any exception deleted the file, also a transient read error of a
    Google Drive mount (a 20-minute training lost). Only proven corruption deletes it."""
    path = tmp_path / "r.pt"
    save_record(_record(), path)
    before = path.read_bytes()
    real_open = builtins.open

    def flaky(file, *args, **kwargs):  # the mount drops out while the file is read
        if str(file) == str(path):
            raise OSError(5, "Input/output error (transport endpoint is not connected)")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", flaky)
    monkeypatch.setattr(io, "open", flaky)
    with pytest.warns(UserWarning, match="could not be read.*kept"):
        assert load_cached(path, SCHEMA) is None
    monkeypatch.undo()
    assert path.read_bytes() == before  # still there, and still good
    assert torch.equal(load_cached(path, SCHEMA)["x"], _record()["x"])


def test_a_truncated_file_is_corrupt_and_removed(tmp_path):
    path = tmp_path / "r.pt"
    save_record(_record(), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="not usable"):
        assert load_cached(path, SCHEMA) is None
    assert not path.exists()


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"y": torch.arange(4)}, "missing key 'x'"),
        ({**_record(), "x": torch.zeros(4, 3, dtype=torch.float64)}, "dtype"),
        ({**_record(), "y": torch.arange(3)}, "shape"),
        ({**_record(), "info": {"name": 3}}, "'name' must be a str"),
        ({**_record(), "x": [1, 2]}, "must be a tensor"),
    ],
)
def test_records_that_do_not_fit_are_rebuilt(tmp_path, broken, message):
    path = tmp_path / "r.pt"
    save_record(broken, path)
    with pytest.raises(CacheMismatch, match=message):
        check_record(torch.load(path, weights_only=True), SCHEMA)
    with pytest.warns(UserWarning, match="rebuilding"):
        assert load_cached(path, SCHEMA) is None


def test_named_sizes_fixed_in_advance(tmp_path):
    path = tmp_path / "r.pt"
    save_record(_record(n=1), path)
    with pytest.warns(UserWarning, match="shape"):
        assert load_cached(path, SCHEMA, {"N": 3}) is None  # a 1-row file for 3 images


def test_a_file_without_a_digest_is_rebuilt(tmp_path):
    path = tmp_path / "r.pt"
    torch.save(_record(), path)
    with pytest.warns(UserWarning, match="no stored digest"):
        assert load_cached(path, SCHEMA) is None


def test_model_cache_checks_names_shapes_and_key(tmp_path):
    from coursekit.train import load_model_record, model_record

    small = torch.nn.Sequential(torch.nn.Linear(4, 3))
    path = tmp_path / "m.pt"
    save_record(model_record(small, {"key": {"a": 1}}), path)
    other = torch.nn.Sequential(torch.nn.Linear(4, 3))
    assert load_model_record(other, path, {"a": 1}) is not None
    assert torch.equal(other[0].weight, small[0].weight)
    with pytest.warns(UserWarning, match="another model or key"):
        assert load_model_record(other, path, {"a": 2}) is None
    save_record(model_record(small, {"key": {"a": 1}}), path)
    with pytest.warns(UserWarning, match="shape"):
        assert load_model_record(torch.nn.Sequential(torch.nn.Linear(5, 3)), path, {"a": 1}) is None


def _attack_setup():
    from conftest import attackable_model

    model = attackable_model(4)
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(4)) * 0.8 + 0.1
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


OPTIONS = {"search_steps": 3, "max_iter": 20, "progress_bar": False}


def test_attack_cache_key_includes_the_architecture(tmp_cache):
    from coursekit.transfer import adversarial_examples

    model, x, y = _attack_setup()
    plain = adversarial_examples(model, x, y, **OPTIONS)
    squashed = torch.nn.Sequential(*model, torch.nn.Tanh()).eval()  # the same weights
    result = adversarial_examples(squashed, x, y, **OPTIONS)
    assert len(list((tmp_cache / "attacks").glob("*.pt"))) == 2
    with torch.no_grad():
        assert (squashed(result.x_adv).argmax(1) != y).all()
    assert not torch.equal(plain.x_adv, result.x_adv)


def test_attack_cache_with_too_few_rows_is_recomputed(tmp_cache):
    from coursekit.transfer import adversarial_examples

    model, x, y = _attack_setup()
    first = adversarial_examples(model, x, y, **OPTIONS)
    (path,) = (tmp_cache / "attacks").glob("*.pt")
    save_record({name: value[:1] for name, value in vars(first).items()}, path)  # a 1-row file
    with pytest.warns(UserWarning, match="rebuilding"):
        again = adversarial_examples(model, x, y, **OPTIONS)
    assert len(again) == 3 and torch.equal(again.x_adv, first.x_adv)
    save_record({"x_adv": first.x_adv}, path)  # wrong keys
    with pytest.warns(UserWarning, match="missing key"):
        assert len(adversarial_examples(model, x, y, **OPTIONS)) == 3


def test_mnist_cache_with_two_swapped_labels_is_refused_and_rebuilt(tmp_cache):
    from coursekit import data

    data._memory.clear()
    x, y = data.load_mnist("test")
    path = tmp_cache / "mnist" / "test.pt"
    record = load_cached(path, data._cache_schema("test"))
    k, labels = record["k"], record["y"].clone()
    first, second = 0, int((labels != labels[0]).nonzero()[0])
    labels[[first, second]] = labels[[second, first]]  # same class counts, same shapes
    save_record({"k": k, "y": labels, "source": "tampered"}, path)  # with a matching digest
    data._memory.clear()
    with pytest.warns(UserWarning, match="not canonical"):
        x2, y2 = data.load_mnist("test")
    assert torch.equal(y2, y) and torch.equal(x2, x)
    assert load_cached(path, data._cache_schema("test"))["source"] != "tampered"
    data._memory.clear()


def test_mnist_cache_with_a_flipped_byte_is_rebuilt(tmp_cache):
    from coursekit import data

    data._memory.clear()
    x, _ = data.load_mnist("test")
    path = tmp_cache / "mnist" / "test.pt"
    raw = torch.load(path, weights_only=True)
    raw["k"][5, 10, 10] ^= 1
    torch.save(raw, path)  # the old digest kept
    data._memory.clear()
    with pytest.warns(UserWarning, match="digest"):
        x2, _ = data.load_mnist("test")
    assert torch.equal(x2, x)
    data._memory.clear()


def test_a_legacy_model_file_that_fits_is_upgraded_with_a_digest(tmp_path):
    from coursekit.train import load_model_record, model_record

    small = torch.nn.Sequential(torch.nn.Linear(4, 3))
    path = tmp_path / "m.pt"
    torch.save(model_record(small, {"key": {"a": 1}}), path)  # the format before digests
    assert load_model_record(torch.nn.Sequential(torch.nn.Linear(4, 3)), path, {"a": 1}) is not None
    raw = torch.load(path, weights_only=True)
    assert raw[cache.DIGEST_KEY] == cache.record_digest(raw)  # rewritten with its digest
    torch.save({"state_dict": {}, "info": {"key": {"a": 1}}}, path)  # legacy but not fitting
    with pytest.warns(UserWarning, match="missing key"):
        assert load_model_record(torch.nn.Sequential(torch.nn.Linear(4, 3)), path, {"a": 1}) is None


@pytest.mark.parametrize("garbage", [b"", b"not a torch file", bytes(range(256))])
def test_bytes_torch_cannot_read_are_corruption_and_removed(tmp_path, garbage):
    path = tmp_path / "record.pt"
    path.write_bytes(garbage)
    with pytest.warns(UserWarning, match="not usable"):
        assert load_cached(path, SCHEMA) is None
    assert not path.exists()


def test_a_bug_in_a_schema_is_not_taken_for_corruption(tmp_path):
    """Only corruption it can name removes a file: an error of the caller's schema propagates
    and the (valid) file is kept, rather than a model silently retrained."""
    path = tmp_path / "record.pt"
    save_record(_record(), path)
    with pytest.raises(TypeError):
        load_cached(path, {"x": "not a schema entry"})  # a str is neither a type, a pair nor a dict
    assert path.exists()
