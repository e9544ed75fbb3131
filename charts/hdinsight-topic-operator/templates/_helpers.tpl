{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "hto.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless the release name contains it. */}}
{{- define "hto.fullname" -}}
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

{{- define "hto.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hto.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hto.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hto.labels" -}}
helm.sh/chart: {{ include "hto.chart" . }}
{{ include "hto.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hdinsight-topic-operator
{{- end }}

{{- define "hto.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hto.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hto.leaseName" -}}
{{- default (include "hto.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "hto.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Rules on the operator's own resources and the Secrets and Events they need. Rendered into the
ClusterRole (all namespaces) or into one Role per watched namespace.
No update, create or delete on KafkaTopics/KafkaRestProxies: the operator writes only status,
with PATCH.
*/}}
{{- define "hto.watchRules" -}}
{{- include "hto.topicRules" . }}
{{- if not .Values.proxyNamespaces }}
{{ include "hto.proxyRules" . }}
{{- end }}
{{- end }}

{{/* KafkaTopics, their status and Events: where topics are watched. */}}
{{- define "hto.topicRules" -}}
- apiGroups: ["kafka.hdinsight.dev"]
  resources: ["kafkatopics"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["kafka.hdinsight.dev"]
  resources: ["kafkatopics/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* KafkaRestProxies, their status, the Secrets they name and the tokens of their
    ServiceAccounts: where proxies are served. */}}
{{- define "hto.proxyRules" -}}
- apiGroups: ["kafka.hdinsight.dev"]
  resources: ["kafkarestproxies"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["kafka.hdinsight.dev"]
  resources: ["kafkarestproxies/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# workloadIdentity credentials: the operator requests tokens of the proxy's ServiceAccount
# (TokenRequest). Where this rule is cluster-wide (no proxyNamespaces, no watchNamespaces) the
# operator can get a token of any ServiceAccount: set proxyNamespaces to narrow it.
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
{{- end }}

{{/* "host:port", with an IPv6 host in brackets. */}}
{{- define "hto.hostPort" -}}
{{- $host := index . 0 | toString }}
{{- $port := index . 1 }}
{{- if contains ":" $host }}[{{ $host }}]:{{ $port }}{{ else }}{{ $host }}:{{ $port }}{{ end }}
{{- end }}
