#!/usr/bin/env bash
# Embedded topics: a message published over REST, D-Bus or arkeventctl fires every topic trigger
# subscribed to it, with the message as .trigger.body; the 202 comes once the runs are stored.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/topics.yaml <<'YAML'
kind: ArkFlow
metadata: {name: ship}
spec:
  steps:
    - name: s
      env: {ITEM: "{{ .trigger.body.item }}", TOPIC_TRIGGER: "{{ .trigger.name }}"}
      run: printf '%s by %s' "$ITEM" "$TOPIC_TRIGGER"
  output: "{{ .steps.s.output }}"
---
kind: ArkEvent
metadata: {name: on-order}
spec:
  source: {type: topic, topic: orders}
  targets: [{pipeline: ship}]
---
kind: ArkEvent
metadata: {name: audit, namespace: default}
spec:
  source: {type: topic, topic: orders}
  targets: [{pipeline: ship}, {pipeline: ship}]
---
kind: ArkEvent
metadata: {name: on-refund}
spec:
  source: {type: topic, topic: refunds}
  targets: [{pipeline: ship}]
---
kind: ArkEvent
metadata: {name: paused}
spec:
  source: {type: topic, topic: refunds}
  suspended: true
  targets: [{pipeline: ship}]
YAML
tb_start_arkevent

run_ids() { json '" ".join(str(r["id"]) for d in d["deliveries"] for r in d.get("runs", []))'; }

# REST: both subscribers of "orders" fire (1 + 2 runs), the message reaches every step.
out=$(tb_api POST /api/v1/topics/orders/messages -w '\n%{http_code}' -d '{"item": "a; rm -rf / $(id)"}')
assert_eq "$(tail -n1 <<<"$out")" 202 "publish on orders"
body=$(head -n -1 <<<"$out")
assert_eq "$(json 'd["topic"]' <<<"$body")" orders "topic in the answer"
assert_eq "$(json 'sorted(x["trigger"] for x in d["deliveries"])' <<<"$body")" "['default/audit', 'default/on-order']" "deliveries"
ids=$(run_ids <<<"$body")
assert_eq "$(wc -w <<<"$ids")" 3 "runs of one message"
for id in $ids; do
        assert_eq "$(tb_wait_run "$id" 60)" Succeeded "run $id"
        out=$(tb_api GET "/api/v1/runs/$id" | json 'd["output"]')
        assert_contains "$out" 'a; rm -rf / $(id) by '
done

# A suspended subscriber is reported and skipped; the other one fires.
body=$(tb_api POST /api/v1/topics/refunds/messages -d '{"item": "r"}')
assert_eq "$(json '[(x["trigger"], x["fired"]) for x in sorted(d["deliveries"], key=lambda x: x["trigger"])]' <<<"$body")" \
        "[('default/on-refund', True), ('default/paused', False)]" "suspended subscriber"
assert_contains "$(json '[x for x in d["deliveries"] if not x["fired"]][0]["error"]' <<<"$body")" suspended

# Nobody subscribed: accepted, nothing runs.
body=$(tb_api POST /api/v1/topics/nobody/messages -d '{}')
assert_eq "$(json 'd["deliveries"]' <<<"$body")" "[]" "a topic without subscribers"

# Idempotency: the same key answers with the original runs.
a=$(tb_api POST /api/v1/topics/refunds/messages -H 'Idempotency-Key: k1' -d '{"item": "once"}' | run_ids)
b=$(tb_api POST /api/v1/topics/refunds/messages -H 'Idempotency-Key: k1' -d '{"item": "once"}' | run_ids)
assert_eq "$b" "$a" "same runs for the same Idempotency-Key"

# Errors: bad name, bad body, no token, wrong method.
code() { tb_curl -o /dev/null -w '%{http_code}' "$@"; }
tok=$(tb_api_token)
assert_eq "$(code -X POST -H "Authorization: Bearer $tok" http://127.0.0.1:8092/api/v1/topics/.hidden/messages)" 400 "bad topic name"
assert_eq "$(code -X POST -H "Authorization: Bearer $tok" -d '{"a":' http://127.0.0.1:8092/api/v1/topics/orders/messages)" 400 "bad JSON"
assert_eq "$(code -X POST -d '{}' http://127.0.0.1:8092/api/v1/topics/orders/messages)" 401 "no token"
assert_eq "$(code -H "Authorization: Bearer $tok" http://127.0.0.1:8092/api/v1/topics/orders/messages)" 405 "GET"

# D-Bus and arkeventctl.
paths=$(tb_run busctl call dev.arkonis.ArkEvent1 /dev/arkonis/ArkEvent1 dev.arkonis.ArkEvent1.Manager \
        Publish ss refunds '{"item": "bus"}')
assert_contains "$paths" "ao 1 \"/dev/arkonis/ArkEvent1/run/"
err=$(tb_run busctl call dev.arkonis.ArkEvent1 /dev/arkonis/ArkEvent1 dev.arkonis.ArkEvent1.Manager \
        Publish ss 'no/slash' '' 2>&1 || true)
assert_contains "$err" "bad topic name"
out=$(tb_run arkeventctl publish refunds --input '{"item": "cli"}' --wait --no-pager)
assert_contains "$out" "Succeeded"
out=$(tb_run arkeventctl publish nobody)
assert_contains "$out" "no trigger here subscribes to topic nobody"
assert_eq "$(tb_run arkeventctl publish --json orders | json 'len(d["runs"])')" 3 "arkeventctl publish --json"

# /metrics: the fires and runs above, in the Prometheus text format.
metrics=$(tb_api GET /metrics)
python3 - "$metrics" <<'PY' || fail "metrics: $metrics"
import re, sys
seen = {}
for line in sys.argv[1].splitlines():
    if line.startswith("#"):
        assert re.match(r"# (HELP|TYPE) arkevent_\w+ ", line), line
        continue
    m = re.fullmatch(r'(arkevent_\w+)(\{\w+="[^"]*"\})? (-?[0-9.e+]+)', line)
    assert m, line
    seen[m.group(1) + (m.group(2) or "")] = float(m.group(3))
assert seen['arkevent_trigger_fires_total{trigger="default/on-order"}'] == 2, seen  # REST, arkeventctl
assert seen['arkevent_trigger_fires_total{trigger="default/on-refund"}'] == 4, seen  # REST, once for two keyed, bus, arkeventctl
assert 'arkevent_trigger_fires_total{trigger="default/paused"}' not in seen, seen
assert seen['arkevent_runs_stored{state="Succeeded"}'] >= 3, seen
assert seen["arkevent_triggers"] == 4, seen
PY
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' http://127.0.0.1:8092/metrics)" 401 "metrics need the token"
log "ok"
