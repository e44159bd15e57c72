{{/* Pieces of the NetworkPolicies (networkpolicies.yaml) and their validation. */}}

{{/* The cloud metadata address (AWS, GCP, Azure, OpenStack): it hands out the node's credentials,
so no egress rule reaches it unless networkPolicy.egress.allowCloudMetadata. */}}
{{- define "driftloop.metadataCidr" -}}169.254.169.254/32{{- end -}}

{{/* "true" when an IPv4 CIDR holds 169.254.169.254, compared octet by octet on the prefix's bits.
An IPv6 CIDR never does. Argument: the CIDR. */}}
{{- define "driftloop.cidrHoldsMetadata" -}}
{{- $parts := splitList "/" . -}}
{{- $ip := first $parts -}}
{{- if and (eq (len $parts) 2) (regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" $ip) -}}
{{- $prefix := atoi (last $parts) -}}
{{- $octets := splitList "." $ip -}}
{{- $metadata := list 169 254 169 254 -}}
{{- /* 2^(8 - bits of the octet inside the prefix): dividing by it keeps only those bits. */ -}}
{{- $blockSizes := list 256 128 64 32 16 8 4 2 1 -}}
{{- $holds := true -}}
{{- range $i := until 4 -}}
{{- $bits := min 8 (max 0 (sub $prefix (mul $i 8))) -}}
{{- $block := index $blockSizes (int $bits) -}}
{{- if ne (div (atoi (index $octets $i)) $block) (div (index $metadata $i) $block) -}}
{{- $holds = false -}}
{{- end -}}
{{- end -}}
{{- if $holds }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy peers (JSON list) for a list of CIDRs: each an ipBlock, with the metadata address
cut out of any CIDR that holds it. Arguments: root, cidrs. */}}
{{- define "driftloop.cidrPeers" -}}
{{- $peers := list -}}
{{- range $cidr := .cidrs -}}
{{- $block := dict "cidr" $cidr -}}
{{- if and (not $.root.Values.networkPolicy.egress.allowCloudMetadata) (include "driftloop.cidrHoldsMetadata" $cidr) (ne $cidr (include "driftloop.metadataCidr" $)) -}}
{{- $_ := set $block "except" (list (include "driftloop.metadataCidr" $)) -}}
{{- end -}}
{{- $peers = append $peers (dict "ipBlock" $block) -}}
{{- end -}}
{{- toJson $peers -}}
{{- end -}}

{{/* NetworkPolicy ports (JSON list) for a list of TCP port numbers. */}}
{{- define "driftloop.tcpPorts" -}}
{{- $ports := list -}}
{{- range . }}{{ $ports = append $ports (dict "protocol" "TCP" "port" (int .)) }}{{ end -}}
{{- toJson $ports -}}
{{- end -}}

{{/* Validation failures (JSON list of messages) of the network values; driftloop.validate reports them. */}}
{{- define "driftloop.networkErrors" -}}
{{- $v := .Values -}}
{{- $errors := list -}}
{{- if $v.networkPolicy.enabled -}}
{{- /* An Ingress controller or a load balancer forwards from outside the release: with policies on and
no peer for it, its traffic would be dropped without a word. */ -}}
{{- if not $v.networkPolicy.ingressFrom -}}
{{- range $component := list "api" "prefectServer" "mlflow" -}}
{{- $section := index $v $component -}}
{{- if $section.ingress.enabled -}}
{{- $errors = append $errors (printf "networkPolicy.ingressFrom: required when %s.ingress.enabled=true and networkPolicy.enabled=true: name the ingress controller's pods (e.g. a namespaceSelector for its namespace), or the NetworkPolicies drop its traffic" $component) -}}
{{- end -}}
{{- if has $section.service.type (list "LoadBalancer" "NodePort") -}}
{{- $errors = append $errors (printf "networkPolicy.ingressFrom: required when %s.service.type=%s and networkPolicy.enabled=true: name the clients' addresses (an ipBlock), or the NetworkPolicies drop their traffic" $component $section.service.type) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.networkPolicy.egress.enabled (not $v.networkPolicy.egress.allowCloudMetadata) -}}
{{- range $target := list "database" "objectStore" "webhooks" "registries" "kubernetesApi" -}}
{{- range $cidr := (index $v.networkPolicy.egress $target).cidrs -}}
{{- if eq $cidr (include "driftloop.metadataCidr" $) -}}
{{- $errors = append $errors (printf "networkPolicy.egress.%s.cidrs: %s is the cloud metadata address, which hands out the node's credentials; remove it, or set networkPolicy.egress.allowCloudMetadata=true" $target $cidr) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $errors -}}
{{- end -}}
