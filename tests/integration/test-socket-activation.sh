#!/usr/bin/env bash
# The socket holds the port; the first request starts the daemon.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_run systemctl start arkevent.socket
assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "before the first request"

out=$(tb_curl -sf http://127.0.0.1:8092/healthz)
assert_contains "$out" '"status":"ok"'
assert_contains "$out" '"version":"0.1.0"'
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "after the first request"

code=$(tb_curl -o /dev/null -w '%{http_code}' http://127.0.0.1:8092/no/such/path)
assert_eq "$code" 404 "status of an unknown path"
body=$(tb_curl http://127.0.0.1:8092/no/such/path)
assert_eq "$(echo "$body" | json 'd["status"]')" 404 "JSON status"
assert_contains "$(echo "$body" | json 'd["error"]')" "not found"

code=$(tb_curl -o /dev/null -w '%{http_code}' -X DELETE http://127.0.0.1:8092/healthz)
assert_eq "$code" 405 "DELETE /healthz"
log "ok"
