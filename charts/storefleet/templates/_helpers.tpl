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

{{/*
gitops-api's shard publisher is a single writer: two pods would publish shard
ExternalArtifacts built from different fleet heads, and the one behind could move a shard
back to an older tree. So exactly one pod, never more.
*/}}
{{- define "storefleet.singleWriter" -}}
{{- $why := "gitops-api's shard publisher is a single writer (two pods would publish shard artifacts from different fleet heads and could move a shard back to an older tree)" -}}
{{- if gt (int .Values.replicas) 1 -}}
{{- fail (printf "replicas: %v is refused: %s; run 1 replica" .Values.replicas $why) -}}
{{- end -}}
{{- if .Values.autoscaling.enabled -}}
{{- fail (printf "autoscaling.enabled: true is refused: %s; an autoscaler would add pods, so leave it false and run 1 replica" $why) -}}
{{- end -}}
{{- if .Values.podDisruptionBudget.enabled -}}
{{- fail (printf "podDisruptionBudget.enabled: true is refused: %s, so there is 1 pod, and a PodDisruptionBudget on it would block every node drain" $why) -}}
{{- end -}}
{{- end -}}
