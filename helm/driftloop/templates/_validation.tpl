{{/*
Rules between values that values.schema.json cannot state. Each failure names the key to fix and
what it expects. Called from validation.yaml, so every render runs them.
*/}}
{{- define "driftloop.validate" -}}
{{- $v := .Values -}}
{{- $errors := list -}}
{{- if and (not $v.postgresql.enabled) (not $v.database.existingSecret) -}}
{{- $errors = append $errors (printf "database.existingSecret: required when postgresql.enabled=false (an external database): name a Secret with keys %q (postgresql+asyncpg://...) and %q (postgresql+psycopg2://...)" $v.database.prefectUrlKey $v.database.mlflowUrlKey) -}}
{{- end -}}
{{- /* The bundled PostgreSQL keeps the passwords of its first start; a render that cannot read the
generated Secret back (helm template, Argo CD) would write new ones it never learns. */ -}}
{{- if and $v.postgresql.enabled (not $v.database.existingSecret) (not (include "driftloop.clusterVisible" .)) -}}
{{- $errors = append $errors (printf "database.existingSecret: required when rendering without access to the cluster (helm template, GitOps): lookup cannot read back the generated database passwords, so each render would make new ones that PostgreSQL never learns. Name a Secret with keys %q (the PostgreSQL superuser's password, read only by the PostgreSQL pod), %q (postgresql+asyncpg://prefect:<password>@%s:5432/prefect) and %q (postgresql+psycopg2://mlflow:<password>@%s:5432/mlflow); PostgreSQL creates those roles and databases" $v.database.passwordKey $v.database.prefectUrlKey (include "driftloop.componentName" (dict "root" . "component" "postgresql")) $v.database.mlflowUrlKey (include "driftloop.componentName" (dict "root" . "component" "postgresql"))) -}}
{{- end -}}
{{- $errors = concat $errors (include "driftloop.clusterStateErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "driftloop.artifactsErrors" . | fromJsonArray) -}}
{{- if and (eq $v.mlflow.artifacts.type "pvc") (gt (int $v.mlflow.replicas) 1) (eq $v.mlflow.artifacts.pvc.accessMode "ReadWriteOnce") -}}
{{- $errors = append $errors (printf "mlflow.replicas: %d replicas cannot share a ReadWriteOnce claim: set mlflow.artifacts.pvc.accessMode=ReadWriteMany or mlflow.artifacts.type=s3, gcs or azure" (int $v.mlflow.replicas)) -}}
{{- end -}}
{{- range $component := list "api" "prefectServer" "mlflow" -}}
{{- $ingress := (index $v $component).ingress -}}
{{- if and $ingress.enabled (not $ingress.host) -}}
{{- $errors = append $errors (printf "%s.ingress.host: required when %s.ingress.enabled=true" $component $component) -}}
{{- end -}}
{{- end -}}
{{- if and $v.models $v.modelsExistingConfigMap -}}
{{- $errors = append $errors "models: set either models or modelsExistingConfigMap, not both" -}}
{{- end -}}
{{- /* The schema says the same; this holds when it is skipped (`--skip-schema-validation`), because
the register hook writes these numbers into flows/prefect.yaml as they are. */ -}}
{{- range $key := list "sweepIntervalSeconds" "monitorConcurrency" "retrainConcurrency" -}}
{{- $n := index $v.fleet $key -}}
{{- if not (and (or (kindIs "int" $n) (kindIs "int64" $n) (kindIs "float64" $n)) (eq (float64 $n) (float64 (int64 $n))) (ge (int64 $n) 1)) -}}
{{- $errors = append $errors (printf "fleet.%s: expected a whole number of 1 or more, got %v" $key $n) -}}
{{- end -}}
{{- end -}}
{{- /* Generated credentials are read back with lookup; where it sees nothing (helm template, Argo CD)
every render would write new ones that the servers and PostgreSQL never learn. */ -}}
{{- if include "driftloop.authEnabled" . -}}
{{- $a := $v.auth -}}
{{- if and (not $a.existingSecret) (not (include "driftloop.clusterVisible" .)) -}}
{{- $errors = append $errors (printf "auth.existingSecret: required when rendering without access to the cluster (helm template, GitOps): lookup cannot read back generated passwords, so each render would make new ones. Name a Secret with keys %q (user:password), %q, %q, %q and %q (the MLflow admin and service users), and set auth.flowRunExistingSecret" $a.prefect.authStringKey $a.mlflow.adminUsernameKey $a.mlflow.adminPasswordKey $a.mlflow.serviceUsernameKey $a.mlflow.servicePasswordKey) -}}
{{- end -}}
{{- if and $a.existingSecret (not $a.flowRunExistingSecret) -}}
{{- $errors = append $errors (printf "auth.flowRunExistingSecret: required with auth.existingSecret: name a Secret in namespace %q (the Jobs' namespace) with keys PREFECT_API_AUTH_STRING, MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (MLflow's service user, not the admin), for the flow-run Jobs" (include "driftloop.jobsNamespace" .)) -}}
{{- end -}}
{{- end -}}
{{- $errors = concat $errors (include "driftloop.flowRunJobErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "driftloop.mlflowAuthErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "driftloop.networkErrors" . | fromJsonArray) -}}
{{- $errors = concat $errors (include "driftloop.podLabelErrors" . | fromJsonArray) -}}
{{- if $errors -}}
{{- fail (printf "\n%s" (join "\n" $errors)) -}}
{{- end -}}
{{- end -}}
