{{/* Names. */}}
{{- define "hodei.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hodei.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hodei.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The daemons: values key -> binary and component label. */}}
{{- define "hodei.daemons" -}}
edge: {binary: hodei-job-api, component: edge}
scheduler: {binary: hodei-scheduler, component: scheduler}
provisioner: {binary: hodei-provisioner, component: provisioner}
relay: {binary: hodei-outbox-relay, component: relay}
supervisor: {binary: hodei-supervisor, component: supervisor}
{{- end -}}

{{/* Labels; call with (dict "root" $ "component" "edge"). */}}
{{- define "hodei.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hodei.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "hodei.labels" -}}
{{ include "hodei.selectorLabels" . }}
helm.sh/chart: {{ include "hodei.chart" .root }}
app.kubernetes.io/part-of: hodei
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Image of a component; call with (dict "root" $ "image" .Values.<component>.image). */}}
{{- define "hodei.image" -}}
{{- $g := .root.Values.image -}}
{{- $o := .image | default dict -}}
{{- $registry := $o.registry | default $g.registry -}}
{{- $repo := $o.repository | default $g.repository -}}
{{- $tag := $o.tag | default $g.tag | default .root.Chart.AppVersion -}}
{{- if $registry -}}{{ printf "%s/%s:%s" $registry $repo $tag }}{{- else -}}{{ printf "%s:%s" $repo $tag }}{{- end -}}
{{- end -}}

{{/* Secret names and keys. */}}
{{- define "hodei.secretName" -}}{{ include "hodei.fullname" . }}{{- end -}}

{{- define "hodei.dbSecret" -}}
{{- if .Values.postgresql.existingSecret -}}{{ .Values.postgresql.existingSecret }}{{- else -}}{{ include "hodei.secretName" . }}{{- end -}}
{{- end -}}
{{- define "hodei.dbSecretKey" -}}
{{- if .Values.postgresql.existingSecret -}}{{ .Values.postgresql.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}
{{- define "hodei.natsSecret" -}}
{{- if .Values.nats.existingSecret -}}{{ .Values.nats.existingSecret }}{{- else -}}{{ include "hodei.secretName" . }}{{- end -}}
{{- end -}}
{{- define "hodei.natsSecretKey" -}}
{{- if .Values.nats.existingSecret -}}{{ .Values.nats.existingSecretKey }}{{- else -}}nats-url{{- end -}}
{{- end -}}
{{- define "hodei.keySecret" -}}
{{- if .Values.secretsMasterKey.existingSecret -}}{{ .Values.secretsMasterKey.existingSecret }}{{- else -}}{{ include "hodei.secretName" . }}{{- end -}}
{{- end -}}
{{- define "hodei.keySecretKey" -}}
{{- if .Values.secretsMasterKey.existingSecret -}}{{ .Values.secretsMasterKey.existingSecretKey }}{{- else -}}master-key{{- end -}}
{{- end -}}
{{- define "hodei.hasMasterKey" -}}
{{- if or .Values.secretsMasterKey.value .Values.secretsMasterKey.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The edge Service's address, what workers connect to by default. */}}
{{- define "hodei.edgeAddress" -}}
{{- if .Values.provisioner.edgeAddress -}}{{ .Values.provisioner.edgeAddress }}{{- else -}}
{{- printf "%s-edge.%s.svc:%d" (include "hodei.fullname" .) .Release.Namespace (int .Values.edge.grpcPort) -}}
{{- end -}}
{{- end -}}

{{- define "hodei.workerNamespace" -}}
{{- .Values.provisioner.kubernetes.namespace | default .Release.Namespace -}}
{{- end -}}

{{- define "hodei.provisionerServiceAccount" -}}
{{- .Values.provisioner.serviceAccount.name | default (printf "%s-provisioner" (include "hodei.fullname" .)) -}}
{{- end -}}

{{/* Environment every daemon shares: dependencies from Secrets, logging,
     health, the instance id (the pod's name). */}}
{{- define "hodei.commonEnv" -}}
- name: HODEI_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ include "hodei.dbSecret" . | quote }}, key: {{ include "hodei.dbSecretKey" . | quote }}}
- name: HODEI_NATS_URL
  valueFrom:
    secretKeyRef: {name: {{ include "hodei.natsSecret" . | quote }}, key: {{ include "hodei.natsSecretKey" . | quote }}}
{{- if .Values.nats.user }}
- name: HODEI_NATS_USER
  value: {{ .Values.nats.user | quote }}
{{- end }}
{{- if or .Values.nats.password .Values.nats.passwordExistingSecret }}
- name: HODEI_NATS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ if .Values.nats.passwordExistingSecret }}{{ .Values.nats.passwordExistingSecret | quote }}{{ else }}{{ include "hodei.secretName" . | quote }}{{ end }}, key: {{ if .Values.nats.passwordExistingSecret }}{{ .Values.nats.passwordExistingSecretKey | quote }}{{ else }}"nats-password"{{ end }}}
{{- end }}
- name: HODEI_DATABASE_POOL_SIZE
  value: {{ .Values.postgresql.poolSize | quote }}
- name: HODEI_DATABASE_PREPARE
  value: {{ .Values.postgresql.prepare | quote }}
- name: HODEI_DATABASE_CONNECT_TIMEOUT
  value: {{ .Values.postgresql.connectTimeout | quote }}
- name: HODEI_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: HODEI_HEALTH_LISTEN
  value: {{ printf "0.0.0.0:%d" (int .Values.healthPort) | quote }}
- name: HODEI_INSTANCE_ID
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: TMPDIR
  value: /tmp
{{- end -}}

{{/* A component's `config` map as HODEI_* variables: scheduler.strategy -> HODEI_SCHEDULER_STRATEGY. */}}
{{- define "hodei.configEnv" -}}
{{- range $k, $v := . }}
- name: {{ printf "HODEI_%s" ($k | replace "." "_" | replace "-" "_" | upper) }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}
