#!/usr/bin/env bash
# The D-Bus API dev.arkonis.ArkEvent1, driven with busctl and dbus-send: every method with its
# error cases (named errors), the introspection data against dbus/dev.arkonis.ArkEvent1.xml,
# per-trigger and per-run objects, the policy as an unprivileged caller, the signals a monitor
# sees during a run, and bus activation of a stopped daemon.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_run sh -c 'cat > /etc/arkevent.d/diamond.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/diamond.yaml"
tb_write /etc/arkevent.d/bus.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: hello}
spec:
  steps:
    - name: greet
      run: printf "hello %s" "$INPUT_WHO" > "$ARKEVENT_OUTPUT"
      inputs:
        who: "{{ .pipeline.input.who }}"
  output: "{{ .steps.greet.output }}"
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: slow}
spec:
  steps:
    - name: wait
      run: sleep 60
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: hook}
spec:
  source: {type: webhook}
  targets: [{pipeline: hello, input: {who: "{{ .trigger.body.who }}"}}]
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: once}
spec:
  source: {type: webhook}
  concurrencyPolicy: Forbid
  targets: [{pipeline: slow}]
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: paused}
spec:
  source: {type: webhook}
  suspended: true
  targets: [{pipeline: hello}]
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: nightly}
spec:
  source: {type: cron, cron: "0 3 * * *"}
  targets: [{pipeline: hello}]
YAML
tb_start_arkevent

