{{/*
MLflow's artifact store (mlflow.artifacts): where `mlflow server --serve-artifacts` writes, and the
credentials the MLflow container needs for it. Only the MLflow server holds them: clients upload and
download through it. Every cloud store works without static keys: the SDKs (boto3,
google-cloud-storage, azure-identity's DefaultAzureCredential) find the workload identity that
mlflow.serviceAccount.annotations binds to the MLflow server's own service account.
*/}}

{{/* The --artifacts-destination URI (or the claim's mount path). */}}
{{- define "driftloop.artifactsDestination" -}}
{{- $a := .Values.mlflow.artifacts -}}
{{- if eq $a.type "s3" -}}
{{- printf "s3://%s/%s" $a.s3.bucket (trimAll "/" $a.s3.prefix) | trimSuffix "/" -}}
{{- else if eq $a.type "gcs" -}}
{{- printf "gs://%s/%s" $a.gcs.bucket (trimAll "/" $a.gcs.prefix) | trimSuffix "/" -}}
{{- else if eq $a.type "azure" -}}
{{- printf "wasbs://%s@%s.blob.core.windows.net/%s" $a.azure.container $a.azure.storageAccount (trimAll "/" $a.azure.prefix) | trimSuffix "/" -}}
{{- else -}}
/mlartifacts
{{- end -}}
{{- end -}}

{{- define "driftloop.gcsCredentialsDir" -}}/etc/driftloop/gcs{{- end -}}

{{/* The store's EnvVars of the MLflow container (YAML list, empty when it needs none). */}}
{{- define "driftloop.artifactsEnv" -}}
{{- $a := .Values.mlflow.artifacts -}}
{{- if eq $a.type "s3" -}}
{{- with $a.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $a.s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $a.s3.secretAccessKeyKey }}
{{- end }}
{{- with $a.s3.endpointUrl }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $a.s3.region }}
- name: AWS_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- else if and (eq $a.type "gcs") $a.gcs.existingSecret }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: {{ printf "%s/%s" (include "driftloop.gcsCredentialsDir" .) $a.gcs.credentialsKey | quote }}
{{- else if and (eq $a.type "azure") $a.azure.existingSecret }}
{{- /* MLflow tries the connection string first, then the account key with the URI's account. */}}
- name: {{ ternary "AZURE_STORAGE_CONNECTION_STRING" "AZURE_STORAGE_ACCESS_KEY" (ne $a.azure.connectionStringKey "") }}
  valueFrom:
    secretKeyRef:
      name: {{ $a.azure.existingSecret }}
      key: {{ default $a.azure.accessKeyKey $a.azure.connectionStringKey }}
{{- end -}}
{{- end -}}

{{/* The service account key file of GCS (YAML lists, empty without it). A file, not an environment
variable: google-auth reads the key from a path. */}}
{{- define "driftloop.artifactsVolumeMounts" -}}
{{- if and (eq .Values.mlflow.artifacts.type "gcs") .Values.mlflow.artifacts.gcs.existingSecret }}
- name: gcs-credentials
  mountPath: {{ include "driftloop.gcsCredentialsDir" . }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "driftloop.artifactsVolumes" -}}
{{- $gcs := .Values.mlflow.artifacts.gcs -}}
{{- if and (eq .Values.mlflow.artifacts.type "gcs") $gcs.existingSecret }}
- name: gcs-credentials
  secret:
    secretName: {{ $gcs.existingSecret }}
    defaultMode: 288  # 0440: readable by MLflow through fsGroup, by no one else
    items:
      - key: {{ $gcs.credentialsKey }}
        path: {{ $gcs.credentialsKey }}
{{- end -}}
{{- end -}}

{{/* Values the schema cannot check, as a JSON list of messages (driftloop.validate fails with them). */}}
{{- define "driftloop.artifactsErrors" -}}
{{- $a := .Values.mlflow.artifacts -}}
{{- $errors := list -}}
{{- if and (eq $a.type "s3") (not $a.s3.bucket) -}}
{{- $errors = append $errors "mlflow.artifacts.s3.bucket: required when mlflow.artifacts.type=s3" -}}
{{- end -}}
{{- if and (eq $a.type "gcs") (not $a.gcs.bucket) -}}
{{- $errors = append $errors "mlflow.artifacts.gcs.bucket: required when mlflow.artifacts.type=gcs" -}}
{{- end -}}
{{- if eq $a.type "azure" -}}
{{- range $key := list "storageAccount" "container" -}}
{{- if not (index $a.azure $key) -}}
{{- $errors = append $errors (printf "mlflow.artifacts.azure.%s: required when mlflow.artifacts.type=azure" $key) -}}
{{- end -}}
{{- end -}}
{{- if and $a.azure.existingSecret (eq (empty $a.azure.connectionStringKey) (empty $a.azure.accessKeyKey)) -}}
{{- $errors = append $errors (printf "mlflow.artifacts.azure.connectionStringKey, mlflow.artifacts.azure.accessKeyKey: set exactly one with mlflow.artifacts.azure.existingSecret=%s (the key of its connection string, or of its account key)" $a.azure.existingSecret) -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
