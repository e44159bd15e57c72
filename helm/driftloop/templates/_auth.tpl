{{/*
Credentials of the servers: Prefect's basic auth string and MLflow's users. One Secret in the release
namespace holds them all (generated, or auth.existingSecret); a second one in the Jobs' namespace holds
only what a flow run needs (the Prefect auth string and MLflow's service user, never the admin).
*/}}

{{- define "driftloop.authEnabled" -}}
{{- if or .Values.auth.prefect.enabled .Values.auth.mlflow.enabled -}}true{{- end -}}
{{- end -}}

{{- define "driftloop.authSecretName" -}}
{{- default (include "driftloop.componentName" (dict "root" . "component" "auth")) .Values.auth.existingSecret -}}
{{- end -}}

{{/* The flow runs' Secret, in the Jobs' namespace. Its keys are the environment variables' names. */}}
{{- define "driftloop.flowRunAuthSecretName" -}}
{{- default (include "driftloop.componentName" (dict "root" . "component" "flow-run-auth")) .Values.auth.flowRunExistingSecret -}}
{{- end -}}

{{/* The generated credentials: those of the Secret already in the cluster (so an upgrade keeps them),
else new random ones. Only auth-secret.yaml calls it, once, so both Secrets get the same values. */}}
{{- define "driftloop.authCredentials" -}}
{{- $auth := .Values.auth -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "driftloop.authSecretName" .) -}}
{{- $data := ($existing.data | default dict) -}}
{{- $credentials := dict
  $auth.prefect.authStringKey (printf "driftloop:%s" (randAlphaNum 32))
  $auth.mlflow.adminUsernameKey "admin"
  $auth.mlflow.adminPasswordKey (randAlphaNum 32)
  $auth.mlflow.serviceUsernameKey "driftloop"
  $auth.mlflow.servicePasswordKey (randAlphaNum 32)
-}}
{{- range $key, $_ := $credentials -}}
{{- with index $data $key -}}
{{- $_ := set $credentials $key (b64dec .) -}}
{{- end -}}
{{- end -}}
{{- toJson $credentials -}}
{{- end -}}

{{/* The Prefect server's side: the auth string every API call must send (health and ready stay open). */}}
{{- define "driftloop.prefectServerEnv" -}}
{{- if .Values.auth.prefect.enabled }}
- name: PREFECT_SERVER_API_AUTH_STRING
  valueFrom:
    secretKeyRef:
      name: {{ include "driftloop.authSecretName" . }}
      key: {{ .Values.auth.prefect.authStringKey }}
{{- end }}
{{- end -}}

{{/* A Prefect client's side (worker, register hook, API, helm test): the Prefect client and CLI send it. */}}
{{- define "driftloop.prefectClientEnv" -}}
{{- if .Values.auth.prefect.enabled }}
- name: PREFECT_API_AUTH_STRING
  valueFrom:
    secretKeyRef:
      name: {{ include "driftloop.authSecretName" . }}
      key: {{ .Values.auth.prefect.authStringKey }}
{{- end }}
{{- end -}}

{{/* An MLflow client's side: MLflow's client reads the service user from these two variables. */}}
{{- define "driftloop.mlflowClientEnv" -}}
{{- if .Values.auth.mlflow.enabled }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "driftloop.authSecretName" . }}
      key: {{ .Values.auth.mlflow.serviceUsernameKey }}
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "driftloop.authSecretName" . }}
      key: {{ .Values.auth.mlflow.servicePasswordKey }}
{{- end }}
{{- end -}}

{{/* A flow-run Job's side, from the Secret in the Jobs' namespace (a Job can only reference a Secret of
its own namespace). */}}
{{- define "driftloop.flowRunAuthEnv" -}}
{{- $name := include "driftloop.flowRunAuthSecretName" . -}}
{{- $names := list -}}
{{- if .Values.auth.prefect.enabled -}}{{- $names = append $names "PREFECT_API_AUTH_STRING" -}}{{- end -}}
{{- if .Values.auth.mlflow.enabled -}}{{- $names = concat $names (list "MLFLOW_TRACKING_USERNAME" "MLFLOW_TRACKING_PASSWORD") -}}{{- end -}}
{{- range $names }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ . }}
{{- end }}
{{- end -}}

{{/* The worker's side: prefect-kubernetes copies the worker's own PREFECT_API_AUTH_STRING into every Job
it creates, in plain text, unless told which Secret of the Jobs' namespace holds it. */}}
{{- define "driftloop.workerAuthEnv" -}}
{{- include "driftloop.prefectClientEnv" . }}
{{- if .Values.auth.prefect.enabled }}
- name: PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_NAME
  value: {{ include "driftloop.flowRunAuthSecretName" . | quote }}
- name: PREFECT_INTEGRATIONS_KUBERNETES_WORKER_API_AUTH_STRING_SECRET_KEY
  value: PREFECT_API_AUTH_STRING
{{- end }}
{{- end -}}
