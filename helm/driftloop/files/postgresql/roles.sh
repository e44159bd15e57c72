#!/bin/bash
# Prefect's and MLflow's roles and databases, from the connection URLs in the database Secret.
# Run as the PostgreSQL superuser over the server's unix socket: by the image's entrypoint from
# /docker-entrypoint-initdb.d on the first start, and by start.sh on every later one.
set -Eeuo pipefail
secrets="${DRIFTLOOP_DATABASE_SECRETS:-/etc/driftloop/database}"
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
psql=(psql --no-psqlrc --no-password -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres)
for server in prefect mlflow; do
	echo "driftloop: role and database of the $server URL"
	"${psql[@]}" -v superuser="$POSTGRES_USER" -v url="$(cat "$secrets/$server-url")" -f "$here/ensure-role.psql"
done
# Nobody but the superuser needs the maintenance database.
"${psql[@]}" -qc 'REVOKE ALL ON DATABASE postgres FROM PUBLIC'
