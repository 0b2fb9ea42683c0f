#!/usr/bin/env bash
# Failure and skip propagation, if:, retries, activity and flow timeouts, cancel, MemoryMax,
# CPUQuota on the unit, shell metacharacters in the input, and steps run as another user (User=).
# The runs go in parallel.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/flows.yaml <<'YAML'
kind: ArkFlow
metadata: {name: failing}
spec:
  steps:
    - {name: a, run: "exit 3"}
    - {name: b, dependsOn: [a], run: "echo never"}
    - {name: c, run: "sleep 1; echo c"}
---
kind: ArkFlow
metadata: {name: cond}
spec:
  steps:
    - {name: gate, run: "echo no"}
    - {name: maybe, dependsOn: [gate], if: "{{ .steps.gate.output }}", run: "echo maybe"}
    - {name: after, dependsOn: [maybe], run: "echo after"}
---
kind: ArkFlow
metadata: {name: retry}
spec:
  steps:
    - name: flaky
      retries: {limit: 3, backoffSeconds: 0}
      run: |
        n=$(cat count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count
        echo "attempt $n"
        [ "$n" -ge 3 ]
---
kind: ArkFlow
metadata: {name: slow-step}
spec:
  steps:
    - {name: sleeper, timeoutSeconds: 1, run: "sleep 30"}
---
kind: ArkFlow
metadata: {name: slow-flow}
spec:
  timeoutSeconds: 2
  steps:
    - {name: sleeper, run: "sleep 30"}
---
kind: ArkFlow
metadata: {name: cancel-me}
spec:
  steps:
    - {name: sleeper, run: "sleep 30"}
---
kind: ArkFlow
metadata: {name: hog}
spec:
  steps:
    - name: eat
      memoryLimit: 64Mi
      run: python3 -c "b = b'x' * (512 * 1024 * 1024); import time; time.sleep(2); print(len(b))"
---
kind: ArkFlow
metadata: {name: quota}
spec:
  steps:
    - {name: busy, cpuLimit: "500m", run: "sleep 3"}
---
kind: ArkFlow
metadata: {name: echo}
spec:
  steps:
    - name: echo
      inputs: {x: "{{ .pipeline.input.x }}"}
      run: printf '%s' "${INPUT_X}" > "$ARKEVENT_OUTPUT"; ls
    - name: literal
      command: {entrypoint: /bin/echo, arguments: ['$HOME ${INPUT_X} $$ \ it''s']}
---
kind: ArkFlow
metadata: {name: as-user}
spec:
  steps:
    - {name: root-first, run: "echo by-root > shared"}
    - name: nobody
      dependsOn: [root-first]
      user: nobody
      run: |
        id -un; cat shared; echo mine > mine
        cat "$ARKEVENT_INPUT"; printf 'out-%s' "$(id -un)" > "$ARKEVENT_OUTPUT"
    - name: stdout-only
      dependsOn: [nobody]
      user: nobody
      run: echo "$(id -un) $(cat mine)"
    - {name: root-after, dependsOn: [stdout-only], run: "stat -c %U mine; cat mine"}
    - name: nobody-else
      user: no-such-user-here
      dependsOn: [root-after]
      run: "true"
YAML
tb_start_arkevent

start() { tb_api POST /api/v1/runs -d "$1" | json 'd["id"]'; }
weird='$(touch pwned) `touch pwned2`; echo x > pwned3 && rm -rf / | cat; '"'"'" \ %s {{ .x }}'
weird_json=$(python3 -c 'import json,sys; print(json.dumps({"flow": "echo", "input": {"x": sys.argv[1]}}))' "$weird")

r_fail=$(start '{"flow": "failing"}')
r_cond=$(start '{"flow": "cond"}')
r_retry=$(start '{"flow": "retry"}')
r_step=$(start '{"flow": "slow-step"}')
r_flow=$(start '{"flow": "slow-flow"}')
r_cancel=$(start '{"flow": "cancel-me"}')
r_hog=$(start '{"flow": "hog"}')
r_quota=$(start '{"flow": "quota"}')
r_echo=$(start "$weird_json")
r_user=$(start '{"flow": "as-user", "input": {"k": "v"}}')

# CPUQuota= on the running unit.
tb_wait 20 systemctl is-active "arkevent-$r_quota-0-1.service"
assert_eq "$(tb_run systemctl show -P CPUQuotaPerSecUSec "arkevent-$r_quota-0-1.service")" 500ms "CPUQuotaPerSecUSec"
assert_eq "$(tb_run systemctl show -P Slice "arkevent-$r_quota-0-1.service")" arkevent.slice "Slice"

if ! tb_run grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        tb_wait 20 systemctl is-active "arkevent-$r_hog-0-1.service"
        hog_memory_max=$(tb_run systemctl show -P MemoryMax "arkevent-$r_hog-0-1.service")
fi

# Cancel while running.
tb_wait 20 systemctl is-active "arkevent-$r_cancel-0-1.service"
assert_eq "$(tb_api DELETE "/api/v1/runs/$r_cancel" -o /dev/null -w '%{http_code}')" 202 "DELETE"

get() { tb_api GET "/api/v1/runs/$1"; }
act() { get "$1" | json "[(a['name'], a['state']) for a in d['activities']]"; }

assert_eq "$(tb_wait_run "$r_fail")" Failed "failing run"
assert_eq "$(act "$r_fail")" "[('a', 'Failed'), ('b', 'Skipped'), ('c', 'Succeeded')]" "failing activities"
assert_eq "$(get "$r_fail" | json 'd["activities"][0]["exitCode"]')" 3 "exit code"
assert_contains "$(get "$r_fail" | json 'd["activities"][0]["reason"]')" "exited with status 3"
assert_contains "$(get "$r_fail" | json 'd["activities"][1]["reason"]')" "activity a failed"

assert_eq "$(tb_wait_run "$r_cond")" Succeeded "cond run"
assert_eq "$(act "$r_cond")" "[('gate', 'Succeeded'), ('maybe', 'Skipped'), ('after', 'Succeeded')]" "cond activities"

assert_eq "$(tb_wait_run "$r_retry")" Succeeded "retry run"
assert_eq "$(get "$r_retry" | json 'd["activities"][0]["attempts"]')" 3 "attempts"
assert_eq "$(get "$r_retry" | json '[t["state"] for t in d["activities"][0]["attemptList"]]')" "['Failed', 'Failed', 'Succeeded']" "attempt list"
assert_eq "$(get "$r_retry" | json 'd["activities"][0]["output"]')" "attempt 3" "retry output"

assert_eq "$(tb_wait_run "$r_step")" Failed "activity timeout run"
assert_eq "$(get "$r_step" | json 'd["activities"][0]["state"]')" TimedOut "activity timeout"
assert_eq "$(get "$r_step" | json 'd["activities"][0]["result"]')" timeout "unit result"

assert_eq "$(tb_wait_run "$r_flow")" TimedOut "flow timeout run"
assert_contains "$(get "$r_flow" | json 'd["error"]')" "timed out after 2s"

assert_eq "$(tb_wait_run "$r_cancel")" Cancelled "cancelled run"
assert_eq "$(get "$r_cancel" | json 'd["activities"][0]["state"]')" Cancelled "cancelled activity"
assert_eq "$(tb_run systemctl is-active "arkevent-$r_cancel-0-1.service" || true)" inactive "unit after cancel"

# MemoryMax= needs the memory controller in the sandbox's cgroup2 tree; on hosts that keep it in
# a cgroup v1 hierarchy systemd can only record the limit on the unit.
if tb_run grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        assert_eq "$(tb_wait_run "$r_hog")" Failed "memory hog run"
        assert_eq "$(get "$r_hog" | json 'd["activities"][0]["result"]')" oom-kill "memory hog result"
        assert_contains "$(get "$r_hog" | json 'd["activities"][0]["reason"]')" "memory limit"
else
        log "no memory controller in this host's cgroup2 tree: checked the unit's MemoryMax only"
        assert_eq "$hog_memory_max" 67108864 "MemoryMax"
        tb_wait_run "$r_hog" >/dev/null
fi

assert_eq "$(tb_wait_run "$r_quota")" Succeeded "quota run"

assert_eq "$(tb_wait_run "$r_echo")" Succeeded "echo run"
out=$(get "$r_echo" | json 'd["activities"][0]["output"]')
assert_eq "$out" "$weird" "payload with shell metacharacters"
assert_eq "$(get "$r_echo" | json 'd["activities"][1]["output"]')" '$HOME ${INPUT_X} $$ \ it'"'"'s' \
        "command arguments reach the command as written"
ws=$(tb_run ls "/var/lib/arkevent/runs/$r_echo/workspace")
assert_not_contains "$ws" pwned "workspace"
# As another user (User=): the step reaches its workspace (given to it, root's files
# still readable), its own input copy and its output; root steps still see what it left; an
# unknown user fails its step with a clear reason.
assert_eq "$(tb_wait_run "$r_user")" Failed "as-user run"
acts=$(get "$r_user")
assert_eq "$(json '[(a["name"], a["state"]) for a in d["activities"]]' <<<"$acts")" \
        "[('root-first', 'Succeeded'), ('nobody', 'Succeeded'), ('stdout-only', 'Succeeded'), ('root-after', 'Succeeded'), ('nobody-else', 'Failed')]" "states"
assert_eq "$(json 'd["activities"][1]["output"]' <<<"$acts")" "out-nobody" "output file written as nobody"
assert_eq "$(json 'd["activities"][2]["output"]' <<<"$acts")" "nobody mine" "standard output captured as nobody"
assert_eq "$(json 'd["activities"][3]["output"]' <<<"$acts")" "nobody
mine" "root step sees the file nobody made"
assert_contains "$(json 'd["activities"][4]["reason"]' <<<"$acts")" "user 'no-such-user-here' does not exist" "unknown user"
assert_contains "$(tb_journal -u "arkevent-$r_user-1-1.service" -o cat)" 'by-root' "nobody read root's file"
assert_contains "$(tb_journal -u "arkevent-$r_user-1-1.service" -o cat)" '{"k":"v"}' "nobody read its input"
assert_eq "$(tb_run stat -c %a /var/lib/arkevent/runs/$r_echo)" 700 "a run without user steps stays root's alone"
assert_eq "$(tb_run stat -c %a "/var/lib/arkevent/runs/$r_user/meta/input.json")" 600 "input.json is root's"
assert_eq "$(tb_run stat -c %U:%a "/var/lib/arkevent/runs/$r_user/meta/1.input.json")" nobody:600 "the user's own input copy"

# Cancelled the moment it starts, whatever point of its start the cancel meets (before the unit
# exists, before the step's command does): each run still ends Cancelled, promptly.
for i in 1 2 3 4 5 6 7 8; do
        r=$(start '{"flow": "cancel-me"}')
        tb_api DELETE "/api/v1/runs/$r" -o /dev/null
        assert_eq "$(tb_wait_run "$r" 20)" Cancelled "run $r cancelled as its unit started"
done

# Failed units stay loaded only until their result is recorded.
tb_wait_sh 20 "! systemctl list-units --all --no-legend --state=failed 'arkevent-*' | grep -q ."
log "ok"
