"""The GitHub workflow that tests every push and publishes the site: checked statically (it cannot
run here). `make lint` also validates it against the workflow schema (and actionlint where it is
installed)."""

from pathlib import Path

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
