"""The chart's values: `helm lint --strict` passes on every example, and every mistake fails the render
with a message naming the key (values.schema.json for unknown keys and types, _validation.tpl for
rules between keys)."""

from __future__ import annotations

import pytest
import yaml

from .conftest import CHART, VALUES_FILES, helm_template, load_script, run, tool, values_args

values_table = load_script("values_table")


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_helm_lint_strict_passes(values_file: str) -> None:
    result = run(tool("helm"), "lint", "--strict", str(CHART), *values_args(values_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


SCHEMA_MISTAKES = {
    "unknown key": (["--set", "api.replica=2"], ["at '/api'", "additional properties 'replica' not allowed"]),
    "unknown top-level key": (["--set", "modles.weather.model.name=w"], ["additional properties 'modles' not allowed"]),
    "typo in a resource name": (
        ["--set", "flowRuns.resources.limits.memori=4Gi"],
        ["at '/flowRuns/resources/limits'", "'memori' not allowed"],
    ),
    "string for an integer": (["--set-string", "api.replicas=two"], ["at '/api/replicas'", "want integer"]),
    "string for a boolean": (["--set-string", "postgresql.enabled=yes"], ["at '/postgresql/enabled'", "want boolean"]),
    "value outside an enum": (
        ["--set", "mlflow.artifacts.type=hdfs"],
        ["at '/mlflow/artifacts/type'", "'pvc', 's3', 'gcs', 'azure'"],
    ),
    "malformed digest": (["--set", "image.digest=latest"], ["at '/image/digest'", "does not match pattern"]),
    "container without limits": (
        ["--set", "api.resources.limits=null"],
        ["at '/api/resources'", "missing property 'limits'"],
    ),
    "flow-run env given a map": (["--set", "flowRuns.env.AWS.key=x"], ["at '/flowRuns/env/AWS'", "got object"]),
    "no monitor run at all": (["--set", "fleet.monitorConcurrency=0"], ["at '/fleet/monitorConcurrency'", "minimum"]),
    "a fraction of a retrain": (["--set", "fleet.retrainConcurrency=1.5"], ["at '/fleet/retrainConcurrency'"]),
    "sweep interval in words": (
        ["--set-string", "fleet.sweepIntervalSeconds=hourly"],
        ["at '/fleet/sweepIntervalSeconds'", "want integer"],
    ),
    "unknown fleet key": (["--set", "fleet.sweepInterval=60"], ["at '/fleet'", "'sweepInterval' not allowed"]),
}


@pytest.mark.parametrize("mistake", SCHEMA_MISTAKES, ids=str)
def test_schema_mistake_fails_the_render_naming_the_key(mistake: str) -> None:
    args, fragments = SCHEMA_MISTAKES[mistake]
    result = helm_template(*args)
    assert result.returncode != 0, f"{mistake}: rendered anyway"
    for fragment in fragments:
        assert fragment in result.stderr


RULE_BREAKS = {
    "external database without a secret": (
        ["postgresql.enabled=false", "database.existingSecret="],
        ["database.existingSecret: required when postgresql.enabled=false"],
    ),
    # Credentials are optional (a cloud identity needs none): only the bucket is missing.
    "s3 artifacts without bucket": (["mlflow.artifacts.type=s3"], ["mlflow.artifacts.s3.bucket: required"]),
    "replicas sharing a ReadWriteOnce claim": (
        ["mlflow.replicas=2"],
        ["mlflow.replicas: 2 replicas cannot share a ReadWriteOnce claim"],
    ),
    "ingress without a host": (["prefectServer.ingress.enabled=true"], ["prefectServer.ingress.host: required"]),
    "models given twice": (
        ["models.driftloop.model.name=w", "modelsExistingConfigMap=my-models"],
        ["models: set either models or modelsExistingConfigMap"],
    ),
}


@pytest.mark.parametrize("rule", RULE_BREAKS, ids=str)
def test_broken_rule_fails_the_render_naming_the_key(rule: str) -> None:
    overrides, fragments = RULE_BREAKS[rule]
    result = helm_template(*[arg for override in overrides for arg in ("--set", override)])
    assert result.returncode != 0, f"{rule}: rendered anyway"
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("fleet.monitorConcurrency=0", "fleet.monitorConcurrency: expected a whole number of 1 or more, got 0"),
        ("fleet.retrainConcurrency=2.5", "fleet.retrainConcurrency: expected a whole number of 1 or more, got 2.5"),
        ("fleet.sweepIntervalSeconds=null", "fleet.sweepIntervalSeconds: expected a whole number of 1 or more"),
    ],
)
def test_fleet_numbers_are_checked_even_when_the_schema_is_skipped(override: str, message: str) -> None:
    """The register hook writes them into flows/prefect.yaml as they are: _validation.tpl holds the line too."""
    result = helm_template("--skip-schema-validation", "--set", override)
    assert result.returncode != 0, f"{override}: rendered anyway"
    assert message in result.stderr


def test_every_broken_rule_is_reported_at_once() -> None:
    result = helm_template(
        "--set", "postgresql.enabled=false", "--set", "database.existingSecret=", "--set", "api.ingress.enabled=true"
    )
    assert "database.existingSecret: required" in result.stderr
    assert "api.ingress.host: required" in result.stderr


def test_every_key_of_values_yaml_is_documented() -> None:
    assert values_table.undocumented_keys((CHART / "values.yaml").read_text()) == []


def test_readme_values_table_is_up_to_date() -> None:
    readme, values = (CHART / "README.md").read_text(), (CHART / "values.yaml").read_text()
    assert readme == values_table.updated_readme(readme, values), (
        "helm/driftloop/README.md: run python helm/driftloop/scripts/values_table.py"
    )
    assert "| `flowRuns.activeDeadlineSeconds` | int | `14400` |" in readme


def test_values_table_follows_the_comments() -> None:
    values = "a:\n  # -- The b.\n  # Second line.\n  b: 1\n  c: x\n# -- Whole d.\nd:\n  e: [1]\n"
    assert [(row.key, row.default, row.description) for row in values_table.rows(values)] == [
        ("a.b", "1", "The b. Second line."),
        ("d", '{"e": [1]}', "Whole d."),
    ]
    assert values_table.undocumented_keys(values) == ["a.c"]


def test_schema_holds_every_key_of_values_yaml() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def missing(values: dict, node: dict, prefix: str) -> list[str]:
        properties = node.get("properties", {})
        found = []
        for key, value in values.items():
            if key not in properties:
                found.append(prefix + key)
                continue
            child = properties[key]
            if "$ref" in child:
                child = schema["definitions"][child["$ref"].rsplit("/", 1)[1]]
            if isinstance(value, dict) and child.get("properties"):
                found += missing(value, child, f"{prefix}{key}.")
        return found

    assert missing(values, schema, "") == []
    assert schema["additionalProperties"] is False
