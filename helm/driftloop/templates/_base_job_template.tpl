{{/*
The `driftloop` work pool's base job template, as JSON.

files/base-job-template.json is the skeleton Prefect sees: the Job manifest with Prefect's
`{{ name }}`-style placeholders and the schema of the variables. The file is read with .Files.Get and
never passes through Helm's template engine, so its placeholders need no escaping. Here the chart
fills in what depends on the release. k8s/base-job-template.json is this output for the default
values (a test checks it).

Anyone who can create a deployment on the pool (or start a run with job variables) chooses the
variables, so everything that decides what runs and with which rights is written here as a literal,
not a placeholder: image, command, labels, namespace, service account, security contexts, volumes
and scheduling. prefect-kubernetes merges the `labels` job variable over the Job's and pod's labels
and creates the Job in the `namespace` job configuration field, so neither is a variable at all.
The variables left (the skeleton's schema, closed with additionalProperties: false) are env, the
name, the deadline and cpu/memory.

The Prefect and MLflow addresses cannot be pinned through `env`: prefect-kubernetes puts the `env`
variable first and drops every entry of the template's env list with the same name. So the container's
command is `/usr/bin/env NAME=value...`, which sets them for `prefect flow-run execute` (the worker
only ever writes the container's args) whatever the container's env says. The schema also refuses
these names in `env`, so the Prefect server rejects such a deployment or run when it is created.
*/}}
{{- define "driftloop.baseJobTemplate" -}}
{{- $template := .Files.Get "files/base-job-template.json" | fromJson -}}
{{- $flowRuns := .Values.flowRuns -}}
{{- $jobsNamespace := include "driftloop.jobsNamespace" . -}}
{{- /* Jobs in another namespace reach the services by <service>.<release namespace>. */ -}}
{{- $prefectApiUrl := include "driftloop.prefectApiUrl" . -}}
{{- $mlflowUrl := include "driftloop.mlflowUrl" . -}}
{{- if ne $jobsNamespace .Release.Namespace -}}
{{- $prefectApiUrl = printf "http://%s.%s:%d/api" (include "driftloop.componentName" (dict "root" . "component" "prefect-server")) .Release.Namespace (int .Values.prefectServer.service.port) -}}
{{- $mlflowUrl = printf "http://%s.%s:%d" (include "driftloop.componentName" (dict "root" . "component" "mlflow")) .Release.Namespace (int .Values.mlflow.service.port) -}}
{{- end -}}
{{- $pinned := dict "PREFECT_API_URL" $prefectApiUrl "MLFLOW_TRACKING_URI" $mlflowUrl -}}
{{- /* Credentials come from the flow runs' Secret through valueFrom; a deployment setting them could
only swap in credentials it already knows, but the schema refuses them too, and PREFECT__* (the
worker's flow-run id and attribution). */ -}}
{{- $reserved := concat (keys $pinned | sortAlpha) (list "PREFECT_API_AUTH_STRING" "PREFECT_API_KEY" "MLFLOW_TRACKING_USERNAME" "MLFLOW_TRACKING_PASSWORD" "MLFLOW_TRACKING_TOKEN") -}}
{{- $env := dict
    "DRIFTLOOP_MODELS_DIR" "/etc/driftloop/models"
    "HOME" "/tmp"
    "XDG_CACHE_HOME" "/tmp/.cache"
    "PREFECT_HOME" "/tmp/prefect"
    "PYTHONDONTWRITEBYTECODE" "1"
    "DO_NOT_TRACK" "1"
    "MLFLOW_DISABLE_TELEMETRY" "true"
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" "false"
-}}
{{- /* drift.engine: dask submits checks to an existing Dask cluster's scheduler; a model file's
drift.dask_scheduler wins over it, and flowRuns.env over this. */ -}}
{{- with .Values.dask.schedulerAddress -}}
{{- $_ := set $env "DRIFTLOOP_DASK_SCHEDULER" . -}}
{{- end -}}
{{- range $name, $value := $flowRuns.env -}}
{{- $_ := set $env $name (toString $value) -}}
{{- end -}}
{{- $variables := $template.variables.properties -}}
{{- $_ := set $variables.env "default" $env -}}
{{- $_ := set (index $variables.env.propertyNames.not.anyOf 0) "enum" $reserved -}}
{{- $_ := set $variables.active_deadline_seconds "default" (int $flowRuns.activeDeadlineSeconds) -}}
{{- $_ := set $variables.cpu_request "default" (toString $flowRuns.resources.requests.cpu) -}}
{{- $_ := set $variables.cpu_limit "default" (toString $flowRuns.resources.limits.cpu) -}}
{{- $_ := set $variables.memory_request "default" (toString $flowRuns.resources.requests.memory) -}}
{{- $_ := set $variables.memory_limit "default" (toString $flowRuns.resources.limits.memory) -}}
{{- $configuration := $template.job_configuration -}}
{{- /* The worker merges the `env` variable over this map: the values stay visible in the pod's env,
and the command below is what makes them stick. */ -}}
{{- $_ := set $configuration "env" $pinned -}}
{{- $_ := set $configuration "namespace" $jobsNamespace -}}
{{- $job := $configuration.job_manifest -}}
{{- $labels := include "driftloop.flowRunLabels" . | fromYaml -}}
{{- $_ := set $job.metadata "namespace" $jobsNamespace -}}
{{- $_ := set $job.metadata "labels" $labels -}}
{{- $_ := set $job.spec "backoffLimit" (int $flowRuns.backoffLimit) -}}
{{- $_ := set $job.spec "ttlSecondsAfterFinished" (int $flowRuns.ttlSecondsAfterFinished) -}}
{{- $pod := $job.spec.template -}}
{{- $_ := set $pod.metadata "labels" (deepCopy $labels) -}}
{{- $_ := set $pod.spec "serviceAccountName" (include "driftloop.componentName" (dict "root" . "component" "flow-run")) -}}
{{- $_ := set $pod.spec "securityContext" .Values.podSecurityContext -}}
{{- with .Values.image.pullSecrets -}}
{{- $secrets := list -}}
{{- range . }}{{ $secrets = append $secrets (dict "name" .) }}{{ end -}}
{{- $_ := set $pod.spec "imagePullSecrets" $secrets -}}
{{- end -}}
{{- with $flowRuns.nodeSelector }}{{ $_ := set $pod.spec "nodeSelector" . }}{{ end -}}
{{- with $flowRuns.tolerations }}{{ $_ := set $pod.spec "tolerations" . }}{{ end -}}
{{- with $flowRuns.affinity }}{{ $_ := set $pod.spec "affinity" . }}{{ end -}}
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
{{- $_ := set $container "image" (include "driftloop.image" .) -}}
{{- $_ := set $container "imagePullPolicy" .Values.image.pullPolicy -}}
{{- $command := list "/usr/bin/env" -}}
{{- range $name := keys $pinned | sortAlpha -}}
{{- $command = append $command (printf "%s=%s" $name (index $pinned $name)) -}}
{{- end -}}
{{- $_ := set $container "command" $command -}}
{{- /* After the worker's env: the flow runs' credentials, by secretKeyRef from the Jobs' namespace. */ -}}
{{- $authEnv := include "driftloop.flowRunAuthEnv" . | fromYamlArray | default list -}}
{{- $_ := set $container "env" (concat $authEnv (include "driftloop.registryEnv" . | fromYamlArray | default list)) -}}
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

