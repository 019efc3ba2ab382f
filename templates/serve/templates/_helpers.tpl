{{- define "serve.name" -}}tsys-ci-serve{{- end -}}
{{- define "serve.fullname" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}-serve{{- end -}}
{{- define "serve.labels" -}}
app.kubernetes.io/name: {{ include "serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "serve.selector" -}}
app.kubernetes.io/name: {{ include "serve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "serve.secret" -}}{{ .Values.existingSecret | default (include "serve.fullname" .) }}{{- end -}}
{{- define "serve.webhookSecret" -}}{{ .Values.existingWebhookSecret | default (printf "%s-webhook" (include "serve.fullname" .)) }}{{- end -}}
{{- define "serve.scheme" -}}{{ if .Values.tls.secretName }}https{{ else }}http{{ end }}{{- end -}}
{{- define "serve.sessionSecret" -}}{{ .Values.existingSessionKeySecret | default (printf "%s-session" (include "serve.fullname" .)) }}{{- end -}}
{{- define "serve.readSecret" -}}{{ .Values.existingReadTokenSecret | default (printf "%s-read" (include "serve.fullname" .)) }}{{- end -}}
{{- define "serve.image" -}}
{{- if .Values.image.digest -}}{{ .Values.image.repository }}@{{ .Values.image.digest }}{{- else -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}
{{- end -}}
