#!/usr/bin/env bash
# Calendar and cron triggers as systemd timers: firing on their slots, exactly one timer per
# trigger after edits, deletes, restarts and kill -9, and a missed slot caught up once.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_write /etc/arkevent.d/flows.yaml <<'YAML'
kind: ArkFlow
metadata: {name: tick}
spec:
  steps:
    - name: say
      run: date -u +%s
YAML
tb_write /etc/arkevent.d/triggers.yaml <<'YAML'
kind: ArkEvent
metadata: {name: every-3s}
spec:
  source:
    type: cron
    calendar: "*:*:0/3"
  targets:
    - pipeline: tick
---
kind: ArkEvent
metadata: {name: hourly}
spec:
  source:
    type: cron
    cron: "7 * * * *"
  targets:
    - pipeline: tick
YAML
tb_start_arkevent

timers() { tb_sh "systemctl list-timers --all --no-legend --plain 'arkevent-cron@*' | grep -o 'arkevent-cron@[^ ]*\.timer' | sort"; }
n_runs() { tb_api GET "/api/v1/runs?flow=default/tick&limit=1000" | json 'len(d["runs"])'; }

tb_wait_sh 10 "systemctl list-timers --all --no-legend 'arkevent-cron@*' | grep -c timer | grep -qx 2"
assert_eq "$(timers)" "arkevent-cron@default-every\\x2d3s.timer
arkevent-cron@default-hourly.timer" "timers after start"
desc=$(tb_run systemctl show -P Description 'arkevent-cron@default-every\x2d3s.timer')
assert_contains "$desc" "default/every-3s"
assert_eq "$(tb_run systemctl show -P AccuracyUSec 'arkevent-cron@default-every\x2d3s.timer')" 1s "AccuracySec"
assert_contains "$(tb_run systemctl show -P TimersCalendar 'arkevent-cron@default-hourly.timer')" "*-*-* *:07:00 UTC"

# The status shows when the timer elapses next.
st=$(tb_api GET /api/v1/triggers/default/hourly)
next=$(echo "$st" | json 'd["nextFireAt"]')
assert_eq "$(python3 -c "import sys;print(sys.argv[1][14:19])" "$next")" "07:00" "nextFireAt of hourly ($next)"

# Three fires of the calendar trigger, each created right after a slot (seconds % 3 == 0).
tb_wait_sh 30 "[ \$(curl -s -H 'Authorization: Bearer $(tb_api_token)' 'http://127.0.0.1:8092/api/v1/runs?flow=default/tick&state=Succeeded' | python3 -c 'import json,sys;print(len(json.load(sys.stdin)[\"runs\"]))') -ge 3 ]"
tb_api GET "/api/v1/runs?flow=default/tick&state=Succeeded" | python3 -c '
import json, sys, datetime
runs = json.load(sys.stdin)["runs"]
for r in runs:
    assert r["trigger"] == "default/every-3s", r
    t = datetime.datetime.fromisoformat(r["createdAt"].replace("Z", "+00:00")).timestamp()
    slot = t - (t % 3)
    # AccuracySec=1s plus the service start and the D-Bus call
    assert t - slot < 2.5, "run %s created %.3fs after its slot" % (r["id"], t - slot)
    out = int(r["output"])
    assert out - slot < 3.5, (out, slot)
print("ok", len(runs))
' || fail "runs not on their slots"
st=$(tb_api GET /api/v1/triggers/default/every-3s)
assert_eq "$(echo "$st" | json 'd["lastFiredAt"] is not None')" True "lastFiredAt"
assert_eq "$(echo "$st" | json 'd["nextFireAt"] is not None')" True "nextFireAt"

# Edit: a new schedule replaces the timer; a deleted trigger's timer goes.
tb_write /etc/arkevent.d/triggers.yaml <<'YAML'
kind: ArkEvent
metadata: {name: every-3s}
spec:
  source:
    type: cron
    calendar: "*:*:0/3"
  targets:
    - pipeline: tick
---
kind: ArkEvent
metadata: {name: hourly}
spec:
  source:
    type: cron
    cron: "9 */2 * * *"
  targets:
    - pipeline: tick
---
kind: ArkEvent
metadata: {name: nightly}
spec:
  source:
    type: cron
    cron: "0 3 * * *"
  targets:
    - pipeline: tick
YAML
tb_run systemctl reload arkevent
assert_eq "$(timers)" "arkevent-cron@default-every\\x2d3s.timer
arkevent-cron@default-hourly.timer
arkevent-cron@default-nightly.timer" "timers after an edit"
tb_wait_sh 10 "systemctl show -P TimersCalendar 'arkevent-cron@default-hourly.timer' | grep -q '00/2:09:00'"
# The status follows the new schedule at once (what it remembered of the old timer is gone).
next=$(tb_api GET /api/v1/triggers/default/hourly | json 'd["nextFireAt"]')
assert_eq "$(python3 -c "import sys;print(sys.argv[1][14:19])" "$next")" "09:00" "nextFireAt after the edit ($next)"