{{/* What would give flow runs more than the chart means them to have, as a JSON list of messages
(driftloop.validate fails with them). */}}
{{- define "driftloop.flowRunJobErrors" -}}
{{- $v := .Values -}}
{{- $errors := list -}}
{{- $jobsNamespace := include "driftloop.jobsNamespace" . -}}
{{- /* Flow runs hold no database credentials and not the admin's: in the release namespace these
Secrets are the database's and the servers', and envFrom would hand them every key. */ -}}
{{- $forbidden := list (include "driftloop.databaseSecretName" .) -}}
{{- if include "driftloop.authEnabled" . -}}
{{- $forbidden = append $forbidden (include "driftloop.authSecretName" .) -}}
{{- end -}}
{{- if eq $jobsNamespace .Release.Namespace -}}
{{- range $key, $names := dict "flowRuns.envFromSecrets" $v.flowRuns.envFromSecrets "data.s3.existingSecret" (compact (list $v.data.s3.existingSecret)) -}}
{{- range $name := $names -}}
{{- if has $name $forbidden -}}
{{- $errors = append $errors (printf "%s: %q holds database or server admin credentials; flow runs get every key of the Secrets named here, so name a Secret with only what flows need" $key $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* Flow-run pods pull the image in the Jobs' namespace, with Secrets of that namespace: a missing
one shows only at the first run, as ImagePullBackOff. Checked where lookup sees the cluster. */ -}}
{{- if and (ne $jobsNamespace .Release.Namespace) (include "driftloop.clusterVisible" .) -}}
{{- range $name := $v.image.pullSecrets -}}
{{- if not (lookup "v1" "Secret" $jobsNamespace $name) -}}
{{- $errors = append $errors (printf "image.pullSecrets: Secret %q not found in namespace %q (worker.jobsNamespace): flow-run pods pull the image there, so create the same pull Secret in that namespace too" $name $jobsNamespace) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
