import sys
import types

import pytest
import torch

from coursekit import config


@pytest.fixture(autouse=True)
def _torch_threads_kept(monkeypatch):
    """use_options also chooses torch's threads (tests/test_threads.py checks that); here it
    keeps torch's own, so that these tests leave the test process's count alone."""
    monkeypatch.setenv("COURSEKIT_THREADS", "torch")


def test_profiles_and_the_old_name(monkeypatch):
    monkeypatch.delenv("COURSEKIT_PROFILE", raising=False)
    assert config.resolve_profile("full") == "paper"
    assert config.resolve_profile("gpu") == "gpu"
    with pytest.raises(ValueError, match="profile"):
        config.resolve_profile("medium")
    for name in ("table1_images", "table4_images"):
        sizes = [config.experiment_size(name, p) for p in ("quick", "gpu", "paper")]
        assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_gpu_is_the_default_on_cuda(monkeypatch):
    monkeypatch.delenv("COURSEKIT_PROFILE", raising=False)
    monkeypatch.setenv("COURSEKIT_DEVICE", "cuda")
    assert config.resolve_profile() == "gpu"
    monkeypatch.setenv("COURSEKIT_DEVICE", "cpu")
    assert config.resolve_profile() == "quick"


def test_use_options_sets_the_profile(monkeypatch):
    monkeypatch.delenv("COURSEKIT_PROFILE", raising=False)
    config.use_options(profile="auto")
    assert "COURSEKIT_PROFILE" not in config.os.environ
    config.use_options(profile="paper")
    assert config.resolve_profile() == "paper"
    with pytest.raises(ValueError, match="medium"):
        config.use_options(profile="medium")
    with pytest.raises(TypeError, match="drive"):
        config.use_options(drive="yes")


def test_use_options_changes_nothing_when_it_refuses(monkeypatch):
    """Issue 24 item 10: use_options("paper", drive="yes") set COURSEKIT_PROFILE, then raised."""
    monkeypatch.setenv("COURSEKIT_PROFILE", "quick")
    with pytest.raises(TypeError, match="drive"):
        config.use_options("paper", drive="yes")
    with pytest.raises(TypeError, match="drive_cache"):
        config.use_options("paper", drive=True, drive_cache=None)
    assert config.os.environ["COURSEKIT_PROFILE"] == "quick"


def test_drive_is_mounted_only_on_colab(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "local"))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    config.use_options(drive=True)
    assert "local cache" in capsys.readouterr().out
    assert config.cache_dir() == tmp_path / "local"
    mounted = []
    drive = types.SimpleNamespace(mount=lambda path: mounted.append(path))
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    config.use_options(drive=True, drive_cache=str(tmp_path / "drive" / "MyDrive" / "cache"))
    assert mounted == [str(tmp_path / "drive")]
    assert config.cache_dir() == tmp_path / "drive" / "MyDrive" / "cache"


def test_attack_chunk_size_follows_free_gpu_memory(monkeypatch):
    assert config.attack_chunk_size("cpu", 784) == 60_000
    free = 4 * 2**30  # part of a T4
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 16 * 2**30))
    chunk = config.attack_chunk_size("cuda", 784, history=10)
    per_pair = 4 * (36 * 784)
    assert chunk == int(0.5 * free) // per_pair
    assert chunk * per_pair <= 0.5 * free < (chunk + 1) * per_pair
    with pytest.raises(ValueError, match="features"):
        config.attack_chunk_size("cuda", 0)


def test_one_profile_table_every_profile_with_the_same_keys():
    from coursekit import adversarial_training, modern_attacks, train, verification

    assert set(config.PROFILE_TABLE) == set(config.PROFILES)
    for section in config.PROFILE_SECTIONS:
        keys = {profile: set(config.PROFILE_TABLE[profile][section]) for profile in config.PROFILES}
        assert len({frozenset(k) for k in keys.values()}) == 1, (section, keys)
    # the modules' tables are views of it
    assert modern_attacks.MODERN_SIZES["quick"] is config.PROFILE_TABLE["quick"]["modern"]
    assert verification.VERIFY_SIZES["paper"] is config.PROFILE_TABLE["paper"]["verify"]
    assert adversarial_training.POOL_PROFILES["gpu"].pool_size == config.PROFILE_TABLE["gpu"]["pools"]["pool_size"]
    assert train.PROFILE_SETTINGS["quick"]["cnn"].epochs == config.PROFILE_TABLE["quick"]["training"]["cnn"]["epochs"]
    assert train.settings_for("FC10(1e-4)", "quick").lbfgs_iterations == 200
    assert config.profile_sizes("experiments", "quick") is config.EXPERIMENT_SIZES["quick"]
    with pytest.raises(ValueError, match="section"):
        config.profile_sizes("sizes", "quick")


def test_the_profile_table_and_its_views_are_read_only():
    """Issue 32 item 5: sizes one way, from a frozen table. A chapter (or a function) that set a
    size would have changed it for every later reader in the process."""
    from coursekit import adversarial_training, modern_attacks, train, verification

    with pytest.raises(TypeError):
        config.PROFILE_TABLE["quick"]["experiments"]["table1_images"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        config.PROFILE_TABLE["quick"]["training"]["fc"]["epochs"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        config.profile_sizes("modern", "quick")["images"] = 5  # type: ignore[index]
    for view in (
        config.EXPERIMENT_SIZES,
        modern_attacks.MODERN_SIZES,
        verification.VERIFY_SIZES,
        adversarial_training.POOL_PROFILES,
        train.PROFILE_SETTINGS,
    ):
        with pytest.raises(TypeError):
            view["quick"] = {}  # type: ignore[index]
    assert config.profile_sizes("modern", "quick")["models"] == ("FC10(1e-4)", "FC100-100-10")


def test_no_module_reads_the_profile_table_but_through_profile_sizes():
    import re
    from pathlib import Path

    src = Path(config.__file__).parent
    readers = [
        f.name for f in src.rglob("*.py") if f.name != "config.py" and re.search(r"PROFILE_TABLE\b", f.read_text())
    ]
    assert not readers, f"modules indexing PROFILE_TABLE themselves: {readers}"


def test_the_docstring_names_every_environment_variable_the_package_reads():
    import re
    from pathlib import Path

    src = Path(config.__file__).parent
    read = {v for f in src.rglob("*.py") for v in re.findall(r"COURSEKIT_[A-Z_]+", f.read_text())}
    assert read <= set(re.findall(r"COURSEKIT_[A-Z_]+", config.__doc__))
