#!/usr/bin/env bash
# Outbound webhooks, what arrives: a real HTTP receiver on loopback records every request. An
# AkoFlow workflow with three activities and dependencies: one ACTIVITY_COMPLETED per activity in
# completion order, then WORKFLOW_DONE, each with exactly the fields, order and types of the
# seed; the headers; the delivery log in the API. Failed and skipped activities, an HMAC
# signature checked by the receiver, and an ArkFlow flow's webhooks.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_run mkdir -p /run/recv
tb_write /run/recv/receiver.py <"$ARKEVENT_SOURCE_DIR/tests/integration/webhook-receiver.py"
tb_sh 'printf "hook-s3cret\n" > /etc/arkevent/outbox.secret'

# A receiver on 127.0.0.1:PORT inside the sandbox, in the background; extra arguments go to it.
start_receiver() {
        local port=$1
        shift
        tb_sh "nohup python3 /run/recv/receiver.py --port $port --log /run/recv/$port.jsonl \
                --pid-file /run/recv/$port.pid $* </dev/null >/run/recv/$port.out 2>&1 &"
        tb_wait 10 test -s "/run/recv/$port.pid"
}

# Waits until the receiver on PORT has answered N requests with 200.
wait_delivered() {
        tb_wait_sh "${3:-30}" "[ \$(grep -c '\"status\": 200' /run/recv/$1.jsonl 2>/dev/null || echo 0) -ge $2 ]"
}

tb_write /etc/arkevent/arkevent.yaml <<'YAML'
webhooks:
  timeoutSec: 5
  maxAgeSec: 600
  backoff: {initialSec: 1, maxSec: 2}
YAML

tb_write /etc/arkevent.d/hooks.yaml <<'YAML'
name: p-inference-nemo
spec:
  runtime: "local"
  image: "/scratch/p-inference-nemo/sifs/p-inference-nemo.sif"
  storagePolicy:
    type: default
  webhooks:
    - name: "inference-examples"
      url: "http://127.0.0.1:9101/mypath/mywebhook"
  activities:
    - name: inference-examples
      run: |
        echo "Running inference-examples"
      cpuLimit: 1
    - name: train
      dependsOn: [inference-examples]
      command:
        entrypoint: /bin/sh
        arguments: ["-c", "sleep 0.3; echo trained"]
      memoryLimit: 256Mi
    - name: report
      dependsOn: [train, inference-examples]
      run: echo reported
---
name: wf-fail
spec:
  webhooks:
    - {name: fail-hook, url: "http://127.0.0.1:9101/fail"}
  activities:
    - {name: bad, run: "exit 3"}
    - {name: after, dependsOn: [bad], run: "echo never"}
---
name: wf-signed
spec:
  webhooks:
    - {name: signed, url: "http://127.0.0.1:9102/signed", secretFile: /etc/arkevent/outbox.secret}
  activities:
    - {name: one, run: "echo one"}
---
name: wf-no-secret
spec:
  webhooks:
    - {name: signed, url: "http://127.0.0.1:9102/signed", secretFile: /etc/arkevent/missing.secret}
  activities:
    - {name: one, run: "echo one"}
---
kind: ArkFlow
metadata: {name: ark-hooks, namespace: team}
spec:
  webhooks:
    - {name: ark, url: "http://127.0.0.1:9103/ark"}
  steps:
    - {name: a, run: "echo a"}
    - {name: b, dependsOn: [a], run: "echo b", timeoutSeconds: 30}
YAML

start_receiver 9101
start_receiver 9102 --secret /etc/arkevent/outbox.secret
start_receiver 9103
tb_start_arkevent

