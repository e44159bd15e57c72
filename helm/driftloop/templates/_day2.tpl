{{/*
Day-2 checks against what runs in the cluster: a change Kubernetes would refuse halfway through an
upgrade becomes a validation message before anything changes. Only when lookup sees the cluster
(install, upgrade, rollback); under `helm template` there is nothing to compare.
*/}}

{{/* A quantity ("8Gi", "500M", "1e3") in bytes, so "8Gi" and "8192Mi" compare equal as Kubernetes
compares them. */}}
{{- define "driftloop.quantityBytes" -}}
{{- $q := toString . -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 -}}
{{- $number := regexFind "^[0-9.eE+-]+" $q -}}
{{- $unit := trimPrefix $number $q -}}
{{- if and $number (hasKey $units $unit) -}}
{{- mulf (float64 $number) (index $units $unit) -}}
{{- else -}}
{{- $q -}}
{{- end -}}
{{- end -}}

{{/* JSON list of messages: what the cluster would refuse to change (volume fields), and a migration
still running, which the next migrate hook would delete (before-hook-creation). */}}
{{- define "driftloop.clusterStateErrors" -}}
{{- $errors := list -}}
{{- if include "driftloop.clusterVisible" . -}}
{{- $v := .Values -}}
{{- if $v.hooks.migrate.enabled -}}
{{- $name := include "driftloop.componentName" (dict "root" . "component" "migrate") -}}
{{- $job := lookup "batch/v1" "Job" .Release.Namespace $name -}}
{{- if $job -}}
{{- $finished := false -}}
{{- range ($job.status | default dict).conditions | default list -}}
{{- if and (has .type (list "Complete" "Failed")) (eq (toString .status) "True") }}{{ $finished = true }}{{ end -}}
{{- end -}}
{{- if not $finished -}}
{{- $errors = append $errors (printf "hooks.migrate: the migration Job %s of an earlier upgrade is still running, and this upgrade would replace it mid-migration. Wait for it to finish (kubectl --namespace %s wait --for=condition=complete --timeout=%ds job/%s), then upgrade again" $name .Release.Namespace (int $v.hooks.migrate.activeDeadlineSeconds) $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $v.postgresql.enabled -}}
{{- $name := include "driftloop.componentName" (dict "root" . "component" "postgresql") -}}
{{- $running := lookup "apps/v1" "StatefulSet" .Release.Namespace $name -}}
{{- range ($running.spec | default dict).volumeClaimTemplates | default list -}}
{{- if eq .metadata.name "data" -}}
{{- /* A StatefulSet's volumeClaimTemplates never change after creation: any difference fails the upgrade. */ -}}
{{- $size := .spec.resources.requests.storage | toString -}}
{{- if ne (include "driftloop.quantityBytes" $size) (include "driftloop.quantityBytes" $v.postgresql.persistence.size) -}}
{{- $errors = append $errors (printf "postgresql.persistence.size: the running StatefulSet %s asks %s for its data volume and Kubernetes cannot change a StatefulSet's volume claim template; set %s (to grow the volume, see \"Resizing volumes\" in the chart README)" $name $size $size) -}}
{{- end -}}
{{- $class := .spec.storageClassName | default "" -}}
{{- if ne $class ($v.postgresql.persistence.storageClass | default "") -}}
{{- $errors = append $errors (printf "postgresql.persistence.storageClass: the running StatefulSet %s uses %q (empty: the cluster's default) and Kubernetes cannot change a StatefulSet's volume claim template; set %q (moving the data to another StorageClass is a dump and restore)" $name $class $class) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $artifacts := $v.mlflow.artifacts -}}
{{- if and (eq $artifacts.type "pvc") (not $artifacts.pvc.existingClaim) -}}
{{- $name := include "driftloop.componentName" (dict "root" . "component" "mlflow-artifacts") -}}
{{- $claim := lookup "v1" "PersistentVolumeClaim" .Release.Namespace $name -}}
{{- if $claim -}}
{{- $spec := $claim.spec -}}
{{- $class := $spec.storageClassName | default "" -}}
{{- /* Empty asks for the cluster's default, which the API wrote into the claim: nothing to compare. */ -}}
{{- if and $artifacts.pvc.storageClass (ne $class $artifacts.pvc.storageClass) -}}
{{- $errors = append $errors (printf "mlflow.artifacts.pvc.storageClass: the claim %s uses %q and a claim's StorageClass cannot change; set %q (or copy the artifacts to a new claim and name it in mlflow.artifacts.pvc.existingClaim)" $name $class $class) -}}
{{- end -}}
{{- if not (has $artifacts.pvc.accessMode ($spec.accessModes | default list)) -}}
{{- $errors = append $errors (printf "mlflow.artifacts.pvc.accessMode: the claim %s has access modes %s and a claim's access modes cannot change; set %s" $name (join "," $spec.accessModes) (first $spec.accessModes)) -}}
{{- end -}}
{{- $size := $spec.resources.requests.storage | toString -}}
{{- $old := include "driftloop.quantityBytes" $size | float64 -}}
{{- $new := include "driftloop.quantityBytes" $artifacts.pvc.size | float64 -}}
{{- if lt $new $old -}}
{{- $errors = append $errors (printf "mlflow.artifacts.pvc.size: the claim %s asks %s and a claim never shrinks; set %s or more" $name $size $size) -}}
{{- else if gt $new $old -}}
{{- /* Growing works only where the claim's StorageClass allows volume expansion. */ -}}
{{- $storageClass := dict -}}
{{- if $class -}}{{- $storageClass = lookup "storage.k8s.io/v1" "StorageClass" "" $class -}}{{- end -}}
{{- if not ($storageClass.allowVolumeExpansion | default false) -}}
{{- $errors = append $errors (printf "mlflow.artifacts.pvc.size: the claim %s asks %s and its StorageClass %q does not allow volume expansion, so it cannot grow to %s; keep %s (or copy the artifacts to a bigger claim and name it in mlflow.artifacts.pvc.existingClaim)" $name $size $class $artifacts.pvc.size $size) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