DEST=dev.arkonis.ArkEvent1
OBJ=/dev/arkonis/ArkEvent1
IF=dev.arkonis.ArkEvent1.Manager
call() { tb_run busctl call "$DEST" "$OBJ" "$IF" "$@"; }
# The error name of a failing call: err METHOD DBUS-SEND-ARGS...
err() {
        local m=$1 out
        shift
        if out=$(tb_run dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IF.$m" "$@" 2>&1); then
                fail "$m $*: expected an error, got: $out"
        fi
        echo "$out"
}
assert_err() { # NAME METHOD ARGS...
        local name=$1 out
        shift
        out=$(err "$@")
        assert_contains "$out" "Error dev.arkonis.ArkEvent1.Error.$name" "$1 $2"
        echo "$out"
}

# ---- introspection: what the daemon serves is the contract -------------------------------------
tb_run busctl introspect --xml-interface "$DEST" "$OBJ" >"$TB_DIR/manager.xml"
hook_path=$(call ListTriggers | grep -o '/dev/arkonis/ArkEvent1/trigger/default_2fhook')
assert_eq "$hook_path" /dev/arkonis/ArkEvent1/trigger/default_2fhook "trigger object path"
tb_run busctl introspect --xml-interface "$DEST" "$hook_path" >"$TB_DIR/trigger.xml"
out=$(call StartRun ss default/hello '{"who": "bus"}')
run1=$(echo "$out" | awk '{print $2}')
tb_run busctl introspect --xml-interface "$DEST" "$OBJ/run/$run1" >"$TB_DIR/run.xml"
python3 - "$ARKEVENT_SOURCE_DIR/dbus/dev.arkonis.ArkEvent1.xml" "$TB_DIR/manager.xml" \
        "$TB_DIR/trigger.xml" "$TB_DIR/run.xml" <<'PY' || fail "introspection differs from the contract"
import sys, xml.etree.ElementTree as ET

def members(root):
    out = {}
    for i in root.findall("interface"):
        name = i.get("name")
        if not name.startswith("dev.arkonis."):
            continue
        ms = set()
        for m in i:
            if m.tag == "property":
                ann = {a.get("name"): a.get("value") for a in m.findall("annotation")}
                ms.add(("property", m.get("name"), m.get("type"), m.get("access"),
                        ann.get("org.freedesktop.DBus.Property.EmitsChangedSignal", "true")))
            elif m.tag in ("method", "signal"):
                args = tuple((a.get("type"), a.get("name"), a.get("direction", "out" if m.tag == "signal" else "in"))
                             for a in m.findall("arg"))
                ms.add((m.tag, m.get("name"), args))
        out[name] = ms
    return out

contract = members(ET.parse(sys.argv[1]).getroot())
served = {}
for f in sys.argv[2:]:
    served.update(members(ET.parse(f).getroot()))
ok = True
for iface in sorted(set(contract) | set(served)):
    a, b = contract.get(iface, set()), served.get(iface, set())
    for x in sorted(a - b, key=str):
        print("in the contract, not served:", iface, x); ok = False
    for x in sorted(b - a, key=str):
        print("served, not in the contract:", iface, x); ok = False
print("interfaces checked:", ", ".join(sorted(served)))
sys.exit(0 if ok else 1)
PY

# busctl tree shows the manager, each trigger and the runs.
tree=$(tb_run busctl tree --list "$DEST")
assert_contains "$tree" "/dev/arkonis/ArkEvent1/trigger/default_2fhook" "tree"
assert_contains "$tree" "/dev/arkonis/ArkEvent1/trigger/default_2fnightly" "tree"
assert_contains "$tree" "/dev/arkonis/ArkEvent1/run/$run1" "tree"

# ---- every method ------------------------------------------------------------------------------
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ" "$IF" NFlows)" "u 3" "NFlows"
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ" "$IF" NTriggers)" "u 5" "NTriggers"
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ" "$IF" NRunsQueued)" "u 0" "NRunsQueued"

flows=$(call ListFlows)
assert_contains "$flows" '"default" "diamond" "ArkFlow" 4' "ListFlows"
assert_contains "$flows" '"default" "hello" "ArkFlow" 1 "/etc/arkevent.d/bus.yaml"' "ListFlows"
flow=$(call GetFlow s default/diamond)
assert_contains "$flow" '\"dependsOn\":[\"split\"]' "GetFlow"
assert_err NotFound GetFlow string:default/ghost >/dev/null
assert_err InvalidArgument GetFlow string:a/b/c >/dev/null

triggers=$(call ListTriggers)
assert_contains "$triggers" '"default" "hook" "webhook" true "WebhookReady" "/dev/arkonis/ArkEvent1/trigger/default_2fhook"' "ListTriggers"
assert_contains "$triggers" '"default" "paused" "webhook" false "Suspended"' "ListTriggers"

# FireTrigger: the signature the cron timers use, (ss) -> ao.
out=$(call FireTrigger ss default/hook '{"who": "fire"}')
assert_contains "$out" 'ao 1 "/dev/arkonis/ArkEvent1/run/' "FireTrigger"
run2=$(echo "$out" | grep -o 'run/[0-9]*' | cut -d/ -f2)
assert_eq "$(tb_wait_run "$run2" 60)" Succeeded "fired run"
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ/run/$run2" dev.arkonis.ArkEvent1.Run Output)" 's "hello fire"' "run Output"
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ/run/$run2" dev.arkonis.ArkEvent1.Run Trigger)" 's "default/hook"' "run Trigger"
acts=$(tb_run busctl get-property "$DEST" "$OBJ/run/$run2" dev.arkonis.ArkEvent1.Run Activities)
assert_contains "$acts" "a(sssitt) 1 \"greet\" \"Succeeded\" \"arkevent-$run2-0-1.service\" 0" "run Activities"
assert_eq "$(tb_run busctl get-property "$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger FireCount)" "t 1" "FireCount"
last=$(tb_run busctl get-property "$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger LastFireUSec | awk '{print $2}')
[ "$last" -gt 1700000000000000 ] || fail "LastFireUSec: $last"
assert_eq "$(tb_run busctl get-property "$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger NextFireUSec)" "t 0" "NextFireUSec of a webhook"
assert_contains "$(tb_run busctl get-property "$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger WebhookURL)" '/triggers/default/hook/fire"' "WebhookURL"
props=$(tb_run busctl introspect "$DEST" "$OBJ/trigger/default_2fpaused" dev.arkonis.ArkEvent1.Trigger)
echo "$props" | grep -Eq '^\.Ready +property +b +false ' || fail "paused Ready: $props"

