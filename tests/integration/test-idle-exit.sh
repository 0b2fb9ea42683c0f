#!/usr/bin/env bash
# Scale to zero: with nothing to do for idleExitSeconds the daemon exits cleanly (status 0,
# STOPPING=1); a webhook fire (socket activation) and a cron timer (bus activation) each bring
# it back, are served and complete; a running run keeps it up.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent/arkevent.yaml <<'YAML'
idleExitSeconds: 2
YAML
tb_write /etc/arkevent.d/idle.yaml <<'YAML'
kind: ArkFlow
metadata: {name: work}
spec:
  input: {wait: "0"}
  steps:
    - name: s
      inputs: {wait: "{{ .pipeline.input.wait }}"}
      run: 'sleep "$INPUT_WAIT"; echo done'
---
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: work}]
---
kind: ArkEvent
metadata: {name: tick}
spec:
  source: {type: cron, calendar: "*:*:0/15"}
  targets: [{pipeline: work}]
YAML
tb_start_arkevent

wait_exit() {
        tb_wait_sh 20 "systemctl is-active arkevent.service | grep -qx inactive"
        assert_eq "$(tb_run systemctl show -P Result arkevent.service)" success "result of the idle exit"
        assert_eq "$(tb_run systemctl show -P ExecMainStatus arkevent.service)" 0 "exit status"
        assert_eq "$(tb_run systemctl is-active arkevent.socket)" active "the socket stays with systemd"
}

cursor=$(tb_journal_cursor)
wait_exit
assert_contains "$(tb_journal_after "$cursor" -u arkevent.service)" "Idle for 2s, exiting"

# A run keeps the daemon up past the idle time.
token=$(tb_run arkeventctl token default/hook)
tb_wait_sh 20 "systemctl is-active arkevent.service | grep -qx inactive"
resp=$(tb_curl -X POST -H "Authorization: Bearer $token" -d '{"wait": "4"}' \
        -w '\n%{http_code}' http://127.0.0.1:8092/triggers/default/hook/fire)
assert_eq "$(echo "$resp" | tail -n1)" 202 "webhook fire that woke the daemon"
id=$(echo "$resp" | head -n1 | json 'd["runs"][0]["id"]')
inv=$(tb_run systemctl show -P InvocationID arkevent.service)
assert_eq "$(tb_wait_run "$id" 30)" Succeeded "the woken run"
assert_eq "$(tb_run systemctl show -P InvocationID arkevent.service)" "$inv" "no exit while the run went on"
wait_exit

# The timer fires while the daemon is down: bus activation starts it, the run completes.
n=$(tb_run sqlite3 /var/lib/arkevent/arkevent.db "SELECT count(*) FROM runs WHERE trigger='default/tick'")
cursor=$(tb_journal_cursor)
tb_wait_sh 30 "[ \$(sqlite3 /var/lib/arkevent/arkevent.db \"SELECT count(*) FROM runs WHERE trigger='default/tick' AND state='Succeeded'\") -gt $n ]"
tb_wait_journal 5 "$cursor" "Finished arkevent-cron@default-tick.service" -u 'arkevent-cron@default-tick.service'
tb_wait_journal 5 "$cursor" "arkevent $TB_VERSION started" -u arkevent.service
wait_exit
log "ok"
