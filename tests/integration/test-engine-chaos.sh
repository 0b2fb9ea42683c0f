#!/usr/bin/env bash
# kill -9 of the daemon at random moments, again and again (and systemd re-executed once), while
# runs of three DAG flows are submitted and going: a diamond passing data along, a step that succeeds on its retry, and a
# failure that skips its dependent while an independent step finishes. Every step writes
# "run activity attempt" to a ledger when it starts. Afterwards every accepted run has its
# expected end state and outputs, every attempt the store records ran exactly once (ledger and
# journal agree), and nothing ran that the store does not know of.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_write /etc/arkevent.d/chaos.yaml <<'YAML'
kind: ArkFlow
metadata: {name: diamond}
spec:
  steps:
    - name: a
      inputs: {s: "{{ .pipeline.input.s }}"}
      run: |
        echo "$ARKEVENT_RUN_ID a $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        sleep "$INPUT_S"; echo "x$ARKEVENT_RUN_ID"
    - name: b
      dependsOn: [a]
      inputs: {v: "{{ .steps.a.output }}", s: "{{ .pipeline.input.s }}"}
      run: |
        echo "$ARKEVENT_RUN_ID b $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        sleep "$INPUT_S"; echo "b:$INPUT_V"
    - name: c
      dependsOn: [a]
      inputs: {v: "{{ .steps.a.output }}"}
      run: |
        echo "$ARKEVENT_RUN_ID c $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        echo "c:$INPUT_V"
    - name: d
      dependsOn: [b, c]
      inputs: {b: "{{ .steps.b.output }}", c: "{{ .steps.c.output }}"}
      run: |
        echo "$ARKEVENT_RUN_ID d $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        echo "$INPUT_B $INPUT_C"
  output: "{{ .steps.d.output }}"
---
kind: ArkFlow
metadata: {name: flaky}
spec:
  steps:
    - name: f
      retries: {limit: 3, backoffSeconds: 1}
      inputs: {s: "{{ .pipeline.input.s }}"}
      run: |
        echo "$ARKEVENT_RUN_ID f $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        sleep "$INPUT_S"
        [ "$ARKEVENT_ATTEMPT" -ge 2 ] || exit 3
        echo "second"
---
kind: ArkFlow
metadata: {name: broken}
spec:
  steps:
    - name: bad
      inputs: {s: "{{ .pipeline.input.s }}"}
      run: |
        echo "$ARKEVENT_RUN_ID bad $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        sleep "$INPUT_S"; exit 4
    - name: after
      dependsOn: [bad]
      run: echo "$ARKEVENT_RUN_ID after $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
    - name: side
      inputs: {s: "{{ .pipeline.input.s }}"}
      run: |
        echo "$ARKEVENT_RUN_ID side $ARKEVENT_ATTEMPT" >> /var/lib/chaos/ledger
        sleep "$INPUT_S"; echo side
YAML
tb_run mkdir -p /var/lib/chaos
tb_start_arkevent
TOKEN=$(tb_api_token)

