#!/usr/bin/env bash
# AkoFlow workflows: the seed's Python example as written (only the URL changed), 400s with
# line:column, runtimes (mapped, missing, unknown), limits and mountPath on the units, run: and
# command: forms, artifacts (sha256, download, traversal refused), ephemeral storage, the
# monitoring routes, activity logs, the event stream of a run, and workflow files.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent/fake-apptainer <<'SH'
#!/bin/sh
# Stands in for apptainer: records how it was called, then runs the command after the image.
echo "$@" > /run/fake-apptainer.args
shift # exec
while [ $# -gt 0 ]; do
        case "$1" in
        --pwd | --bind) shift 2 ;;
        *) shift; break ;;
        esac
done
exec "$@"
SH
tb_run chmod 755 /etc/arkevent/fake-apptainer
tb_write /etc/arkevent/arkevent.yaml <<'YAML'
api:
  workflowsRequireToken: false
engine:
  # Small, so that a burst below queues activities behind the units in flight.
  maxUnitsInFlight: 3
runtimes:
  sdumont: apptainer
  hostroot: systemd
  fake:
    type: apptainer
    binary: /etc/arkevent/fake-apptainer
YAML
tb_run mkdir -p /var/tmp/data
tb_write_file /var/tmp/data/in.txt "from the volume"
tb_start_arkevent
WS=/var/lib/arkevent/runs

# ---- the seed's example, as written, only the URL changed --------------------------------------
out=$(tb_run python3 - <<'PY'
import yaml
import json
import base64
import requests
# Define workflow YAML configuration as a string
workflow_yaml = """
name: p-inference-nemo
spec:
  runtime: "sdumont"
  image: "/scratch/.../.../p-inference-nemo/sifs/p-inference-nemo.sif"
  storagePolicy:
    type: default
  webhooks:
    - name: "inference-examples"
      url: "https://myhost.com/mypath/mywebhook"
  volumes:
    - /data-akoflow/sifs/:/scratch/.../.../p-inference-nemo/sifs
    - /data-akoflow/akf-wine-singularity/:/scratch/.../.../p-inference-nemo/akf-wine-sdumont
  mountPath: "/scratch/.../.../p-inference-nemo/akf-wine-sdumont"
  activities:
    - name: inference-examples
      run: |
        echo "Running inference-examples"
        conda run -n tutorial mlflow run . --env-manager=local
      cpuLimit: 1
"""
# Encode YAML content in Base64 format
encoded_yaml = base64.b64encode(workflow_yaml.encode("utf-8")).decode("utf-8")
API_URL = "http://127.0.0.1:8092/workflows"
HEADERS = {
    "Content-Type": "application/json",
}
# Prepare request payload
payload = {
    "workflow": encoded_yaml
}
# Send API request
response = requests.post(API_URL, headers=HEADERS, json=payload)
# Output response
print("Response Status Code:", response.status_code)
print("Response Body:", response.json())
PY
)
log "$out"
assert_contains "$out" "Response Status Code: 202"
assert_contains "$out" "'name': 'p-inference-nemo'"
assert_contains "$out" "'message': 'workflow p-inference-nemo accepted as run"
seed=$(echo "$out" | sed -n "s/.*'id': \([0-9]*\).*/\1/p")
[ -n "$seed" ] || fail "no id in the answer"
assert_contains "$out" "'status': '"
assert_eq "$(tb_wait_run "$seed" 60)" Failed "seed workflow without apptainer"
w=$(tb_curl "http://127.0.0.1:8092/workflows/$seed")
assert_contains "$(echo "$w" | json 'd["activities"][0]["reason"]')" "runtime 'sdumont' (apptainer): apptainer not found"
# runs.raw_yaml holds the submission byte for byte.
raw=$(tb_run python3 -c 'import sqlite3,sys; print(sqlite3.connect("/var/lib/arkevent/arkevent.db").execute("select raw_yaml from runs where id=?", (int(sys.argv[1]),)).fetchone()[0], end="")' "$seed")
assert_contains "$raw" 'runtime: "sdumont"'
assert_contains "$raw" 'conda run -n tutorial mlflow run . --env-manager=local'

