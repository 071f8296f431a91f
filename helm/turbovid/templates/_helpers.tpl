{{/* Names, labels and the merged settings of a worker pool. */}}

{{- define "turbovid.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "turbovid.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "turbovid.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "turbovid.scheduler.name" -}}
{{- printf "%s-scheduler" (include "turbovid.fullname" .) -}}
{{- end -}}

{{- define "turbovid.serviceAccount" -}}
{{- default (include "turbovid.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The scheduler's gRPC address as workers dial it. */}}
{{- define "turbovid.scheduler.address" -}}
{{- printf "%s-api.%s.svc:%d" (include "turbovid.scheduler.name" .) .Release.Namespace (int .Values.scheduler.grpcPort) -}}
{{- end -}}

{{- define "turbovid.image" -}}
{{- $img := index .root.Values.image .which -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* A pool with workerDefaults under it: (dict "root" $ "pool" $pool) -> YAML of the merge. */}}
{{- define "turbovid.pool" -}}
{{- $merged := mergeOverwrite (deepCopy .root.Values.workerDefaults) (deepCopy .pool) -}}
{{- /* A volume source is replaced whole, never merged with the default's. */ -}}
{{- $_ := set $merged "modelsVolume" (default .root.Values.workerDefaults.modelsVolume .pool.modelsVolume | default (dict "emptyDir" (dict))) -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $merged.name) -}}
{{- fail (printf "pools[].name: %q must be a DNS label (lower case letters, digits, '-')" $merged.name) -}}
{{- end -}}
{{- if le (int $merged.maxJobSeconds) 0 -}}
{{- fail (printf "pools[%s].maxJobSeconds: must be positive" $merged.name) -}}
{{- end -}}
{{- if and (gt (int $merged.tensorParallelSize) 1) (lt (int $merged.gpus) (int $merged.tensorParallelSize)) -}}
{{- fail (printf "pools[%s].gpus: %d is fewer than tensorParallelSize %d" $merged.name (int $merged.gpus) (int $merged.tensorParallelSize)) -}}
{{- end -}}
{{- if not $merged.models -}}
{{- fail (printf "pools[%s].models: a pool must serve at least one model" $merged.name) -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "turbovid.worker.name" -}}
{{- printf "%s-worker-%s" (include "turbovid.fullname" .root) .name -}}
{{- end -}}

{{/* Pod security shared by every container: non-root (the images' uid), no privilege. */}}
{{- define "turbovid.containerSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "turbovid.secretVolumes" -}}
{{- range . }}
- name: secret-{{ .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "turbovid.secretMounts" -}}
{{- range . }}
- name: secret-{{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Authentication and TLS (values auth and tls). "true" or "". */}}
{{- define "turbovid.authRequired" -}}
{{- if eq .Values.auth.mode "required" }}true{{ end -}}
{{- end -}}

{{/* The HTTP job API leaves loopback only with auth required (API keys guard it); with
tls.enabled the scheduler serves it over HTTPS (mutual TLS with tls.mutual), like gRPC. */}}
{{- define "turbovid.apiHttpExposed" -}}
{{- if eq .Values.auth.mode "required" }}true{{ end -}}
{{- end -}}

{{/* The scheme of the scheduler's HTTP listeners: with tls.enabled all of them speak HTTPS. */}}
{{- define "turbovid.httpScheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{- define "turbovid.authSecret" -}}
{{- printf "%s-auth" (include "turbovid.fullname" .) -}}
{{- end -}}

{{- define "turbovid.apiKeysSecret" -}}
{{- default (include "turbovid.authSecret" .) .Values.auth.apiKeys.existingSecret -}}
{{- end -}}

{{- define "turbovid.workerTokenSecret" -}}
{{- default (include "turbovid.authSecret" .) .Values.auth.workerToken.existingSecret -}}
{{- end -}}

{{- define "turbovid.tlsSecret" -}}
{{- default (printf "%s-tls" (include "turbovid.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* Where the pods see the Secrets. */}}
{{- define "turbovid.secretDir" -}}/var/run/turbovid{{- end -}}
