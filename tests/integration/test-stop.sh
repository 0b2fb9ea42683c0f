#!/usr/bin/env bash
# systemctl stop exits cleanly; the socket stays and starts the daemon again.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_start_arkevent

pid=$(tb_run systemctl show -P MainPID arkevent.service)
[ "$pid" -gt 0 ] || fail "no main PID"
tb_run systemctl stop arkevent.service
assert_eq "$(tb_run systemctl show -P Result arkevent.service)" success "Result"
assert_eq "$(tb_run systemctl show -P ExecMainStatus arkevent.service)" 0 "ExecMainStatus"
assert_eq "$(tb_run systemctl show -P ExecMainCode arkevent.service)" 1 "ExecMainCode (exited, not killed)"
tb_wait_sh 10 "journalctl -u arkevent.service --no-pager | grep -q 'Received SIGTERM, exiting.'"
assert_eq "$(tb_run systemctl is-active arkevent.socket)" active "socket"

tb_curl -sf http://127.0.0.1:8092/healthz >/dev/null
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "after the next request"
log "ok"
