#!/usr/bin/env bash
# kill -9 of the daemon at other moments than test-engine-recovery: while a retry backoff is
# pending (the backoff is kept across the restart), and while a unit is being started (systemd
# gets the start only after the daemon is dead; the unit runs and is collected before the
# daemon is back). Every attempt runs exactly once. And systemd re-executed while units run: the
# daemon loses systemd's private socket, goes on over the system bus and finds its units there.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/moments.yaml <<'YAML'
kind: ArkFlow
metadata: {name: flaky}
spec:
  steps:
    - name: f
      retries: {limit: 2, backoffSeconds: 5}
      run: |
        echo run >> runs
        [ "$(wc -l < runs)" -ge 2 ] || exit 7
        echo second
---
kind: ArkFlow
metadata: {name: blink}
spec:
  steps:
    - {name: b, run: "echo once >> ran; echo blink"}
    - {name: after, dependsOn: [b], run: "echo after >> ran; cat ran"}
  output: "{{ .steps.after.output }}"
YAML
tb_start_arkevent

daemon_pid() { tb_run pidof arkeventd; }

# 1: killed while the retry backoff is pending; the retry comes when it was due, not earlier.
id=$(tb_api POST /api/v1/runs -d '{"flow": "flaky"}' | json 'd["id"]')
tb_wait_sh 20 "curl -s -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/runs/$id | grep -q '\"state\":\"Waiting\"'"
pid=$(daemon_pid)
tb_run kill -9 "$pid"
tb_wait 10 sh -c "! kill -0 $pid"
tb_run systemctl stop arkevent.service
tb_run systemctl start arkevent.service
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "run retried across the restart"
run=$(tb_api GET "/api/v1/runs/$id")
assert_eq "$(echo "$run" | json 'd["activities"][0]["attempts"]')" 2 "attempts"
assert_eq "$(tb_run cat "/var/lib/arkevent/runs/$id/workspace/runs" | wc -l)" 2 "executions of the step"
python3 - "$run" <<'PY' || fail "the retry did not keep its backoff across the restart"
import json, sys, datetime
d = json.loads(sys.argv[1])
at = d["activities"][0]["attemptList"]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
gap = (t(at[1]["startedAt"]) - t(at[0]["finishedAt"])).total_seconds()
assert gap >= 4.5, "retry %.2fs after the failure, backoff is 5s" % gap
print("retry %.2fs after the failure" % gap)
PY
for n in 1 2; do
        c=$(tb_journal -u "arkevent-$id-0-$n.service" -o cat | grep -c "^Started arkevent-$id-0-$n.service" || true)
        assert_eq "$c" 1 "starts of attempt $n"
done

