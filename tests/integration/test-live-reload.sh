#!/usr/bin/env bash
# Live reload through inotify on /etc/arkevent.d, with no systemctl reload: edits in place,
# editors' atomic saves (write a temporary file, rename it over), new and deleted files; a broken
# edit keeps the previous version and its Ready condition says why; a running run goes on.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/flows.yaml <<'YAML'
kind: ArkFlow
metadata: {name: one}
spec:
  input: {wait: "0"}
  steps:
    - name: s
      inputs: {wait: "{{ .pipeline.input.wait }}"}
      run: 'sleep "$INPUT_WAIT"; echo one'
---
kind: ArkFlow
metadata: {name: two}
spec:
  steps: [{name: s, run: echo two}]
YAML
tb_write /etc/arkevent.d/hook.yaml <<'YAML'
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: one}]
YAML
tb_start_arkevent

targets() { tb_api GET /api/v1/triggers/default/hook | json 'd["targets"]'; }
wait_targets() {
        tb_wait_sh 10 "curl -s -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/triggers/default/hook | grep -q '\"targets\":\[ *$1 *\]'"
}
assert_eq "$(targets)" "['one']" "targets at start"

# A run that keeps going through every change below.
long=$(tb_api POST /api/v1/runs -d '{"flow": "default/one", "input": {"wait": "4"}}' | json 'd["id"]')

# In place.
cursor=$(tb_journal_cursor)
tb_sh "sed -i 's/pipeline: one/pipeline: two/' /etc/arkevent.d/hook.yaml"
wait_targets '"two"'
tb_wait_journal 10 "$cursor" "Change in /etc/arkevent.d seen" -u arkevent.service
assert_not_contains "$(tb_journal_after "$cursor")" "Reloading arkevent.service" "no systemctl reload"

# An editor's atomic save: a temporary file renamed over the real one.
tb_sh "sed 's/pipeline: two/pipeline: one/' /etc/arkevent.d/hook.yaml > /etc/arkevent.d/.hook.yaml.swp && mv /etc/arkevent.d/.hook.yaml.swp /etc/arkevent.d/hook.yaml"
wait_targets '"one"'

# A new file and its calendar timer; then the file deleted, and the timer with it.
tb_write /etc/arkevent.d/tick.yaml <<'YAML'
kind: ArkEvent
metadata: {name: tick}
spec:
  source: {type: cron, calendar: "*-*-* 00:00:00"}
  targets: [{pipeline: two}]
YAML
tb_wait 10 curl -sf -H "Authorization: Bearer $(tb_api_token)" http://127.0.0.1:8092/api/v1/triggers/default/tick
tb_wait_sh 10 "systemctl list-timers --all --no-legend 'arkevent-cron@*' | grep -q 'arkevent-cron@default-tick.timer'"
tb_run rm /etc/arkevent.d/tick.yaml
tb_wait_sh 10 "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/triggers/default/tick) = 404 ]"
tb_wait_sh 10 "! systemctl list-timers --all --no-legend 'arkevent-cron@*' | grep -q tick"

# A broken edit (an unknown key at line 5, column 3): the previous version stays in effect, and
# the Ready condition says why.
cursor=$(tb_journal_cursor)
tb_write /etc/arkevent.d/hook.yaml <<'YAML'
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targetz: [{pipeline: two}]
YAML
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/hook.yaml:5:3" -u arkevent.service
assert_eq "$(targets)" "['one']" "targets after a broken edit"
cond=$(tb_api GET /api/v1/triggers/default/hook | json 'd["conditions"][0]')
assert_contains "$cond" "PreviousVersion"
assert_contains "$cond" "/etc/arkevent.d/hook.yaml:4:3: error: spec.targets"

# Fixed again: the Ready condition is back to normal.
tb_write /etc/arkevent.d/hook.yaml <<'YAML'
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: two}]
YAML
wait_targets '"two"'
assert_contains "$(tb_api GET /api/v1/triggers/default/hook | json 'd["conditions"][0]["reason"]')" WebhookReady

assert_eq "$(tb_wait_run "$long")" Succeeded "the run started before the changes"
log "ok"