out=$(assert_err NotFound FireTrigger string:default/ghost string:)
assert_contains "$out" "No trigger default/ghost." "FireTrigger unknown"
out=$(assert_err InvalidArgument FireTrigger string:default/hook 'string:{"who": ')
assert_contains "$out" "not valid JSON" "FireTrigger bad JSON"
out=$(assert_err InvalidArgument FireTrigger string:default/hook 'string:[1]')
assert_contains "$out" "must be a JSON object" "FireTrigger array"
out=$(assert_err Suspended FireTrigger string:default/paused string:)
assert_contains "$out" "suspended" "FireTrigger suspended"
out=$(call FireTrigger ss default/once '')
slow=$(echo "$out" | grep -o 'run/[0-9]*' | cut -d/ -f2)
out=$(assert_err Refused FireTrigger string:default/once string:)
assert_contains "$out" "concurrencyPolicy: Forbid" "FireTrigger Forbid"

# Fire on the trigger's own object.
out=$(tb_run busctl call "$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger Fire s '{"who": "object"}')
run4=$(echo "$out" | grep -o 'run/[0-9]*' | cut -d/ -f2)
assert_eq "$(tb_wait_run "$run4" 60)" Succeeded "Trigger.Fire"
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ/run/$run4" dev.arkonis.ArkEvent1.Run Output)" 's "hello object"' "Trigger.Fire output"

# The cron trigger fires over the bus as well (what arkevent-cron@.service does).
out=$(call FireTrigger ss nightly '')
assert_contains "$out" 'ao 1 "/dev/arkonis/ArkEvent1/run/' "FireTrigger cron"

assert_err NotFound StartRun string:default/ghost string: >/dev/null
assert_err InvalidArgument StartRun string:default/hello 'string:"x"' >/dev/null

runs=$(call ListRuns ssu default/slow Running 0)
assert_contains "$runs" "a(tsssttto) 1 $slow \"default/slow\" \"Running\" \"default/once\"" "ListRuns filter"
assert_contains "$(call ListRuns ssu '' '' 2)" "a(tsssttto) 2 " "ListRuns limit"
out=$(assert_err InvalidArgument ListRuns string: string:Bogus uint32:0)
assert_contains "$out" "not a run state" "ListRuns bad state"

assert_contains "$(call GetRun t "$run2")" '\"state\":\"Succeeded\"' "GetRun"
out=$(assert_err NotFound GetRun uint64:99999)
assert_contains "$out" "No run 99999." "GetRun unknown"

call CancelRun t "$slow" >/dev/null
assert_eq "$(tb_wait_run "$slow" 30)" Cancelled "cancelled run"
assert_err AlreadyFinished CancelRun "uint64:$slow" >/dev/null
assert_err NotFound CancelRun uint64:99999 >/dev/null
# A run object's own Cancel.
out=$(call StartRun ss default/slow '')
slow2=$(echo "$out" | awk '{print $2}')
tb_run busctl call "$DEST" "$OBJ/run/$slow2" dev.arkonis.ArkEvent1.Run Cancel
assert_eq "$(tb_wait_run "$slow2" 30)" Cancelled "Run.Cancel"

call Reload
token=$(call GetTriggerToken s default/hook | awk '{print $2}' | tr -d '"')
assert_eq "${#token}" 64 "GetTriggerToken"
assert_eq "$token" "$(tb_run cat /var/lib/arkevent/tokens/default/hook)" "token file"
new=$(call RotateTriggerToken s default/hook | awk '{print $2}' | tr -d '"')
[ "$new" != "$token" ] || fail "RotateTriggerToken kept the token"
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" http://127.0.0.1:8092/triggers/default/hook/fire)" 401 "old token"
assert_err NotWebhook GetTriggerToken string:default/nightly >/dev/null
assert_err NotFound GetTriggerToken string:default/ghost >/dev/null

# SubmitResource: a valid document takes effect at once; a bad one is refused with line:column.
out=$(call SubmitResource s 'apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: submitted, namespace: team-b}
spec:
  steps:
    - name: one
      run: echo submitted
')
assert_eq "$out" 'a(sss) 1 "ArkFlow" "team-b" "submitted"' "SubmitResource"
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ" "$IF" NFlows)" "u 4" "NFlows after submit"
out=$(call StartRun ss team-b/submitted '')
assert_eq "$(tb_wait_run "$(echo "$out" | awk '{print $2}')" 60)" Succeeded "submitted flow runs"
out=$(assert_err InvalidArgument SubmitResource 'string:apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: broken}
spec:
  steps:
    - name: one
      runn: echo typo
')
assert_contains "$out" "7:7: error: unknown field 'runn' in a step" "SubmitResource line:column"
out=$(assert_err InvalidArgument SubmitResource 'string:apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: hello}
spec:
  steps: [{name: one, run: echo}]
')
assert_contains "$out" "already defined in /etc/arkevent.d/bus.yaml" "SubmitResource clash"
# It survives a restart (kept in the state directory).
tb_run systemctl restart arkevent.service
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ" "$IF" NFlows)" "u 4" "NFlows after restart"

# ---- the policy: reading is open, changing is not ----------------------------------------------
as_nobody() { tb_run setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
assert_contains "$(as_nobody busctl call "$DEST" "$OBJ" "$IF" ListFlows)" '"hello"' "nobody ListFlows"
assert_contains "$(as_nobody busctl get-property "$DEST" "$OBJ" "$IF" Version)" "s \"$TB_VERSION\"" "nobody Version"
assert_contains "$(as_nobody busctl get-property "$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger Ready)" "b true" "nobody trigger property"
assert_contains "$(as_nobody busctl introspect "$DEST" "$OBJ")" "FireTrigger" "nobody introspect"
if out=$(as_nobody dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IF.FireTrigger" string:default/hook string: 2>&1); then
        fail "nobody could fire: $out"
fi
assert_contains "$out" "org.freedesktop.DBus.Error.AccessDenied" "nobody FireTrigger"
if out=$(as_nobody dbus-send --system --print-reply --dest="$DEST" "$hook_path" dev.arkonis.ArkEvent1.Trigger.Fire string: 2>&1); then
        fail "nobody could call Trigger.Fire: $out"
fi
assert_contains "$out" "AccessDenied" "nobody Trigger.Fire"
for m in "StartRun string:default/hello string:" "CancelRun uint64:1" "Reload" "GetTriggerToken string:default/hook" "SubmitResource string:x"; do
        # shellcheck disable=SC2086
        if out=$(as_nobody dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IF".$m 2>&1); then
                fail "nobody could call $m: $out"
        fi
        assert_contains "$out" "AccessDenied" "nobody $m"
done

# Members of bus.adminGroup (default "arkevent") may change things; tokens stay root's.
tb_run groupadd --system arkevent
tb_run busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
gid=$(tb_run getent group arkevent | cut -d: -f3)
as_admin() { tb_run setpriv --reuid=nobody --regid=nogroup --groups="$gid" "$@"; }
out=$(as_admin busctl call "$DEST" "$OBJ" "$IF" FireTrigger ss default/hook '{"who": "admin"}')
assert_contains "$out" 'ao 1 ' "admin group FireTrigger"
if out=$(as_admin dbus-send --system --print-reply --dest="$DEST" "$OBJ" "$IF.GetTriggerToken" string:default/hook 2>&1); then
        fail "admin group read a token: $out"
fi
assert_contains "$out" "Error dev.arkonis.ArkEvent1.Error.AccessDenied: Access denied: GetTriggerToken is for root only." "admin GetTriggerToken"

# ---- signals during a run, as a monitor sees them ----------------------------------------------
tb_sh "timeout 60 busctl monitor --system $DEST >/tmp/monitor.txt 2>&1 & echo \$! >/tmp/monitor.pid"
tb_wait_sh 10 'grep -q "Monitoring bus message stream" /tmp/monitor.txt'
out=$(call StartRun ss default/diamond '{"n": 5}')
run3=$(echo "$out" | awk '{print $2}')
assert_eq "$(tb_wait_run "$run3" 60)" Succeeded "diamond over the bus"
tb_wait_sh 10 "grep -q 'Member=RunFinished' /tmp/monitor.txt"
# A reload announces the triggers' properties again.
call Reload
tb_wait_sh 10 "grep -q 'Path=/dev/arkonis/ArkEvent1/trigger/default_2fhook ' /tmp/monitor.txt"
tb_run cat /tmp/monitor.txt >"$TB_DIR/monitor.txt"
tb_sh 'kill "$(cat /tmp/monitor.pid)"'
tb_wait_sh 10 '! kill -0 "$(cat /tmp/monitor.pid)" 2>/dev/null'

python3 - "$run3" "$TB_DIR/monitor.txt" <<'PY' || fail "signals"
import re, sys
text = open(sys.argv[2]).read()
run = sys.argv[1]
blocks = text.split("\n\n")
def sig(member):
    return [b for b in blocks if "Type=signal" in b and ("Member=" + member) in b]
started = [b for b in sig("RunStarted") if "UINT64 %s;" % run in b]
done = [b for b in sig("ActivityCompleted") if "UINT64 %s;" % run in b]
finished = [b for b in sig("RunFinished") if "UINT64 %s;" % run in b]
changed = [b for b in sig("PropertiesChanged") if "Path=/dev/arkonis/ArkEvent1/run/%s\n" % run in b + "\n" or "Path=/dev/arkonis/ArkEvent1/run/%s " % run in b]
assert len(started) == 1, "RunStarted: %d" % len(started)
assert len(done) == 4, "ActivityCompleted: %d" % len(done)
assert len(finished) == 1 and 'STRING "Succeeded";' in finished[0], "RunFinished"
names = [re.search(r'STRING "(\w+)";\s+STRING "Succeeded"', b).group(1) for b in done]
assert names[0] == "split" and names[-1] == "join", names
assert len(changed) >= 4, "PropertiesChanged on the run object: %d" % len(changed)
mgr = [b for b in sig("PropertiesChanged") if "NRunsActive" in b]
assert mgr, "no PropertiesChanged for NRunsActive"
print("signals: RunStarted 1, ActivityCompleted", len(done), ", RunFinished 1, run PropertiesChanged", len(changed))
PY

# ---- QueueFull: with room for one unfinished run, a second is refused ---------------------------
tb_write /etc/arkevent/arkevent.yaml <<'YAML'
engine:
  maxQueuedRuns: 1
YAML
tb_run systemctl restart arkevent.service
out=$(call StartRun ss default/slow '')
slow3=$(echo "$out" | awk '{print $2}')
out=$(assert_err QueueFull FireTrigger string:default/hook string:)
assert_contains "$out" "the run queue is full" "FireTrigger QueueFull"
assert_err QueueFull StartRun string:default/hello string: >/dev/null
assert_eq "$(tb_run busctl get-property "$DEST" "$OBJ" "$IF" NRunsActive)" "u 1" "NRunsActive"
call CancelRun t "$slow3" >/dev/null
assert_eq "$(tb_wait_run "$slow3" 30)" Cancelled "queue drained"
tb_run rm /etc/arkevent/arkevent.yaml
tb_run systemctl restart arkevent.service

# ---- bus activation: a call starts a stopped daemon --------------------------------------------
tb_run systemctl stop arkevent.service
assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "stopped"
assert_contains "$(call ListFlows)" '"hello"' "ListFlows activates the daemon"
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "activated"
log "bus API checked"
