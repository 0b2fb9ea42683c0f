#!/usr/bin/env bash
# The runs API and what surrounds it: GET /api/v1/runs with filters and paging, logs with
# ?follow=1 streaming, per-flow concurrency, 429 on a full queue, the daemon's structured run
# start/end entries and access log, retention (count and days) removing runs and workspaces, and
# the OpenAPI document (GET /openapi.json and its installed copy).
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent/arkevent.yaml <<'YAML'
engine:
  maxQueuedRuns: 6
retention:
  maxRuns: 8
YAML
tb_write /etc/arkevent.d/api.yaml <<'YAML'
kind: ArkFlow
metadata: {name: quick}
spec:
  steps: [{name: q, run: "echo quick"}]
---
kind: ArkFlow
metadata: {name: bad}
spec:
  steps: [{name: b, run: "exit 1"}]
---
kind: ArkFlow
metadata: {name: talker}
spec:
  steps:
    - name: talk
      run: |
        for i in 1 2 3 4 5; do echo "line $i"; sleep 0.4; done
---
kind: ArkFlow
metadata: {name: one-at-a-time}
spec:
  concurrency: 1
  steps: [{name: s, run: "sleep 1.5; echo done"}]
YAML
tb_start_arkevent
code() { tb_curl -o /dev/null -w '%{http_code}' "$@"; }
start() { tb_api POST /api/v1/runs -d "{\"flow\": \"$1\"}" | json 'd["id"]'; }

# The OpenAPI document: no token needed (a wrong one does not matter), JSON, this version, and
# the same bytes as the installed copy.
assert_eq "$(tb_curl -o /dev/null -w '%{http_code} %{content_type}' http://127.0.0.1:8092/openapi.json)" \
        "200 application/json" "GET /openapi.json without a token"
assert_eq "$(code -H 'Authorization: Bearer wrong' http://127.0.0.1:8092/openapi.json)" 200 \
        "GET /openapi.json with a wrong token"
spec=$(tb_curl http://127.0.0.1:8092/openapi.json)
assert_eq "$(echo "$spec" | json 'd["openapi"]')" 3.0.3 "openapi"
assert_eq "$(echo "$spec" | json 'd["info"]["version"]')" "$TB_VERSION" "info.version"
assert_eq "$(echo "$spec" | json 'sorted(d["paths"]["/triggers/{namespace}/{name}/fire"])')" \
        "['parameters', 'post']" "the fire path"
assert_eq "$(echo "$spec" | json 'd["paths"]["/healthz"]["get"]["security"]')" "[]" "/healthz needs no token"
tb_sh 'curl -sS http://127.0.0.1:8092/openapi.json | cmp - /usr/share/arkevent/openapi.json' ||
        fail "GET /openapi.json differs from the installed /usr/share/arkevent/openapi.json"

# Listing: filters and paging.
q1=$(start quick); q2=$(start quick); b1=$(start bad)
for r in $q1 $q2; do assert_eq "$(tb_wait_run "$r")" Succeeded "quick run $r"; done
tb_run test -d "/var/lib/arkevent/runs/$q1/workspace" || fail "no workspace for run $q1"
assert_eq "$(tb_wait_run "$b1")" Failed "bad run"
assert_eq "$(tb_api GET '/api/v1/runs?flow=quick' | json '[r["id"] for r in d["runs"]]')" "[$q2, $q1]" "flow filter"
assert_eq "$(tb_api GET '/api/v1/runs?flow=default/quick&state=Succeeded' | json 'len(d["runs"])')" 2 "ns/flow and state filter"
assert_eq "$(tb_api GET '/api/v1/runs?state=Failed' | json '[r["id"] for r in d["runs"]]')" "[$b1]" "state filter"
page1=$(tb_api GET '/api/v1/runs?limit=2')
assert_eq "$(echo "$page1" | json '[r["id"] for r in d["runs"]]')" "[$b1, $q2]" "first page"
next=$(echo "$page1" | json 'd["nextBefore"]')
assert_eq "$(tb_api GET "/api/v1/runs?limit=2&before=$next" | json '[r["id"] for r in d["runs"]]')" "[$q1]" "second page"
assert_eq "$(code -H "Authorization: Bearer $(tb_api_token)" 'http://127.0.0.1:8092/api/v1/runs?state=Bogus')" 400 "bad state"
assert_eq "$(code -H "Authorization: Bearer $(tb_api_token)" 'http://127.0.0.1:8092/api/v1/runs?limit=x')" 400 "bad limit"
assert_eq "$(code 'http://127.0.0.1:8092/api/v1/runs')" 401 "no API token"
assert_eq "$(code -H "Authorization: Bearer $(tb_api_token)" 'http://127.0.0.1:8092/api/v1/runs/99999/logs')" 404 "logs of no run"

# The daemon's structured start and end entries.
tb_wait_sh 10 "journalctl -u arkevent.service -o verbose --no-pager ARKEVENT_RUN=$q1 ARKEVENT_EVENT=run-finished | grep -q 'ARKEVENT_FLOW=default/quick'"
tb_wait_sh 10 "journalctl -u arkevent.service --no-pager ARKEVENT_RUN=$q1 ARKEVENT_EVENT=run-created | grep -q 'created'"
# The access log carries the run id.
tb_wait_sh 10 "journalctl -u arkevent.service -o verbose --no-pager ARKEVENT_RUN=$q1 HTTP_METHOD=POST | grep -q 'HTTP_STATUS=202'"

# Logs, followed: lines arrive while the run goes, and the stream ends after the run.
t=$(start talker)
# A reader that notes when each line arrives: streaming shows as lines spread over the run's 2 s.
tb_write /tmp/follow.py <<'PY'
import json, sys, time, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + open("/var/lib/arkevent/api-token").read().strip()})
out = {}
with urllib.request.urlopen(req, timeout=30) as resp:
    assert resp.headers["Content-Type"] == "application/x-ndjson", resp.headers["Content-Type"]
    for raw in resp:
        m = json.loads(raw).get("message", "")
        if m.startswith("line "):
            out[m] = time.monotonic()
