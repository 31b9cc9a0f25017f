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
RBAC rules on namespaced resources: exactly what the operator does
(tests/chart/test_rbac_operator.py derives the same set from the code).
  - workerpools: kopf lists/watches them and patches its bookkeeping
    (progress annotations, finalizer); the handlers read one (get);
    workerpools/status: the status the operator merge-patches.
  - Deployments: server-side applied (create + patch), read back (get), and
    watched by kopf so a rollout or a deletion reconciles the owner at once.
  - Services: applied and read back; never deleted (a pool always has one).
  - HPAs, PDBs: applied, read back, deleted when the spec turns them off.
  - events: kopf posts Events (core/v1, create only).
*/}}
{{- define "podsup-operator.namespacedRules" -}}
- apiGroups: ["podsup.io"]
  resources: ["workerpools"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["podsup.io"]
  resources: ["workerpools/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* Cluster-scoped rule: kopf's watch of CRDs (list + watch, read-only). */}}
{{- define "podsup-operator.crdDiscoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end -}}

{{/*
Helpers of the operator's metrics API (metrics-api-*.yaml).
*/}}

{{/* Name of the metrics API objects (Service, Secret, RBAC): <fullname>-metrics-api. */}}
{{- define "podsup-operator.metricsApi.name" -}}
{{- printf "%s-metrics-api" (include "podsup-operator.fullname" . | trunc 51 | trimSuffix "-") -}}
{{- end -}}

{{/* The operator keeps the metrics API's certificate itself (--tls-secret): no existing Secret, no cert-manager. */}}
{{- define "podsup-operator.metricsApi.managedCertificate" -}}
{{- if and .Values.metricsApi.enabled (not .Values.metricsApi.certificate.existingSecret) (not .Values.metricsApi.certManager.enabled) -}}
true
{{- end -}}
{{- end -}}

{{/* The APIServices the chart registers. */}}
{{- define "podsup-operator.metricsApi.apiservices" -}}
{{- if .Values.metricsApi.registerExternal }}
- v1beta1.external.metrics.k8s.io
{{- end }}
{{- if .Values.metricsApi.registerCustom }}
- v1beta2.custom.metrics.k8s.io
{{- end }}
{{- end -}}

{{/* Name of the serving certificate Secret. */}}
{{- define "podsup-operator.metricsApi.secretName" -}}
{{- default (printf "%s-tls" (include "podsup-operator.metricsApi.name" .)) .Values.metricsApi.certificate.existingSecret -}}
{{- end -}}

{{/*
RBAC of the queue pollers and the Pods metrics, per watched namespace:
  - pods list: the Pods metrics and the busy-workers check scrape ready pods;
  - pods patch: the pod-deletion-cost annotation (scale-in removes idle pods first);
  - secrets get: a queue's urlSecretRef (the broker URL with credentials);
  - deployments/scale get + patch: scale to zero and back (0 <-> 1 only; the
    HPA owns every other count).
*/}}
{{- define "podsup-operator.metricsApi.rules" -}}
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "patch"]
{{- end -}}
