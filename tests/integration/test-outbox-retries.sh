#!/usr/bin/env bash
# Outbound webhooks, when the receiver is not well: one that answers 500 for a while, then 200 —
# every event is delivered once it recovers, in order, under one delivery id per event; one that
# is down across a daemon restart (systemctl restart, then kill -9) — the deliveries resume and
# complete; one that never comes back — past webhooks.maxAgeSec the deliveries fail with the
# last error.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_run mkdir -p /run/recv
tb_write /run/recv/receiver.py <"$ARKEVENT_SOURCE_DIR/tests/integration/webhook-receiver.py"

start_receiver() {
        local port=$1
        shift
        tb_sh "nohup python3 /run/recv/receiver.py --port $port --log /run/recv/$port.jsonl \
                --pid-file /run/recv/$port.pid $* </dev/null >/run/recv/$port.out 2>&1 &"
        tb_wait 10 test -s "/run/recv/$port.pid"
}

wait_delivered() {
        tb_wait_sh "${3:-30}" "[ \$(grep -c '\"status\": 200' /run/recv/$1.jsonl 2>/dev/null || echo 0) -ge $2 ]"
}

# Prints "type name status delivery-id" per request the receiver on PORT got.
received() {
        tb_run cat "/run/recv/$1.jsonl" | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    d = json.loads(r["body"])
    h = {k.lower(): v for k, v in r["headers"].items()}
    print(d["type"], d["data"]["Name"], r["status"], h["x-arkevent-delivery"])
'
}

config() {
        tb_write /etc/arkevent/arkevent.yaml <<YAML
webhooks:
  timeoutSec: 5
  maxAgeSec: $1
  backoff: {initialSec: 1, maxSec: 2}
  shutdownGraceSec: 4
YAML
}
config 600

for port in 9201 9202 9203 9204; do
        tb_write /etc/arkevent.d/wf-$port.yaml <<YAML
name: wf-$port
spec:
  webhooks:
    - {name: hook, url: "http://127.0.0.1:$port/hook"}
  activities:
    - {name: a, run: "echo a"}
    - {name: b, dependsOn: [a], run: "echo b"}
    - {name: c, dependsOn: [b], run: "echo c"}
YAML
done

start_receiver 9201 --fail-first 3
tb_start_arkevent

