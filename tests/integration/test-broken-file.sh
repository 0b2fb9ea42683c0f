#!/usr/bin/env bash
# Broken files next to valid ones: each problem is in the journal at error priority as
# FILE:LINE:COLUMN: error: ..., and everything valid is loaded.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_write /etc/arkevent.d/flows.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: hello, namespace: default}
spec:
  steps:
    - name: greet
      run: echo hello
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: bye, namespace: default}
spec:
  steps:
    - name: wave
      run: echo bye
YAML
tb_write /etc/arkevent.d/hook.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook, namespace: default}
spec:
  source: {type: webhook}
  targets: [{pipeline: hello}]
YAML
# Two problems: an unknown key under spec (line 9, column 3), an unknown key in a step of the
# second document (line 20, column 7).
tb_write /etc/arkevent.d/broken.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: bad, namespace: default}
spec:
  # the steps are fine, the next key is not
  steps:
    - name: greet
      run: echo hello
  stepz:
    - name: oops
      run: echo oops
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: worse, namespace: default}
spec:
  steps:
    - name: greet
      run: echo hello
      timeoutSecondz: 5
YAML
# Not YAML at all past line 7: the token that breaks it is at line 8, column 6.
tb_write /etc/arkevent.d/syntax.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: typo, namespace: default}
spec:
  steps:
    - name: greet
      run: echo hello
     oops: [
YAML
tb_start_arkevent

tb_wait_journal 10 "" "/etc/arkevent.d/broken.yaml:9:3: error: " -u arkevent.service -p 3
tb_wait_journal 10 "" "/etc/arkevent.d/broken.yaml:20:7: error: " -u arkevent.service -p 3
tb_wait_journal 10 "" "/etc/arkevent.d/syntax.yaml:8:6: error: " -u arkevent.service -p 3
errors=$(tb_journal_after "" -u arkevent.service -p 3)
assert_contains "$(grep -F 'broken.yaml:9:3:' <<<"$errors")" stepz "the message at broken.yaml:9:3"
assert_contains "$(grep -F 'broken.yaml:20:7:' <<<"$errors")" timeoutSecondz "the message at broken.yaml:20:7"
assert_not_contains "$errors" flows.yaml "errors"
assert_not_contains "$errors" hook.yaml "errors"

# The valid files are loaded; the broken documents are not; the daemon runs on.
assert_eq "$(tb_healthz '(d["flows"], d["triggers"])')" "(2, 1)" "healthz counts"
assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "2 flows, 1 triggers, 0 runs active" "StatusText"
trigger=$(tb_api GET /api/v1/triggers/default/hook)
assert_eq "$(json 'd["targets"]' <<<"$trigger")" "['hello']" "targets of default/hook"
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "arkevent.service"
assert_eq "$(tb_run systemctl show -P NRestarts arkevent.service)" 0 "NRestarts"
