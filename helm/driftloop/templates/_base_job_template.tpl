{{/*
The `driftloop` work pool's base job template, as JSON.

files/base-job-template.json is the skeleton Prefect sees: the Job manifest with Prefect's
`{{ name }}`-style placeholders and the schema of the variables. The file is read with .Files.Get and
never passes through Helm's template engine, so its placeholders need no escaping. Here the chart
fills in what depends on the release: every variable's default, the pod's labels, security contexts
and volumes. k8s/base-job-template.json is this output for the default values (a test checks it).
*/}}
{{- define "driftloop.baseJobTemplate" -}}
{{- $template := .Files.Get "files/base-job-template.json" | fromJson -}}
{{- $flowRuns := .Values.flowRuns -}}
{{- /* Jobs in another namespace reach the services by <service>.<release namespace>. */ -}}
{{- $prefectApiUrl := include "driftloop.prefectApiUrl" . -}}
{{- $mlflowUrl := include "driftloop.mlflowUrl" . -}}
{{- if ne (include "driftloop.jobsNamespace" .) .Release.Namespace -}}
{{- $prefectApiUrl = printf "http://%s.%s:%d/api" (include "driftloop.componentName" (dict "root" . "component" "prefect-server")) .Release.Namespace (int .Values.prefectServer.service.port) -}}
{{- $mlflowUrl = printf "http://%s.%s:%d" (include "driftloop.componentName" (dict "root" . "component" "mlflow")) .Release.Namespace (int .Values.mlflow.service.port) -}}
{{- end -}}
{{- $env := dict
    "PREFECT_API_URL" $prefectApiUrl
    "MLFLOW_TRACKING_URI" $mlflowUrl
    "DRIFTLOOP_MODELS_DIR" "/etc/driftloop/models"
    "HOME" "/tmp"
    "XDG_CACHE_HOME" "/tmp/.cache"
    "PREFECT_HOME" "/tmp/prefect"
    "PYTHONDONTWRITEBYTECODE" "1"
    "DO_NOT_TRACK" "1"
    "MLFLOW_DISABLE_TELEMETRY" "true"
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" "false"
-}}
{{- range $name, $value := $flowRuns.env -}}
{{- $_ := set $env $name (toString $value) -}}
{{- end -}}
{{- $defaults := dict
    "env" $env
    "labels" (include "driftloop.flowRunLabels" . | fromYaml)
    "namespace" (include "driftloop.jobsNamespace" .)
    "image" (include "driftloop.image" .)
    "image_pull_policy" .Values.image.pullPolicy
    "service_account_name" (include "driftloop.componentName" (dict "root" . "component" "flow-run"))
    "backoff_limit" (int $flowRuns.backoffLimit)
    "active_deadline_seconds" (int $flowRuns.activeDeadlineSeconds)
    "finished_job_ttl" (int $flowRuns.ttlSecondsAfterFinished)
    "cpu_request" (toString $flowRuns.resources.requests.cpu)
    "cpu_limit" (toString $flowRuns.resources.limits.cpu)
    "memory_request" (toString $flowRuns.resources.requests.memory)
    "memory_limit" (toString $flowRuns.resources.limits.memory)
    "node_selector" $flowRuns.nodeSelector
    "tolerations" $flowRuns.tolerations
    "affinity" $flowRuns.affinity
-}}
{{- range $variable, $default := $defaults -}}
{{- $_ := set (index $template.variables.properties $variable) "default" $default -}}
{{- end -}}
{{- $job := $template.job_configuration.job_manifest -}}
{{- $pod := $job.spec.template -}}
{{- $_ := set $pod.metadata "labels" (include "driftloop.flowRunLabels" . | fromYaml) -}}
{{- $_ := set $pod.spec "securityContext" .Values.podSecurityContext -}}
{{- with .Values.image.pullSecrets -}}
{{- $secrets := list -}}
{{- range . }}{{ $secrets = append $secrets (dict "name" .) }}{{ end -}}
{{- $_ := set $pod.spec "imagePullSecrets" $secrets -}}
{{- end -}}
{{- $volumes := list
    (dict "name" "tmp" "emptyDir" (dict "sizeLimit" $flowRuns.tmpSizeLimit))
    (dict "name" "models" "configMap" (dict "name" (include "driftloop.modelsConfigMapName" .)))
-}}
{{- $mounts := list
    (dict "name" "tmp" "mountPath" "/tmp")
    (dict "name" "models" "mountPath" "/etc/driftloop/models" "readOnly" true)
-}}
{{- with .Values.data.pvc.existingClaim -}}
{{- $volumes = append $volumes (dict "name" "data" "persistentVolumeClaim" (dict "claimName" . "readOnly" $.Values.data.pvc.readOnly)) -}}
{{- $mounts = append $mounts (dict "name" "data" "mountPath" $.Values.data.pvc.mountPath "readOnly" $.Values.data.pvc.readOnly) -}}
{{- end -}}
{{- $_ := set $pod.spec "volumes" $volumes -}}
{{- $container := index $pod.spec.containers 0 -}}
{{- $_ := set $container "volumeMounts" $mounts -}}
{{- $_ := set $container "securityContext" .Values.containerSecurityContext -}}
{{- $envFrom := list -}}
{{- range compact (prepend $flowRuns.envFromSecrets .Values.data.s3.existingSecret) | uniq -}}
{{- $envFrom = append $envFrom (dict "secretRef" (dict "name" .)) -}}
{{- end -}}
{{- with $envFrom -}}
{{- $_ := set $container "envFrom" . -}}
{{- end -}}
{{- toPrettyJson $template -}}
{{- end -}}
