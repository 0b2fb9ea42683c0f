#!/usr/bin/env bash
# Seed 001's Events API: pipelines created, read, replaced and deleted over REST; their event
# triggers started (optionally on one version), inspected and stopped; a message on the
# pipeline's topic runs it. Everything survives a restart of the daemon.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_start_arkevent

code() { tb_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(tb_api_token)" "$@"; }
publish() { # TOPIC JSON -> the run ids, one per line
        tb_api POST "/api/v1/topics/$1/messages" -d "$2" |
                json '"\n".join(str(r["id"]) for x in d["deliveries"] for r in x.get("runs", []))'
}
output_of() { # RUN -> its output once it succeeded
        assert_eq "$(tb_wait_run "$1" 60)" Succeeded "run $1"
        tb_api GET "/api/v1/runs/$1" | json 'd["output"]'
}

# Create (the seed posts to /api/v1/pipelines/), read, list.
p=$(tb_api POST /api/v1/pipelines/ -d '{
  "name": "Order Processing",
  "options": {"event": "orders-topic"},
  "steps": [{"name": "s", "env": {"ORDER": "{{ .trigger.body.order }}"}, "run": "echo \"v1 $ORDER\""}],
  "output": "{{ .steps.s.output }}"
}')
id=$(json 'd["id"]' <<<"$p")
assert_contains "$id" "pipeline-"
assert_eq "$(json 'd["version"]' <<<"$p")" 1 "first version"
assert_eq "$(tb_api GET "/api/v1/pipelines/$id" | json 'd["name"]')" "Order Processing" "GET"
assert_eq "$(tb_api GET /api/v1/pipelines | json '[x["id"] for x in d["pipelines"]]')" "['$id']" "list"
assert_eq "$(tb_api GET "/api/v1/events/$id" | json 'd["ready"]')" False "not started yet"
assert_eq "$(publish orders-topic '{"order": 1}')" "" "no run before the event is started"

# Start the event trigger (the seed's curl), then a message on the topic runs the pipeline.
out=$(tb_curl -X POST "http://127.0.0.1:8092/api/v1/events/$id" -H "Authorization: Bearer $(tb_api_token)")
assert_eq "$(json 'd["message"]' <<<"$out")" "Event started successfully" "start"
assert_eq "$(tb_curl "http://127.0.0.1:8092/api/v1/events/$id" -H "Authorization: Bearer $(tb_api_token)" | json 'd["ready"]')" True "ready"
run=$(publish orders-topic '{"order": 7}')
assert_eq "$(output_of "$run")" "v1 7" "a message runs the pipeline"

# A new version: the event follows the current one, or stays on the version it names.
assert_eq "$(tb_api PUT "/api/v1/pipelines/$id" -d '{
  "name": "Order Processing",
  "options": {"event": "orders-topic"},
  "steps": [{"name": "s", "env": {"ORDER": "{{ .trigger.body.order }}"}, "run": "echo \"v2 $ORDER\""}],
  "output": "{{ .steps.s.output }}"
}' | json 'd["version"]')" 2 "second version"
assert_eq "$(output_of "$(publish orders-topic '{"order": 8}')")" "v2 8" "current version"
assert_eq "$(tb_api POST "/api/v1/events/$id?pipeline_version=1" | json 'd["message"]')" "Event started successfully" "start on version 1"
assert_eq "$(output_of "$(publish orders-topic '{"order": 9}')")" "v1 9" "pinned version"
assert_eq "$(code -X POST "http://127.0.0.1:8092/api/v1/events/$id?pipeline_version=7")" 404 "no such version"
assert_eq "$(code -X POST "http://127.0.0.1:8092/api/v1/events/$id?pipeline_version=x")" 400 "bad version"

# It all survives a restart.
tb_run systemctl restart arkevent.service
assert_eq "$(tb_api GET "/api/v1/events/$id" | json 'd["ready"]')" True "ready after a restart"
assert_eq "$(output_of "$(publish orders-topic '{"order": 10}')")" "v1 10" "after a restart"

# Stop the event: messages no longer run it.
assert_eq "$(tb_api DELETE "/api/v1/events/$id" | json 'd["message"]')" "Event deleted successfully" "delete"
assert_eq "$(tb_api GET "/api/v1/events/$id" | json 'd["ready"]')" False "not ready once deleted"
assert_eq "$(publish orders-topic '{"order": 11}')" "" "no run after the event is deleted"
assert_eq "$(code -X DELETE "http://127.0.0.1:8092/api/v1/events/$id")" 404 "delete twice"

# A pipeline without options.event: the seed's 500.
q=$(tb_api POST /api/v1/pipelines -d '{"name": "plain", "steps": [{"name": "a", "run": "true"}]}' | json 'd["id"]')
out=$(tb_curl -w '\n%{http_code}' -X POST "http://127.0.0.1:8092/api/v1/events/$q" -H "Authorization: Bearer $(tb_api_token)")
assert_eq "$(tail -n1 <<<"$out")" 500 "no event option"
assert_eq "$(head -n -1 <<<"$out" | json 'd["error"]')" "Pipeline does not have an event option" "its error"

# Bad pipelines are refused whole, with the loader's words.
out=$(tb_api POST /api/v1/pipelines -w '\n%{http_code}' -d '{"name": "bad", "steps": [{"name": "a", "rnu": "true"}]}')
assert_eq "$(tail -n1 <<<"$out")" 400 "unknown step field"
assert_contains "$(head -n -1 <<<"$out" | json 'd["errors"]')" "rnu"
assert_eq "$(code -X POST -d '{"steps": []}' http://127.0.0.1:8092/api/v1/pipelines)" 400 "no name"
assert_eq "$(code http://127.0.0.1:8092/api/v1/pipelines/pipeline-nope)" 404 "unknown pipeline"
assert_eq "$(code http://127.0.0.1:8092/api/v1/events/pipeline-nope)" 404 "events of an unknown pipeline"
assert_eq "$(tb_curl -o /dev/null -w '%{http_code}' http://127.0.0.1:8092/api/v1/pipelines)" 401 "no token"
assert_eq "$(tb_api GET /api/v1/pipelines | json 'len(d["pipelines"])')" 2 "the bad one was not stored"

# Delete: the pipeline, its flow and its event go.
tb_api POST "/api/v1/events/$id" >/dev/null
assert_eq "$(tb_api DELETE "/api/v1/pipelines/$id" | json 'd["message"]')" "Pipeline deleted successfully" "delete pipeline"
assert_eq "$(code "http://127.0.0.1:8092/api/v1/pipelines/$id")" 404 "gone"
assert_eq "$(code -X POST -d "{\"flow\": \"default/$id\"}" http://127.0.0.1:8092/api/v1/runs)" 404 "its flow is gone"
assert_eq "$(publish orders-topic '{"order": 12}')" "" "its event is gone"
log "ok"
