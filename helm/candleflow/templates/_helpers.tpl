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

{{/* env every pod gets: the shared ConfigMap plus the catalog password from its Secret. */}}
{{- define "candleflow.commonEnv" -}}
- name: CANDLEFLOW_CATALOG_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.config.catalog.passwordSecret.name }}
      key: {{ .Values.config.catalog.passwordSecret.key }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end -}}

{{- define "candleflow.envFrom" -}}
- configMapRef:
    name: {{ include "candleflow.configMapName" . }}
{{- end -}}