# The client: 90 runs over the kills; a connection cut by a kill gets no id and is left out.
tb_write /tmp/submit.py <<'PY'
import http.client, json, random, sys, time
token, n = sys.argv[1], int(sys.argv[2])
random.seed(int(sys.argv[3]))
out = open("/tmp/accepted.jsonl", "w")
for k in range(n):
    flow = random.choice(["diamond", "flaky", "broken"])
    s = random.choice(["0", "0.1", "0.3", "0.8"])
    rec = {"k": k, "flow": flow}
    try:
        c = http.client.HTTPConnection("127.0.0.1", 8092, timeout=30)
        c.request("POST", "/api/v1/runs", json.dumps({"flow": flow, "input": {"s": s}}),
                  {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read().decode()
        rec["status"] = r.status
        if r.status == 202:
            rec["id"] = json.loads(body)["id"]
        c.close()
    except Exception as e:
        rec["status"] = 0
        rec["error"] = repr(e)
    out.write(json.dumps(rec) + "\n")
    out.flush()
    time.sleep(random.uniform(0, 0.15))
PY
seed=${CHAOS_SEED:-$RANDOM}
log "seed $seed"
tb_run sh -c "python3 /tmp/submit.py $TOKEN 90 $seed > /tmp/submit.log 2>&1" &
client=$!

# The killer: six kill -9s at random moments, each once the daemon is back and serving.
kills=0
RANDOM=$seed
while [ "$kills" -lt 6 ]; do
        sleep "$((RANDOM % 3)).$((RANDOM % 10))"
        pid=$(tb_run systemctl show -P MainPID arkevent.service)
        [ "$pid" != 0 ] || { sleep 0.2; continue; }
        tb_run kill -9 "$pid" 2>/dev/null || continue
        kills=$((kills + 1))
        tb_wait 10 sh -c "! kill -0 $pid 2>/dev/null"
        # Six crashes in a row would trip the start limit; an operator resets it.
        tb_run systemctl reset-failed arkevent.service 2>/dev/null || true
        tb_wait 30 curl -sf -o /dev/null http://127.0.0.1:8092/healthz
        # Once, systemd itself is re-executed too: the daemon loses systemd's private socket and
        # goes on over the system bus.
        if [ "$kills" = 3 ]; then
                sleep "0.$((RANDOM % 10))"
                tb_run systemctl daemon-reexec
        fi
done
log "killed the daemon $kills times, re-executed systemd once"
wait "$client"

# All accepted runs end.
tb_wait 30 curl -sf -o /dev/null http://127.0.0.1:8092/healthz
tb_write /tmp/ended.py <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:/var/lib/arkevent/arkevent.db?mode=ro", uri=True)
n = db.execute("SELECT COUNT(*) FROM runs WHERE state NOT IN "
               "('Succeeded', 'Failed', 'Cancelled', 'TimedOut')").fetchone()[0]
print("%d runs not ended" % n)
sys.exit(n != 0)
PY
tb_wait 120 python3 /tmp/ended.py

tb_run cat /tmp/accepted.jsonl >"$TB_DIR/accepted.jsonl"
tb_run cat /var/lib/chaos/ledger >"$TB_DIR/ledger"
tb_run python3 -c "
import json, sqlite3
db = sqlite3.connect('file:/var/lib/arkevent/arkevent.db?mode=ro', uri=True)
runs = {r[0]: {'flow': r[1], 'state': r[2], 'output': r[3], 'acts': {}}
        for r in db.execute(\"SELECT id, flow, state, output FROM runs WHERE flow IN ('diamond', 'flaky', 'broken')\")}
for run, name, state, attempts, output, reason in db.execute('SELECT run_id, name, state, attempts, output, reason FROM activities'):
    if run in runs:
        runs[run]['acts'][name] = {'state': state, 'attempts': attempts, 'output': output, 'reason': reason}
for run, name, number, state, result in db.execute('SELECT a.run_id, a.name, t.number, t.state, t.result FROM attempts t JOIN activities a ON a.id = t.activity_id'):
    if run in runs:
        runs[run]['acts'][name].setdefault('attemptList', []).append([number, state, result])
print(json.dumps(runs))" >"$TB_DIR/store.json"
tb_journal -o cat | grep -o '^Started arkevent-[0-9]*-[0-9]*-[0-9]*\.service' >"$TB_DIR/started" || true

check_failed() { # what the journal and the run's files say of the runs the check named, then fail
        local id
        for id in $(sort -un "$TB_DIR/bad-runs" 2>/dev/null | head -5); do
                log "---- run $id"
                tb_journal -o short-monotonic ARKEVENT_RUN="$id" >&2 || true
                tb_journal -o short-monotonic | grep -E "arkevent-$id-|Run $id " >&2 || true
                tb_run sh -c "cd /var/lib/arkevent/runs/$id/meta && for f in *; do echo \"== \$f\"; cat \"\$f\"; echo; done" >&2 || true
                grep -E "^$id " "$TB_DIR/ledger" >&2 || true
        done
        tb_journal -o short-monotonic | grep -E "private socket|Reexecut|arkeventd\[[0-9]+\]: arkevent .* started" >&2 || true
        fail "a run ended wrong, or an attempt ran other than once"
}
python3 - "$TB_DIR" <<'PY' || check_failed
import collections, json, os, sys
d = sys.argv[1]
def note_bad(rid):  # its journal is shown if the check fails
    with open(os.path.join(d, "bad-runs"), "a") as f:
        f.write("%s\n" % rid)
recs = [json.loads(l) for l in open(os.path.join(d, "accepted.jsonl"))]
store = {int(k): v for k, v in json.load(open(os.path.join(d, "store.json"))).items()}
ledger = collections.Counter(tuple(l.split()) for l in open(os.path.join(d, "ledger")) if l.strip())
started = collections.Counter(l.strip() for l in open(os.path.join(d, "started")))
accepted = [r for r in recs if r["status"] == 202]
bad = [r for r in recs if r["status"] not in (0, 202)]
print("submitted %d, accepted %d, cut off %d; %d runs stored, %d ledger lines"
      % (len(recs), len(accepted), len([r for r in recs if r["status"] == 0]), len(store),
         sum(ledger.values())))
assert len(recs) == 90, len(recs)
assert not bad, bad[:3]
assert len(accepted) >= 45, "too few runs accepted to say anything"

# Each accepted run exists and ended as its flow says.
for rec in accepted:
    run = store.get(rec["id"])
    assert run, "accepted run %d is missing" % rec["id"]
    assert run["flow"] == rec["flow"], (rec, run["flow"])
def ended_as_expected(rid, run):
    acts = run["acts"]
    if run["flow"] == "diamond":
        return (run["state"] == "Succeeded" and run["output"] == "b:x%d c:x%d" % (rid, rid) and
                all(a["state"] == "Succeeded" and a["attempts"] == 1 for a in acts.values()))
    if run["flow"] == "flaky":
        return (run["state"] == "Succeeded" and acts["f"]["attempts"] == 2 and
                acts["f"]["output"] == "second")
    return (run["state"] == "Failed" and
            acts["bad"]["state"] == "Failed" and acts["bad"]["attempts"] == 1 and
            acts["after"]["state"] == "Skipped" and acts["after"]["attempts"] == 0 and
            acts["side"]["state"] == "Succeeded")
wrong = [(rid, run) for rid, run in store.items() if not ended_as_expected(rid, run)]
for rid, _ in wrong:
    note_bad(rid)
assert not wrong, "runs that ended wrong: %s" % wrong[:3]

# Every attempt the store counts ran exactly once, and nothing else ran.
want = collections.Counter()
for rid, run in store.items():
    for name, a in run["acts"].items():
        for n in range(1, a["attempts"] + 1):
            want[(str(rid), name, str(n))] += 1
twice = [k for k, n in ledger.items() if n > 1]
missing = [k for k in want if k not in ledger]
extra = [k for k in ledger if k not in want]
for k in twice + missing + extra:
    note_bad(k[0])
assert not twice, "attempts that ran twice: %s" % twice[:5]
assert not missing, "attempts recorded but never run: %s (%s)" % (
    missing[:5], [store[int(k[0])]["acts"][k[1]] for k in missing[:5]])
assert not extra, "attempts that ran but are not in the store: %s" % extra[:5]
dups = [u for u, n in started.items() if n > 1]
assert not dups, "units started twice: %s" % dups[:5]
PY
log "every accepted run ended as expected; every attempt ran once"
tb_stop
