#!/usr/bin/env bash
# arkeventctl as a D-Bus client: every verb, its output as text and as --json, exit codes, the
# live progress of fire --wait on a terminal and as plain lines, logs -f, and the message when the
# daemon cannot be reached.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_run sh -c 'cat > /etc/arkevent.d/diamond.yaml' <"$ARKEVENT_SOURCE_DIR/conf/examples/diamond.yaml"
tb_write /etc/arkevent.d/ctl.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: hello, namespace: team}
spec:
  steps:
    - name: greet
      inputs:
        who: "{{ .pipeline.input.who }}"
      run: printf 'hello %s\n' "$INPUT_WHO"
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: ticker, namespace: team}
spec:
  steps:
    - name: tick
      run: for i in 1 2 3; do echo "tick $i"; sleep 0.3; done
    - name: fail
      dependsOn: [tick]
      run: echo broken >&2; exit 3
---
apiVersion: arkonis.dev/v1alpha1
kind: ArkEvent
metadata: {name: greeter, namespace: team}
spec:
  source: {type: webhook}
  targets: [{pipeline: hello, input: {who: "{{ .trigger.body.who }}"}}]
YAML
tb_start_arkevent

ctl() { tb_run arkeventctl "$@"; }
# Exit code of a command inside: rc CMD...
rc() {
        local r=0
        tb_run "$@" >/dev/null 2>&1 || r=$?
        echo "$r"
}

# --help for the program and every verb.
verbs=$(ctl --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 && $1 != "Commands:" {print $1}')
[ "$(echo "$verbs" | wc -l)" -ge 15 ] || fail "verbs in --help: $verbs"
for v in $verbs; do
        out=$(ctl "$v" --help) || fail "arkeventctl $v --help failed"
        assert_contains "$out" "arkeventctl $v" "$v --help"
done
assert_eq "$(rc arkeventctl frobnicate)" 2 "unknown verb"
assert_eq "$(rc arkeventctl show nope)" 2 "bad run id"

# list-flows and list-triggers: tables, and --json.
out=$(ctl list-flows)
echo "$out" | grep -Eq '^NAMESPACE +NAME +KIND +STEPS +FILE$' || fail "list-flows header: $out"
echo "$out" | grep -Eq '^team +ticker +ArkFlow +2 +/etc/arkevent.d/ctl.yaml$' || fail "list-flows row: $out"
assert_contains "$out" "3 flows listed." "list-flows footer"
assert_not_contains "$out" $'\x1b[' "no colour without a terminal"
assert_eq "$(ctl list-flows --no-legend | wc -l)" 3 "--no-legend"
assert_eq "$(ctl list-flows --json | json '[f["name"] for f in d if f["namespace"] == "team"]')" "['hello', 'ticker']" "list-flows --json"
assert_eq "$(ctl --json list-flows | json 'len(d)')" 3 "--json before the verb"
out=$(ctl list-triggers)
echo "$out" | grep -Eq '^team +greeter +webhook +yes +WebhookReady$' || fail "list-triggers: $out"
assert_eq "$(ctl list-triggers --json | json '[t["object"] for t in d if t["name"] == "greeter"][0]')" \
        /dev/arkonis/ArkEvent1/trigger/team_2fgreeter "list-triggers --json"

# fire --wait without a terminal: one plain line per event, exit 0 when the run succeeded.
out=$(ctl fire team/greeter --input '{"who": "ctl"}' --wait)
assert_contains "$out" "activity greet Succeeded" "fire --wait"
echo "$out" | grep -Eq '^run [0-9]+: Succeeded$' || fail "fire --wait end: $out"
assert_contains "$out" "output: hello ctl" "fire --wait output"
run1=$(echo "$out" | sed -n 's/^run \([0-9]*\): Succeeded$/\1/p')

# --input @FILE, --json.
tb_write_file /tmp/input.json '{"who": "file"}'
out=$(ctl fire team/greeter --input @/tmp/input.json --wait --json)
assert_eq "$(echo "$out" | json 'd["output"]')" "hello file" "fire --input @FILE --json"
assert_eq "$(ctl fire team/greeter --json | json 'd["runs"][0]["object"].startswith("/dev/arkonis/ArkEvent1/run/")')" True "fire --json"

# A failing run: exit 1, and the live view on a terminal (script(1) gives it a pty).
assert_eq "$(rc arkeventctl start team/ticker --wait)" 1 "start --wait of a failing flow"
tb_run script -qefc 'arkeventctl start team/ticker --wait' /dev/null >"$TB_DIR/tty.txt" 2>&1 || true
tty=$(cat "$TB_DIR/tty.txt")
assert_contains "$tty" $'\x1b[' "colour on a terminal"
assert_contains "$tty" "✓" "progress marks on a terminal"
assert_contains "$tty" "tick" "activity names on a terminal"
assert_contains "$tty" "Failed" "failure on a terminal"

# start, runs, show, logs.
out=$(ctl start default/diamond --input '{"n": 5}' --wait)
assert_contains "$out" "output: 10,15" "start --wait output"
diamond=$(echo "$out" | sed -n 's/^run \([0-9]*\): Succeeded$/\1/p')
out=$(ctl runs --flow default/diamond)
echo "$out" | grep -Eq "^$diamond +default/diamond +Succeeded +- +20[0-9-]+ [0-9:]+ UTC +[0-9.]+s$" || fail "runs: $out"
assert_eq "$(ctl runs --state Failed --json | json '[r["flow"] for r in d]')" "['team/ticker', 'team/ticker']" "runs --state --json"
assert_eq "$(ctl runs --limit 1 --json | json 'len(d)')" 1 "runs --limit"
assert_eq "$(rc arkeventctl runs --state Bogus)" 1 "runs with a bad state"
out=$(ctl show "$diamond")
assert_contains "$out" "State: Succeeded" "show"
echo "$out" | grep -Eq "^join +Succeeded +0 +[0-9]+ms +arkevent-$diamond-3-1.service" || fail "show activities: $out"
assert_eq "$(ctl show "$diamond" --json | json 'd["output"]')" "10,15" "show --json"
assert_eq "$(rc arkeventctl show 99999)" 4 "show of an unknown run"
tb_wait_sh 10 "arkeventctl logs $diamond | grep -q ': 15$'"
out=$(ctl logs "$diamond")
assert_contains "$out" "split: 5" "logs"
assert_contains "$out" "right: 15" "logs"
assert_eq "$(ctl logs "$diamond" --json | json 'd["activity"]' 2>/dev/null | head -1 || true)" "" "logs --json is one object a line"
assert_contains "$(ctl logs "$diamond" --json | head -1)" '"message"' "logs --json"

# logs -f follows a running run and ends with it.
out=$(ctl start team/ticker)
ticker=$(echo "$out" | sed -n 's/^Started run \([0-9]*\)\.$/\1/p')
out=$(tb_run timeout 30 arkeventctl logs -f "$ticker")
assert_contains "$out" "tick: tick 3" "logs -f"
assert_contains "$out" "fail: broken" "logs -f to the end"

# cancel.
tb_write /etc/arkevent.d/slow.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: slow}
spec:
  steps: [{name: wait, run: sleep 60}]
