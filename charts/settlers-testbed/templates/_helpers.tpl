{{/*
Shared names, labels and pod fragments. Producers are named after their item (a
producer calls its inputs at the Service DNS name `<item>:<port>`); every other
object is prefixed with the release full name.
*/}}

{{- define "settlers-testbed.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "settlers-testbed.fullname" -}}
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

{{/* Name of a cluster-scoped object (ClusterRole/Binding): it also carries the
namespace, so same-named releases in two namespaces do not collide. The prefix is
cut, never the suffix, so the names of one release stay distinct.
Call with (dict "root" $ "suffix" "netmarks-extender"); suffixes are <= 26 chars. */}}
{{- define "settlers-testbed.clusterName" -}}
{{- $prefix := printf "%s-%s" .root.Release.Namespace (include "settlers-testbed.fullname" .root) | trunc 36 | trimSuffix "-" }}
{{- printf "%s-%s" $prefix .suffix }}
{{- end }}

{{- define "settlers-testbed.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The value of the `version` label (Istio's canonical revision). */}}
{{- define "settlers-testbed.version" -}}
{{- .Chart.AppVersion | default .Chart.Version | trunc 63 | quote }}
{{- end }}

{{- define "settlers-testbed.selectorLabels" -}}
app.kubernetes.io/name: {{ include "settlers-testbed.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels of every object. */}}
{{- define "settlers-testbed.labels" -}}
helm.sh/chart: {{ include "settlers-testbed.chart" . }}
{{ include "settlers-testbed.selectorLabels" . }}
app.kubernetes.io/version: {{ include "settlers-testbed.version" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: settlers-testbed
{{- end }}

{{/*
Labels of one component. `app` and `version` are the labels Istio and NetMARKS use
to name workloads (istio_requests_total{destination_app=...}).
Call with (dict "root" $ "app" "bread" "component" "producer").
*/}}
{{- define "settlers-testbed.componentLabels" -}}
{{ include "settlers-testbed.labels" .root }}
app.kubernetes.io/component: {{ .component }}
app: {{ .app }}
version: {{ include "settlers-testbed.version" .root }}
{{- end }}

{{/* Selector of one component's pods (immutable on Deployments: keep it small). */}}
{{- define "settlers-testbed.componentSelector" -}}
{{ include "settlers-testbed.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
app: {{ .app }}
{{- end }}

{{/* The testbed image: repository@digest when a digest is given, else :tag. */}}
{{- define "settlers-testbed.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "settlers-testbed.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "settlers-testbed.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "settlers-testbed.economyConfigMap" -}}
{{- printf "%s-economy" (include "settlers-testbed.fullname" .) }}
{{- end }}

{{/* Producer port name: Istio selects the protocol from the http-/grpc- prefix. */}}
{{- define "settlers-testbed.portName" -}}
{{- printf "%s-producer" .Values.protocol }}
{{- end }}

{{- define "settlers-testbed.extenderName" -}}
{{- printf "%s-netmarks-extender" (include "settlers-testbed.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "settlers-testbed.netmarksSchedulerName" -}}
{{- printf "%s-netmarks-scheduler" (include "settlers-testbed.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "settlers-testbed.firmamentName" -}}
{{- printf "%s-firmament" (include "settlers-testbed.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* kube-scheduler image: the cluster's own version unless a tag is given. Vendor
suffixes (v1.30.2-eks-1234) are cut: registry.k8s.io only has plain versions. */}}
{{- define "settlers-testbed.kubeSchedulerImage" -}}
{{- $img := .Values.netmarks.scheduler.image }}
{{- $tag := $img.tag | default (regexFind "^v[0-9]+\\.[0-9]+\\.[0-9]+" .Capabilities.KubeVersion.Version) }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}

{{/* Pod-level security context: restricted Pod Security Standard by default. */}}
{{- define "settlers-testbed.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "settlers-testbed.securityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* Scheduling constraints of the helper components (not the producers). */}}
{{- define "settlers-testbed.componentScheduling" -}}
{{- with .Values.components.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.components.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.components.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "settlers-testbed.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Writable scratch space: every root filesystem is read-only. */}}
{{- define "settlers-testbed.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "settlers-testbed.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Sidecar injection label, only when the switch is set either way. */}}
{{- define "settlers-testbed.istioLabel" -}}
{{- if not (kindIs "invalid" .Values.istio.sidecarInject) }}
sidecar.istio.io/inject: {{ .Values.istio.sidecarInject | toString | quote }}
{{- end }}
{{- end }}

{{/* Prometheus scrape annotations. Call with (dict "root" $ "port" N). */}}
{{- define "settlers-testbed.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrape }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | toString | quote }}
prometheus.io/path: {{ .root.Values.metrics.path | quote }}
{{- end }}
{{- end }}

{{/*
Check the economy: every input must be an item of it, every override must name one.
Fails the render with a message naming the key, before anything reaches the cluster.
*/}}
{{- define "settlers-testbed.validate" -}}
{{- $items := include "settlers-testbed.economyItems" . | fromYaml }}
{{- range $name, $item := $items }}
{{- range $input, $_ := ($item | default dict).inputs }}
{{- if not (hasKey $items $input) }}
{{- $hint := ternary "; economy.items replaces the shipped settlers2 economy as a whole, so list every item" "" (not (empty $.Values.economy.items)) }}
{{- fail (printf "economy.items.%s.inputs: %q is not an item of the economy (items: %s)%s" $name $input (keys $items | sortAlpha | join ", ") $hint) }}
{{- end }}
{{- if eq $input $name }}
{{- fail (printf "economy.items.%s.inputs: an item cannot consume itself" $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- include "settlers-testbed.checkAcyclic" . }}
{{- range $name, $o := .Values.items }}
{{- if not (hasKey $items $name) }}
{{- fail (printf "items.%s: %q is not an item of the economy (items: %s)" $name $name (keys $items | sortAlpha | join ", ")) }}
{{- end }}
{{- if and $o (hasKey $o "nodes") (hasKey $o "replicas") }}
{{- if ne (len $o.nodes) (int $o.replicas) }}
{{- fail (printf "items.%s: nodes lists %d node(s) but replicas is %d; give one node per replica (or drop replicas)" $name (len $o.nodes) (int $o.replicas)) }}
{{- end }}
{{- end }}
{{- end }}
{{- range .Values.orderApp.items }}
{{- if not (hasKey $items .) }}
{{- fail (printf "orderApp.items: %q is not an item of the economy" .) }}
{{- end }}
{{- end }}
{{- if and .Values.tests.item (not (hasKey $items .Values.tests.item)) }}
{{- fail (printf "tests.item: %q is not an item of the economy" .Values.tests.item) }}
{{- end }}
{{- if and (eq .Values.protocol "grpc") (eq (int .Values.port) (int .Values.metrics.grpcPort)) }}
{{- fail (printf "metrics.grpcPort (%d) must differ from port: gRPC producers serve /metrics on a second port" (int .Values.metrics.grpcPort)) }}
{{- end }}
{{- if and .Values.metrics.meshBytes .Values.istio.sidecarInject }}
{{- fail "metrics.meshBytes is for clusters without a mesh: with istio.sidecarInject the sidecars report every call too, and NetMARKS would count it twice; turn one off" }}
{{- end }}
{{- if and .Values.netmarks.enabled .Values.firmament.enabled (eq .Values.netmarks.schedulerName .Values.firmament.schedulerName) }}
{{- fail "netmarks.schedulerName and firmament.schedulerName must differ" }}
{{- end }}
{{- if hasKey .Values.netmarks.extender "window" }}
{{- fail "netmarks.extender.window was replaced by traffic.window (a sliding window, for the extender and firmament); the default is now traffic.since, the average since a start time" }}
{{- end }}
{{- if and (ne (toString .Values.traffic.since) "") (gt (float64 .Values.traffic.window) 0.0) }}
{{- fail (printf "traffic.since (%v) and traffic.window (%v) are exclusive: since = the average since a start time (the default), window = a sliding window; set one" .Values.traffic.since .Values.traffic.window) }}
{{- end }}
{{- end }}

{{/*
The traffic interval of the NetMARKS extender and firmament (args, one per line):
--window S, --since T0, or nothing (= since the scheduler's start).
*/}}
{{- define "settlers-testbed.trafficArgs" -}}
{{- $t := .Values.traffic }}
{{- if gt (float64 $t.window) 0.0 }}
- --window={{ $t.window }}
{{- else if kindIs "string" $t.since }}
{{- if ne $t.since "" }}
- --since={{ $t.since }}
{{- end }}
{{- else }}
- --since={{ printf "%.3f" (float64 $t.since) }}
{{- end }}
{{- end }}

{{/* The economy's items in file order is lost in a map; the last in topological
order is not known either, so the test default is the alphabetically last item
that has inputs (for settlers2: tools). */}}
{{- define "settlers-testbed.testItem" -}}
{{- if .Values.tests.item }}
{{- .Values.tests.item }}
{{- else }}
{{- $pick := "" }}
{{- $items := include "settlers-testbed.economyItems" . | fromYaml }}
{{- range $name, $item := $items }}
{{- if ($item | default dict).inputs }}{{ $pick = $name }}{{ end }}
{{- end }}
{{- $pick | default (keys $items | sortAlpha | last) }}
{{- end }}
{{- end }}

{{/* Items the order app orders: orderApp.items, or every item of the economy. */}}
{{- define "settlers-testbed.orderItems" -}}
{{- .Values.orderApp.items | default (include "settlers-testbed.economyItems" . | fromYaml | keys | sortAlpha) | join " " }}
{{- end }}

{{/*
The command of the order-app Job and the helm test Job: the shared prelude (wait for
every producer, stop an Istio sidecar at exit; files/job-prelude.sh), then `script`
(a file under files/). Call with (dict "root" $ "script" "files/x.sh" "name" "x").
*/}}
{{- define "settlers-testbed.jobCommand" -}}
{{- toYaml (list "/bin/sh" "-c" (print (.root.Files.Get "files/job-prelude.sh") "\n" (.root.Files.Get .script)) .name) }}
{{- end }}

{{/* Environment of the Job scripts' wait (files/job-prelude.sh): every producer. */}}
{{- define "settlers-testbed.jobWaitEnv" -}}
{{- $targets := list }}
{{- range $name, $_ := include "settlers-testbed.economyItems" . | fromYaml }}
{{- $targets = append $targets (printf "%s:%d" $name (int $.Values.port)) }}
{{- end }}
- name: SETTLERS_WAIT_TARGETS
  value: {{ join " " $targets | quote }}
- name: SETTLERS_WAIT_PROTOCOL
  value: {{ .Values.protocol | quote }}
- name: SETTLERS_WAIT_SECONDS
  value: {{ .Values.orderApp.waitSeconds | default 300 | toString | quote }}
{{- end }}

{{/* Pod annotations of a Job pod that may get an Istio sidecar: a native sidecar
(stopped by Kubernetes when the Job ends) and the app held until the proxy is up. */}}
{{- define "settlers-testbed.jobIstioAnnotations" -}}
{{- if .Values.istio.nativeSidecar }}
sidecar.istio.io/nativeSidecar: "true"
{{- end }}
proxy.istio.io/config: '{"holdApplicationUntilProxyStarts": true}'
{{- end }}

{{/*
Pod spec shared by the order-app Job and the helm test Job: the testbed image, the
restricted security context, no API token. Call with (dict "root" $ "command" list "args" list
"resources" map). The container is named `order-app`: readers of its log name it, as
a sidecar may share the pod.
*/}}
{{- define "settlers-testbed.orderPodSpec" -}}
{{- $root := .root }}
serviceAccountName: {{ include "settlers-testbed.serviceAccountName" $root }}
automountServiceAccountToken: false
enableServiceLinks: false
restartPolicy: Never
{{- with include "settlers-testbed.componentScheduling" $root }}{{ . | trim | nindent 0 }}{{ end }}
{{- with include "settlers-testbed.imagePullSecrets" $root }}{{ . | trim | nindent 0 }}{{ end }}
securityContext:
  {{- include "settlers-testbed.podSecurityContext" $root | nindent 2 }}
containers:
  - name: order-app
    image: {{ include "settlers-testbed.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command:
      {{- toYaml .command | nindent 6 }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      {{- include "settlers-testbed.jobWaitEnv" $root | nindent 6 }}
      {{- with .env }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    securityContext:
      {{- include "settlers-testbed.securityContext" $root | nindent 6 }}
    volumeMounts:
      {{- include "settlers-testbed.tmpMount" $root | nindent 6 }}
volumes:
  {{- include "settlers-testbed.tmpVolume" $root | nindent 2 }}
{{- end }}

{{/*
The economy as given: economyFile (a whole economy file's text, --set-file), else
economy.items, else the shipped settlers2 economy. YAML with name, description,
defaults and items exactly as written (items a map or a list; use with fromYaml).
*/}}
{{- define "settlers-testbed.economyRaw" -}}
{{- if .Values.economyFile }}
{{- if .Values.economy.items }}
{{- fail "economyFile and economy.items both give the economy: set one of them" }}
{{- end }}
{{- $doc := .Values.economyFile | fromYaml }}
{{- if hasKey $doc "Error" }}
{{- fail (printf "economyFile: not a YAML mapping (an economy file: name, defaults, items): %s" $doc.Error) }}
{{- end }}
{{- range $k, $_ := $doc }}
{{- if not (has $k (list "name" "description" "defaults" "items")) }}
{{- fail (printf "economyFile: unknown top-level key %q; allowed: name, description, defaults, items" $k) }}
{{- end }}
{{- end }}
{{- if not $doc.items }}
{{- fail "economyFile: the economy has no items" }}
{{- end }}
{{- toYaml $doc }}
{{- else if .Values.economy.items }}
{{- toYaml (dict "name" (.Values.economy.name | default .Release.Name) "description" .Values.economy.description "defaults" (.Values.economy.defaults | default dict) "items" .Values.economy.items) }}
{{- else }}
{{- /* The shipped economy's defaults are the chart's own replicas/resources. */}}
{{- toYaml (omit (.Files.Get "files/settlers2.yaml" | fromYaml) "defaults") }}
{{- end }}
{{- end }}

{{/*
The economy's items normalised (use with fromYaml): a map item -> {inputs: {input:
units}, replicas, resources: {cpu, memory}, work_ms} with list-form items and inputs
turned into maps and `defaults` applied; keys the economy does not set are absent.
*/}}
{{- define "settlers-testbed.economyItems" -}}
{{- $doc := include "settlers-testbed.economyRaw" . | fromYaml }}
{{- $defaults := $doc.defaults | default dict }}
{{- $where := ternary "economyFile" "economy" (not (empty .Values.economyFile)) }}
{{- $entries := dict }}
{{- if kindIs "slice" $doc.items }}
{{- range $i, $e := $doc.items }}
{{- if not (and (kindIs "map" $e) $e.name) }}
{{- fail (printf "%s.items[%d]: a list-form item needs a `name`" $where $i) }}
{{- end }}
{{- if hasKey $entries (toString $e.name) }}
{{- fail (printf "%s.items: item %q is listed twice" $where $e.name) }}
{{- end }}
{{- $_ := set $entries (toString $e.name) (omit $e "name") }}
{{- end }}
{{- else }}
{{- range $name, $e := $doc.items }}
{{- $_ := set $entries $name ($e | default dict) }}
{{- end }}
{{- end }}
{{- $out := dict }}
{{- range $name, $e := $entries }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$" $name) }}
{{- fail (printf "%s.items: %q is not a valid item name (a lowercase DNS label: a-z, 0-9, '-', starting with a letter)" $where $name) }}
{{- end }}
{{- $inputs := dict }}
{{- if kindIs "slice" $e.inputs }}
{{- range $e.inputs }}{{ $_ := set $inputs (toString .) 1 }}{{ end }}
{{- else }}
{{- range $in, $q := ($e.inputs | default dict) }}{{ $_ := set $inputs $in $q }}{{ end }}
{{- end }}
{{- $item := dict "inputs" $inputs }}
{{- range $k := list "replicas" "work_ms" }}
{{- if hasKey $e $k }}{{ $_ := set $item $k (get $e $k) }}{{ else if hasKey $defaults $k }}{{ $_ := set $item $k (get $defaults $k) }}{{ end }}
{{- end }}
{{- $res := merge (deepCopy ($e.resources | default dict)) (deepCopy ($defaults.resources | default dict)) }}
{{- if $res }}{{ $_ := set $item "resources" $res }}{{ end }}
{{- $_ := set $out $name $item }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Fail unless the economy's inputs form no cycle (Kahn's algorithm: take away the items
whose inputs are all taken, as often as there are items). A producer in a cycle
would wait for itself: every producer of it crash-loops on its first order.
*/}}
{{- define "settlers-testbed.checkAcyclic" -}}
{{- $items := include "settlers-testbed.economyItems" . | fromYaml }}
{{- $left := dict }}
{{- range $name, $item := $items }}{{ $_ := set $left $name (keys $item.inputs) }}{{ end }}
{{- range $round := until (len $items) }}
{{- $ready := list }}
{{- range $name, $inputs := $left }}
{{- $waiting := false }}
{{- range $inputs }}{{ if hasKey $left . }}{{ $waiting = true }}{{ end }}{{ end }}
{{- if not $waiting }}{{ $ready = append $ready $name }}{{ end }}
{{- end }}
{{- range $ready }}{{ $_ := unset $left . }}{{ end }}
{{- end }}
{{- if $left }}
{{- $edges := list }}
{{- range $name, $inputs := $left }}
{{- range $inputs }}{{ if hasKey $left . }}{{ $edges = append $edges (printf "%s <- %s" $name .) }}{{ end }}{{ end }}
{{- end }}
{{- fail (printf "economy: the inputs form a cycle (%s; item <- its input): items %s would wait for their own output, so every order of them would fail; an economy must be acyclic" ($edges | sortAlpha | join ", ") (keys $left | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}

{{/* metrics.meshBytes: the order Job names itself to the producers as Istio would
name it, by its Job's name (the Job controller's job-name pod label; the harness
renames its Jobs, so the template's name would be wrong). */}}
{{- define "settlers-testbed.orderWorkloadEnv" -}}
{{- if .Values.metrics.meshBytes }}
- name: SETTLERS_WORKLOAD
  valueFrom:
    fieldRef:
      fieldPath: metadata.labels['job-name']
- name: SETTLERS_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- else }}
[]
{{- end }}
{{- end }}
