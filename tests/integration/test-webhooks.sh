#!/usr/bin/env bash
# Webhook triggers: the seed's two curl commands, every error status, tokens across restart and
# reload, ?token=, HMAC signatures, idempotency, fan-out in parallel, sync timeouts, payload
# safety, trigger status, and the socket starting a stopped daemon on the first fire.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_run sh -c 'cat > /etc/arkevent.d/ai-team-flows.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/ai-team-flows.yaml"
tb_run sh -c 'cat > /etc/arkevent.d/ai-team-triggers.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/ai-team-triggers.yaml"
tb_sh 'printf "s3cret\n" > /etc/arkevent/hook.secret'
tb_write /etc/arkevent/arkevent.yaml <<'YAML'
http:
  publicURL: http://ark-operator.ai-team.svc.cluster.local:8092
  maxBodyBytes: 65536
engine:
  maxQueuedRuns: 12
YAML
tb_write /etc/arkevent.d/more.yaml <<'YAML'
kind: ArkFlow
metadata: {name: slow, namespace: ai-team}
spec:
  steps: [{name: s, run: "sleep 3; echo slow done"}]
---
kind: ArkFlow
metadata: {name: echo, namespace: ai-team}
spec:
  steps:
    - name: e
      inputs: {x: "{{ .pipeline.input.x }}"}
      run: printf '%s' "$INPUT_X"
---
kind: ArkEvent
metadata: {name: fan, namespace: ai-team}
spec:
  source: {type: webhook}
  targets: [{pipeline: slow}, {pipeline: slow}, {pipeline: slow}]
---
kind: ArkEvent
metadata: {name: slow-hook, namespace: ai-team}
spec:
  source: {type: webhook}
  targets: [{pipeline: slow}]
---
kind: ArkEvent
metadata: {name: forbid, namespace: ai-team}
spec:
  source: {type: webhook}
  concurrencyPolicy: Forbid
  targets: [{pipeline: slow}]
---
kind: ArkEvent
metadata: {name: replace, namespace: ai-team}
spec:
  source: {type: webhook}
  concurrencyPolicy: Replace
  targets: [{pipeline: slow}]
---
kind: ArkEvent
metadata: {name: paused, namespace: ai-team}
spec:
  source: {type: webhook}
  suspended: true
  targets: [{pipeline: my-flow}]
---
kind: ArkEvent
metadata: {name: signed, namespace: ai-team}
spec:
  source: {type: webhook, webhook: {hmacSecretFile: /etc/arkevent/hook.secret}}
  targets: [{pipeline: echo, input: {x: "{{ .trigger.body.x }}"}}]
---
kind: ArkFlow
metadata: {name: broken, namespace: ai-team}
spec:
  steps: [{name: b, run: "echo about to fail; exit 4"}]
---
kind: ArkEvent
metadata: {name: broken-hook, namespace: ai-team}
spec:
  source: {type: webhook}
  targets: [{pipeline: broken}]
---
kind: ArkEvent
metadata: {name: orphan, namespace: ai-team}
spec:
  source: {type: webhook}
  targets: [{pipeline: no-such-flow}]
---
kind: ArkEvent
metadata: {name: unsigned-secret, namespace: ai-team}
spec:
  source: {type: webhook, webhook: {hmacSecretFile: /etc/arkevent/missing.secret}}
  targets: [{pipeline: echo}]
---
kind: ArkEvent
metadata: {name: echo-hook, namespace: ai-team}
spec:
  source: {type: webhook}
  targets: [{pipeline: echo, input: {x: "{{ .trigger.body.x }}"}}]
YAML
tb_start_arkevent

base=http://127.0.0.1:8092
TOKEN=$(tb_run arkeventctl token ai-team/pipeline-trigger)
[ "${#TOKEN}" = 64 ] || fail "token: $TOKEN"
assert_eq "$(tb_run stat -c %a /var/lib/arkevent/tokens/ai-team/pipeline-trigger)" 600 "token mode"

# The seed's sync fire, as written (host aside).
resp=$(tb_curl -X POST \
        "$base/triggers/ai-team/pipeline-trigger/fire?mode=sync&timeout=120s" \
        -H "Authorization: Bearer $TOKEN" \
        -H "Content-Type: application/json" \
        -d '{"topic": "quantum computing"}' -w '\n%{http_code}')
