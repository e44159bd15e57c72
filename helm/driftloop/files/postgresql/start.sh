#!/bin/bash
# The PostgreSQL container's command. The image's entrypoint runs /docker-entrypoint-initdb.d (and so
# roles.sh) only on an empty data volume; on every later start, bring the roles and databases in
# line with the Secret first (an upgrade from releases that shared the superuser, a changed
# password), on a server that listens on its unix socket only, as the entrypoint itself does.
set -Eeo pipefail
source /usr/local/bin/docker-entrypoint.sh
docker_setup_env
if [ -n "$DATABASE_ALREADY_EXISTS" ]; then
	docker_temp_server_start
	"$(dirname "$0")/roles.sh"
	docker_temp_server_stop
fi
exec docker-entrypoint.sh postgres