# 2: killed while a unit is being started. systemd is held (SIGSTOP from outside), so the start
# call waits in the bus; the daemon records "Starting" and dies; then systemd goes on, runs the
# step and collects its unit; the restarted daemon must adopt that result, not start it again.
id2=$(tb_api POST /api/v1/runs -d '{"flow": "blink"}' | json 'd["id"]')
# The first run let the step's start go through; hold systemd before the next run's starts.
assert_eq "$(tb_wait_run "$id2" 30)" Succeeded "blink warm-up"
kill -STOP "$TB_PID"
resumed=0
trap_cont() { [ "$resumed" = 1 ] || kill -CONT "$TB_PID" 2>/dev/null || true; }
id3=$(tb_curl -X POST -H "Authorization: Bearer $(tb_api_token)" -d '{"flow": "blink"}' http://127.0.0.1:8092/api/v1/runs | json 'd["id"]') || { trap_cont; fail "POST while systemd is held"; }
if ! tb_wait_sh 10 "curl -s -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/runs/$id3 | grep -q '\"state\":\"Starting\"'"; then
        trap_cont
        fail "activity never recorded as Starting"
fi
pid=$(daemon_pid)
tb_run kill -9 "$pid"
kill -CONT "$TB_PID"
resumed=1
# The held start now reaches systemd; the unit runs and goes away before the daemon is back.
tb_wait 20 test -f "/var/lib/arkevent/runs/$id3/meta/0-1.result"
tb_wait 30 curl -sf http://127.0.0.1:8092/healthz
assert_eq "$(tb_wait_run "$id3" 60)" Succeeded "run whose start was in flight"
assert_eq "$(tb_run cat "/var/lib/arkevent/runs/$id3/workspace/ran")" "once
after" "each activity of the run executed once"
assert_eq "$(tb_api GET "/api/v1/runs/$id3" | json '[a["attempts"] for a in d["activities"]]')" "[1, 1]" "attempts"
assert_eq "$(tb_api GET "/api/v1/runs/$id3" | json 'd["output"]')" "once
after" "output"

# 3: systemd re-executed (daemon-reexec) while a step runs and a second run is being started.
tb_write /etc/arkevent.d/reexec.yaml <<'YAML'
kind: ArkFlow
metadata: {name: across-reexec}
spec:
  steps:
    - {name: long, run: "echo once >> ran; sleep 2; echo long"}
    - {name: next, dependsOn: [long], run: "echo next >> ran; cat ran"}
  output: "{{ .steps.next.output }}"
YAML
tb_wait_sh 10 "arkeventctl list-flows --no-legend | grep -q across-reexec"
id4=$(tb_api POST /api/v1/runs -d '{"flow": "across-reexec"}' | json 'd["id"]')
tb_wait 20 systemctl is-active "arkevent-$id4-0-1.service"
cursor=$(tb_journal_cursor)
tb_run systemctl daemon-reexec
id5=$(tb_api POST /api/v1/runs -d '{"flow": "across-reexec"}' | json 'd["id"]')
tb_wait_journal 20 "$cursor" "systemd closed its private socket"
for r in "$id4" "$id5"; do
        assert_eq "$(tb_wait_run "$r" 60)" Succeeded "run $r across systemd's re-execution"
        assert_eq "$(tb_api GET "/api/v1/runs/$r" | json 'd["output"]')" "once
next" "each activity of run $r executed once"
done
# And after it, over the system bus.
id6=$(tb_api POST /api/v1/runs -d '{"flow": "blink"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id6" 30)" Succeeded "a run after systemd's re-execution"

# 4: killed after an activity failed while its sibling still runs: the run still ends Failed,
# with the failed activity's reason. 5: killed right after a cancel, with systemd held so the
# stop has not reached it: the restarted daemon stops the unit, and the run ends Cancelled.
tb_write /etc/arkevent.d/ending.yaml <<'YAML'
kind: ArkFlow
metadata: {name: half-failed}
spec:
  steps:
    - {name: bad, run: "exit 4"}
    - {name: side, run: "sleep 3; echo side"}
---
kind: ArkFlow
metadata: {name: long}
spec:
  steps:
    - {name: wait, run: "sleep 30"}
YAML
tb_wait_sh 10 "arkeventctl list-flows --no-legend | grep -q half-failed"
id7=$(tb_api POST /api/v1/runs -d '{"flow": "half-failed"}' | json 'd["id"]')
tb_wait_sh 20 "curl -s -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/runs/$id7 | grep -q '\"state\":\"Failed\"'"
tb_run kill -9 "$(daemon_pid)"
tb_run systemctl reset-failed arkevent.service
tb_wait 30 curl -sf http://127.0.0.1:8092/healthz
assert_eq "$(tb_wait_run "$id7" 60)" Failed "run with a failed activity, across a restart"
assert_contains "$(tb_api GET "/api/v1/runs/$id7" | json 'd["error"]')" "activity bad failed" "its error"
assert_eq "$(tb_api GET "/api/v1/runs/$id7" | json 'd["activities"][1]["state"]')" Succeeded "the sibling finished"

id8=$(tb_api POST /api/v1/runs -d '{"flow": "long"}' | json 'd["id"]')
tb_wait 20 systemctl is-active "arkevent-$id8-0-1.service"
kill -STOP "$TB_PID"
resumed=0
tb_curl -X DELETE -o /dev/null -H "Authorization: Bearer $(tb_api_token)" \
        "http://127.0.0.1:8092/api/v1/runs/$id8" || { trap_cont; fail "cancel while systemd is held"; }
tb_run kill -9 "$(daemon_pid)" || { trap_cont; fail "kill"; }
kill -CONT "$TB_PID"
resumed=1
tb_run systemctl reset-failed arkevent.service
tb_wait 30 curl -sf http://127.0.0.1:8092/healthz
assert_eq "$(tb_wait_run "$id8" 30)" Cancelled "run cancelled just before a restart"
tb_wait 10 sh -c "! systemctl is-active arkevent-$id8-0-1.service"
log "ok"
