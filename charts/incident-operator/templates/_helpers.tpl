{{/*
Names, labels and the derived lists every template shares. The operator's own agent-pod labels
(app.kubernetes.io/name=incident-operator, app.kubernetes.io/component=agent) are fixed in its code
(src/controller/keys.rs), so selectors of agent pods use those literal values.
*/}}

{{- define "incident-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "incident-operator.fullname" -}}
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

{{- define "incident-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object; pass (dict "ctx" $ "component" "operator"). */}}
{{- define "incident-operator.labels" -}}
helm.sh/chart: {{ include "incident-operator.chart" .ctx }}
app.kubernetes.io/name: {{ include "incident-operator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: incident-operator
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Selector of the operator's pods. */}}
{{- define "incident-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "incident-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector of agent pods, as the controller labels them. */}}
{{- define "incident-operator.agentPodLabels" -}}
app.kubernetes.io/name: incident-operator
app.kubernetes.io/component: agent
{{- end }}

{{- define "incident-operator.operatorServiceAccount" -}}
{{ include "incident-operator.fullname" . }}
{{- end }}

{{- define "incident-operator.agentServiceAccount" -}}
{{ include "incident-operator.fullname" . }}-agent
{{- end }}

{{- define "incident-operator.remediationServiceAccount" -}}
{{ include "incident-operator.fullname" . }}-agent-remediate
{{- end }}

{{- define "incident-operator.auditClaim" -}}
{{- if .Values.audit.persistence.existingClaim }}
{{- .Values.audit.persistence.existingClaim }}
{{- else }}
{{- include "incident-operator.fullname" . }}-audit
{{- end }}
{{- end }}

{{- define "incident-operator.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag }}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* Namespace the intake creates Incidents in. */}}
{{- define "incident-operator.incidentNamespace" -}}
{{- default .Release.Namespace .Values.alertmanager.incidentNamespace }}
{{- end }}

{{/* Whether the operator runs leader election: asked for, or more than one replica. */}}
{{- define "incident-operator.leaderElection" -}}
{{- if or .Values.operator.leaderElection.enabled (gt (int .Values.operator.replicas) 1) }}true{{- end }}
{{- end }}

{{/*
Namespaces where agents run, as a JSON list: `agent.namespaces`, else `watchNamespaces` when that is a
list, else the intake's Incident namespace. Fails when a namespace would hold agents the operator
never sees (namespaced mode only).
*/}}
{{- define "incident-operator.agentNamespaces" -}}
{{- $namespaces := .Values.agent.namespaces }}
{{- if not $namespaces }}
{{- if .Values.watchNamespaces }}
{{- $namespaces = .Values.watchNamespaces }}
{{- else }}
{{- $namespaces = list (include "incident-operator.incidentNamespace" .) }}
{{- end }}
{{- end }}
{{- if .Values.watchNamespaces }}
{{- range $namespaces }}
{{- if not (has . $.Values.watchNamespaces) }}
{{- fail (printf "agent.namespaces: %q is not in watchNamespaces; the operator would never see Incidents there" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- $namespaces | uniq | toJson }}
{{- end }}

{{/* Namespaces the agent may read when its read access is not cluster-wide, as a JSON list. */}}
{{- define "incident-operator.agentReadNamespaces" -}}
{{- $agents := include "incident-operator.agentNamespaces" . | fromJsonArray }}
{{- concat $agents .Values.agent.rbac.readNamespaces | uniq | toJson }}
{{- end }}

{{/* Checks across values that the schema cannot express; included once from the Deployment. */}}
{{- define "incident-operator.validate" -}}
{{- if and .Values.watchNamespaces .Values.alertmanager.enabled }}
{{- if not (has (include "incident-operator.incidentNamespace" .) .Values.watchNamespaces) }}
{{- fail (printf "alertmanager.incidentNamespace %q must be one of watchNamespaces, or the intake's Incidents are never investigated" (include "incident-operator.incidentNamespace" .)) }}
{{- end }}
{{- end }}
{{- if and .Values.alertmanager.enabled (not .Values.alertmanager.tokenSecret.name) (not .Values.alertmanager.allowUnauthenticated) }}
{{- fail "alertmanager.tokenSecret.name is empty: name the Secret holding the webhook's bearer token, or set alertmanager.allowUnauthenticated=true for a throwaway cluster" }}
{{- end }}
{{- end }}

{{/*
The controller's command line (`incident-operator controller`, src/controller/flags.rs). One flag
per value, every one given explicitly (the binary's own defaults never leak in), so a test or a
person reading the rendered Deployment sees exactly how the operator is configured.
*/}}
{{- define "incident-operator.controllerArgs" -}}
- controller
- --listen={{ .Values.service.listenHost }}:{{ int64 .Values.service.port }}
- --log-format={{ .Values.operator.logFormat }}
- {{ printf "--log-level=%s" .Values.operator.logLevel | quote }}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- if include "incident-operator.leaderElection" . }}
- --leader-election=true
- --lease-name={{ include "incident-operator.fullname" . }}
- --lease-namespace={{ .Release.Namespace }}
- --lease-duration={{ int64 .Values.operator.leaderElection.leaseDurationSeconds }}s
{{- else }}
- --leader-election=false
{{- end }}
- --max-concurrent-agents={{ int64 .Values.operator.maxConcurrentAgents }}
- --backoff-limit={{ int64 .Values.operator.backoffLimit }}
- --retry-backoff={{ int64 .Values.operator.retryBackoffSeconds }}s
- --finished-pod-ttl={{ int64 .Values.operator.finishedPodTtlSeconds }}s
- --approval-timeout={{ int64 .Values.approvals.timeoutSeconds }}s
- {{ printf "--agent-image=%s" (include "incident-operator.image" (dict "ctx" . "image" .Values.agent.image)) | quote }}
- --agent-image-pull-policy={{ .Values.agent.image.pullPolicy }}
- --agent-service-account={{ include "incident-operator.agentServiceAccount" . }}
{{- if .Values.remediation.enabled }}
- --agent-remediation-service-account={{ include "incident-operator.remediationServiceAccount" . }}
{{- end }}
- --api-key-secret={{ .Values.anthropic.apiKeySecret.name }}
- --api-key-secret-key={{ .Values.anthropic.apiKeySecret.key }}
{{- with .Values.anthropic.baseUrl }}
- {{ printf "--anthropic-base-url=%s" . | quote }}
{{- end }}
{{- if .Values.audit.persistence.enabled }}
- --audit-pvc={{ include "incident-operator.auditClaim" . }}
{{- end }}
{{- $requests := .Values.agent.resources.requests | default dict }}
{{- $limits := .Values.agent.resources.limits | default dict }}
- --agent-cpu-request={{ $requests.cpu | default "" }}
- --agent-memory-request={{ $requests.memory | default "" }}
- --agent-cpu-limit={{ $limits.cpu | default "" }}
- --agent-memory-limit={{ $limits.memory | default "" }}
- {{ printf "--model=%s" .Values.agent.model | quote }}
- --max-turns={{ int64 .Values.agent.maxTurns }}
- --command-timeout={{ int64 .Values.agent.commandTimeoutSeconds }}s
- --session-timeout={{ int64 .Values.agent.sessionTimeoutSeconds }}s
- --max-tokens={{ int64 .Values.agent.maxTokens }}
{{- if .Values.alertmanager.enabled }}
- --intake=true
- --intake-namespace={{ include "incident-operator.incidentNamespace" . }}
- --intake-max-body-bytes={{ int64 .Values.alertmanager.maxBodyBytes }}
{{- if .Values.alertmanager.tokenSecret.name }}
- --intake-token-file=/etc/incident-operator/intake/token
{{- end }}
- --recurrence-cooldown={{ .Values.alertmanager.recurrenceCooldown }}
{{- else }}
- --intake=false
{{- end }}
{{- if ne (toString .Values.budget.dailyUSD) "" }}
- --daily-budget-usd={{ .Values.budget.dailyUSD }}
{{- end }}
{{- if ne (toString .Values.budget.namespaceDailyUSD) "" }}
- --namespace-daily-budget-usd={{ .Values.budget.namespaceDailyUSD }}
{{- end }}
{{- if .Values.notifications.sinks }}
- --notifications-config=/etc/incident-operator/notifications/notifications.yaml
{{- end }}
{{- with .Values.budget.modelPrices }}
- {{ printf "--model-prices=%s" (toJson .) | quote }}
{{- end }}
{{- range .Values.operator.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
