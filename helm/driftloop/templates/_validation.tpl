{{/*
Rules between values that values.schema.json cannot state. Each failure names the key to fix and
what it expects. Called from validation.yaml, so every render runs them.
*/}}
{{- define "driftloop.validate" -}}
{{- $v := .Values -}}
{{- $errors := list -}}
{{- if and (not $v.postgresql.enabled) (not $v.database.existingSecret) -}}
{{- $errors = append $errors (printf "database.existingSecret: required when postgresql.enabled=false (an external database): name a Secret with keys %q (postgresql+asyncpg://...) and %q (postgresql://...)" $v.database.prefectUrlKey $v.database.mlflowUrlKey) -}}
{{- end -}}
{{- if eq $v.mlflow.artifacts.type "s3" -}}
{{- if not $v.mlflow.artifacts.s3.bucket -}}
{{- $errors = append $errors "mlflow.artifacts.s3.bucket: required when mlflow.artifacts.type=s3" -}}
{{- end -}}
{{- if not $v.mlflow.artifacts.s3.existingSecret -}}
{{- $errors = append $errors (printf "mlflow.artifacts.s3.existingSecret: required when mlflow.artifacts.type=s3: name a Secret with keys %q and %q" $v.mlflow.artifacts.s3.accessKeyIdKey $v.mlflow.artifacts.s3.secretAccessKeyKey) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.mlflow.artifacts.type "pvc") (gt (int $v.mlflow.replicas) 1) (eq $v.mlflow.artifacts.pvc.accessMode "ReadWriteOnce") -}}
{{- $errors = append $errors (printf "mlflow.replicas: %d replicas cannot share a ReadWriteOnce claim: set mlflow.artifacts.pvc.accessMode=ReadWriteMany or mlflow.artifacts.type=s3" (int $v.mlflow.replicas)) -}}
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
{{- if $errors -}}
{{- fail (printf "\n%s" (join "\n" $errors)) -}}
{{- end -}}
{{- end -}}