# ---- bad input: 400 with line:column ------------------------------------------------------------
post() { tb_curl -H 'Content-Type: application/json' -w '\n%{http_code}' -d "$1" http://127.0.0.1:8092/workflows; }
b64() { printf '%s' "$1" | base64 -w0; }
resp=$(post '{"workflow": "bm90IGJhc2U2NA=@@"}')
assert_eq "$(echo "$resp" | tail -n1)" 400 "bad base64"
assert_contains "$(echo "$resp" | head -n1)" "not valid base64 at 1:16 (offset 15)"
assert_eq "$(echo "$resp" | head -n1 | json '(d["errors"][0]["line"], d["errors"][0]["column"])')" "(1, 16)"
resp=$(post '{"workflow": "bmFtZTogeA\nbm90!"}')
assert_eq "$(echo "$resp" | tail -n1)" 400 "bad base64, second line"
assert_contains "$(echo "$resp" | head -n1)" "at 2:5 (offset 15): not a base64 character"
resp=$(post '{"nope": 1}')
assert_eq "$(echo "$resp" | tail -n1)" 400 "no workflow field"
resp=$(post "{\"workflow\": \"$(b64 $'name: x\nspec:\n  activities:\n    - name: a\n      run: [unclosed\n')\"}")
assert_eq "$(echo "$resp" | tail -n1)" 400 "bad YAML"
body=$(echo "$resp" | head -n1)
log "bad YAML: $body"
assert_eq "$(echo "$body" | json '(d["errors"][0]["line"] > 0, d["errors"][0]["column"] > 0)')" "(True, True)"
resp=$(post "{\"workflow\": \"$(b64 $'name: x\nspec:\n  activities:\n    - name: a\n      run: echo\n      cpuLimt: 1\n    - name: b\n      dependsOn: [ghost]\n      run: echo\n')\"}")
assert_eq "$(echo "$resp" | tail -n1)" 400 "invalid spec"
body=$(echo "$resp" | head -n1)
log "invalid spec: $body"
assert_eq "$(echo "$body" | json '[(e["line"], e["column"]) for e in d["errors"]]')" "[(6, 7), (8, 19)]"
assert_contains "$body" "cpuLimit"
assert_contains "$(echo "$body" | json 'd["error"]')" "2 problems, first at 6:7"
resp=$(post "{\"workflow\": \"$(b64 $'name: x\nspec:\n  runtime: kubernetes\n  activities:\n    - name: a\n      run: echo\n')\"}")
assert_eq "$(echo "$resp" | tail -n1)" 400 "unknown runtime"
body=$(echo "$resp" | head -n1)
assert_eq "$(echo "$body" | json '(d["errors"][0]["line"], d["errors"][0]["column"])')" "(3, 12)"
assert_contains "$body" "unknown runtime 'kubernetes' (known: local, systemd, apptainer, singularity, sdumont, hostroot, fake"

submit() { # YAML on stdin; prints the id
        local y resp
        y=$(base64 -w0)
        resp=$(post "{\"workflow\": \"$y\"}")
        [ "$(echo "$resp" | tail -n1)" = 202 ] || fail "submit: $resp"
        echo "$resp" | head -n1 | json 'd["id"]'
}

# ---- limits, mountPath, volumes, run: and command:, artifacts -----------------------------------
id=$(submit <<'YAML'
name: shapes
spec:
  mountPath: /var/tmp/akf/work
  volumes:
    - /var/tmp/data:/var/tmp/akf/data
  activities:
    - name: hold
      cpuLimit: 0.5
      memoryLimit: 64Mi
      run: |
        pwd > where.txt
        echo "$ARKEVENT_WORKSPACE" > env.txt
        cat /var/tmp/akf/data/in.txt > copied.txt
        mkdir -p out/deep && echo artifact > out/deep/result.txt
        ln -s /etc/passwd escape
        echo "hold is holding"
        while [ ! -e release ]; do sleep 0.1; done
    - name: cmd
      dependsOn: [hold]
      command:
        entrypoint: /bin/sh
        arguments: ["-c", "echo from-command > cmd.txt; echo command-done"]
YAML
)
log "shapes: run $id"
unit=arkevent-$id-0-1.service
tb_wait 30 test -e "$WS/$id/workspace/out/deep/result.txt"
props=$(tb_run systemctl show -p CPUQuotaPerSecUSec -p MemoryMax -p WorkingDirectory "$unit")
assert_contains "$props" "CPUQuotaPerSecUSec=500ms"
assert_contains "$props" "MemoryMax=67108864"
assert_contains "$props" "WorkingDirectory=!/var/tmp/akf/work"
tb_run touch "$WS/$id/workspace/release"
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "shapes"
assert_eq "$(tb_run cat "$WS/$id/workspace/where.txt")" /var/tmp/akf/work "mountPath is the working directory"
assert_eq "$(tb_run cat "$WS/$id/workspace/env.txt")" /var/tmp/akf/work "\$ARKEVENT_WORKSPACE"
assert_eq "$(tb_run cat "$WS/$id/workspace/copied.txt")" "from the volume" "volume bound"
assert_eq "$(tb_run cat "$WS/$id/workspace/cmd.txt")" "from-command" "command: form"

arts=$(tb_curl "http://127.0.0.1:8092/workflows/$id/artifacts")
log "artifacts: $arts"
assert_eq "$(echo "$arts" | json '[(a["path"], a["activity"]) for a in d["artifacts"]]')" \
        "[('cmd.txt', 'cmd'), ('copied.txt', 'hold'), ('env.txt', 'hold'), ('out/deep/result.txt', 'hold'), ('release', 'hold'), ('where.txt', 'hold')]"
for p in cmd.txt out/deep/result.txt where.txt; do
        want=$(tb_run sha256sum "$WS/$id/workspace/$p" | cut -d' ' -f1)
        got=$(echo "$arts" | json "[a['sha256'] for a in d['artifacts'] if a['path'] == '$p'][0]")
        assert_eq "$got" "$want" "sha256 of $p"
        size=$(echo "$arts" | json "[a['size'] for a in d['artifacts'] if a['path'] == '$p'][0]")
        assert_eq "$size" "$(tb_run stat -c %s "$WS/$id/workspace/$p")" "size of $p"
done
assert_eq "$(tb_curl "http://127.0.0.1:8092/workflows/$id/artifacts/out/deep/result.txt")" artifact "download"
dl=$(tb_curl -D - -o /dev/null "http://127.0.0.1:8092/workflows/$id/artifacts/out/deep/result.txt")
assert_contains "$dl" "X-Arkevent-Sha256: $(tb_run sha256sum "$WS/$id/workspace/out/deep/result.txt" | cut -d' ' -f1)"
code() { tb_curl --path-as-is -o /run/body -w '%{http_code}' "http://127.0.0.1:8092$1"; }
assert_eq "$(code "/workflows/$id/artifacts/../../../../../etc/passwd")" 400 "'..' refused"
assert_not_contains "$(tb_run cat /run/body)" "root:"
assert_eq "$(code "/workflows/$id/artifacts/out/../../meta/input.json")" 400 "'..' inside refused"
assert_eq "$(code "/workflows/$id/artifacts/%2e%2e/%2e%2e/%2e%2e/etc/passwd")" 400 "encoded '..' refused"
assert_eq "$(code "/workflows/$id/artifacts/out%2f..%2f..%2fmeta%2finput.json")" 400 "encoded slashes refused"
assert_eq "$(code "/workflows/$id/artifacts/escape")" 404 "a symlink is no artifact"
assert_contains "$(tb_run cat /run/body)" '"error"'
# A recorded artifact replaced by a symlink that points out: refused, never followed.
tb_run sh -c "rm $WS/$id/workspace/out/deep/result.txt && ln -s /etc/passwd $WS/$id/workspace/out/deep/result.txt"
assert_eq "$(code "/workflows/$id/artifacts/out/deep/result.txt")" 400 "symlink out refused"
assert_not_contains "$(tb_run cat /run/body)" "root:"
tb_run sh -c "rm $WS/$id/workspace/out/deep/result.txt && ln -s ../../where.txt $WS/$id/workspace/out/deep/result.txt"
assert_eq "$(code "/workflows/$id/artifacts/out/deep/result.txt")" 400 "no symlink is followed, even inside"
tb_run sh -c "rm $WS/$id/workspace/out/deep/result.txt && echo again > $WS/$id/workspace/out/deep/result.txt"
assert_eq "$(code "/workflows/$id/artifacts/out/deep/result.txt")" 200 "a regular file again"
assert_eq "$(code "/workflows/$id/artifacts/nothing.txt")" 404 "unknown artifact"

# ---- monitoring ---------------------------------------------------------------------------------
list=$(tb_curl http://127.0.0.1:8092/workflows)
assert_eq "$(echo "$list" | json "[(w['name'], w['status']) for w in d['workflows'] if w['id'] == $id]")" "[('shapes', 'Succeeded')]"
assert_eq "$(echo "$list" | json "sorted(d['workflows'][0].keys())")" \
        "['createdAt', 'durationMs', 'error', 'finishedAt', 'id', 'name', 'namespace', 'startedAt', 'status', 'url']"
w=$(tb_curl "http://127.0.0.1:8092/workflows/$id")
assert_eq "$(echo "$w" | json '[(a["name"], a["status"], a["exitCode"], a["unit"]) for a in d["activities"]]')" \
        "[('hold', 'Succeeded', 0, 'arkevent-$id-0-1.service'), ('cmd', 'Succeeded', 0, 'arkevent-$id-1-1.service')]"
assert_eq "$(echo "$w" | json 'all(a["startedAt"] and a["finishedAt"] for a in d["activities"])')" True
assert_contains "$(echo "$w" | json 'd["activities"][1]["logs"]')" "/workflows/$id/activities/cmd/logs"
tb_wait_sh 10 "curl -s http://127.0.0.1:8092/workflows/$id/activities/cmd/logs | grep -q command-done"
logs=$(tb_curl "http://127.0.0.1:8092/workflows/$id/activities/hold/logs")
assert_contains "$logs" '"message":"hold is holding"'
assert_not_contains "$logs" "command-done"
assert_contains "$(tb_curl "http://127.0.0.1:8092/workflows/$id/activities/hold/logs?format=text")" "hold is holding"
assert_eq "$(code "/workflows/$id/activities/ghost/logs")" 404 "unknown activity"
assert_eq "$(code "/workflows/99999")" 404 "unknown workflow"

# ---- runtimes: systemd (RootDirectory=), an existing apptainer, a missing one -------------------
# A root directory that borrows the host's /usr, read-only.
tb_sh 'mkdir -p /var/lib/images/rootfs/usr /var/lib/images/rootfs/proc /var/lib/images/rootfs/sys /var/lib/images/rootfs/dev /var/lib/images/rootfs/tmp /var/lib/images/rootfs/run /var/lib/images/rootfs/var/tmp /var/lib/images/rootfs/etc &&
       for d in bin sbin lib lib64; do ln -s usr/$d /var/lib/images/rootfs/$d; done'
id=$(submit <<'YAML'
name: runtimes
spec:
  mountPath: /var/tmp/akf/rt
  activities:
    - name: rooted
      runtime: hostroot
      image: /var/lib/images/rootfs
      volumes: ["/usr:/usr:ro"]
      run: '[ ! -e /etc/arkevent ] && pwd > rooted.txt; while [ ! -e release ]; do sleep 0.1; done'
    - name: contained
      runtime: fake
      image: /var/tmp/images/tool.sif
      run: 'echo contained > contained.txt'
YAML
)
tb_wait 30 test -e "$WS/$id/workspace/rooted.txt"
assert_eq "$(tb_run cat "$WS/$id/workspace/rooted.txt")" /var/tmp/akf/rt "working directory in the image"
props=$(tb_run systemctl show -p RootDirectory -p WorkingDirectory "arkevent-$id-0-1.service")
assert_contains "$props" "RootDirectory=/var/lib/images/rootfs"
assert_contains "$props" "WorkingDirectory=!/var/tmp/akf/rt"
tb_run touch "$WS/$id/workspace/release"
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "runtimes"
assert_eq "$(tb_run cat /run/fake-apptainer.args)" \
        "exec --pwd /var/tmp/akf/rt --bind $WS/$id/workspace:/var/tmp/akf/rt /var/tmp/images/tool.sif /bin/sh -c echo contained > contained.txt"
assert_eq "$(tb_run cat "$WS/$id/workspace/contained.txt")" contained

# ---- ephemeral storage --------------------------------------------------------------------------
id=$(submit <<'YAML'
name: scratch
spec:
  storagePolicy:
    type: ephemeral
  activities:
    - name: write
      run: echo temp > temp.txt
YAML
)
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "ephemeral"
tb_wait_sh 10 "! test -e $WS/$id/workspace"
assert_eq "$(tb_curl "http://127.0.0.1:8092/workflows/$id/artifacts" | json '[a["path"] for a in d["artifacts"]]')" "['temp.txt']"
assert_eq "$(code "/workflows/$id/artifacts/temp.txt")" 404 "ephemeral artifact gone"

# ---- the event stream of a run, read live until it ends ----------------------------------------
id=$(submit <<'YAML'
name: streamed
spec:
  activities:
    - name: first
      run: 'while [ ! -e release ]; do sleep 0.1; done'
    - name: second
      dependsOn: [first]
      run: exit 4
YAML
)
TOKEN=$(tb_api_token)
tb_run sh -c "curl -sN -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:8092/api/v1/runs/$id/events > /run/sse.out 2>&1; echo \$? > /run/sse.rc" &
tb_wait_sh 30 "grep -q '\"activity\":\"first\".*\"state\":\"Running\"' /run/sse.out"
assert_eq "$(tb_run sh -c 'test -e /run/sse.rc && echo ended || echo open')" open "stream open while the run runs"
tb_run touch "$WS/$id/workspace/release"
assert_eq "$(tb_wait_run "$id" 60)" Failed "streamed"
tb_wait 30 test -e /run/sse.rc
assert_eq "$(tb_run cat /run/sse.rc)" 0 "curl ended with the stream"
events=$(tb_run cat /run/sse.out)
log "events: $events"
python3 - "$events" <<'PY' || fail "event stream"
import json, sys
lines = [l for l in sys.argv[1].split("\n") if l]
assert all(l.startswith("data: ") for l in lines), lines
ev = [json.loads(l[6:]) for l in lines]
seq = [(e["type"], e.get("activity"), e["state"]) for e in ev]
want = [("run", None, "Pending"), ("run", None, "Running"),
        ("activity", "first", "Queued"), ("activity", "first", "Starting"),
        ("activity", "first", "Running"), ("activity", "first", "Succeeded"),
        ("activity", "second", "Queued"), ("activity", "second", "Starting"),
        ("activity", "second", "Running"), ("activity", "second", "Failed"),
        ("run", None, "Failed")]
assert seq == want, seq
fail = [e for e in ev if e.get("activity") == "second" and e["state"] == "Failed"][0]
assert fail["exitCode"] == 4 and fail["unit"].endswith("-1-1.service"), fail
PY
# A finished run's stream is its past, then the end.
past=$(tb_curl -N "http://127.0.0.1:8092/api/v1/runs/$id/events?token=$TOKEN")
assert_eq "$(echo "$past" | grep -c '^data: ')" 11 "past events of a finished run"
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:8092/api/v1/runs/$id/events")" 401 "events need the token"

# ---- a workflow file in /etc/arkevent.d runs when started ---------------------------------------
tb_write /etc/arkevent.d/dropped.yaml <<'YAML'
name: dropped
spec:
  activities:
    - name: hello
      command:
        entrypoint: /bin/echo
        arguments: [hello, from, a, file]
YAML
tb_write /etc/arkevent.d/bad-runtime.yaml <<'YAML'
name: badrt
spec:
  runtime: nowhere
  activities:
    - name: a
      run: echo
    - name: b
      runtime: elsewhere
      run: echo
YAML
cursor=$(tb_journal_cursor)
tb_run systemctl reload arkevent
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/bad-runtime.yaml:3:12: error: badrt: unknown runtime 'nowhere' (known: local, systemd, apptainer, singularity, sdumont, hostroot, fake;" -u arkevent.service
tb_wait_journal 10 "$cursor" "/etc/arkevent.d/bad-runtime.yaml:8:16: error: badrt: activity b: unknown runtime 'elsewhere'" -u arkevent.service
assert_eq "$(tb_api POST /api/v1/runs -d '{"flow": "default/badrt"}' -o /dev/null -w '%{http_code}')" 404 "a workflow file with an unknown runtime is not loaded"
resp=$(tb_api POST /api/v1/runs -d '{"flow": "default/dropped"}')
id=$(echo "$resp" | json 'd["id"]')
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "dropped workflow"
assert_eq "$(tb_api GET "/api/v1/runs/$id" | json 'd["output"]')" "hello from a file"
assert_contains "$(tb_curl http://127.0.0.1:8092/workflows | json '[w["name"] for w in d["workflows"]]')" "'dropped'"

# ---- a burst: more activities than unit slots; a run's last unit frees its slot for the queue ----
ids=($(tb_run python3 - <<'PY'
import base64, json, urllib.request
y = 'name: burst\nspec:\n  activities:\n    - {name: a, run: "sleep 0.2"}\n    - {name: b, dependsOn: [a], run: "true"}\n'
body = json.dumps({"workflow": base64.b64encode(y.encode()).decode()}).encode()
for i in range(12):
    r = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:8092/workflows", data=body))
    print(json.load(r)["id"])
PY
))
assert_eq "${#ids[@]}" 12 "burst submitted"
for i in "${ids[@]}"; do
        assert_eq "$(tb_wait_run "$i" 60)" Succeeded "burst run $i"
done

# ---- with api.workflowsRequireToken (the default), the token is needed --------------------------
tb_write_file /etc/arkevent/arkevent.yaml "runtimes: {sdumont: apptainer}"
tb_run systemctl reload arkevent
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' http://127.0.0.1:8092/workflows)" 401 "token required"
assert_eq "$(tb_api GET /workflows -o /dev/null -w '%{http_code}')" 200 "with the token"
# The seed's example sends only Content-Type: with the token in its URL it works unchanged.
b64=$(printf 'name: tokened\nspec:\n  activities:\n    - name: a\n      run: "true"\n' | base64 -w0)
code=$(tb_curl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"workflow\": \"$b64\"}" "http://127.0.0.1:8092/workflows?token=$(tb_api_token)")
assert_eq "$code" 202 "POST /workflows?token="
code=$(tb_curl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"workflow\": \"$b64\"}" "http://127.0.0.1:8092/workflows?token=wrong")
assert_eq "$code" 401 "POST /workflows?token=wrong"
log "ok"