assert sorted(out) == ["line %d" % i for i in range(1, 6)], out
spread = out["line 5"] - out["line 1"]
assert spread > 1.0, "lines arrived together (%.2fs apart): not streamed" % spread
print("ok %.2f" % spread)
PY
res=$(tb_run python3 /tmp/follow.py "http://127.0.0.1:8092/api/v1/runs/$t/logs?follow=1") || fail "follow: $res"
assert_contains "$res" "ok" "followed log"
assert_eq "$(tb_wait_run "$t")" Succeeded
assert_eq "$(tb_api GET "/api/v1/runs/$t/logs" | json 'len([l for l in d["lines"] if l.get("message", "").startswith("line ")])')" 5 "logs without follow"

# Per-flow concurrency: runs of one-at-a-time never overlap; a full queue answers 429.
c1=$(start one-at-a-time); c2=$(start one-at-a-time); c3=$(start one-at-a-time)
assert_eq "$(tb_api GET "/api/v1/runs/$c3" | json 'd["state"]')" Pending "third run waits"
got429=0
for _ in $(seq 6); do
        c=$(code -H "Authorization: Bearer $(tb_api_token)" -d '{"flow": "one-at-a-time"}' http://127.0.0.1:8092/api/v1/runs)
        [ "$c" = 429 ] && { got429=1; break; }
        assert_eq "$c" 202 "run before the queue is full"
done
assert_eq "$got429" 1 "429 once the queue is full"
tb_wait_sh 60 "curl -s http://127.0.0.1:8092/healthz | grep -q '\"runsActive\":0'"
python3 - "$(tb_api GET '/api/v1/runs?flow=one-at-a-time&limit=100')" <<'PY' || fail "runs of a concurrency: 1 flow overlapped"
import json, sys
runs = sorted((r for r in json.loads(sys.argv[1])["runs"]), key=lambda r: r["startedAt"])
assert len(runs) >= 4, runs
for a, b in zip(runs, runs[1:]):
    assert a["finishedAt"] <= b["startedAt"], (a, b)
PY

# Retention by count: 8 ended runs at most; older runs go with their directories.
oldest=$q1
for _ in 1 2 3; do tb_wait_run "$(start quick)" >/dev/null; done
tb_wait_sh 20 "[ \$(curl -s -H 'Authorization: Bearer $(tb_api_token)' 'http://127.0.0.1:8092/api/v1/runs?limit=100' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"runs\"]))') -le 8 ]"
assert_eq "$(code -H "Authorization: Bearer $(tb_api_token)" "http://127.0.0.1:8092/api/v1/runs/$oldest")" 404 "pruned run"
tb_run test ! -e "/var/lib/arkevent/runs/$oldest" || fail "workspace of a pruned run is still there"
assert_eq "$(tb_run sh -c 'ls /var/lib/arkevent/runs | wc -l')" 8 "run directories kept"

# Retention by age, at start: runs made to look 3 days old go; the rest stay.
keep=$(tb_api GET '/api/v1/runs?limit=1' | json 'd["runs"][0]["id"]')
tb_run systemctl stop arkevent.service arkevent.socket
tb_write_file /etc/arkevent/arkevent.yaml $'retention:\n  days: 2\n  maxRuns: 0\n'
tb_run python3 -c "
import sqlite3, time
db = sqlite3.connect('/var/lib/arkevent/arkevent.db')
old = int((time.time() - 3 * 86400) * 1e6)
db.execute('UPDATE runs SET finished_usec=? WHERE id<?', (old, $keep))
db.commit()"
tb_start_arkevent
tb_wait_sh 20 "[ \$(ls /var/lib/arkevent/runs | wc -l) = 1 ]"
assert_eq "$(tb_api GET '/api/v1/runs?limit=100' | json '[r["id"] for r in d["runs"]]')" "[$keep]" "runs after age retention"
log "ok"
