#!/usr/bin/env bash
# A diamond DAG with data passed along, each activity a transient unit in arkevent.slice.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_run sh -c 'cat > /etc/arkevent.d/diamond.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/diamond.yaml"
tb_start_arkevent

resp=$(tb_api POST /api/v1/runs -d '{"flow": "default/diamond", "input": {"n": 5}}' -w '\n%{http_code}')
assert_eq "$(echo "$resp" | tail -n1)" 202 "POST /api/v1/runs"
id=$(echo "$resp" | head -n1 | json 'd["id"]')
log "run $id"
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "run state"

run=$(tb_api GET "/api/v1/runs/$id")
assert_eq "$(echo "$run" | json 'd["output"]')" "10,15" "run output"
assert_eq "$(echo "$run" | json '[a["state"] for a in d["activities"]]')" "['Succeeded', 'Succeeded', 'Succeeded', 'Succeeded']"
assert_eq "$(echo "$run" | json 'd["activities"][1]["output"]')" 10 "left output"
unit=$(echo "$run" | json 'd["activities"][3]["unit"]')
assert_eq "$unit" "arkevent-$id-3-1.service" "unit name"

# The journal has each activity's output under its unit and the run's field.
tb_wait_sh 10 "journalctl -u arkevent-$id-1-1.service --no-pager -o cat | grep -qx 10"
tb_wait_sh 10 "journalctl ARKEVENT_RUN=$id --no-pager -o cat | grep -qx 15"
logs=$(tb_api GET "/api/v1/runs/$id/logs")
assert_contains "$logs" '"activity":"right"'

# left and right ran in parallel after split, join after both.
python3 - "$run" <<'PY' || fail "activity order"
import json, sys
d = json.loads(sys.argv[1]); a = {x["name"]: x for x in d["activities"]}
assert a["split"]["finishedAt"] <= a["left"]["startedAt"], "left before split ended"
assert a["split"]["finishedAt"] <= a["right"]["startedAt"], "right before split ended"
assert max(a["left"]["finishedAt"], a["right"]["finishedAt"]) <= a["join"]["startedAt"], "join too early"
PY

# Wrong or missing API token.
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' http://127.0.0.1:8092/api/v1/runs)" 401 "no token"
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' http://127.0.0.1:8092/api/v1/runs)" 401 "bad token"
assert_eq "$(tb_api POST /api/v1/runs -d '{"flow": "default/ghost"}' -o /dev/null -w '%{http_code}')" 404 "unknown flow"
assert_eq "$(tb_api POST /api/v1/runs -d '{"flow": ' -o /dev/null -w '%{http_code}')" 400 "bad JSON"
log "ok"
