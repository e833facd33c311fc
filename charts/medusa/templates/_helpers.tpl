{{/*
Every object is named {{ .Release.Name }}-<component> (docs/design.md): the release name
is the store name (at most 40 characters), so every derived name fits its limit.
*/}}
{{- define "medusa.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .component -}}
{{- end -}}

{{- define "medusa.selectorLabels" -}}
app.kubernetes.io/name: medusa
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Plan is a label (not a selector: a plan change must not touch immutable selectors). */}}
{{- define "medusa.labels" -}}
{{ include "medusa.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: storefleet
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
storefleet.io/store: {{ .root.Values.store.name | quote }}
storefleet.io/plan: {{ .root.Values.plan | quote }}
{{- end -}}

{{/* image reference: repository:tag, or repository:tag@digest when a digest is pinned. */}}
{{- define "medusa.image" -}}
{{- if .digest -}}
{{ printf "%s:%s@%s" .repository .tag .digest }}
{{- else -}}
{{ printf "%s:%s" .repository .tag }}
{{- end -}}
{{- end -}}

{{- define "medusa.tlsEnabled" -}}
{{- if or .Values.ingress.clusterIssuer .Values.ingress.tlsSecretName -}}true{{- end -}}
{{- end -}}

{{- define "medusa.url" -}}
{{- if include "medusa.tlsEnabled" . -}}https{{- else -}}http{{- end -}}://{{ .Values.store.domain }}
{{- end -}}

{{- define "medusa.credentialsSecret" -}}
{{- printf "%s-credentials" .Release.Name -}}
{{- end -}}

{{/* Restricted-profile container security context, for every container that allows it. */}}
{{- define "medusa.restrictedContainer" -}}
allowPrivilegeEscalation: false
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment of every container running the Medusa image. */}}
{{- define "medusa.env" -}}
- name: NODE_ENV
  value: production
- name: PORT
  value: "9000"
- name: MEDUSA_WORKER_MODE
  value: shared
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "medusa.credentialsSecret" . }}
      key: postgres-password
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "medusa.credentialsSecret" . }}
      key: redis-password
- name: DATABASE_URL
  value: {{ printf "postgres://medusa:$(POSTGRES_PASSWORD)@%s-postgresql:5432/medusa?sslmode=disable" .Release.Name | quote }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s-redis:6379" .Release.Name | quote }}
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "medusa.credentialsSecret" . }}
      key: jwt-secret
- name: COOKIE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "medusa.credentialsSecret" . }}
      key: cookie-secret
- name: MEDUSA_BACKEND_URL
  value: {{ include "medusa.url" . | quote }}
- name: STORE_CORS
  value: {{ include "medusa.url" . | quote }}
- name: ADMIN_CORS
  value: {{ include "medusa.url" . | quote }}
- name: AUTH_CORS
  value: {{ include "medusa.url" . | quote }}
{{- end -}}

{{/* The Medusa image is a required value: there is no official image to default to. */}}
{{- define "medusa.appImage" -}}
{{- $repo := required "image.repository is required: build images/medusa, push it, and set image.repository (see the medusa chart README)" .Values.image.repository -}}
{{- $tag := required "image.tag is required: set image.tag to the tag you pushed (never latest)" .Values.image.tag -}}
{{- include "medusa.image" (dict "repository" $repo "tag" $tag "digest" .Values.image.digest) -}}
{{- end -}}
