#!/bin/sh
# Starts `mlflow server` with MLflow's basic-auth app (arguments: those of `mlflow server`).
#
# MLflow reads the auth database's URL only from its ini file, and that URL holds a password: so the
# ini is written here, at start, into the pod's own /tmp (mode 0600), from the mounted template
# (MLFLOW_AUTH_CONFIG_TEMPLATE) and MLFLOW_AUTH_DATABASE_URI, never into a ConfigMap.
set -eu

: "${MLFLOW_AUTH_CONFIG_TEMPLATE:?the auth ini template to start from}"
: "${MLFLOW_AUTH_CONFIG_PATH:?where to write the auth ini MLflow reads}"
: "${MLFLOW_AUTH_DATABASE_URI:?the database URL of MLflow's users and permissions}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?the admin's password (auth Secret)}"

# The auth app signs the CSRF token of its signup form with this key, which must be the same in every
# worker and replica. Derived from the admin's password (one way) unless set, so that it needs no
# Secret key of its own and stays secret.
if [ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]; then
    MLFLOW_FLASK_SERVER_SECRET_KEY=$(printf 'driftloop-mlflow-csrf:%s' "$MLFLOW_AUTH_ADMIN_PASSWORD" | sha256sum | cut -d' ' -f1)
    export MLFLOW_FLASK_SERVER_SECRET_KEY
fi

umask 077
mkdir -p "$(dirname "$MLFLOW_AUTH_CONFIG_PATH")"
{
    cat "$MLFLOW_AUTH_CONFIG_TEMPLATE"
    # configparser treats % as interpolation: doubled, a URL-encoded password (%40) reads back as is.
    printf 'database_uri = %s\n' "$(printf '%s' "$MLFLOW_AUTH_DATABASE_URI" | sed 's/%/%%/g')"
} > "$MLFLOW_AUTH_CONFIG_PATH"

exec mlflow server --app-name basic-auth "$@"
