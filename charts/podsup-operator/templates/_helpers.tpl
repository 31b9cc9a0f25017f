{{/*
Helpers of the podsup-operator chart. Every name is prefixed with the chart
name so that it cannot clash with a parent chart's helpers.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "podsup-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: fullnameOverride, or release name + chart name (once). */}}
{{- define "podsup-operator.fullname" -}}
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

{{/* chart label: name-version. */}}
{{- define "podsup-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator pod (never change after install). */}}
{{- define "podsup-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podsup-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object. */}}
{{- define "podsup-operator.labels" -}}
{{ include "podsup-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "podsup-operator.chart" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The operator's ServiceAccount name. */}}
{{- define "podsup-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "podsup-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator image reference: repository@digest or repository:tag. */}}
{{- define "podsup-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
RBAC rules on namespaced resources: exactly what the operator does.
  - workerpools: kopf watches them and patches its own bookkeeping
    (finalizers, annotations); workerpools/status: the status it writes.
  - Deployments, Services, HPAs, PDBs: server-side apply (create + patch),
    read back for drift and status, deleted when a WorkerPool drops one
    (autoscaling or the disruption budget switched off).
  - pods: listed for the workers column and the metrics API.
  - events: kopf and the operator post Events (core/v1).
*/}}
{{- define "podsup-operator.namespacedRules" -}}
- apiGroups: ["podsup.io"]
  resources: ["workerpools"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["podsup.io"]
  resources: ["workerpools/status"]
  verbs: ["get", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* Cluster-scoped rule: kopf's read-only watch of CRDs. */}}
{{- define "podsup-operator.crdDiscoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end -}}