# ---- 1: the AkoFlow workflow, every field ------------------------------------------------------
id=$(tb_api POST /api/v1/runs -d '{"flow": "default/p-inference-nemo"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id" 60)" Succeeded "run $id"
wait_delivered 9101 4
recv=$(tb_run cat /run/recv/9101.jsonl)
deliveries=$(tb_api GET "/api/v1/runs/$id/deliveries")
run=$(tb_api GET "/api/v1/runs/$id")

python3 - "$id" "$recv" "$deliveries" "$run" <<'EOF' || fail "payload check failed"
import base64, json, re, sys
run_id = int(sys.argv[1])
reqs = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
deliveries = json.loads(sys.argv[3])
run = json.loads(sys.argv[4])
ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

def die(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)

def check(cond, msg):
    if not cond:
        die(msg)

check(len(reqs) == 4, f"expected 4 requests, got {len(reqs)}")
bodies = []
for r in reqs:
    check(r["method"] == "POST", f"method {r['method']}")
    check(r["path"] == "/mypath/mywebhook", f"path {r['path']}")
    h = {k.lower(): v for k, v in r["headers"].items()}
    check(h.get("content-type") == "application/json", f"content-type {h.get('content-type')}")
    body = json.loads(r["body"], object_pairs_hook=lambda p: p)  # keeps key order
    d = dict(body)
    check([k for k, _ in body] == ["type", "data"], f"top-level keys {[k for k, _ in body]}")
    check(h.get("x-arkevent-event") == d["type"], f"X-Arkevent-Event {h.get('x-arkevent-event')} for {d['type']}")
    check(re.fullmatch(r"[0-9a-f]{16}-\d+", h.get("x-arkevent-delivery", "")), f"X-Arkevent-Delivery {h.get('x-arkevent-delivery')}")
    check("x-arkevent-signature" not in h, "a signature without a secret")
    bodies.append((d["type"], d["data"], h["x-arkevent-delivery"]))

types = [t for t, _, _ in bodies]
check(types == ["ACTIVITY_COMPLETED"] * 3 + ["WORKFLOW_DONE"], f"event order {types}")
check(len({did for _, _, did in bodies}) == 4, "delivery ids not unique")

acts = {a["name"]: a for a in run["activities"]}
A_KEYS = ["Id", "WorkflowId", "Namespace", "Name", "Image", "ResourceK8sBase64", "Status", "ProcId",
          "DependOnActivity", "CreatedAt", "StartedAt", "FinishedAt"]
ids = {}
names = []
for t, data, _ in bodies[:3]:
    check([k for k, _ in data] == A_KEYS, f"ACTIVITY_COMPLETED keys {[k for k, _ in data]}")
    a = dict(data)
    names.append(a["Name"])
    ids[a["Name"]] = a["Id"]
    for k in ("Id", "WorkflowId", "Status"):
        check(type(a[k]) is int, f"{k} is {type(a[k]).__name__}")
    for k in ("Namespace", "Name", "Image", "ResourceK8sBase64", "ProcId", "CreatedAt", "StartedAt", "FinishedAt"):
        check(type(a[k]) is str, f"{a['Name']}: {k} is {type(a[k]).__name__}")
    for k in ("CreatedAt", "StartedAt", "FinishedAt"):
        check(ts.match(a[k]), f"{k} {a[k]!r} is not RFC 3339 UTC")
    check(a["WorkflowId"] == run_id, f"WorkflowId {a['WorkflowId']}")
    check(a["Namespace"] == "default", f"Namespace {a['Namespace']}")
    check(a["Image"] == "/scratch/p-inference-nemo/sifs/p-inference-nemo.sif", f"Image {a['Image']}")
    check(a["Status"] == 1, f"Status {a['Status']}")
    check(a["ProcId"] == acts[a["Name"]]["unit"], f"ProcId {a['ProcId']} vs {acts[a['Name']]['unit']}")
    check(re.fullmatch(rf"arkevent-{run_id}-\d+-1\.service", a["ProcId"]), f"ProcId {a['ProcId']}")
    unit = json.loads(base64.b64decode(a["ResourceK8sBase64"], validate=True))
    check(unit["Unit"] == a["ProcId"], f"unit description names {unit.get('Unit')}")
    check(unit["Slice"] == "arkevent.slice", f"Slice {unit.get('Slice')}")
    check(isinstance(unit["ExecStart"], list) and all(isinstance(x, str) for x in unit["ExecStart"]), "ExecStart argv")
    check("Environment" not in unit, "the environment leaked into the description")
    if a["Name"] == "inference-examples":
        check(a["DependOnActivity"] is None, f"DependOnActivity {a['DependOnActivity']}")
        check(unit.get("CPUQuota") == "100%", f"CPUQuota {unit.get('CPUQuota')}")
        check(unit["ExecStart"][-3:] == ["/bin/sh", "-c", 'echo "Running inference-examples"\n'], f"ExecStart {unit['ExecStart']}")
    if a["Name"] == "train":
        check(a["DependOnActivity"] == ids["inference-examples"], f"DependOnActivity {a['DependOnActivity']}")
        check(unit.get("MemoryMax") == 268435456, f"MemoryMax {unit.get('MemoryMax')}")
        check(unit["ExecStart"][-3:] == ["/bin/sh", "-c", "sleep 0.3; echo trained"], f"ExecStart {unit['ExecStart']}")
    if a["Name"] == "report":
        check(a["DependOnActivity"] == ids["train"], f"DependOnActivity {a['DependOnActivity']}")
    check(a["StartedAt"] <= a["FinishedAt"], "StartedAt after FinishedAt")
check(names == ["inference-examples", "train", "report"], f"completion order {names}")
check(all(ids[n] == acts[n]["id"] for n in ids), f"activity ids {ids}")

t, data, _ = bodies[3]
W_KEYS = ["ID", "Namespace", "Runtime", "Name", "RawWorkflow", "Status"]
check([k for k, _ in data] == W_KEYS, f"WORKFLOW_DONE keys {[k for k, _ in data]}")
w = dict(data)
check(type(w["ID"]) is int and w["ID"] == run_id, f"ID {w['ID']}")
check(w["Namespace"] == "default", f"Namespace {w['Namespace']}")
check(w["Runtime"] == "local", f"Runtime {w['Runtime']}")
check(w["Name"] == "p-inference-nemo", f"Name {w['Name']}")
check(type(w["Status"]) is int and w["Status"] == 1, f"Status {w['Status']}")
raw = base64.b64decode(w["RawWorkflow"], validate=True).decode()
check(raw.startswith("name: p-inference-nemo\n") and "inference-examples" in raw and "wf-fail" not in raw, f"RawWorkflow {raw!r}")

# The delivery log
check([d["event"] for d in deliveries] == types, f"deliveries {deliveries}")
for d, (_, _, did) in zip(deliveries, bodies):
    check(d["state"] == "delivered" and d["attempts"] == 1 and d["lastStatus"] == 200, f"delivery {d}")
    check(d["webhook"] == "inference-examples" and d["url"] == "http://127.0.0.1:9101/mypath/mywebhook", f"delivery {d}")
    check(d["deliveryId"] == did, f"deliveryId {d['deliveryId']} vs header {did}")
    check(d["lastError"] is None and d["deliveredAt"] and d["createdAt"], f"delivery {d}")
EOF
log "AkoFlow workflow: 4 events with the seed's fields, order, types and headers"

# The journal tells of each delivery, with the run's id.
tb_wait_sh 10 "journalctl --no-pager ARKEVENT_RUN=$id ARKEVENT_EVENT=webhook-delivery -o cat | grep -c 'Delivered' | grep -qx 4"

# ---- 2: a failed activity, a skipped one ----------------------------------------------------
id2=$(tb_api POST /api/v1/runs -d '{"flow": "wf-fail"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id2" 60)" Failed "run $id2"
wait_delivered 9101 7
out=$(tb_run cat /run/recv/9101.jsonl | tail -n 3 | python3 -c '
import json, sys
for l in sys.stdin:
    d = json.loads(json.loads(l)["body"])
    print(d["type"], d["data"].get("Name"), d["data"]["Status"], d["data"].get("ProcId", "-"))
')
assert_eq "$out" "ACTIVITY_COMPLETED bad 2 arkevent-$id2-0-1.service
ACTIVITY_COMPLETED after 5 None
WORKFLOW_DONE wf-fail 2 -" "failed run's events"

# ---- 3: signed deliveries -----------------------------------------------------------------------
id3=$(tb_api POST /api/v1/runs -d '{"flow": "wf-signed"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id3" 60)" Succeeded "run $id3"
wait_delivered 9102 2
out=$(tb_run cat /run/recv/9102.jsonl | python3 -c '
import json, re, sys
for l in sys.stdin:
    r = json.loads(l)
    sig = {k.lower(): v for k, v in r["headers"].items()}.get("x-arkevent-signature", "")
    print(r["sigOk"], bool(re.fullmatch(r"sha256=[0-9a-f]{64}", sig)))
')
assert_eq "$out" "True True
True True" "signatures checked by the receiver"

# A secret that cannot be read: nothing goes out unsigned, the attempt fails and is retried.
id5=$(tb_api POST /api/v1/runs -d '{"flow": "wf-no-secret"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id5" 60)" Succeeded "run $id5"
tb_wait 30 sh -c "curl -sf -H 'Authorization: Bearer $(tb_api_token)' http://127.0.0.1:8092/api/v1/runs/$id5/deliveries |
        python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (d and d[0][\"attempts\"] >= 2))'"
out=$(tb_api GET "/api/v1/runs/$id5/deliveries" | json '(d[0]["state"], d[0]["lastStatus"], d[0]["lastError"])')
assert_eq "$out" "('pending', None, \"cannot read the webhook's secret: No such file or directory\")" "delivery without its secret"
assert_eq "$(tb_run cat /run/recv/9102.jsonl | wc -l)" 2 "requests to the signed receiver"

# ---- 4: an ArkFlow flow's webhooks ---------------------------------------------------------------
id4=$(tb_api POST /api/v1/runs -d '{"flow": "team/ark-hooks"}' | json 'd["id"]')
assert_eq "$(tb_wait_run "$id4" 60)" Succeeded "run $id4"
wait_delivered 9103 3
out=$(tb_run cat /run/recv/9103.jsonl | python3 -c '
import base64, json, sys
for l in sys.stdin:
    d = json.loads(json.loads(l)["body"])["data"]
    if "RawWorkflow" in d:
        raw = base64.b64decode(d["RawWorkflow"]).decode()
        print("done", d["ID"], d["Namespace"], d["Runtime"], d["Name"], d["Status"], "kind: ArkFlow" in raw)
    else:
        unit = json.loads(base64.b64decode(d["ResourceK8sBase64"]))
        print("activity", d["WorkflowId"], d["Namespace"], d["Name"], repr(d["Image"]), d["Status"], unit.get("RuntimeMaxSec"))
')
assert_eq "$out" "activity $id4 team a '' 1 None
activity $id4 team b '' 1 30
done $id4 team local ark-hooks 1 True" "ArkFlow flow's events"

# ---- the API ------------------------------------------------------------------------------------
assert_eq "$(tb_api GET /api/v1/runs/999999/deliveries -o /dev/null -w '%{http_code}')" 404 "deliveries of an unknown run"
assert_eq "$(tb_api GET /api/v1/runs/abc/deliveries -o /dev/null -w '%{http_code}')" 400 "deliveries of a bad id"
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:8092/api/v1/runs/$id/deliveries")" 401 "deliveries without the token"
# A flow without webhooks has an empty delivery log.
assert_eq "$(tb_api GET "/api/v1/runs/$id4/deliveries" | json 'len(d)')" 3 "ArkFlow deliveries"
log "ok"
