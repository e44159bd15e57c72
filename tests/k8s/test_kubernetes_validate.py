"""Every object the chart and k8s/ produce is valid for the Kubernetes API, 1.29 and 1.35, strictly
(an unknown field is an error, as `kubectl apply --validate=strict` makes it)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import KUBERNETES_VERSIONS, VALUES_FILES, Objects


def validation_errors(objects: Objects, version: str) -> list[str]:
    """One line per invalid object: kind/name, the path of the bad field and what is wrong with it."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            checked = kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as exc:
            errors.append(f"{where}: {exc}")
        else:
            assert checked == version, f"kubernetes-validate checked against {checked}, not {version}"
    return errors


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_every_rendered_object_is_valid(values_file: str, version: str, rendered: dict[str, Objects]) -> None:
    objects = rendered[values_file]
    assert len(objects) > 20
    assert validation_errors(objects, version) == []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_plain_manifest_is_valid(version: str, plain_manifests: Objects) -> None:
    assert len(plain_manifests) > 20
    assert validation_errors(plain_manifests, version) == []


def test_the_validation_is_strict(default_objects: Objects) -> None:
    deployment: dict[str, Any] = next(obj for obj in default_objects if obj["kind"] == "Deployment")
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    name = deployment["metadata"]["name"]
    unexpected = "Additional properties are not allowed ('replica' was unexpected)"
    assert validation_errors([typo], "1.35") == [f"Deployment/{name}: spec: {unexpected}"]
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "Widget/w" in validation_errors([unknown], "1.29")[0]
