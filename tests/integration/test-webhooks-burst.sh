#!/usr/bin/env bash
# A burst of concurrent webhook fires with kill -9 of the daemon in the middle: every 202 that a
# client got names runs that exist after the restart and complete, each attempt started once.
# Fires that got no answer may or may not have runs; none is started twice.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/burst.yaml <<'YAML'
kind: ArkFlow
metadata: {name: note}
spec:
  steps:
    - name: n
      inputs: {k: "{{ .pipeline.input.k }}"}
      run: printf '%s' "$INPUT_K"
---
kind: ArkEvent
metadata: {name: burst}
spec:
  source: {type: webhook}
  targets:
    - {pipeline: note, input: {k: "a-{{ .trigger.body.k }}"}}
    - {pipeline: note, input: {k: "b-{{ .trigger.body.k }}"}}
YAML
tb_start_arkevent
TOKEN=$(tb_run arkeventctl token default/burst)

# The load: 16 clients, 240 fires, each noted with its answer as it lands (bounded in count and
# time; a fire cut off by the kill is noted as an error).
tb_write /tmp/burst.py <<'PY'
import concurrent.futures, http.client, json, sys, threading, time
token, n = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
out = open("/tmp/burst.jsonl", "w")
def fire(k):
    body = json.dumps({"k": str(k)})
    try:
        c = http.client.HTTPConnection("127.0.0.1", 8092, timeout=20)
        c.request("POST", "/triggers/default/burst/fire", body,
                  {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = c.getresponse()
        rec = {"k": k, "status": r.status, "body": r.read().decode()}
        c.close()
    except Exception as e:
        rec = {"k": k, "status": 0, "error": repr(e)}
    with lock:
        out.write(json.dumps(rec) + "\n")
        out.flush()
deadline = time.monotonic() + 120
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    for k in range(n):
        if time.monotonic() > deadline:
            break
        ex.submit(fire, k)
PY
old_pid=$(tb_run systemctl show -P MainPID arkevent.service)
tb_run sh -c "python3 /tmp/burst.py $TOKEN 240 > /tmp/burst.log 2>&1" &
loader=$!
# kill -9 in the middle of the burst, once some fires have been answered.
tb_wait 60 sh -c '[ "$(grep -c "\"status\": 202" /tmp/burst.jsonl 2>/dev/null)" -ge 40 ]'
tb_run kill -9 "$old_pid"
log "killed the daemon (pid $old_pid) after $(tb_run grep -c '"status": 202' /tmp/burst.jsonl) answered fires"
wait "$loader"

# The daemon comes back (Restart=, or the socket on the next connection).
tb_wait 30 curl -sf http://127.0.0.1:8092/healthz
new_pid=$(tb_run systemctl show -P MainPID arkevent.service)
[ "$new_pid" != "$old_pid" ] || fail "the daemon was not restarted"
drained=0
for _ in $(seq 180); do
        tb_curl http://127.0.0.1:8092/healthz | grep '"runsActive":0' >/dev/null && { drained=1; break; }
        sleep 0.5
done
if [ "$drained" = 0 ]; then
        tb_healthz >&2
        tb_run python3 -c "
import sqlite3
db = sqlite3.connect('file:/var/lib/arkevent/arkevent.db?mode=ro', uri=True)
print(db.execute('SELECT state, COUNT(*) FROM runs GROUP BY state').fetchall())
print(db.execute('SELECT state, COUNT(*) FROM activities GROUP BY state').fetchall())
print(db.execute('SELECT state, COUNT(*) FROM attempts GROUP BY state').fetchall())
print(db.execute(\"SELECT a.run_id, a.state, a.unit FROM activities a WHERE a.state NOT IN ('Succeeded', 'Pending') LIMIT 10\").fetchall())" >&2
        tb_run systemctl list-units --all 'arkevent-*' --no-pager >&2 || true
        fail "runs did not all finish after the restart"
fi

tb_run cat /tmp/burst.jsonl >"$ARKEVENT_BUILD_DIR/burst.jsonl"
tb_api GET '/api/v1/runs?flow=note&limit=1000' >"$ARKEVENT_BUILD_DIR/burst-runs.json"
python3 - "$ARKEVENT_BUILD_DIR/burst.jsonl" "$ARKEVENT_BUILD_DIR/burst-runs.json" <<'PY' || fail "a 202 without its runs"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
runs = {r["id"]: r for r in json.load(open(sys.argv[2]))["runs"]}
accepted = [r for r in recs if r["status"] == 202]
other = [r for r in recs if r["status"] not in (202, 0)]
cut = [r for r in recs if r["status"] == 0]
print("fires: %d answered 202, %d cut off by the kill, %d other" % (len(accepted), len(cut), len(other)))
assert len(recs) == 240, len(recs)
assert not other, other[:3]
assert len(accepted) >= 40, len(accepted)
for rec in accepted:
    body = json.loads(rec["body"])
    ids = [x["id"] for x in body["runs"]]
    assert len(ids) == 2, body
    for i, prefix in zip(ids, ("a-", "b-")):
        assert i in runs, "run %d of fire %d is missing" % (i, rec["k"])
        assert runs[i]["state"] == "Succeeded", runs[i]
# Every run that exists ran its one activity once, with the input of its own fire.
seen = set()
for r in runs.values():
    assert r["state"] == "Succeeded", r
PY
# Each run's one attempt, once; outputs match the fire they came from.
python3 - "$ARKEVENT_BUILD_DIR/burst-runs.json" >"$ARKEVENT_BUILD_DIR/burst-ids" <<'PY'
import json, sys
print(" ".join(str(r["id"]) for r in json.load(open(sys.argv[1]))["runs"]))
PY
dups=$(tb_journal -o cat --no-pager | grep -o '^Started arkevent-[0-9]*-0-[0-9]*\.service' | sort | uniq -d | head -3)
[ -z "$dups" ] || fail "units started twice: $dups"
outputs=$(tb_run python3 -c "
import sqlite3
db = sqlite3.connect('/var/lib/arkevent/arkevent.db')
bad = [r for r in db.execute(\"SELECT r.id, r.input, a.output, a.attempts FROM runs r JOIN activities a ON a.run_id = r.id WHERE r.flow = 'note'\")
       if __import__('json').loads(r[1])['k'] != r[2] or r[3] != 1]
print(len(bad), bad[:3])")
assert_eq "${outputs%% *}" 0 "runs whose output is not their input, or that took more than one attempt: $outputs"
log "ok"
