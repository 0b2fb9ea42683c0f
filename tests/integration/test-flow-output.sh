#!/usr/bin/env bash
# Flow-output triggers: the seed's fan-out example as written, a chain A -> B -> {C1, C2} with the
# outputs passed along, onPhase: Failed, exactly once across a kill -9 at the moment the upstream
# run ends, and a cycle rejected with file:line:column.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_run sh -c 'cat > /etc/arkevent.d/ai-team-flows.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/ai-team-flows.yaml"
tb_run sh -c 'cat > /etc/arkevent.d/ai-team-triggers.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/ai-team-triggers.yaml"
tb_write /etc/arkevent.d/chain.yaml <<'YAML'
kind: ArkFlow
metadata: {name: a}
spec:
  input: {wait: "0"}
  steps:
    - name: s
      inputs: {wait: "{{ .pipeline.input.wait }}"}
      run: 'sleep "$INPUT_WAIT"; echo A'
---
kind: ArkFlow
metadata: {name: b}
spec:
  steps:
    - name: s
      inputs: {up: "{{ .pipeline.input.up }}"}
      run: 'echo "$INPUT_UP>B"'
---
kind: ArkFlow
metadata: {name: c1}
spec:
  steps:
    - name: s
      inputs: {up: "{{ .trigger.output }}"}
      run: 'echo "$INPUT_UP>C1"'
---
kind: ArkFlow
metadata: {name: c2}
spec:
  steps:
    - name: s
      inputs: {up: "{{ .trigger.output }}"}
      run: 'echo "$INPUT_UP>C2"'
---
kind: ArkEvent
metadata: {name: a-to-b}
spec:
  source: {type: flow-output, flow: a}
  targets:
    - pipeline: b
      input: {up: "{{ .trigger.output }}"}
---
kind: ArkEvent
metadata: {name: b-to-c}
spec:
  source:
    type: pipeline-output
    pipelineOutput: {name: b, onPhase: Succeeded}
  targets:
    - pipeline: c1
    - pipeline: c2
---
kind: ArkFlow
metadata: {name: fails}
spec:
  steps:
    - name: s
      run: 'echo broken; exit 3'
---
kind: ArkFlow
metadata: {name: cleanup}
spec:
  steps:
    - name: s
      inputs: {phase: "{{ .pipeline.input.phase }}"}
      run: 'echo "cleaning up after $INPUT_PHASE"'
---
kind: ArkEvent
metadata: {name: on-failure}
spec:
  source: {type: pipeline-output, pipelineOutput: {name: fails, onPhase: Failed}}
  targets: [{pipeline: cleanup}]
---
kind: ArkEvent
metadata: {name: on-success-of-fails}
spec:
  source: {type: flow-output, flow: fails}
  targets: [{pipeline: c1}]
YAML
tb_start_arkevent

runs_of() { tb_api GET "/api/v1/runs?flow=$1&limit=1000"; }
count_of() { runs_of "$1" | json 'len(d["runs"])'; }
wait_count() { # FLOW N: wait until FLOW has N finished runs
        tb_wait_sh 60 "[ \$(curl -s -H 'Authorization: Bearer $(tb_api_token)' 'http://127.0.0.1:8092/api/v1/runs?flow=$1&limit=1000' | python3 -c 'import json,sys;print(sum(r[\"state\"] in (\"Succeeded\",\"Failed\") for r in json.load(sys.stdin)[\"runs\"]))') -ge $2 ]"
}
start_run() { tb_api POST /api/v1/runs -d "{\"flow\": \"$1\", \"input\": ${2:-{\}}}" | json 'd["id"]'; }

