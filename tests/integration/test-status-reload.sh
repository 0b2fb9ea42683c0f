#!/usr/bin/env bash
# STATUS= line, reload of an edited file, a broken edit keeping the previous version, and a broken
# file reported with file:line:column while the valid files load.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_write /etc/arkevent.d/flows.yaml <<'YAML'
kind: ArkFlow
metadata: {name: one}
spec:
  steps:
    - name: s
      run: echo one
---
kind: ArkFlow
metadata: {name: two}
spec:
  steps:
    - name: s
      run: echo two
YAML
tb_write /etc/arkevent.d/hook.yaml <<'YAML'
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: one}]
YAML
tb_write /etc/arkevent.d/broken.yaml <<'YAML'
kind: ArkFlow
metadata: {name: bad}
spec:
  stepz:
    - name: s
      run: echo bad
YAML
tb_start_arkevent

status=$(tb_run systemctl show -P StatusText arkevent.service)
assert_eq "$status" "2 flows, 1 triggers, 0 runs active" "StatusText"
assert_contains "$(tb_run systemctl status --no-pager arkevent.service || true)" "2 flows, 1 triggers"
health=$(tb_curl -sf http://127.0.0.1:8092/healthz)
assert_eq "$(echo "$health" | json 'd["flows"]')" 2 "flows"

# The broken file is in the journal with its position; the others loaded.
tb_wait_sh 10 "journalctl -u arkevent.service --no-pager | grep -q '/etc/arkevent.d/broken.yaml:4:3: error: unknown field .stepz.'"

# An edit adds a flow; reload applies it before returning.
tb_write /etc/arkevent.d/three.yaml <<'YAML'
kind: ArkFlow
metadata: {name: three}
spec:
  steps: [{name: s, run: echo three}]
YAML
tb_run systemctl reload arkevent.service
assert_eq "$(tb_curl -sf http://127.0.0.1:8092/healthz | json 'd["flows"]')" 3 "flows after reload"
assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "3 flows, 1 triggers, 0 runs active"

# A broken edit of an existing document keeps the previous version.
tb_write /etc/arkevent.d/three.yaml <<'YAML'
kind: ArkFlow
metadata: {name: three}
spec:
  steps: [{name: s, run: echo three, cpuLimit: lots}]
YAML
tb_run systemctl reload arkevent.service
assert_eq "$(tb_curl -sf http://127.0.0.1:8092/healthz | json 'd["flows"]')" 3 "flows after a broken edit"
tb_wait_sh 10 "journalctl -u arkevent.service --no-pager | grep -q 'keeping the previous version of flow default/three'"
tb_wait_sh 10 "journalctl -u arkevent.service --no-pager | grep -q 'three.yaml:4:48: error: invalid cpuLimit'"

# Fixing the broken file brings its flow in.
tb_write /etc/arkevent.d/broken.yaml <<'YAML'
kind: ArkFlow
metadata: {name: bad}
spec:
  steps:
    - name: s
      run: echo good now
YAML
tb_run systemctl reload arkevent.service
assert_eq "$(tb_curl -sf http://127.0.0.1:8092/healthz | json 'd["flows"]')" 4 "flows after the fix"
log "ok"
