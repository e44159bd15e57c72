{{/* What a user adds to a component's pods: placement and labels. */}}

{{/* Where a pod runs: its priority class (the component's, else the global `priorityClassName`), node
selector, tolerations and affinity. Arguments: root, values (the component's values section). */}}
{{- define "driftloop.podPlacement" -}}
{{- with default .root.Values.priorityClassName .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- include "driftloop.scheduling" .values }}
{{- end -}}

{{/* Labels of a component's pods: the chart's labels, then the section's podLabels. The chart's keys
are never overridden: NetworkPolicies, Services and PodDisruptionBudgets select pods by them
(driftloop.podLabelErrors refuses a podLabels key that would). Arguments: root, component, values. */}}
{{- define "driftloop.podLabels" -}}
{{- $labels := include "driftloop.labels" . | fromYaml -}}
{{- toYaml (merge $labels (default dict .values.podLabels)) -}}
{{- end -}}

{{/* Validation failures (JSON list) of podLabels that would take a label the chart selects pods by. */}}
{{- define "driftloop.podLabelErrors" -}}
{{- $errors := list -}}
{{- range $component := list "api" "prefectServer" "worker" "mlflow" "postgresql" -}}
{{- range $key, $_ := (index $.Values $component).podLabels -}}
{{- if or (hasPrefix "app.kubernetes.io/" $key) (hasPrefix "helm.sh/" $key) (hasKey $.Values.commonLabels $key) -}}
{{- $errors = append $errors (printf "%s.podLabels.%s: the chart sets this label (Services, NetworkPolicies and PodDisruptionBudgets select pods by it); use another key" $component $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
