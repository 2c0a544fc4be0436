{{- define "ftmoe.labels" -}}
app.kubernetes.io/name: ftmoe-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "ftmoe.selector" -}}
app.kubernetes.io/name: ftmoe-operator
{{- end -}}

{{- define "ftmoe.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
