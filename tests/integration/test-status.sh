#!/usr/bin/env bash
# The daemon tells systemd what it holds: STATUS= as seen by systemctl.
source "$(dirname "$0")/testbed.sh"
tb_start

# Two flows of the same name in two namespaces are two flows.
tb_write /etc/arkevent.d/flows.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: hello, namespace: default}
spec:
  steps:
    - name: greet
      run: echo hello
YAML
tb_write /etc/arkevent.d/team-a.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: hello, namespace: team-a}
spec:
  steps:
    - name: greet
      run: echo hello from team-a
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook, namespace: team-a}
spec:
  source: {type: webhook}
  targets: [{pipeline: hello}]
YAML
tb_start_arkevent

assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "2 flows, 1 triggers, 0 runs active" "StatusText"
status=$(tb_run systemctl status --no-pager arkevent.service || true)
assert_contains "$status" 'Status: "2 flows, 1 triggers, 0 runs active"' "systemctl status"
assert_eq "$(tb_healthz '(d["flows"], d["triggers"], d["runsActive"])')" "(2, 1, 0)" "healthz counts"
