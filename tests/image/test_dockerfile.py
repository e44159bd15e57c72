"""The Dockerfile and its build context, checked without building: linters, and what the builders need."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from .conftest import ROOT, require_tool

DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing() -> None:
    checkov = require_tool("checkov")
    result = subprocess.run(
        [checkov, "-f", str(DOCKERFILE), "--framework", "dockerfile", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    failed = [f"{check['check_id']} {check['check_name']}" for check in report["results"]["failed_checks"]]
    assert failed == [], result.stdout[-3000:]
    assert report["summary"]["passed"] > 0
    # Every skip carries its reason, in the Dockerfile and so in the report.
    skipped = report["results"]["skipped_checks"]
    assert {check["check_id"] for check in skipped} == {"CKV_DOCKER_7"}
    assert all(check["check_result"].get("suppress_comment") for check in skipped)


def test_hadolint_skips_carry_a_reason() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[number - 1].lstrip().startswith("#"), f"line {number + 1}: a hadolint skip without a reason"


def test_no_buildkit_only_syntax() -> None:
    # Debian's engine has only the legacy builder: no RUN --mount, heredocs, COPY --link/--chmod or
    # a syntax directive that would fetch a frontend image from a registry.
    text = DOCKERFILE.read_text()
    assert not re.search(r"^\s*#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert not re.search(r"--mount=|--link\b|--chmod=|--parents\b|--exclude=", text)
    assert not re.search(r"<<-?\s*['\"]?[A-Z_]+", text), "heredoc"


def test_build_context_holds_only_what_the_image_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "the context is an allow-list"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied = set()
    for match in re.finditer(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE.read_text(), re.MULTILINE):
        copied |= {source.rstrip("/") for source in match[1].split()[:-1]}
    assert copied <= allowed, f"COPY of files that .dockerignore leaves out: {copied - allowed}"
    assert all((ROOT / path).exists() for path in allowed), allowed


def test_extra_requirements_are_pinned() -> None:
    lines = (ROOT / "docker/requirements.txt").read_text().splitlines()
    requirements = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert requirements
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", req) for req in requirements), requirements


def test_base_image_default_is_a_tagged_public_python() -> None:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match and re.fullmatch(r"python:3\.1[1-9][\w.-]*-bookworm", match[1]), match
    assert Path(ROOT / "flows/prefect.yaml").exists()
