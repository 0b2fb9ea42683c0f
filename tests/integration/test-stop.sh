#!/usr/bin/env bash
# systemctl stop ends the daemon cleanly; the socket stays and starts it again.
source "$(dirname "$0")/testbed.sh"
tb_start
tb_start_arkevent

pid=$(tb_run systemctl show -P MainPID arkevent.service)
[ "$pid" -gt 0 ] || fail "no main PID: '$pid'"
cursor=$(tb_journal_cursor)
t0=$(tb_now_ms)
tb_run systemctl stop arkevent.service
took=$(($(tb_now_ms) - t0))
log "systemctl stop took $took ms"

assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "arkevent.service after stop"
assert_eq "$(tb_run systemctl show -P Result arkevent.service)" success "Result"
# ExecMainCode 1 is CLD_EXITED: the daemon exited by itself, it was not killed by a signal.
assert_eq "$(tb_run systemctl show -P ExecMainCode arkevent.service)" 1 "ExecMainCode"
assert_eq "$(tb_run systemctl show -P ExecMainStatus arkevent.service)" 0 "ExecMainStatus"
[ "$took" -lt 10000 ] || fail "stop took $took ms, so it probably ran into a timeout"
stop_log=$(tb_journal_after "$cursor" -u arkevent.service)
assert_not_contains "$stop_log" SIGKILL "journal of the stop"
assert_not_contains "$stop_log" "timed out" "journal of the stop"
tb_run test ! -e "/proc/$pid" || fail "the old main process $pid still exists"

# The port is still systemd's.
assert_eq "$(tb_run systemctl is-active arkevent.socket)" active "arkevent.socket after stopping the service"
listeners=$(tb_run ss -ltnpH 'sport = :8092')
assert_contains "$listeners" '("systemd",pid=1,' "listener on 8092 after the stop"
assert_not_contains "$listeners" arkeventd "listener on 8092 after the stop"

# The next request starts a new daemon.
assert_eq "$(tb_healthz 'd["status"]')" ok "healthz after the stop"
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "arkevent.service after the next request"
newpid=$(tb_run systemctl show -P MainPID arkevent.service)
if [ "$newpid" -le 0 ] || [ "$newpid" = "$pid" ]; then
        fail "expected a new main PID, got '$newpid' (was $pid)"
fi
