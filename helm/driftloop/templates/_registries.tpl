{{/* Separate MLflow registries (values.registries): environments whose registry is a server of its own.
The model configs name them (registry.environments), the API and flow runs get their credentials, and the
NetworkPolicies let those two reach them. */}}

{{/* The prefix of an environment's credential variables: DRIFTLOOP_REGISTRY_<ENV>. Argument: the env. */}}
{{- define "driftloop.registryPrefix" -}}
DRIFTLOOP_REGISTRY_{{ regexReplaceAll "[^A-Z0-9]" (upper .) "_" }}
{{- end -}}

{{/* Env entries <PREFIX>_TRACKING_USERNAME / _PASSWORD / _TOKEN from each registry's existingSecret
(each key optional: basic auth or a token). */}}
{{- define "driftloop.registryEnv" -}}
{{- range $env, $registry := .Values.registries }}
{{- with $registry.existingSecret }}
{{- $secret := . }}
{{- range $key := list "username" "password" "token" }}
- name: {{ include "driftloop.registryPrefix" $env }}_TRACKING_{{ upper $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The TCP ports of the registries' tracking URIs (JSON list): the URI's own, else 443 / 80. */}}
{{- define "driftloop.registryPorts" -}}
{{- $ports := list -}}
{{- range $env, $registry := .Values.registries -}}
{{- $url := urlParse $registry.trackingUri -}}
{{- $port := ternary 443 80 (eq $url.scheme "https") -}}
{{- if contains ":" $url.host }}{{ $port = atoi (last (splitList ":" $url.host)) }}{{ end -}}
{{- $ports = append $ports $port -}}
{{- end -}}
{{- toJson ($ports | uniq) -}}
{{- end -}}

{{/* A model config with registry.environments.<env> added for each registry of an environment it has
(never its first, which trains into the default registry), unless it sets its own. Arguments: root,
config. Output: YAML. */}}
{{- define "driftloop.modelConfig" -}}
{{- $config := deepCopy .config -}}
{{- $envs := default (list "dev" "staging" "prod") (get $config "environments") -}}
{{- $registry := deepCopy (default (dict) (get $config "registry")) -}}
{{- $environments := deepCopy (default (dict) (get $registry "environments")) -}}
{{- range $env, $values := .root.Values.registries -}}
{{- if and (has $env $envs) (ne $env (first $envs)) (not (hasKey $environments $env)) -}}
{{- $entry := dict "tracking_uri" $values.trackingUri -}}
{{- if $values.existingSecret }}{{ $_ := set $entry "credentials_env" (include "driftloop.registryPrefix" $env) }}{{ end -}}
{{- $_ := set $environments $env $entry -}}
{{- end -}}
{{- end -}}
{{- if $environments }}{{ $_ := set $registry "environments" $environments }}{{ $_ := set $config "registry" $registry }}{{ end -}}
{{- toYaml $config -}}
{{- end -}}