assert_eq "$(echo "$resp" | tail -n1)" 200 "sync fire status"
body=$(echo "$resp" | head -n1)
assert_eq "$(echo "$body" | json 'd["status"]')" succeeded
assert_eq "$(echo "$body" | json 'd["output"]')" '{"answer": "notes about quantum computing"}' "sync output"
echo "$body" | json 'd["durationMs"]' >/dev/null

# The seed's async fire, as written.
resp=$(tb_curl -X POST \
        "$base/triggers/ai-team/pipeline-trigger/fire" \
        -H "Authorization: Bearer $TOKEN" \
        -d '{}' -w '\n%{http_code}')
assert_eq "$(echo "$resp" | tail -n1)" 202 "async fire status"
body=$(echo "$resp" | head -n1)
assert_eq "$(echo "$body" | json 'd["fired"]')" True
assert_eq "$(echo "$body" | json 'd["trigger"]')" ai-team/pipeline-trigger
assert_eq "$(echo "$body" | json 'd["runs"][0]["pipeline"]')" my-flow
assert_contains "$(echo "$body" | json 'd["runs"][0]["url"]')" "/api/v1/runs/"
assert_eq "$(tb_wait_run "$(echo "$body" | json 'd["runs"][0]["id"]')")" Succeeded "async run"

code() { tb_curl -o /dev/null -w '%{http_code}' "$@"; }
tok() { tb_run arkeventctl token "ai-team/$1"; }
assert_eq "$(code -X POST "$base/triggers/ai-team/pipeline-trigger/fire")" 401 "no token"
assert_eq "$(code -X POST -H 'Authorization: Bearer wrong' "$base/triggers/ai-team/pipeline-trigger/fire")" 401 "bad token"
assert_eq "$(code -X POST "$base/triggers/ai-team/pipeline-trigger/fire?token=$TOKEN" -d '{}')" 202 "?token="
assert_eq "$(code -X POST "$base/triggers/ai-team/nope/fire?token=$TOKEN")" 404 "unknown trigger"
assert_eq "$(code -X POST "$base/triggers/ai-team/daily-report/fire?token=$TOKEN")" 400 "not a webhook"
assert_eq "$(code -X GET "$base/triggers/ai-team/pipeline-trigger/fire?token=$TOKEN")" 405 "GET"
bad=$(tb_curl -X POST "$base/triggers/ai-team/pipeline-trigger/fire?token=$TOKEN" -d '{"a": }' -w '\n%{http_code}')
assert_eq "$(echo "$bad" | tail -n1)" 400 "malformed body"
assert_contains "$(echo "$bad" | head -n1)" "offset"
assert_eq "$(tb_sh "head -c 100000 /dev/zero | tr '\\0' a | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- '$base/triggers/ai-team/pipeline-trigger/fire?token=$TOKEN'")" 413 "too large"
assert_eq "$(code -X POST "$base/triggers/ai-team/paused/fire?token=$(tok paused)")" 503 "suspended"
assert_eq "$(code -X POST "$base/triggers/ai-team/fan/fire?mode=sync&token=$(tok fan)")" 400 "sync with 3 targets"

# Sync fire of a run that fails: 500 with the error.
resp=$(tb_curl -X POST "$base/triggers/ai-team/broken-hook/fire?mode=sync&token=$(tok broken-hook)" -w '\n%{http_code}')
assert_eq "$(echo "$resp" | tail -n1)" 500 "sync fire of a failing run"
assert_eq "$(echo "$resp" | head -n1 | json 'd["status"]')" failed
assert_contains "$(echo "$resp" | head -n1 | json 'd["error"]')" "activity b failed"
assert_eq "$(echo "$resp" | head -n1 | json 'd["run"]["state"]')" Failed

# Triggers that cannot fire say why, in their status and in the answer.
assert_eq "$(tb_api GET /api/v1/triggers/ai-team/orphan | json 'd["conditions"][0]["status"] + "/" + d["conditions"][0]["reason"]')" "False/PipelineNotFound"
assert_eq "$(code -X POST "$base/triggers/ai-team/orphan/fire?token=$(tok orphan)")" 503 "fire with a missing target flow"
assert_eq "$(tb_api GET /api/v1/triggers/ai-team/unsigned-secret | json 'd["conditions"][0]["status"] + "/" + d["conditions"][0]["reason"]')" "False/InvalidSource"
assert_eq "$(code -X POST "$base/triggers/ai-team/unsigned-secret/fire?token=$(tok unsigned-secret)")" 503 "fire with an unreadable HMAC secret"

