{{/*
Every object is named {{ .Release.Name }}-<component> (docs/design.md): the release name
is the store name (at most 40 characters), so every derived name fits its limit.
*/}}
{{- define "woocommerce.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .component -}}
{{- end -}}

{{- define "woocommerce.selectorLabels" -}}
app.kubernetes.io/name: woocommerce
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Plan is a label (not a selector: a plan change must not touch immutable selectors). */}}
{{- define "woocommerce.labels" -}}
{{ include "woocommerce.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: storefleet
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
storefleet.io/store: {{ .root.Values.store.name | quote }}
storefleet.io/plan: {{ .root.Values.plan | quote }}
{{- end -}}

{{/* image reference: repository:tag, or repository:tag@digest when a digest is pinned. */}}
{{- define "woocommerce.image" -}}
{{- if .digest -}}
{{ printf "%s:%s@%s" .repository .tag .digest }}
{{- else -}}
{{ printf "%s:%s" .repository .tag }}
{{- end -}}
{{- end -}}

{{- define "woocommerce.tlsEnabled" -}}
{{- if or .Values.ingress.clusterIssuer .Values.ingress.tlsSecretName -}}true{{- end -}}
{{- end -}}

{{- define "woocommerce.url" -}}
{{- if include "woocommerce.tlsEnabled" . -}}https{{- else -}}http{{- end -}}://{{ .Values.store.domain }}
{{- end -}}

{{- define "woocommerce.credentialsSecret" -}}
{{- printf "%s-credentials" .Release.Name -}}
{{- end -}}

{{- define "woocommerce.pluginSource" -}}
{{- .Values.woocommerce.source | default (printf "https://downloads.wordpress.org/plugin/woocommerce.%s.zip" .Values.woocommerce.version) -}}
{{- end -}}

{{/* Restricted-profile container security context, for every container that allows it. */}}
{{- define "woocommerce.restrictedContainer" -}}
allowPrivilegeEscalation: false
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment shared by WordPress and wp-cli: what wp-config-docker.php reads. */}}
{{- define "woocommerce.wpEnv" -}}
- name: WORDPRESS_DB_HOST
  value: {{ printf "%s-mysql:3306" .Release.Name | quote }}
- name: WORDPRESS_DB_NAME
  value: wordpress
- name: WORDPRESS_DB_USER
  value: wordpress
- name: WORDPRESS_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "woocommerce.credentialsSecret" . }}
      key: mysql-password
{{- range $k := list "AUTH_KEY" "SECURE_AUTH_KEY" "LOGGED_IN_KEY" "NONCE_KEY" "AUTH_SALT" "SECURE_AUTH_SALT" "LOGGED_IN_SALT" "NONCE_SALT" }}
- name: WORDPRESS_{{ $k }}
  valueFrom:
    secretKeyRef:
      name: {{ include "woocommerce.credentialsSecret" $ }}
      key: {{ $k | lower | replace "_" "-" }}
{{- end }}
- name: WORDPRESS_CONFIG_EXTRA
  value: |
    define('WP_HOME', '{{ include "woocommerce.url" . }}');
    define('WP_SITEURL', '{{ include "woocommerce.url" . }}');
    define('WP_AUTO_UPDATE_CORE', false);
{{- end -}}

{{/*
Apache prefork workers sized to the app memory limit: about 80 MiB per PHP worker after
64 MiB for Apache itself, at least 2. The image's default (150 workers) would be OOM-killed
long before serving 150 WooCommerce requests in 512 MiB. Limits in Mi/Gi (what render
writes); any other form gets the minimum.
*/}}
{{- define "woocommerce.maxRequestWorkers" -}}
{{- $m := toString .Values.resources.app.limits.memory -}}
{{- $mi := 0 -}}
{{- if hasSuffix "Gi" $m -}}
{{- $mi = mul (trimSuffix "Gi" $m | atoi) 1024 -}}
{{- else if hasSuffix "Mi" $m -}}
{{- $mi = trimSuffix "Mi" $m | atoi -}}
{{- end -}}
{{- max 2 (div (sub $mi 64) 80) -}}
{{- end -}}