# ---- 1: 500, 500, 500, then 200 ----------------------------------------------------------------
id=$(tb_api POST /api/v1/runs -d '{"flow": "wf-9201"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "run $id"
wait_delivered 9201 4 60
got=$(received 9201)
first=$(echo "$got" | sed -n 1p | cut -d' ' -f4)
assert_eq "$(echo "$got" | cut -d' ' -f1-3)" "ACTIVITY_COMPLETED a 500
ACTIVITY_COMPLETED a 500
ACTIVITY_COMPLETED a 500
ACTIVITY_COMPLETED a 200
ACTIVITY_COMPLETED b 200
ACTIVITY_COMPLETED c 200
WORKFLOW_DONE wf-9201 200" "requests while the receiver failed, then recovered"
assert_eq "$(echo "$got" | sed -n 1,4p | cut -d' ' -f4 | sort -u)" "$first" "one delivery id across retries"
assert_eq "$(echo "$got" | cut -d' ' -f4 | sort -u | wc -l)" 4 "distinct delivery ids"
# Retries wait: at least half of the backoff (1s, then 2s, jittered) between attempts.
tb_run cat /run/recv/9201.jsonl | python3 -c '
import json, sys
t = [json.loads(l)["t"] for l in sys.stdin][:4]
gaps = [b - a for a, b in zip(t, t[1:])]
assert all(g >= 0.45 for g in gaps), gaps
print("retry gaps", ["%.2f" % g for g in gaps], file=sys.stderr)
' || fail "retries came too fast"
deliveries=$(tb_api GET "/api/v1/runs/$id/deliveries")
assert_eq "$(echo "$deliveries" | json '[(x["state"], x["attempts"], x["lastStatus"]) for x in d]')" \
        "[('delivered', 4, 200), ('delivered', 1, 200), ('delivered', 1, 200), ('delivered', 1, 200)]" "delivery log"
assert_eq "$(echo "$deliveries" | json 'd[0]["deliveryId"]')" "$first" "delivery id in the API"
tb_wait_sh 10 "journalctl --no-pager ARKEVENT_RUN=$id -o cat | grep -q 'failed (attempt 3): HTTP 500; retrying'"
log "500 three times, then every event in order"

# ---- 2: the receiver down across restarts ------------------------------------------------------
id2=$(tb_api POST /api/v1/runs -d '{"flow": "wf-9202"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id2" 60)" Succeeded "run $id2"
tb_wait 30 sh -c "curl -sf -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/runs/$id2/deliveries |
        python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (len(d) == 4 and d[0][\"attempts\"] >= 2))'"
deliveries=$(tb_api GET "/api/v1/runs/$id2/deliveries")
assert_contains "$(echo "$deliveries" | json 'd[0]["lastError"]')" "onnect" "last error while the receiver is down"
assert_eq "$(echo "$deliveries" | json '[x["state"] for x in d]')" "['pending', 'pending', 'pending', 'pending']" "states while down"
assert_eq "$(echo "$deliveries" | json '[x["attempts"] for x in d[1:]]')" "[0, 0, 0]" "later events wait for the first"

# A clean restart: the stop does not hang on deliveries that cannot go.
t0=$(tb_now_ms)
tb_run systemctl restart arkevent.service
[ $(($(tb_now_ms) - t0)) -lt 10000 ] || fail "restart took $(($(tb_now_ms) - t0)) ms"
tb_wait 20 curl -sf http://127.0.0.1:8092/healthz
tb_wait_sh 10 "journalctl --no-pager -u arkevent.service -o cat | grep -q '4 webhook deliveries pending'"

# Then kill -9, and keep the daemon down while the receiver comes back.
pid=$(tb_run systemctl show -P MainPID arkevent.service)
tb_run kill -9 "$pid"
tb_wait 10 sh -c "! kill -0 $pid"
tb_run systemctl stop arkevent.service
start_receiver 9202
tb_run systemctl start arkevent.service
wait_delivered 9202 4 60
got=$(received 9202)
assert_eq "$(echo "$got" | cut -d' ' -f1-3)" "ACTIVITY_COMPLETED a 200
ACTIVITY_COMPLETED b 200
ACTIVITY_COMPLETED c 200
WORKFLOW_DONE wf-9202 200" "deliveries after the restart"
assert_eq "$(echo "$got" | cut -d' ' -f4 | tr '\n' ' ')" \
        "$(tb_api GET "/api/v1/runs/$id2/deliveries" | json '" ".join(x["deliveryId"] for x in d)') " "delivery ids kept across restarts"
assert_eq "$(tb_api GET "/api/v1/runs/$id2/deliveries" | json '[x["state"] for x in d]')" \
        "['delivered', 'delivered', 'delivered', 'delivered']" "states after the restart"
log "receiver down across a restart and a kill -9: delivered once it is back"

# ---- 3: a delivery in flight when the daemon stops completes within the grace ----------------
start_receiver 9204 --delay 1
cursor=$(tb_journal_cursor)
id4=$(tb_api POST /api/v1/runs -d '{"flow": "wf-9204"}' | json 'd["id"]')
tb_wait 30 test -s /run/recv/9204.jsonl
tb_run systemctl stop arkevent.service
first=$(received 9204 | sed -n 1p | cut -d' ' -f4)
out=$(tb_journal_after "$cursor" -u arkevent.service)
assert_contains "$out" "Giving 1 webhook deliveries up to 4.0s to complete." "the stop"
assert_contains "$out" "Delivered ACTIVITY_COMPLETED of run $id4 to webhook hook (http://127.0.0.1:9204/hook) as $first" "the stop"
tb_run systemctl start arkevent.service
assert_eq "$(tb_wait_run "$id4" 60)" Succeeded "run $id4"
wait_delivered 9204 4 60
# Each event once, in order, by delivery id. One whose answer the grace cut off is sent again
# after the start, under the same id (receivers drop it); the one in flight at the stop is not.
assert_eq "$(received 9204 | awk '!seen[$4]++' | cut -d' ' -f1-3)" "ACTIVITY_COMPLETED a 200
ACTIVITY_COMPLETED b 200
ACTIVITY_COMPLETED c 200
WORKFLOW_DONE wf-9204 200" "deliveries around the stop"
assert_eq "$(received 9204 | grep -c " $first\$")" 1 "requests of the delivery in flight at the stop"
log "a delivery in flight at the stop completes within the grace"

# ---- 4: a receiver that never comes back ------------------------------------------------------
config 3
tb_run systemctl restart arkevent.service
tb_wait 20 curl -sf http://127.0.0.1:8092/healthz
id3=$(tb_api POST /api/v1/runs -d '{"flow": "wf-9203"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id3" 60)" Succeeded "run $id3"
tb_wait 30 sh -c "curl -sf -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/runs/$id3/deliveries |
        python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (len(d) == 4 and all(x[\"state\"] == \"failed\" for x in d)))'"
deliveries=$(tb_api GET "/api/v1/runs/$id3/deliveries")
assert_eq "$(echo "$deliveries" | json 'all(x["attempts"] >= 1 and "onnect" in x["lastError"] and x["deliveredAt"] is None for x in d)')" True "failed deliveries"
tb_wait_sh 10 "journalctl --no-pager ARKEVENT_RUN=$id3 -o cat | grep -q 'Giving up on ACTIVITY_COMPLETED'"
log "ok"
