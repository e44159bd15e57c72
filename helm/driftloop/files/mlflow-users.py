"""Create MLflow's users and their rights through its basic-auth REST API, as the admin.

Run by the chart's post-install/upgrade hook Job (and by the tests, against a real server). Every step
is idempotent: a user that exists gets the Secret's password again (the Secret is the truth, so
rotating it there rotates it in MLflow), and a grant is only written when it is missing or differs.

Environment:
  MLFLOW_TRACKING_URI                               the MLflow server
  MLFLOW_AUTH_ADMIN_USERNAME, _PASSWORD             the admin (the auth Secret)
  MLFLOW_SERVICE_USERNAME, _PASSWORD                the user of flows and the API
  MLFLOW_READERS                                    JSON list of {"username", "passwordEnv"}: read-only users,
                                                    each password in the variable passwordEnv names
  WAIT_SECONDS                                      how long to wait for the server to answer (default 600)
"""

from __future__ import annotations

import json
import os
import sys
import time

import requests

# What flows and the API do: create experiments, runs, registered models and versions, set aliases
# (EDIT on the model) and delete them (promotion drops @challenger and @previous: deleting an alias
# needs MANAGE on the model). Granted on every experiment and model ("*"), not only those the service
# user created, so models registered before auth was turned on keep working. Not admin: it cannot
# create users or change anyone's rights but on the experiments and models themselves.
SERVICE_GRANTS = {("experiment", "*"): "EDIT", ("registered_model", "*"): "MANAGE"}
TIMEOUT = 30


class Failure(Exception):
    """A step failed: the message says which and what to check."""


class Mlflow:
    def __init__(self, url: str, admin: tuple[str, str]) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = admin

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return self.session.request(method, f"{self.url}{path}", timeout=TIMEOUT, **kwargs)

    def wait(self, seconds: float) -> None:
        """Until /health answers 200 (a fresh release's server may still be starting)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise Failure(
                    f"{self.url}/health did not answer 200 within {seconds:.0f} s: is the MLflow pod running?"
                )
            time.sleep(3)

    def expect(self, response: requests.Response, what: str) -> dict:
        if response.status_code == 401:
            raise Failure(
                f"{what}: MLflow refused the admin's credentials (401). MLflow reads the admin's password "
                "only when it creates the admin, on its first start: if the Secret's password changed since, "
                "set it back, or change the admin's password in MLflow to the Secret's."
            )
        if response.status_code >= 400:
            raise Failure(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def user(self, username: str) -> dict | None:
        response = self.call("GET", "/api/2.0/mlflow/users/get", params={"username": username})
        if response.status_code == 404:
            return None
        return self.expect(response, f"read user {username}")["user"]

    def ensure_user(self, username: str, password: str) -> None:
        """The user exists with this password and is not an admin."""
        user = self.user(username)
        if user is None:
            response = self.call(
                "POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password}
            )
            self.expect(response, f"create user {username}")
            print(f"mlflow-users: created {username}")
            return
        response = self.call(
            "PATCH", "/api/2.0/mlflow/users/update-password", json={"username": username, "password": password}
        )
        self.expect(response, f"set the password of {username}")
        if user.get("is_admin"):
            response = self.call(
                "PATCH", "/api/2.0/mlflow/users/update-admin", json={"username": username, "is_admin": False}
            )
            self.expect(response, f"take admin rights from {username}")
        print(f"mlflow-users: {username} exists, password set from the Secret")

    def grants(self, username: str) -> dict[tuple[str, str], str]:
        response = self.call("GET", "/api/3.0/mlflow/users/permissions/list", params={"username": username})
        rows = self.expect(response, f"list the rights of {username}")["permissions"]
        return {(row["resource_type"], row["resource_pattern"]): row["permission"] for row in rows}

    def ensure_grants(self, username: str, wanted: dict[tuple[str, str], str]) -> None:
        held = self.grants(username)
        for (resource_type, pattern), permission in wanted.items():
            if held.get((resource_type, pattern)) == permission:
                continue
            target = {"username": username, "resource_type": resource_type, "resource_id": pattern}
            if (resource_type, pattern) in held:
                # A grant cannot be changed in place: MLflow answers RESOURCE_ALREADY_EXISTS.
                response = self.call("POST", "/api/3.0/mlflow/users/permissions/revoke", json=target)
                self.expect(response, f"revoke {resource_type} {pattern} from {username}")
            response = self.call(
                "POST", "/api/3.0/mlflow/users/permissions/grant", json={**target, "permission": permission}
            )
            self.expect(response, f"grant {permission} on {resource_type} {pattern} to {username}")
            print(f"mlflow-users: {username} has {permission} on {resource_type} {pattern}")


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Failure(f"{name} is empty: the chart sets it from the auth Secret; check that the Secret has its key")
    return value


def readers(service: str, admin: str) -> list[tuple[str, str]]:
    entries = json.loads(os.environ.get("MLFLOW_READERS") or "[]")
    found = []
    for entry in entries:
        username, variable = entry["username"], entry["passwordEnv"]
        if username in (service, admin):
            raise Failure(f"auth.mlflow.readers: {username!r} is the admin's or the service user's name; pick another")
        password = os.environ.get(variable, "")
        if len(password) < 12:
            raise Failure(
                f"auth.mlflow.readers: the password of {username!r} is shorter than 12 characters, MLflow's minimum: "
                "set a longer one in its Secret"
            )
        found.append((username, password))
    return found


def main() -> int:
    try:
        admin = (required("MLFLOW_AUTH_ADMIN_USERNAME"), required("MLFLOW_AUTH_ADMIN_PASSWORD"))
        service = (required("MLFLOW_SERVICE_USERNAME"), required("MLFLOW_SERVICE_PASSWORD"))
        read_only = readers(service[0], admin[0])
        mlflow = Mlflow(required("MLFLOW_TRACKING_URI"), admin)
        mlflow.wait(float(os.environ.get("WAIT_SECONDS", "600")))
        mlflow.ensure_user(*service)
        mlflow.ensure_grants(service[0], SERVICE_GRANTS)
        for username, password in read_only:
            # No grant: MLflow's default_permission (READ) is all they get.
            mlflow.ensure_user(username, password)
    except (Failure, requests.RequestException) as failure:
        print(f"mlflow-users: {failure}", file=sys.stderr)
        return 1
    print("mlflow-users: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
