#!/usr/bin/env bash
# arkevent.socket holds the port; the first request starts the daemon on the inherited socket.
source "$(dirname "$0")/testbed.sh"
tb_start

tb_run systemctl start arkevent.socket
assert_eq "$(tb_run systemctl is-active arkevent.socket)" active "arkevent.socket"
assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "arkevent.service before the first request"
listeners=$(tb_run ss -ltnpH 'sport = :8092')
assert_contains "$listeners" '("systemd",pid=1,' "listener on 8092 before the first request"
assert_not_contains "$listeners" arkeventd "listener on 8092 before the first request"

# The first request is answered by the daemon that it started.
out=$(tb_curl -w '\n%{http_code} %{content_type}' http://127.0.0.1:8092/healthz) ||
        fail "GET /healthz through arkevent.socket failed (curl exit status $?)"
assert_eq "$(tail -n1 <<<"$out")" "200 application/json" "status and type of GET /healthz"
body=$(sed '$d' <<<"$out")
assert_eq "$(json 'd["status"]' <<<"$body")" ok "healthz status"
assert_eq "$(json 'd["version"]' <<<"$body")" "$TB_VERSION" "healthz version"
assert_eq "$(json 'd["flows"], d["triggers"], d["runsActive"]' <<<"$body")" "(0, 0, 0)" "healthz counts of an empty /etc/arkevent.d"

assert_eq "$(tb_run systemctl is-active arkevent.service)" active "arkevent.service after the first request"
assert_eq "$(tb_run systemctl show -P TriggeredBy arkevent.service)" arkevent.socket "TriggeredBy"
pid=$(tb_run systemctl show -P MainPID arkevent.service)
assert_eq "$(tb_run cat "/proc/$pid/comm")" arkeventd "main process"
# The daemon serves on systemd's socket rather than a socket of its own.
listeners=$(tb_run ss -ltnpH 'sport = :8092')
assert_eq "$(wc -l <<<"$listeners")" 1 "listening sockets on 8092"
assert_contains "$listeners" '("arkeventd",pid='"$pid"',' "listener on 8092 after activation"
assert_contains "$listeners" '("systemd",pid=1,' "listener on 8092 after activation"

# Errors are JSON with the right status.
out=$(tb_curl -w '\n%{http_code} %{content_type}' http://127.0.0.1:8092/no/such/path)
assert_eq "$(tail -n1 <<<"$out")" "404 application/json" "status and type of an unknown path"
# The message may go on to name the path ("not found: /no/such/path").
assert_eq "$(sed '$d' <<<"$out" | json 'd["error"].startswith("not found")')" True "error of an unknown path starts with 'not found'"

out=$(tb_curl -w '\n%{http_code}' -X DELETE http://127.0.0.1:8092/healthz)
assert_eq "$(tail -n1 <<<"$out")" 405 "status of DELETE /healthz"
assert_eq "$(sed '$d' <<<"$out" | json 'type(d["error"]).__name__')" str "error of DELETE /healthz"

# Still the same daemon: requests did not restart it.
assert_eq "$(tb_run systemctl show -P MainPID arkevent.service)" "$pid" "MainPID after the requests"
assert_eq "$(tb_run systemctl show -P NRestarts arkevent.service)" 0 "NRestarts"
