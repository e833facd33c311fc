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