# The seed's example: research-flow's completion fires summarize-flow and publish-flow.
id=$(start_run ai-team/research-flow)
assert_eq "$(tb_wait_run "$id")" Succeeded "research-flow"
wait_count ai-team/summarize-flow 1
wait_count ai-team/publish-flow 1
s=$(runs_of ai-team/summarize-flow)
assert_eq "$(echo "$s" | json 'd["runs"][0]["trigger"]')" ai-team/post-research-trigger "summarize trigger"
assert_eq "$(echo "$s" | json 'd["runs"][0]["state"]')" Succeeded "summarize state"
assert_contains "$(echo "$s" | json 'd["runs"][0]["output"]')" "summary of: findings: 42"
p=$(runs_of ai-team/publish-flow)
assert_eq "$(echo "$p" | json 'd["runs"][0]["state"]')" Succeeded "publish state"

# A -> B -> {C1, C2}: every output passed along, C1 and C2 in parallel from one fire.
id=$(start_run default/a)
assert_eq "$(tb_wait_run "$id")" Succeeded "a"
wait_count default/c1 1
wait_count default/c2 1
assert_eq "$(runs_of default/b | json 'd["runs"][0]["output"]')" "A>B" "b's output"
assert_eq "$(runs_of default/c1 | json 'd["runs"][0]["output"]')" "A>B>C1" "c1's output"
assert_eq "$(runs_of default/c2 | json 'd["runs"][0]["output"]')" "A>B>C2" "c2's output"
c1=$(runs_of default/c1 | json 'd["runs"][0]["id"]')
c2=$(runs_of default/c2 | json 'd["runs"][0]["id"]')
assert_eq "$((c2 - c1))" 1 "c1 and c2 from one fire"

# onPhase: Failed fires cleanup, and the Succeeded trigger on the same flow does not fire.
id=$(start_run default/fails)
assert_eq "$(tb_wait_run "$id")" Failed "fails"
wait_count default/cleanup 1
assert_eq "$(runs_of default/cleanup | json 'd["runs"][0]["output"]')" "cleaning up after Failed" "cleanup's input"
assert_eq "$(count_of default/c1)" 1 "no Succeeded fire for a failed run"

# Exactly once: the daemon is killed while A runs; A ends while it is down; the restart
# finishes A and fires B once; another restart fires nothing more.
b_before=$(count_of default/b)
id=$(start_run default/a '{"wait": "2"}')
tb_wait_sh 10 "systemctl is-active arkevent-$id-0-1.service | grep -qx active"
pid=$(tb_run systemctl show -P MainPID arkevent.service)
tb_run kill -9 "$pid"
tb_wait 10 sh -c "! kill -0 $pid"
tb_run systemctl stop arkevent.service
tb_wait_sh 10 "! systemctl is-active arkevent-$id-0-1.service"
tb_run systemctl start arkevent.service
assert_eq "$(tb_wait_run "$id")" Succeeded "a after the restart"
wait_count default/b $((b_before + 1))
wait_count default/c2 2
tb_run systemctl restart arkevent.service
tb_wait 10 curl -sf http://127.0.0.1:8092/healthz
assert_eq "$(count_of default/b)" $((b_before + 1)) "b fired once for the run"
assert_eq "$(tb_run sqlite3 /var/lib/arkevent/arkevent.db "SELECT count(*) FROM flow_output_fires WHERE upstream_run_id=$id")" 1 "fire records"

# A cycle is rejected at load time with file:line:column (every trigger on it is named and left
# out); the rest stays in effect.
cursor=$(tb_journal_cursor)
tb_write /etc/arkevent.d/cycle.yaml <<'YAML'
kind: ArkEvent
metadata: {name: c1-to-a}
spec:
  source: {type: flow-output, flow: c1}
  targets: [{pipeline: a}]
YAML
tb_run systemctl reload arkevent
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/cycle.yaml:4:" -u arkevent.service
assert_contains "$(tb_journal_after "$cursor" -u arkevent.service)" "cycle"
assert_eq "$(tb_api GET /api/v1/triggers/default/c1-to-a -o /dev/null -w '%{http_code}')" 404 "the cyclic trigger is not in effect"
assert_eq "$(tb_api GET /api/v1/triggers/default/on-failure | json 'd["name"]')" on-failure "triggers off the cycle stay"
log "ok"
