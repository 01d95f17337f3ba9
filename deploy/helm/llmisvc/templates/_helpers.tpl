{{/* Labels of every object; the selector labels are the kustomize base's. */}}
{{- define "llmisvc.labels" -}}
app.kubernetes.io/name: llmisvc
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "llmisvc.selectorLabels" -}}
app.kubernetes.io/name: llmisvc
app.kubernetes.io/component: webhook
{{- end }}

{{/* NAMESPACE/NAME of the webhook Service. */}}
{{- define "llmisvc.service" -}}
{{ .Release.Namespace }}/llmisvc-webhook
{{- end }}

{{/* The webhooks' clientConfig (no caBundle: injected at run time). */}}
{{- define "llmisvc.clientConfig" -}}
{{- if .root.Values.webhookUrl }}
url: {{ printf "%s%s" (trimSuffix "/" .root.Values.webhookUrl) .path | quote }}
{{- else }}
service:
  namespace: {{ .root.Release.Namespace }}
  name: llmisvc-webhook
  path: {{ .path }}
  port: 443
{{- end }}
{{- end }}