YAML
ctl reload
out=$(ctl start slow --json)
slow=$(echo "$out" | json 'd["runs"][0]["id"]')
ctl cancel "$slow"
assert_eq "$(tb_wait_run "$slow" 30)" Cancelled "cancel"
assert_eq "$(rc arkeventctl cancel "$slow")" 1 "cancel of a finished run"
assert_eq "$(rc arkeventctl cancel 99999)" 4 "cancel of an unknown run"

# status, like systemctl status.
out=$(ctl status team/greeter)
assert_contains "$out" "● team/greeter - webhook trigger" "status"
assert_contains "$out" "Ready: yes (WebhookReady: waiting for webhook POST)" "status"
assert_contains "$out" "Targets: hello" "status"
assert_contains "$out" "(fired 3 times)" "status fire count"
assert_contains "$out" "Recent runs:" "status runs"
echo "$out" | grep -Eq "^$run1 +team/hello +Succeeded" || fail "status recent runs: $out"
assert_eq "$(ctl status team/greeter --json | json '(d["FireCount"], len(d["recentRuns"]))')" "(3, 3)" "status --json"
assert_eq "$(rc arkeventctl status team/ghost)" 4 "status of an unknown trigger"
assert_eq "$(rc arkeventctl fire team/ghost)" 4 "fire of an unknown trigger"

# token, api-token.
t1=$(ctl token team/greeter)
assert_eq "$t1" "$(tb_run cat /var/lib/arkevent/tokens/team/greeter)" "token"
t2=$(ctl token team/greeter --rotate)
[ "$t1" != "$t2" ] || fail "token --rotate"
assert_eq "$(ctl token team/greeter --json | json 'd["token"]')" "$t2" "token --json"
assert_eq "$(ctl api-token)" "$(tb_api_token)" "api-token"

# graph: Graphviz dot of the DAG.
out=$(ctl graph default/diamond)
assert_contains "$out" 'digraph "default/diamond" {' "graph"
assert_contains "$out" '"split" -> "left";' "graph edge"
assert_contains "$out" '"right" -> "join";' "graph edge"
assert_eq "$(rc arkeventctl graph default/ghost)" 4 "graph of an unknown flow"