tb_write /etc/arkevent.d/triggers.yaml <<'YAML'
kind: ArkEvent
metadata: {name: hourly}
spec:
  source:
    type: cron
    cron: "9 */2 * * *"
  targets:
    - pipeline: tick
YAML
tb_run systemctl reload arkevent
tb_wait_sh 10 "[ \$(systemctl list-timers --all --no-legend 'arkevent-cron@*' | grep -c timer) = 1 ]"
assert_eq "$(timers)" "arkevent-cron@default-hourly.timer" "timers after a delete"

# Restarts and kill -9, with edits while the daemon is down: still one timer per trigger.
tb_run systemctl restart arkevent
assert_eq "$(timers)" "arkevent-cron@default-hourly.timer" "timers after a restart"
pid=$(tb_run systemctl show -P MainPID arkevent.service)
[ "$pid" -gt 0 ] || fail "no daemon to kill"
tb_run kill -9 "$pid"
tb_wait 10 sh -c "! kill -0 $pid"
tb_write /etc/arkevent.d/triggers.yaml <<'YAML'
kind: ArkEvent
metadata: {name: daily}
spec:
  source:
    type: cron
    cron: "30 4 * * *"
  targets:
    - pipeline: tick
YAML
# Restart=on-failure brings it back.
tb_wait_sh 20 "systemctl is-active arkevent | grep -qx active"
tb_wait_sh 20 "systemctl list-timers --all --no-legend 'arkevent-cron@*' | grep -q daily"
assert_eq "$(timers)" "arkevent-cron@default-daily.timer" "timers after kill -9 and an edit"
tb_run systemctl stop arkevent
tb_run systemctl start arkevent
assert_eq "$(timers)" "arkevent-cron@default-daily.timer" "timers after stop and start"

# A missed slot: the machine was down at 04:30 (no timer, the store says the last handled slot
# was two days ago, within a one-day window for the 04:30 before now).
tb_write /etc/arkevent/arkevent.yaml <<'YAML'
cron:
  catchUpSeconds: 172800
YAML
before=$(n_runs)
tb_run systemctl stop arkevent
tb_run systemctl stop 'arkevent-cron@default-daily.timer'
old=$(( ($(date +%s) - 3 * 86400) * 1000000 ))
tb_run sqlite3 /var/lib/arkevent/arkevent.db "UPDATE trigger_state SET last_slot_usec=$old WHERE name='daily'"
cursor=$(tb_journal_cursor)
tb_run systemctl reset-failed arkevent.service # many starts in a few seconds: StartLimitBurst=
tb_run systemctl start arkevent
tb_wait_journal 20 "$cursor" "Trigger default/daily missed its slot" -u arkevent.service
tb_wait_sh 20 "[ \$(curl -s -H 'Authorization: Bearer $(tb_api_token)' 'http://127.0.0.1:8092/api/v1/runs?flow=default/tick&limit=1000' | python3 -c 'import json,sys;print(len(json.load(sys.stdin)[\"runs\"]))') = $((before + 1)) ]"
run=$(tb_api GET "/api/v1/runs?flow=default/tick&limit=1")
assert_eq "$(echo "$run" | json 'd["runs"][0]["trigger"]')" default/daily "the caught-up run's trigger"
assert_eq "$(timers)" "arkevent-cron@default-daily.timer" "timer back after the catch-up"

# Once: another restart fires nothing more.
cursor=$(tb_journal_cursor)
tb_run systemctl reset-failed arkevent.service
tb_run systemctl restart arkevent
tb_wait_journal 20 "$cursor" "started" -u arkevent.service
assert_eq "$(n_runs)" "$((before + 1))" "runs after a second restart"
assert_eq "$(tb_journal_after "$cursor" -u arkevent.service | grep -c 'missed its slot' || true)" 0 "no second catch-up"

# A calendar expression systemd refuses (characters the loader accepts, an hour that does not
# exist): file:line:column in the journal, and the Ready condition says why.
cursor=$(tb_journal_cursor)
tb_write /etc/arkevent.d/bad-calendar.yaml <<'YAML'
kind: ArkEvent
metadata: {name: bad-calendar}
spec:
  source: {type: cron, calendar: "*-*-* 25:00:00"}
  targets: [{pipeline: tick}]
YAML
tb_run systemctl reload arkevent
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/bad-calendar.yaml:1:1: trigger default/bad-calendar: systemd refused the timer" -u arkevent.service
cond=$(tb_api GET /api/v1/triggers/default/bad-calendar | json 'd["conditions"][0]')
assert_contains "$cond" "TimerFailed"
assert_eq "$(timers)" "arkevent-cron@default-daily.timer" "no timer for the refused calendar"
log "ok"
