#!/usr/bin/env bash
# Topics shared through Redis Streams (topics.redis): a message published here or by another
# host is taken once by the consumer group and runs the triggers subscribed to its topic; what
# is published while the daemon is down, taken by a consumer that died, or taken before a
# restart and not acknowledged, still runs, once each. A reload that changes topics.redis
# connects again with the new settings; one that removes it keeps topics on this host.
source "$(dirname "$0")/testbed.sh"
command -v redis-server >/dev/null || tb_skip "redis-server is not installed"
tb_start
tb_run systemd-run -q --unit=test-redis -p Type=exec /usr/bin/redis-server --port 6390 \
        --bind 127.0.0.1 --save "" --appendonly no
tb_wait 20 sh -c 'redis-cli -p 6390 ping | grep -q PONG'
R() { tb_run redis-cli -p 6390 "$@"; }
S=arkevent:topic:orders

tb_write /etc/arkevent/arkevent.yaml <<'YAML'
topics:
  redis:
    address: 127.0.0.1:6390
    consumer: host-a
    claimIdleSeconds: 1
YAML
tb_write /etc/arkevent.d/orders.yaml <<'YAML'
kind: ArkFlow
metadata: {name: ship}
spec:
  steps:
    - name: s
      env: {ITEM: "{{ .trigger.body.item }}"}
      run: printf '%s' "$ITEM"
  output: "{{ .steps.s.output }}"
---
kind: ArkEvent
metadata: {name: on-order}
spec:
  source: {type: topic, topic: orders}
  targets: [{pipeline: ship}]
YAML
tb_start_arkevent
tb_wait_sh 20 "redis-cli -p 6390 XINFO GROUPS $S | grep -qx arkevent"

outputs() { # the outputs of the finished runs of default/ship, sorted
        tb_api GET "/api/v1/runs?flow=default/ship&limit=1000" |
                json '"\n".join(sorted(r["output"] or "" for r in d["runs"] if r["state"] == "Succeeded"))'
}
ran=()
wait_outputs() { # ITEM...: these ran too; waits until the finished runs are exactly all so far
        local want deadline=$(($(tb_now_ms) + 60000)) got
        ran+=("$@")
        want=$(printf '%s\n' "${ran[@]}" | LC_ALL=C sort)
        until got=$(outputs) && [ "$got" = "$want" ]; do
                [ "$(tb_now_ms)" -lt "$deadline" ] || fail "runs: expected '$want', got '$got'"
                sleep 0.2
        done
}
pending() { R XPENDING "$S" arkevent | sed -n 1p; }

# Published here: 202 once the message is in the stream; taken, run, acknowledged.
out=$(tb_api POST /api/v1/topics/orders/messages -d '{"item": "rest"}')
assert_eq "$(json 'd["stream"]' <<<"$out")" "$S" "stream in the answer"
id=$(json 'd["messageId"]' <<<"$out")
assert_eq "$(R XRANGE "$S" "$id" "$id" | sed -n 3p)" '{"item":"rest"}' "the message is in the stream"
wait_outputs rest
tb_wait_sh 10 "[ \$(redis-cli -p 6390 XPENDING $S arkevent | head -n1) = 0 ]"

# Published by another host, straight into the stream.
R XADD "$S" '*' message '{"item": "other-host"}' >/dev/null
wait_outputs other-host

# While the daemon is down: one message taken by a consumer that then died, one taken by this
# host's consumer name (as if just before a crash), one nobody took yet.
tb_run systemctl stop arkevent.service
R XADD "$S" '*' message '{"item": "ghost"}' >/dev/null
R XREADGROUP GROUP arkevent ghost COUNT 1 STREAMS "$S" '>' >/dev/null
R XADD "$S" '*' message '{"item": "own"}' >/dev/null
R XREADGROUP GROUP arkevent host-a COUNT 1 STREAMS "$S" '>' >/dev/null
R XADD "$S" '*' message '{"item": "while-down"}' >/dev/null
assert_eq "$(pending)" 2 "two taken and not acknowledged"
tb_run systemctl start arkevent.service
wait_outputs ghost own while-down
tb_wait_sh 10 "[ \$(redis-cli -p 6390 XPENDING $S arkevent | head -n1) = 0 ]"