# validate and submit.
tb_write /tmp/bad.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: bad}
spec:
  steps:
    - name: one
      runn: echo
YAML
assert_eq "$(rc arkeventctl validate /tmp/bad.yaml)" 1 "validate of a bad file"
assert_contains "$(tb_run arkeventctl validate /tmp/bad.yaml 2>&1 || true)" "/tmp/bad.yaml:7:7: error: unknown field 'runn'" "validate"
assert_eq "$(tb_run arkeventctl validate --json /tmp/bad.yaml | json '[(p["line"], p["column"]) for p in d["problems"] if "runn" in p["message"]]' || true)" "[(7, 7)]" "validate --json"
out=$(tb_run arkeventctl submit /tmp/bad.yaml 2>&1 || true)
assert_contains "$out" "/tmp/bad.yaml:7:7: error: unknown field 'runn'" "submit of a bad file"
tb_write /tmp/good.yaml <<'YAML'
apiVersion: arkonis.dev/v1alpha1
kind: ArkFlow
metadata: {name: good, namespace: team}
spec:
  steps: [{name: one, run: echo good}]
YAML
assert_eq "$(ctl submit /tmp/good.yaml)" "Applied ArkFlow team/good." "submit"
assert_contains "$(ctl list-flows)" "good" "submitted flow listed"

# As nobody: reading works, changing is refused (exit 5).
as_nobody() { tb_run setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
assert_contains "$(as_nobody arkeventctl list-flows)" "diamond" "nobody list-flows"
assert_contains "$(as_nobody arkeventctl runs)" "default/diamond" "nobody runs"
r=0
out=$(as_nobody arkeventctl fire team/greeter 2>&1) || r=$?
assert_eq "$r" 5 "nobody fire exit code"
assert_contains "$out" "needs root" "nobody fire message"

# Bash completion: verbs, and flows, triggers and runs from the daemon.
complete_words() { # WORDS... (the last one is being completed)
        tb_run bash -c 'source /usr/share/bash-completion/completions/arkeventctl
                COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _arkeventctl
                printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}
assert_eq "$(complete_words arkeventctl li | sort | tr '\n' ' ')" "list-flows list-triggers " "complete verbs"
assert_contains "$(complete_words arkeventctl fire team/)" "team/greeter" "complete triggers"
assert_contains "$(complete_words arkeventctl graph default/)" "default/diamond" "complete flows"
assert_contains "$(complete_words arkeventctl show '')" "$diamond" "complete runs"
assert_contains "$(complete_words arkeventctl runs --state S)" "Succeeded" "complete states"
assert_contains "$(complete_words arkeventctl fire --)" "--wait" "complete options"

# The man pages are installed and render.
for page in arkeventctl.1 arkeventd.8 arkevent.d.5 arkevent.yaml.5 dev.arkonis.ArkEvent1.5 arkevent-rest.7; do
        name=${page%.*}
        out=$(tb_run env MANWIDTH=100 MAN_KEEP_FORMATTING= man --no-hyphenation "${page##*.}" "$name" 2>&1) ||
                fail "man ${page##*.} $name: $out"
        assert_contains "$out" "NAME" "man $name"
done
assert_contains "$(tb_run env MANWIDTH=200 man 5 dev.arkonis.ArkEvent1)" "FireTrigger(in  s trigger," "bus API page"
assert_contains "$(tb_run env MANWIDTH=200 man 1 arkeventctl)" "The daemon cannot be reached" "exit codes documented"

# reload, and the daemon not reachable: exit 3 with a clear message.
assert_eq "$(rc arkeventctl reload)" 0 "reload"
r=0
out=$(tb_run env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/nothing-here arkeventctl list-flows 2>&1) || r=$?
assert_eq "$r" 3 "no bus: exit code"
assert_contains "$out" "Failed to connect to the system bus" "no bus: message"
tb_run systemctl stop arkevent.socket arkevent.service
tb_run sh -c 'mv /usr/share/dbus-1/system-services/dev.arkonis.ArkEvent1.service /tmp/' 2>/dev/null ||
        tb_run sh -c 'mount -t tmpfs tmpfs /usr/share/dbus-1/system-services'
tb_run busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
r=0
out=$(tb_run arkeventctl list-flows 2>&1) || r=$?
assert_eq "$r" 3 "daemon gone: exit code"
assert_contains "$out" "arkevent is not reachable on the system bus" "daemon gone: message"
log "arkeventctl checked"
