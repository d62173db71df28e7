{{/* Names as the upstream chart renders them for a release: "<release>-dagster-webserver", ... */}}
{{- define "dagster-lite.name" -}}
{{- printf "%s-dagster" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dagster-lite.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: dagster
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "dagster-lite.selectorLabels" -}}
app.kubernetes.io/name: dagster
app.kubernetes.io/instance: {{ .Release.Name }}
component: {{ .component }}
{{- end -}}

{{- define "dagster-lite.image" -}}
{{- if not .Values.image.tag }}{{ fail "image.tag is required" }}{{ end -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag }}"
{{- end -}}

{{/* Pod-level security: restricted Pod Security Standard; port 80 without root via a safe sysctl. */}}
{{- define "dagster-lite.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile: {type: RuntimeDefault}
sysctls:
  - name: net.ipv4.ip_unprivileged_port_start
    value: "0"
{{- end -}}

{{- define "dagster-lite.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{- define "dagster-lite.env" -}}
- name: DAGSTER_HOME
  value: /opt/dagster/dagster_home
- name: DAGSTER_PG_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Release.Name }}-postgresql-secret
      key: postgresql-password
- name: HOME
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
{{- end -}}

{{/* Waits for PostgreSQL (TCP) so the components start once instead of crash-looping meanwhile. */}}
{{- define "dagster-lite.waitForPostgres" -}}
- name: wait-for-postgresql
  image: {{ include "dagster-lite.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  securityContext:
    {{- include "dagster-lite.containerSecurityContext" . | nindent 4 }}
  command:
    - python3
    - -c
    - |
      import socket, sys, time
      host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
      deadline = time.monotonic() + limit
      while True:
          try:
              socket.create_connection((host, port), timeout=3).close()
              print(f"{host}:{port} accepts connections"); break
          except OSError as exc:
              if time.monotonic() > deadline:
                  sys.exit(f"{host}:{port} not reachable after {limit:.0f}s: {exc}")
              time.sleep(2)
    - {{ .Values.postgresql.postgresqlHost | required "postgresql.postgresqlHost is required" | quote }}
    - {{ .Values.postgresql.service.port | quote }}
    - {{ .Values.waitForPostgresSeconds | quote }}
  resources:
    requests: {cpu: 10m, memory: 32Mi}
    limits: {cpu: 100m, memory: 64Mi}
{{- end -}}

{{- define "dagster-lite.volumeMounts" -}}
# DAGSTER_HOME writable (local artifacts, logs) under a read-only root; dagster.yaml from the ConfigMap.
- name: home
  mountPath: /opt/dagster/dagster_home
- name: instance
  mountPath: /opt/dagster/dagster_home/dagster.yaml
  subPath: dagster.yaml
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Where the pods may run: the same nodeSelector, affinity and spread for webserver and daemon. */}}
{{- define "dagster-lite.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.topologySpreadConstraints }}
topologySpreadConstraints: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end }}
