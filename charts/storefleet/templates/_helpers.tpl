{{/* Objects are named {{ .Release.Name }}-<component>, like the store charts. */}}
{{- define "storefleet.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .component -}}
{{- end -}}

{{- define "storefleet.selectorLabels" -}}
app.kubernetes.io/name: storefleet
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "storefleet.labels" -}}
{{ include "storefleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: storefleet
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "storefleet.image" -}}
{{- if .digest -}}
{{ printf "%s:%s@%s" .repository .tag .digest }}
{{- else -}}
{{ printf "%s:%s" .repository .tag }}
{{- end -}}
{{- end -}}

{{- define "storefleet.serviceAccount" -}}
{{- include "storefleet.fullname" (dict "root" . "component" "gitops-api") -}}
{{- end -}}

{{/* The Secret holding a token of the ServiceAccount in a remote install (remote.serviceAccountToken). */}}
{{- define "storefleet.serviceAccountTokenSecret" -}}
{{- include "storefleet.fullname" (dict "root" . "component" "gitops-api-token") -}}
{{- end -}}

{{/* Namespace of Flux: the shards' ExternalArtifacts live there (rbac.yaml's Role). */}}
{{- define "storefleet.fluxNamespace" -}}
{{- required "flux.namespace: the namespace of the Flux controllers is required" .Values.flux.namespace -}}
{{- end -}}

{{/* Base URL of the shard artifacts: artifacts.url, or this chart's Service's artifact port by cluster DNS. */}}
{{- define "storefleet.artifactURL" -}}
{{- if .Values.artifacts.url -}}
{{- trimSuffix "/" .Values.artifacts.url -}}
{{- else -}}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "storefleet.fullname" (dict "root" . "component" "gitops-api")) .Release.Namespace .Values.artifacts.port -}}
{{- end -}}
{{- end -}}

{{/* The Lease the replicas hold to pick the one that publishes shard artifacts. */}}
{{- define "storefleet.leaseName" -}}
{{- include "storefleet.fullname" (dict "root" . "component" "publisher") -}}
{{- end -}}

{{/*
The clusters served besides .Values.cluster (clusters.extra), checked where the schema
cannot: each name once, and none the chart's own cluster. Renders nothing.
*/}}
{{- define "storefleet.extraClusters" -}}
{{- $seen := dict .Values.cluster "cluster" -}}
{{- range $i, $c := (.Values.clusters | default dict).extra | default list -}}
{{- if hasKey $seen $c.name -}}
{{- fail (printf "clusters.extra[%d].name %q: cluster %s is already served (by %s); each cluster is named once" $i $c.name $c.name (get $seen $c.name)) -}}
{{- end -}}
{{- $_ := set $seen $c.name (printf "clusters.extra[%d]" $i) -}}
{{- end -}}
{{- $x := .Values.artifacts.expose | default dict -}}
{{- if and $x.enabled (not $x.sourceRanges) -}}
{{- fail "artifacts.expose.sourceRanges: the CIDRs of the clusters whose Flux fetches the artifacts are required with artifacts.expose.enabled (the artifacts are the fleet's rendered manifests: never open to everyone)" -}}
{{- end -}}
{{- end -}}

{{/* Where clusters.extra[].kubeconfigSecret of cluster NAME is mounted. */}}
{{- define "storefleet.kubeconfigDir" -}}
{{- printf "/etc/storefleet/clusters/%s" . -}}
{{- end -}}

{{/*
Several replicas share the fleet: every pod serves the API and follows the others' commits,
and only the holder of a Lease runs the shard publisher (docs/design.md). What is still
refused: an autoscaler (the chart renders none; set replicas), and a PodDisruptionBudget
on a single pod, which would block every node drain.
*/}}
{{- define "storefleet.replicas" -}}
{{- if .Values.autoscaling.enabled -}}
{{- fail "autoscaling.enabled: true is refused: the chart renders no HorizontalPodAutoscaler; set replicas (2 or more for availability)" -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the API has an authenticator: an OIDC issuer, an API tokens Secret or
TokenReview (values.schema.json requires one of them for an Ingress).
*/}}
{{- define "storefleet.authConfigured" -}}
{{- $a := .Values.auth | default dict -}}
{{- if or ($a.oidc | default dict).issuer ($a.apiTokens | default dict).secretName ($a.kubernetes | default dict).tokenReview -}}
true
{{- end -}}
{{- end -}}

{{/* Where the API tokens Secret is mounted (a directory: a rotated Secret reaches the pod). */}}
{{- define "storefleet.apiTokensDir" -}}
/etc/storefleet/api-tokens
{{- end -}}

{{/*
The --auth-config file (internal/access's format) from values auth: only the sections
whose authenticator is configured, the tokens file as the pod sees it.
*/}}
{{- define "storefleet.authConfig" -}}
{{- $a := .Values.auth -}}
{{- $c := dict "defaultTenant" ($a.defaultTenant | default "default") -}}
{{- with $a.oidc }}{{ if .issuer }}
{{- $_ := set $c "oidc" (dict "issuer" .issuer "audience" .audience "subjectClaim" .subjectClaim "groupsClaim" .groupsClaim "clockSkew" .clockSkew "algorithms" .algorithms) -}}
{{- end }}{{ end }}
{{- with $a.apiTokens }}{{ if .secretName }}
{{- $_ := set $c "apiTokens" (dict "file" (printf "%s/%s" (include "storefleet.apiTokensDir" $) .key)) -}}
{{- end }}{{ end }}
{{- with $a.kubernetes }}{{ if .tokenReview }}
{{- $_ := set $c "kubernetes" (dict "tokenReview" true "audiences" (.audiences | default list)) -}}
{{- end }}{{ end }}
{{- $_ := set $c "rules" ($a.rules | default list) -}}
{{- $_ := set $c "limits" $a.limits -}}
{{- toYaml $c -}}
{{- end -}}
