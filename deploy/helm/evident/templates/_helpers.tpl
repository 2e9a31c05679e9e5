{{/* The roles this chart runs, in order. */}}
{{- define "evident.roles" -}}receiver engine api{{- end }}

{{- define "evident.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's name, with the chart's unless it holds it already. */}}
{{- define "evident.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "evident.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "evident.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one role: call with (dict "root" $ "role" "engine"). */}}
{{- define "evident.selectorLabels" -}}
app.kubernetes.io/name: {{ include "evident.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "evident.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "evident.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "evident.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* What the chart cannot run without, checked before anything renders. */}}
{{- define "evident.validate" -}}
{{- if not .Values.kafka.brokers }}
{{- fail "kafka.brokers is required: the bootstrap brokers of your Kafka (docs/deploy.md)" }}
{{- end }}
{{- if and (not .Values.postgres.dsnSecret.name) (not .Values.postgres.dsn) }}
{{- fail "postgres.dsnSecret.name or postgres.dsn is required: where the shared PostgreSQL database is (docs/deploy.md)" }}
{{- end }}
{{- if and .Values.postgres.dsnSecret.name .Values.postgres.dsn }}
{{- fail "give postgres.dsnSecret or postgres.dsn, not both" }}
{{- end }}
{{- /* postgres.dsn goes into the ConfigMap, which is no place for a password. */}}
{{- if regexMatch "(?i)^postgres(ql)?://[^/@?#]*:[^/@?#]*@|\\bpassword\\s*=" .Values.postgres.dsn }}
{{- fail "postgres.dsn holds a password, which would be written into the ConfigMap: give it in postgres.passwordSecret, or the whole DSN in postgres.dsnSecret" }}
{{- end }}
{{- /* A name twice in a container's env is refused by server-side apply, or one silently wins. */}}
{{- $chartEnv := dict "EVIDENT_PG_DSN" "postgres.dsnSecret" "PGPASSWORD" "postgres.passwordSecret" "EVIDENT_DATA" "the data volume" "GOMEMLIMIT" "each role's resources.limits.memory" }}
{{- range $e := .Values.env }}
{{- with get $chartEnv $e.name }}
{{- fail (printf "env: %s is set by the chart, from %s" $e.name .) }}
{{- end }}
{{- end }}
{{- $oidc := dig "serve" "auth" "oidc" "issuer" "" .Values.config }}
{{- if and (not .Values.auth.tokensSecret) (not $oidc) }}
{{- fail "auth.tokensSecret (API tokens from \"evident token generate\") or config.serve.auth.oidc.issuer is required: every listener is beyond loopback and needs credentials (docs/security.md)" }}
{{- end }}
{{- end }}

{{/*
evident.yaml: the chart's settings, then .Values.config merged over them.
Every role reads the same file and picks its part with --role.
*/}}
{{- define "evident.config" -}}
{{- $tls := dict }}
{{- if .Values.tls.secretName }}
{{- $tls = dict "cert_file" "/etc/evident/tls/tls.crt" "key_file" "/etc/evident/tls/tls.key" }}
{{- end }}
{{- $kafka := dict "brokers" .Values.kafka.brokers "topic" .Values.kafka.topic "partitions" .Values.kafka.partitions "replication_factor" .Values.kafka.replicationFactor "retention" .Values.kafka.retention "group" .Values.kafka.group }}
{{- if .Values.kafka.tls }}
{{- $_ := set $kafka "tls" .Values.kafka.tls }}
{{- end }}
{{- $dsn := .Values.postgres.dsn }}
{{- if .Values.postgres.dsnSecret.name }}
{{- $dsn = "${EVIDENT_PG_DSN}" }}
{{- end }}
{{- $api := dict "endpoint" "0.0.0.0:8080" }}
{{- $otlp := dict "grpc_endpoint" "0.0.0.0:4317" "http_endpoint" "0.0.0.0:4318" }}
{{- $pyroscope := dict "endpoint" "0.0.0.0:4040" }}
{{- if $tls }}
{{- $_ := set $api "tls" $tls }}
{{- $_ := set $otlp "tls" $tls }}
{{- $_ := set $pyroscope "tls" $tls }}
{{- end }}
{{- $store := dict "backend" "postgres" "postgres" (dict "dsn" $dsn "max_conns" .Values.postgres.maxConns "connect_timeout" .Values.postgres.connectTimeout) }}
{{- $serve := dict "api" $api "otlp" $otlp "pyroscope" $pyroscope "store" $store }}
{{- $cfg := dict "cluster" (dict "kafka" $kafka) "serve" $serve }}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy .Values.config) }}
{{- /* The files of .Values.knowledge, after those config names. */}}
{{- if .Values.knowledge }}
{{- $paths := get $cfg "knowledge" | default list }}
{{- range $name, $_ := .Values.knowledge }}
{{- $paths = append $paths (printf "/etc/evident/knowledge/%s" $name) }}
{{- end }}
{{- $_ := set $cfg "knowledge" $paths }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The HTTP scheme of the listeners. */}}
{{- define "evident.scheme" -}}
{{- if .Values.tls.secretName }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/*
The environment of every container that reads evident.yaml: the
database's DSN or password, then .Values.env, which ${NAME} in config
refers to. Every role reads all of evident.yaml, so every one gets it.
*/}}
{{- define "evident.env" -}}
{{- if .Values.postgres.dsnSecret.name }}
- name: EVIDENT_PG_DSN
  valueFrom:
    secretKeyRef: {name: {{ .Values.postgres.dsnSecret.name }}, key: {{ .Values.postgres.dsnSecret.key }}}
{{- else if .Values.postgres.passwordSecret.name }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.postgres.passwordSecret.name }}, key: {{ .Values.postgres.passwordSecret.key }}}
{{- end }}
- name: EVIDENT_DATA
  value: /var/lib/evident
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The mounts of the listeners' and Kafka's certificates. */}}
{{- define "evident.tlsMounts" -}}
{{- if .Values.tls.secretName }}
- {name: tls, mountPath: /etc/evident/tls, readOnly: true}
{{- end }}
{{- if .Values.kafka.tlsSecret }}
- {name: kafka-tls, mountPath: /etc/evident/kafka-tls, readOnly: true}
{{- end }}
{{- end }}
