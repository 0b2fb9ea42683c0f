#!/usr/bin/env bash
# systemctl reload applies edits of /etc/arkevent.d before it returns; a broken edit of a document
# keeps its previous version and says so in the journal.
source "$(dirname "$0")/testbed.sh"
tb_start

# Only systemctl reload applies changes here (no inotify).
tb_write_file /etc/arkevent/arkevent.yaml "resourceWatchDelayMilliseconds: 0"
tb_write /etc/arkevent.d/base.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: one}
spec:
  steps:
    - name: s
      run: echo one
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: one}]
YAML
tb_start_arkevent
pid=$(tb_run systemctl show -P MainPID arkevent.service)
assert_eq "$(tb_healthz '(d["flows"], d["triggers"], d["reloads"])')" "(1, 1, 0)" "healthz at start"
assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "1 flows, 1 triggers, 0 runs active" "StatusText at start"

targets() { tb_api GET /api/v1/triggers/default/hook | json 'd["targets"]'; }
assert_eq "$(targets)" "['one']" "targets of default/hook at start"

# A new file: a flow and a trigger more. Nothing changes until the reload, and everything has
# when it returns (no waiting here).
tb_write /etc/arkevent.d/more.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: two}
spec:
  steps:
    - name: s
      run: echo two
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook2}
spec:
  source: {type: webhook}
  targets: [{pipeline: two}]
YAML
assert_eq "$(tb_healthz '(d["flows"], d["triggers"])')" "(1, 1)" "healthz before the reload"
tb_run systemctl reload arkevent.service
assert_eq "$(tb_healthz '(d["flows"], d["triggers"], d["reloads"])')" "(2, 2, 1)" "healthz after adding a file"
assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "2 flows, 2 triggers, 0 runs active" "StatusText after adding a file"

# An edit of an existing document.
tb_write /etc/arkevent.d/base.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: one}
spec:
  steps:
    - name: s
      run: echo one
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: two}]
YAML
tb_run systemctl reload arkevent.service
assert_eq "$(targets)" "['two']" "targets of default/hook after an edit"

# A broken edit of the same document: the previous version (targets two) stays.
tb_write /etc/arkevent.d/base.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: one}
spec:
  steps:
    - name: s
      run: echo one
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: one}]
  concurrencyPolicy: Sometimes
YAML
cursor=$(tb_journal_cursor)
tb_run systemctl reload arkevent.service
assert_eq "$(tb_healthz '(d["flows"], d["triggers"], d["reloads"])')" "(2, 2, 3)" "healthz after a broken edit"
assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "2 flows, 2 triggers, 0 runs active" "StatusText after a broken edit"
assert_eq "$(targets)" "['two']" "targets of default/hook after a broken edit"
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/base.yaml:15:22: error: " -u arkevent.service -p 3
tb_wait_journal 10 "$cursor" "keeping the previous version of trigger default/hook" -u arkevent.service

# Fixing it applies the fix; removing a file removes what it defined.
tb_write /etc/arkevent.d/base.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: one}
spec:
  steps:
    - name: s
      run: echo one
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: one}]
  concurrencyPolicy: Forbid
YAML
tb_run rm /etc/arkevent.d/more.yaml
cursor=$(tb_journal_cursor)
tb_run systemctl reload arkevent.service
assert_eq "$(tb_healthz '(d["flows"], d["triggers"])')" "(1, 1)" "healthz after removing a file"
assert_eq "$(tb_run systemctl show -P StatusText arkevent.service)" "1 flows, 1 triggers, 0 runs active" "StatusText after removing a file"
assert_eq "$(tb_api GET /api/v1/triggers/default/hook | json '(d["targets"], d["concurrencyPolicy"])')" "(['one'], 'Forbid')" "default/hook after the fix"
# Only problems that exist now are reported, and none does.
tb_wait_journal 10 "$cursor" "Reloaded arkevent.service" -u arkevent.service
problems=$(tb_journal_after "$cursor" -u arkevent.service -p 4)
assert_eq "$problems" "" "warnings and errors after the fix"

# Reloads never restarted the daemon.
assert_eq "$(tb_run systemctl show -P MainPID arkevent.service)" "$pid" "MainPID after the reloads"
assert_eq "$(tb_run systemctl show -P NRestarts arkevent.service)" 0 "NRestarts"

# A YAML syntax error in an edit is a broken edit too: the file's documents keep their previous
# versions rather than disappearing (a typo must not take a live trigger away).
tb_write /etc/arkevent.d/base.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: one}
spec:
  steps:
    - name: s
      run: echo one
     oops: [
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: one}]
YAML
cursor=$(tb_journal_cursor)
tb_run systemctl reload arkevent.service
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/base.yaml:8:6: error: " -u arkevent.service -p 3
assert_eq "$(tb_healthz '(d["flows"], d["triggers"])')" "(1, 1)" "healthz after an edit with a YAML syntax error"
assert_eq "$(tb_api GET /api/v1/triggers/default/hook | json 'd["concurrencyPolicy"]')" Forbid "default/hook (the previous version) after an edit with a YAML syntax error"