# Forbid: a second fire while the first run goes is refused.
assert_eq "$(code -X POST "$base/triggers/ai-team/forbid/fire?token=$(tok forbid)")" 202 "forbid first"
assert_eq "$(code -X POST "$base/triggers/ai-team/forbid/fire?token=$(tok forbid)")" 409 "forbid second"

# Replace: a second fire cancels the running run, then fires.
r1=$(tb_curl -X POST "$base/triggers/ai-team/replace/fire?token=$(tok replace)" | json 'd["runs"][0]["id"]')
tb_wait 20 systemctl is-active "arkevent-$r1-0-1.service"
r2=$(tb_curl -X POST "$base/triggers/ai-team/replace/fire?token=$(tok replace)" | json 'd["runs"][0]["id"]')
assert_eq "$(tb_wait_run "$r1")" Cancelled "replaced run"
assert_contains "$(tb_api GET "/api/v1/runs/$r1" | json 'd["error"]')" "Replace" "why the run was cancelled"
assert_eq "$(tb_wait_run "$r2")" Succeeded "replacing run"

# Fan-out: three runs whose units overlap in time.
fan=$(tb_curl -X POST "$base/triggers/ai-team/fan/fire?token=$(tok fan)")
ids=$(echo "$fan" | json '" ".join(str(r["id"]) for r in d["runs"])')
set -- $ids
[ $# = 3 ] || fail "fan-out runs: $ids"
for r in "$@"; do assert_eq "$(tb_wait_run "$r")" Succeeded "fan-out run $r"; done
python3 - "$(tb_api GET "/api/v1/runs/$1")" "$(tb_api GET "/api/v1/runs/$2")" "$(tb_api GET "/api/v1/runs/$3")" <<'PY' || fail "fan-out units did not overlap"
import json, sys
a = [json.loads(x)["activities"][0] for x in sys.argv[1:]]
assert max(x["startedAt"] for x in a) < min(x["finishedAt"] for x in a), a
PY

# Queue full: 429 once maxQueuedRuns unfinished runs exist.
got429=0
for _ in $(seq 14); do
        c=$(code -X POST "$base/triggers/ai-team/slow-hook/fire?token=$(tok slow-hook)")
        [ "$c" = 429 ] && { got429=1; break; }
        assert_eq "$c" 202 "fire before the queue is full"
done
assert_eq "$got429" 1 "a 429 once the queue is full"

tb_wait_sh 60 "curl -s $base/healthz | grep -q '\"runsActive\":0'"

# Sync timeout: 504 with the run id; the run goes on and succeeds.
resp=$(tb_curl -X POST "$base/triggers/ai-team/slow-hook/fire?mode=sync&timeout=1s&token=$(tok slow-hook)" -w '\n%{http_code}')
assert_eq "$(echo "$resp" | tail -n1)" 504 "sync timeout"
late=$(echo "$resp" | head -n1 | json 'd["run"]["id"]')
assert_eq "$(tb_wait_run "$late" 90)" Succeeded "run after the 504"

# Idempotency-Key: the same key answers with the original runs.
a=$(tb_curl -X POST -H 'Idempotency-Key: k-1' "$base/triggers/ai-team/echo-hook/fire?token=$(tok echo-hook)" -d '{"x": "1"}' | json 'd["runs"][0]["id"]')
b=$(tb_curl -X POST -H 'Idempotency-Key: k-1' "$base/triggers/ai-team/echo-hook/fire?token=$(tok echo-hook)" -d '{"x": "2"}' | json 'd["runs"][0]["id"]')
assert_eq "$b" "$a" "run of a repeated Idempotency-Key"

# HMAC: right signature accepted, wrong or missing refused; the payload arrives intact.
weird='$(touch pwned); `id`; echo "x" > y && exit 1 | \ '"'"' %s {{ .x }}'
payload=$(python3 -c 'import json,sys; print(json.dumps({"x": sys.argv[1]}))' "$weird")
sig=$(printf '%s' "$payload" | python3 -c 'import hmac,hashlib,sys; print(hmac.new(b"s3cret", sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')
signed() { tb_curl -X POST "$base/triggers/ai-team/signed/fire?token=$(tok signed)" --data-binary "$payload" "$@"; }
assert_eq "$(signed -o /dev/null -w '%{http_code}')" 401 "unsigned"
assert_eq "$(signed -o /dev/null -w '%{http_code}' -H 'X-Hub-Signature-256: sha256=0000')" 401 "wrong signature"
resp=$(signed -H "X-Hub-Signature-256: sha256=$sig" -w '\n%{http_code}')
assert_eq "$(echo "$resp" | tail -n1)" 202 "signed"
rid=$(echo "$resp" | head -n1 | json 'd["runs"][0]["id"]')
assert_eq "$(tb_wait_run "$rid")" Succeeded "signed run"
assert_eq "$(tb_api GET "/api/v1/runs/$rid" | json 'd["output"]')" "$weird" "payload through the body"

# Trigger status, as the seed shows it.
st=$(tb_api GET /api/v1/triggers/ai-team/pipeline-trigger)
assert_eq "$(echo "$st" | json 'd["webhookURL"]')" "http://ark-operator.ai-team.svc.cluster.local:8092/triggers/ai-team/pipeline-trigger/fire"
assert_eq "$(echo "$st" | json 'd["conditions"][0]["type"] + "/" + d["conditions"][0]["status"] + "/" + d["conditions"][0]["reason"]')" "Ready/True/WebhookReady"
assert_eq "$(echo "$st" | json 'd["conditions"][0]["message"]')" "waiting for webhook POST"
assert_eq "$(echo "$st" | json 'd["firedCount"]')" 3 "firedCount"
[ "$(echo "$st" | json 'd["lastFiredAt"]')" != None ] || fail "lastFiredAt"
assert_eq "$(tb_api GET /api/v1/triggers/ai-team/paused | json 'd["conditions"][0]["reason"]')" Suspended

# Tokens survive a restart and a reload; the counters too. A stopped daemon is started by the
# socket on the first fire.
tb_run systemctl restart arkevent.service
assert_eq "$(tok pipeline-trigger)" "$TOKEN" "token after restart"
tb_run systemctl reload arkevent.service
assert_eq "$(tok pipeline-trigger)" "$TOKEN" "token after reload"
tb_run systemctl stop arkevent.service
assert_eq "$(code -X POST "$base/triggers/ai-team/pipeline-trigger/fire" -H "Authorization: Bearer $TOKEN" -d '{}')" 202 "fire on a stopped daemon"
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "daemon after the fire"
assert_eq "$(tb_api GET /api/v1/triggers/ai-team/pipeline-trigger | json 'd["firedCount"]')" 4 "firedCount after restart"

# Every fire is in the journal with its trigger and run ids.
tb_wait_sh 10 "journalctl -u arkevent.service -o verbose --no-pager ARKEVENT_TRIGGER=ai-team/pipeline-trigger HTTP_STATUS=202 | grep -q '^ *ARKEVENT_RUN=[0-9]'"
tb_wait_sh 10 "journalctl -u arkevent.service -o verbose --no-pager ARKEVENT_TRIGGER=ai-team/pipeline-trigger HTTP_STATUS=401 | grep -q 'HTTP_METHOD=POST'"

# A deleted trigger's token goes with it.
tb_run test -f /var/lib/arkevent/tokens/ai-team/orphan || fail "no token for orphan"
tb_run python3 -c "
import re
p = '/etc/arkevent.d/more.yaml'
docs = open(p).read().split('\n---\n')
open(p, 'w').write('\n---\n'.join(d for d in docs if 'name: orphan,' not in d))"
tb_run systemctl reload arkevent.service
tb_run test ! -e /var/lib/arkevent/tokens/ai-team/orphan || fail "token of a deleted trigger is still there"
assert_eq "$(code -X POST "$base/triggers/ai-team/orphan/fire?token=$TOKEN")" 404 "deleted trigger"

# Rotation: the old token stops working.
new=$(tb_run arkeventctl token ai-team/pipeline-trigger --rotate)
[ "$new" != "$TOKEN" ] || fail "rotate kept the token"
assert_eq "$(code -X POST "$base/triggers/ai-team/pipeline-trigger/fire?token=$TOKEN")" 401 "old token"
log "ok"
