"""checkov finds nothing in the rendered chart (every example values file) nor in k8s/, and every
check it skips says why: `.checkov.yaml` comments for chart-wide skips, `checkov.io/skipN` annotations
with a reason for object-specific ones."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, helm_template, run, tool

CONFIG = CHART / ".checkov.yaml"
# A deliberately insecure render scanned with the rest: checkov must flag it, or it checks nothing.
CANARY = "canary-writable-root.yaml"


@pytest.fixture(scope="module")
def scan(rendered_text: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("checkov")
    for values_file, text in rendered_text.items():
        (folder / f"chart-{values_file.removesuffix('.yaml')}.yaml").write_text(text)
    kustomized = run(tool("kubectl"), "kustomize", str(CHART.parents[1] / "k8s"))
    assert kustomized.returncode == 0, kustomized.stderr
    (folder / "k8s.yaml").write_text(kustomized.stdout)
    canary = helm_template("--set", "containerSecurityContext.readOnlyRootFilesystem=false")
    assert canary.returncode == 0, canary.stderr
    (folder / CANARY).write_text(canary.stdout)
    result = run(tool("checkov"), "--directory", str(folder), "--config-file", str(CONFIG), "--output", "json")
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert report["check_type"] == "kubernetes"
    return report


def failed_by_file(scan: dict[str, Any]) -> dict[str, set[str]]:
    failed: dict[str, set[str]] = {}
    for check in scan["results"]["failed_checks"]:
        failed.setdefault(Path(check["file_path"]).name, set()).add(check["check_id"])
    return failed


def test_checkov_finds_nothing_in_the_chart_nor_in_k8s(scan: dict[str, Any]) -> None:
    summary = scan["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 100 and summary["passed"] > 2000
    failures = {name: ids for name, ids in failed_by_file(scan).items() if name != CANARY}
    assert failures == {}


def test_checkov_flags_a_writable_root_filesystem(scan: dict[str, Any]) -> None:
    assert "CKV_K8S_22" in failed_by_file(scan).get(CANARY, set())


def test_every_skipped_check_gives_its_reason(scan: dict[str, Any]) -> None:
    skipped = scan["results"]["skipped_checks"]
    assert skipped, "the worker's token skip (CKV_K8S_38) should show here"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 8, f"{check['check_id']} on {check['resource']}: no reason given"
    assert {check["check_id"] for check in skipped} == {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_35", "CKV_K8S_38"}


def test_every_chart_wide_skip_has_a_comment_above_it() -> None:
    lines = CONFIG.read_text().splitlines()
    skips = yaml.safe_load(CONFIG.read_text())["skip-check"]
    assert skips
    for check_id in skips:
        index = next(i for i, line in enumerate(lines) if re.fullmatch(rf"\s*- {check_id}", line))
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        assert len(" ".join(comment).split()) >= 15, f"{check_id}: explain the skip in a comment above it"
