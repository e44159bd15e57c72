{{/* Names, labels and the pieces every pod shares. */}}

{{/* Prefix of every object's name: the release name, unless fullnameOverride. */}}
{{- define "driftloop.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of one component's objects: "<fullname>-<component>". */}}
{{- define "driftloop.componentName" -}}
{{- printf "%s-%s" (include "driftloop.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "driftloop.selectorLabels" -}}
app.kubernetes.io/name: driftloop
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels that select flow-run pods. Not app.kubernetes.io/name: the Prefect worker sets it to the
deployment's name on every Job it creates. */}}
{{- define "driftloop.flowRunLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: flow-run
{{- end -}}

{{- define "driftloop.labels" -}}
{{ include "driftloop.selectorLabels" . }}
app.kubernetes.io/part-of: driftloop
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Object metadata: name, namespace, labels. Arguments: root, component, and optionally name, namespace. */}}
{{- define "driftloop.metadata" -}}
name: {{ default (include "driftloop.componentName" .) .name }}
namespace: {{ default .root.Release.Namespace .namespace }}
labels:
  {{- include "driftloop.labels" . | nindent 2 }}
{{- end -}}

{{- define "driftloop.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "driftloop.jobsNamespace" -}}
{{- default .Release.Namespace .Values.worker.jobsNamespace -}}
{{- end -}}

{{/* Service account of the API, servers and hooks: never mounts its token. */}}
{{- define "driftloop.serviceAccountName" -}}
{{- include "driftloop.fullname" . -}}
{{- end -}}

{{- define "driftloop.prefectApiUrl" -}}
{{- printf "http://%s:%d/api" (include "driftloop.componentName" (dict "root" . "component" "prefect-server")) (int .Values.prefectServer.service.port) -}}
{{- end -}}

{{- define "driftloop.mlflowUrl" -}}
{{- printf "http://%s:%d" (include "driftloop.componentName" (dict "root" . "component" "mlflow")) (int .Values.mlflow.service.port) -}}
{{- end -}}

{{- define "driftloop.databaseSecretName" -}}
{{- default (include "driftloop.componentName" (dict "root" . "component" "database")) .Values.database.existingSecret -}}
{{- end -}}

{{- define "driftloop.modelsConfigMapName" -}}
{{- default (include "driftloop.componentName" (dict "root" . "component" "models")) .Values.modelsExistingConfigMap -}}
{{- end -}}

{{/* Pod spec fields shared by every driftloop pod. */}}
{{- define "driftloop.podDefaults" -}}
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling fields of a pod, from a values section with nodeSelector, tolerations and affinity. */}}
{{- define "driftloop.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A driftloop container's image, pull policy and security context. */}}
{{- define "driftloop.containerDefaults" -}}
image: {{ include "driftloop.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/* Environment every driftloop process gets: a writable HOME and caches under /tmp, telemetry off. */}}
{{- define "driftloop.baseEnv" -}}
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
- name: PREFECT_HOME
  value: /tmp/prefect
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: DO_NOT_TRACK
  value: "1"
- name: PREFECT_SERVER_ANALYTICS_ENABLED
  value: "false"
- name: MLFLOW_DISABLE_TELEMETRY
  value: "true"
{{- end -}}

{{/* The writable /tmp of a read-only container. */}}
{{- define "driftloop.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ default "1Gi" .sizeLimit }}
{{- end -}}

{{- define "driftloop.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Models ConfigMap volume and mount. */}}
{{- define "driftloop.modelsVolume" -}}
- name: models
  configMap:
    name: {{ include "driftloop.modelsConfigMapName" . }}
{{- end -}}

{{- define "driftloop.modelsMount" -}}
- name: models
  mountPath: /etc/driftloop/models
  readOnly: true
{{- end -}}

{{/* An Ingress for one component. Arguments: root, component, ingress (values), port. */}}
{{- define "driftloop.ingress" -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  {{- include "driftloop.metadata" . | nindent 2 }}
  {{- with .ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if .ingress.tlsSecretName }}
  tls:
    - hosts: [{{ .ingress.host | quote }}]
      secretName: {{ .ingress.tlsSecretName }}
  {{- end }}
  rules:
    - host: {{ .ingress.host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "driftloop.componentName" . }}
                port:
                  number: {{ .port }}
{{- end -}}

{{/* Base URL of an Ingress host: https when it has a TLS secret. */}}
{{- define "driftloop.ingressUrl" -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .tlsSecretName))) .host -}}
{{- end -}}

{{/* "true" when `lookup` can read the cluster (helm install, upgrade, rollback), empty under
`helm template` and GitOps tools that render with it (Argo CD), where every lookup comes back empty.
The release namespace's `default` ServiceAccount always exists, so an empty answer means no cluster. */}}
{{- define "driftloop.clusterVisible" -}}
{{- if lookup "v1" "ServiceAccount" .Release.Namespace "default" -}}true{{- end -}}
{{- end -}}
