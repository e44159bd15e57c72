{{/*
Rules of MLflow's users (auth.mlflow) that values.schema.json cannot state: a JSON list of messages,
each naming the key to fix. driftloop.validate adds them to its own.
*/}}
{{- define "driftloop.mlflowAuthErrors" -}}
{{- $errors := list -}}
{{- $mlflow := .Values.auth.mlflow -}}
{{- if and $mlflow.readers (not $mlflow.enabled) -}}
{{- $errors = append $errors "auth.mlflow.readers: set while auth.mlflow.enabled=false: without MLflow's auth app every caller may read and write, so there are no read-only users to create. Turn auth.mlflow.enabled on, or empty the list" -}}
{{- end -}}
{{- /* The names the chart generates for the admin and the service user (see driftloop.authCredentials);
with auth.existingSecret they are unknown here and the hook's script checks them. */ -}}
{{- $taken := ternary (list) (list "admin" "driftloop") (not (empty .Values.auth.existingSecret)) -}}
{{- $seen := dict -}}
{{- range $index, $reader := $mlflow.readers -}}
{{- if hasKey $seen $reader.username -}}
{{- $errors = append $errors (printf "auth.mlflow.readers[%d].username: %q is listed twice: each reader once" $index $reader.username) -}}
{{- end -}}
{{- $_ := set $seen $reader.username true -}}
{{- if has $reader.username $taken -}}
{{- $errors = append $errors (printf "auth.mlflow.readers[%d].username: %q is the name of the generated MLflow admin or service user: pick another" $index $reader.username) -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
