#!/usr/bin/env bash
# A 5-field cron trigger fires at a minute boundary (one wait of at most 70 s), and the seed's
# cron example, loaded as written, runs end to end through its timer's service unit.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_run sh -c 'cat > /etc/arkevent.d/ai-team-flows.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/ai-team-flows.yaml"
tb_run sh -c 'cat > /etc/arkevent.d/ai-team-triggers.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/ai-team-triggers.yaml"
tb_write /etc/arkevent.d/minute.yaml <<'YAML'
kind: ArkFlow
metadata: {name: stamp}
spec:
  steps: [{name: s, run: date -u +%s}]
---
kind: ArkEvent
metadata: {name: every-minute}
spec:
  source: {type: cron, cron: "* * * * *"}
  targets: [{pipeline: stamp}]
YAML
tb_start_arkevent

# The seed's daily-report: its timer is there, and what the timer starts fires the trigger.
timer='arkevent-cron@ai\x2dteam-daily\x2dreport.timer'
assert_contains "$(tb_run systemctl show -P TimersCalendar "$timer")" "*-*-* 08:00:00 UTC"
assert_contains "$(tb_run systemctl list-timers --all --no-legend)" "arkevent-cron@ai\\x2dteam-daily\\x2dreport.timer"
next=$(tb_api GET /api/v1/triggers/ai-team/daily-report | json 'd["nextFireAt"]')
assert_eq "${next:10}" "T08:00:00Z" "nextFireAt of daily-report"
tb_run systemctl start 'arkevent-cron@ai\x2dteam-daily\x2dreport.service'
id=$(tb_api GET "/api/v1/runs?flow=ai-team/report-flow" | json 'd["runs"][0]["id"]')
assert_eq "$(tb_wait_run "$id")" Succeeded "report-flow"
assert_eq "$(tb_api GET "/api/v1/runs/$id" | json 'd["trigger"]')" ai-team/daily-report "trigger of the report run"
assert_contains "$(tb_api GET "/api/v1/runs/$id" | json 'd["output"]')" "daily report at"
assert_eq "$(tb_api GET /api/v1/triggers/ai-team/daily-report | json 'd["lastFiredAt"] is not None')" True "lastFiredAt"

# The next minute boundary fires every-minute.
tb_wait_sh 70 "curl -s -H 'Authorization: Bearer $(tb_api_token)' 'http://127.0.0.1:8092/api/v1/runs?flow=default/stamp&state=Succeeded' | grep -q '\"state\":\"Succeeded\"'"
run=$(tb_api GET "/api/v1/runs?flow=default/stamp&state=Succeeded")
python3 - "$run" <<'PY' || fail "not at a minute boundary: $run"
import datetime, json, sys
r = json.loads(sys.argv[1])["runs"][-1]
t = datetime.datetime.fromisoformat(r["createdAt"].replace("Z", "+00:00")).timestamp()
assert t % 60 < 2.5, "created %.3fs after the minute" % (t % 60)
assert r["trigger"] == "default/every-minute", r
PY
log "ok"
