"""MLflow schemas drawn from the data contract instead of inferred from the data.

MLflow infers a schema by looking at every value of every object column in Python, which costs seconds
per 100k rows, and marks a column "required" when the rows it saw had no missing value — so a model
would later refuse a batch with a gap that its pipeline imputes. The contract already knows each
column's kind, and every feature may be missing (the pipeline imputes), so the schema is declared.
"""

from __future__ import annotations

import pandas as pd
from pandas.api.types import is_bool_dtype, is_float_dtype, is_integer_dtype

from service.contracts import DataContract


def _target_type(series: pd.Series) -> str:
    if is_bool_dtype(series):
        return "boolean"
    if is_integer_dtype(series):
        return "long"
    if is_float_dtype(series):
        return "double"
    return "string"


def input_schema(contract: DataContract) -> object:
    from mlflow.types import ColSpec, Schema

    return Schema(
        [
            ColSpec("double" if spec.kind == "numeric" else "string", spec.name, required=False)
            for spec in contract.features
        ]
    )


def model_signature(contract: DataContract, predictions: pd.Series) -> object:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=input_schema(contract), outputs=Schema([ColSpec(_target_type(predictions))]))


def dataset(frame: pd.DataFrame, name: str, contract: DataContract, digest: str | None = None) -> object:
    """An MLflow dataset of ``frame`` (features and target) whose schema is declared, not inferred; with no
    ``digest``, MLflow computes one."""
    import mlflow.data
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.types import ColSpec, Schema
    from mlflow.utils.mlflow_tags import MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

    # Without a source, MLflow describes the process that logs the dataset: it probes for git, notebooks
    # and Databricks (about a second: it imports IPython where installed), and finds a Prefect engine
    # process named "-". The data's files are in the run's lineage; the source says what made the dataset.
    source = CodeDatasetSource(tags={MLFLOW_SOURCE_NAME: "driftloop retrain", MLFLOW_SOURCE_TYPE: "JOB"})
    result = mlflow.data.from_pandas(frame, name=name, targets=contract.target, source=source, digest=digest)
    target = [ColSpec(_target_type(frame[contract.target]), contract.target)] if contract.target else []
    # `schema` is a functools.cached_property: setting it up front is how its value is provided.
    result.__dict__["schema"] = Schema([*input_schema(contract).inputs, *target])  # type: ignore[attr-defined]
    return result
