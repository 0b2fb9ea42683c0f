#!/usr/bin/env bash
# kill -9 of the daemon in the middle of runs: units keep running, one finishes while the daemon
# is down; after the restart every run completes, with each attempt started exactly once.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/survive.yaml <<'YAML'
kind: ArkFlow
metadata: {name: survive}
spec:
  steps:
    - {name: long, run: "sleep 4; echo long"}
    - {name: short, run: "sleep 1; echo short"}
    - name: after
      dependsOn: [long, short]
      env: {L: "{{ .steps.long.output }}", S: "{{ .steps.short.output }}"}
      run: echo "$L+$S"
  output: "{{ .steps.after.output }}"
YAML
tb_write /etc/arkevent.d/doomed.yaml <<'YAML'
kind: ArkFlow
metadata: {name: relay}
spec:
  steps:
    - {name: first, run: "sleep 2"}
    - name: second
      dependsOn: [first]
      env: {WORD: "{{ .trigger.body.word }}"}
      run: echo "$WORD"
  output: "{{ .steps.second.output }}"
---
kind: ArkEvent
metadata: {name: relay-hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: relay}]
---
kind: ArkFlow
metadata: {name: doomed}
spec:
  steps:
    - {name: slow, timeoutSeconds: 1, run: "sleep 30"}
    - {name: bad, run: "sleep 1; exit 3"}
YAML
tb_start_arkevent

kill_daemon() {
        local pid
        pid=$(tb_run systemctl show -P MainPID arkevent.service)
        [ "$pid" -gt 0 ] || fail "no daemon to kill"
        tb_run kill -9 "$pid"
        tb_wait 10 sh -c "! kill -0 $pid"
        # Keep it down (no automatic restart) until we say so.
        tb_run systemctl stop arkevent.service
        assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "daemon after kill -9"
        # This test restarts it more often than the unit's start limit allows in 10 s.
        tb_run systemctl reset-failed arkevent.service
}

# 1: killed while both units run; "short" ends while the daemon is down.
id=$(tb_api POST /api/v1/runs -d '{"flow": "survive"}' | json 'd["id"]')
tb_wait 20 systemctl is-active "arkevent-$id-0-1.service"
tb_wait 20 systemctl is-active "arkevent-$id-1-1.service"
kill_daemon
tb_wait 20 test -f "/var/lib/arkevent/runs/$id/meta/1-1.result"
assert_eq "$(tb_run systemctl is-active "arkevent-$id-0-1.service")" active "long unit while the daemon is down"
tb_run systemctl start arkevent.service

# 2: killed right after the 202, while the first units are being started.
id2=$(tb_api POST /api/v1/runs -d '{"flow": "survive"}' | json 'd["id"]')
kill_daemon
tb_run systemctl start arkevent.service

for r in "$id" "$id2"; do
        assert_eq "$(tb_wait_run "$r" 60)" Succeeded "run $r"
        run=$(tb_api GET "/api/v1/runs/$r")
        assert_eq "$(echo "$run" | json 'd["output"]')" "long+short" "run $r output"
        assert_eq "$(echo "$run" | json '[a["attempts"] for a in d["activities"]]')" "[1, 1, 1]" "run $r attempts"
        for i in 0 1 2; do
                n=$(tb_journal -u "arkevent-$r-$i-1.service" -o cat | grep -c "^Started arkevent-$r-$i-1.service" || true)
                assert_eq "$n" 1 "starts of arkevent-$r-$i-1.service"
        done
done
tb_wait_sh 10 "journalctl -u arkevent.service --no-pager | grep -q 'Recovering 1 unfinished runs'"

# 3: a step times out and another fails while the daemon is down. Neither step's own process
# wrote a usable verdict (the timeout is systemd's): the failed units stay loaded until the
# restarted daemon has recorded them, then go.
id3=$(tb_api POST /api/v1/runs -d '{"flow": "doomed"}' | json 'd["id"]')
tb_wait 20 systemctl is-active "arkevent-$id3-0-1.service"
tb_wait 20 systemctl is-active "arkevent-$id3-1-1.service"
kill_daemon
tb_wait_sh 20 "systemctl is-failed -q arkevent-$id3-0-1.service"
tb_wait_sh 20 "systemctl is-failed -q arkevent-$id3-1-1.service"
tb_run systemctl start arkevent.service
assert_eq "$(tb_wait_run "$id3" 60)" Failed "run $id3"
run=$(tb_api GET "/api/v1/runs/$id3")
assert_eq "$(echo "$run" | json 'd["activities"][0]["state"]')" TimedOut "timed-out step recorded after the restart"
assert_eq "$(echo "$run" | json 'd["activities"][0]["result"]')" timeout "its unit result"
assert_eq "$(echo "$run" | json 'd["activities"][1]["exitCode"]')" 3 "failed step's exit code"
tb_wait_sh 20 "! systemctl list-units --all --no-legend 'arkevent-$id3-*' | grep -q ."

# 4: a failed activity unit whose result is recorded already (the daemon died between that
# commit and the reset) is reset at the next start; other failed units are not touched.
tb_run systemd-run -q --unit=arkevent-999999-0-1.service /bin/false
tb_run systemd-run -q --unit=arkevent-other.service /bin/false
tb_wait_sh 20 "systemctl is-failed -q arkevent-999999-0-1.service"
tb_wait_sh 20 "systemctl is-failed -q arkevent-other.service"
kill_daemon
tb_run systemctl start arkevent.service
tb_wait_sh 20 "! systemctl list-units --all --no-legend arkevent-999999-0-1.service | grep -q ."
assert_eq "$(tb_run systemctl is-failed arkevent-other.service || true)" failed "a unit that is not an activity's"

# 5: a fired run's later steps still see the trigger (.trigger.body) after a restart.
tok=$(tb_run arkeventctl token default/relay-hook)
id5=$(tb_curl -X POST -H "Authorization: Bearer $tok" -d '{"word": "kept"}' \
        http://127.0.0.1:8092/triggers/default/relay-hook/fire | json 'd["runs"][0]["id"]')
tb_wait 20 systemctl is-active "arkevent-$id5-0-1.service"
kill_daemon
tb_run systemctl start arkevent.service
assert_eq "$(tb_wait_run "$id5" 60)" Succeeded "run $id5"
assert_eq "$(tb_api GET "/api/v1/runs/$id5" | json 'd["output"]')" kept "trigger body after the restart"
log "ok"
