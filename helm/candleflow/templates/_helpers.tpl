{{/* Names, labels and images shared by every template. */}}

{{- define "candleflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "candleflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "candleflow.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "candleflow.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "candleflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "candleflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: candleflow
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "serving") */}}
{{- define "candleflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "candleflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "candleflow.componentLabels" -}}
{{ include "candleflow.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "candleflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "candleflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Pinned image reference: (dict "root" $ "image" .Values.images.job). Never "latest". */}}
{{- define "candleflow.image" -}}
{{- $img := .image -}}
{{- if eq (toString $img.tag) "latest" -}}
{{- fail "image tags must be pinned: \"latest\" is not allowed" -}}
{{- end -}}
{{- $repo := $img.repository -}}
{{- if .root.Values.images.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .root.Values.images.registry) $img.repository -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (required "image tag is required" (toString $img.tag)) -}}
{{- end -}}
{{- end -}}

{{- define "candleflow.configMapName" -}}
{{- printf "%s-config" (include "candleflow.fullname" .) -}}
{{- end -}}

{{/* env every pod gets: the shared ConfigMap plus the catalog password from its Secret,
and the Kafka SASL secret (password or OAuth client secret) when SASL is configured. */}}
{{- define "candleflow.commonEnv" -}}
- name: CANDLEFLOW_CATALOG_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.config.catalog.passwordSecret.name }}
      key: {{ .Values.config.catalog.passwordSecret.key }}
{{- include "candleflow.kafkaSecretEnv" . }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{/* The Kafka security settings, checked once: SASL needs its mechanism and credentials,
each secret from an existing Secret (name in values) or, only when the value itself is
given, from the Secret the chart creates (templates/common/kafka-secret.yaml). */}}
{{- define "candleflow.kafkaSasl" -}}
{{- $c := .Values.config -}}
{{- $sasl := $c.kafkaSasl | default dict -}}
{{- $mech := upper ($sasl.mechanism | default "") -}}
{{- if hasPrefix "SASL" $c.kafkaSecurityProtocol -}}
{{- if not $mech -}}
{{- fail (printf "config.kafkaSasl.mechanism is required with config.kafkaSecurityProtocol=%s" $c.kafkaSecurityProtocol) -}}
{{- end -}}
{{- if eq $mech "OAUTHBEARER" -}}
{{- $o := $sasl.oauthbearer | default dict -}}
{{- if not $o.tokenEndpointUrl -}}
{{- fail "config.kafkaSasl.oauthbearer.tokenEndpointUrl is required with mechanism OAUTHBEARER" -}}
{{- end -}}
{{- $ref := $o.clientSecretSecret | default dict -}}
{{- if and $ref.name $o.clientSecret -}}
{{- fail "set config.kafkaSasl.oauthbearer.clientSecretSecret.name or .clientSecret, not both" -}}
{{- end -}}
{{- if $ref.name -}}
{{- dict "mechanism" $mech "env" "CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET" "name" $ref.name "key" ($ref.key | default "client-secret") "value" "" | toJson -}}
{{- else if $o.clientSecret -}}
{{- dict "mechanism" $mech "env" "CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET" "name" (printf "%s-kafka" (include "candleflow.fullname" .)) "key" "oauthbearer-client-secret" "value" $o.clientSecret | toJson -}}
{{- else -}}
{{- dict "mechanism" $mech | toJson -}}
{{- end -}}
{{- else -}}
{{- if not $sasl.username -}}
{{- fail (printf "config.kafkaSasl.username is required with mechanism %s" $mech) -}}
{{- end -}}
{{- $ref := $sasl.passwordSecret | default dict -}}
{{- if and $ref.name $sasl.password -}}
{{- fail "set config.kafkaSasl.passwordSecret.name or config.kafkaSasl.password, not both" -}}
{{- end -}}
{{- if $ref.name -}}
{{- dict "mechanism" $mech "env" "CANDLEFLOW_KAFKA_SASL_PASSWORD" "name" $ref.name "key" ($ref.key | default "password") "value" "" | toJson -}}
{{- else if $sasl.password -}}
{{- dict "mechanism" $mech "env" "CANDLEFLOW_KAFKA_SASL_PASSWORD" "name" (printf "%s-kafka" (include "candleflow.fullname" .)) "key" "password" "value" $sasl.password | toJson -}}
{{- else -}}
{{- fail (printf "SASL %s needs config.kafkaSasl.passwordSecret.name (an existing Secret) or config.kafkaSasl.password" $mech) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- dict | toJson -}}
{{- end -}}
{{- end -}}

{{- define "candleflow.kafkaSecretEnv" -}}
{{- $k := include "candleflow.kafkaSasl" . | fromJson -}}
{{- if $k.env }}
- name: {{ $k.env }}
  valueFrom:
    secretKeyRef:
      name: {{ $k.name }}
      key: {{ $k.key }}
{{- end }}
{{- end -}}

{{/* Volume + mount of the Kafka TLS files (CA bundle, client cert+key) from a Secret. */}}
{{- define "candleflow.kafkaTlsVolumes" -}}
{{- with (.Values.config.kafkaTls | default dict).secretName }}
- name: kafka-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- end -}}

{{- define "candleflow.kafkaTlsVolumeMounts" -}}
{{- $t := .Values.config.kafkaTls | default dict -}}
{{- if $t.secretName }}
- name: kafka-tls
  mountPath: {{ $t.mountPath | default "/etc/candleflow/kafka-tls" }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "candleflow.envFrom" -}}
- configMapRef:
    name: {{ include "candleflow.configMapName" . }}
{{- end -}}

{{/*
A pod annotation that follows the chart-made Kafka Secret, so a new password (given as a
value) rolls the pods that read it as env; nothing when the Secret is not the chart's.
*/}}
{{- define "candleflow.kafkaSecretChecksum" -}}
{{- $k := include "candleflow.kafkaSasl" . | fromJson -}}
{{- if $k.value -}}
checksum/kafka-secret: {{ include (print .Template.BasePath "/common/kafka-secret.yaml") . | sha256sum }}
{{- end -}}
{{- end -}}
