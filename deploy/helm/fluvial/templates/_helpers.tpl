{{/* The chart's name, and the release's full name (63 characters: a DNS label). */}}
{{- define "fluvial.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "fluvial.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The consumer group: every instance with this id shares the input partitions. */}}
{{- define "fluvial.applicationId" -}}
{{- default (include "fluvial.fullname" .) .Values.applicationId }}
{{- end }}

{{- define "fluvial.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fluvial.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fluvial.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fluvial.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fluvial
{{- end }}

{{- define "fluvial.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The cluster and its credentials, the same for the service and the model Job. */}}
{{- define "fluvial.kafkaEnv" -}}
- name: FLUVIAL_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
- name: FLUVIAL_APPLICATION_ID
  value: {{ include "fluvial.applicationId" . | quote }}
{{- with .Values.kafka.config }}
- name: FLUVIAL_KAFKA_CONFIG
  value: {{ toJson . | quote }}
{{- end }}
{{- if .Values.kafka.credentialsSecret.name }}
- name: FLUVIAL_CONFIG
  value: /etc/fluvial/credentials/{{ .Values.kafka.credentialsSecret.key }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{- define "fluvial.kafkaVolumeMounts" -}}
{{- if .Values.kafka.credentialsSecret.name }}
- name: kafka-credentials
  mountPath: /etc/fluvial/credentials
  readOnly: true
{{- end }}
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/fluvial/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "fluvial.kafkaVolumes" -}}
{{- if .Values.kafka.credentialsSecret.name }}
- name: kafka-credentials
  secret:
    secretName: {{ .Values.kafka.credentialsSecret.name }}
    items:
      - key: {{ .Values.kafka.credentialsSecret.key }}
        path: {{ .Values.kafka.credentialsSecret.key }}
{{- end }}
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    items:
      - key: {{ .Values.kafka.caSecret.key }}
        path: ca.crt
{{- end }}
{{- end }}