# Over the bus: appended, answered with no run here (they start where the message is taken).
assert_eq "$(tb_run busctl call dev.arkonis.ArkEvent1 /dev/arkonis/ArkEvent1 \
        dev.arkonis.ArkEvent1.Manager Publish ss orders '{"item": "bus"}')" "ao 0" "Publish"
wait_outputs bus

# Not JSON: dropped with a warning (and acknowledged), nothing runs.
cursor=$(tb_journal_cursor)
R XADD "$S" '*' message 'not json' >/dev/null
tb_wait_journal 20 "$cursor" "is not a JSON object; dropped"
tb_wait_sh 10 "[ \$(redis-cli -p 6390 XPENDING $S arkevent | head -n1) = 0 ]"
assert_eq "$(tb_api GET "/api/v1/runs?flow=default/ship&limit=1000" | json 'len(d["runs"])')" 6 "each message ran once"

# Redis goes away: publishing answers 503; it comes back empty: groups are made again and
# messages run again.
tb_run systemctl stop test-redis.service
code=$(tb_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(tb_api_token)" \
        -d '{"item": "lost"}' http://127.0.0.1:8092/api/v1/topics/orders/messages)
assert_eq "$code" 503 "publish without Redis"
tb_run systemd-run -q --unit=test-redis-2 -p Type=exec /usr/bin/redis-server --port 6390 \
        --bind 127.0.0.1 --save "" --appendonly no
tb_wait 30 sh -c "redis-cli -p 6390 XINFO GROUPS $S | grep -qx arkevent"
tb_wait 30 sh -c "curl -sf -o /dev/null -H 'Authorization: Bearer $(tb_api_token)' -d '{\"item\": \"back\"}' http://127.0.0.1:8092/api/v1/topics/orders/messages"
wait_outputs back

# A reload with another group and stream prefix: the new group is made on the new stream and its
# messages run.
cursor=$(tb_journal_cursor)
fleet_config() {
        tb_write /etc/arkevent/arkevent.yaml <<'YAML'
topics:
  redis:
    address: 127.0.0.1:6390
    group: fleet
    streamPrefix: "fleet:"
    consumer: host-a
    claimIdleSeconds: 1
YAML
}
fleet_config
tb_run systemctl reload arkevent.service
tb_wait_journal 20 "$cursor" "topics.redis changed: connecting again"
tb_wait 30 sh -c "redis-cli -p 6390 XINFO GROUPS fleet:orders | grep -qx fleet"
R XADD fleet:orders '*' message '{"item": "fleet"}' >/dev/null
wait_outputs fleet

# A reload without topics.redis: messages are published and run on this host alone.
cursor=$(tb_journal_cursor)
tb_write /etc/arkevent/arkevent.yaml </dev/null
tb_run systemctl reload arkevent.service
tb_wait_journal 20 "$cursor" "topics.redis removed: topics stay on this host now"
out=$(tb_api POST /api/v1/topics/orders/messages -d '{"item": "local"}')
assert_eq "$(json 'd.get("stream")' <<<"$out")" None "no stream: published on this host"
assert_eq "$(json 'len(d["deliveries"][0]["runs"])' <<<"$out")" 1 "a run here"
# Appended to the stream meanwhile: waits in the group until topics.redis is back.
R XADD fleet:orders '*' message '{"item": "while-off"}' >/dev/null
cursor=$(tb_journal_cursor)
fleet_config
tb_run systemctl reload arkevent.service
tb_wait_journal 20 "$cursor" "topics.redis set: topics are shared through Redis now"
wait_outputs local while-off
tb_wait_sh 10 "[ \$(redis-cli -p 6390 XPENDING fleet:orders fleet | head -n1) = 0 ]"
log "ok"
