# shellcheck shell=bash
# The real-systemd test bed: boots systemd as PID 1 in private namespaces (PID, mount, cgroup and
# by default network), with the built project installed into an overlay of /usr and /etc, so the
# host is never touched. Source it from a test, call tb_start, and the EXIT trap tears it down:
# every process in the namespace ends with its PID 1, and the mounts go with the mount namespace.
#
#   tb_start [--host-net]   boot (private network unless --host-net), start the system bus
#   tb_run CMD...           run a command inside
#   tb_sh 'SHELL'           run a shell snippet inside
#   tb_wait SECS CMD...     retry CMD inside until it succeeds; fail after SECS
#   tb_curl ARGS...         curl inside (127.0.0.1:8092 is the daemon)
#   tb_journal ARGS...      journalctl inside
#   tb_write PATH           write stdin to PATH inside
#   tb_stop                 tear down (also on EXIT)
#   assert_eq, assert_contains, assert_not_contains, fail

set -euo pipefail

: "${ARKEVENT_BUILD_DIR:?run through meson test, or set ARKEVENT_BUILD_DIR}"
: "${ARKEVENT_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

TB_PID=
TB_UNSHARE=
TB_DIR=
TB_NET=1
TB_STAGE=$ARKEVENT_BUILD_DIR/stage
TB_NAME=$(basename "$0" .sh)

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$TB_NAME" "$*" >&2; }

fail() {
        log "FAIL: $*"
        exit 1
}

if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
        echo "SKIP: needs root and unshare" >&2
        exit 77
fi

tb_stage() {
        # One install per run of the suite (keyed by the test runner's PID); parallel tests wait.
        (
                flock 9
                if [ "$(cat "$TB_STAGE/.stamp" 2>/dev/null)" != "$PPID" ]; then
                        rm -rf "$TB_STAGE"
                        meson install -C "$ARKEVENT_BUILD_DIR" --destdir "$TB_STAGE" --no-rebuild --quiet >/dev/null
                        echo "$PPID" >"$TB_STAGE/.stamp"
                fi
        ) 9>"$ARKEVENT_BUILD_DIR/.stage.lock"
}

tb_enter() {
        if [ "$TB_NET" = 1 ]; then
                nsenter -t "$TB_PID" -m -p -C -n "$@"
        else
                nsenter -t "$TB_PID" -m -p -C "$@"
        fi
}

tb_run() { tb_enter "$@"; }
tb_sh() { tb_enter sh -c "$1"; }

tb_wait() {
        local secs=$1 deadline
        shift
        deadline=$((SECONDS + secs))
        until tb_enter "$@" >/dev/null 2>&1; do
                [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $*"
                sleep 0.1
        done
}

# Waits until a shell condition inside holds.
tb_wait_sh() { tb_wait "$1" sh -c "$2"; }

tb_curl() { tb_enter curl -sS --max-time 30 "$@"; }
tb_journal() { tb_enter journalctl --no-pager "$@"; }
tb_write() { tb_enter sh -c "mkdir -p \"\$(dirname '$1')\" && cat > '$1'"; }

assert_eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"; }
assert_contains() { case "$1" in *"$2"*) ;; *) fail "${3:-output} does not contain '$2': $1" ;; esac; }
assert_not_contains() { case "$1" in *"$2"*) fail "${3:-output} contains '$2': $1" ;; *) ;; esac; }

# jq is not assumed: python3 reads JSON.
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

tb_dump() {
        [ -n "$TB_PID" ] && kill -0 "$TB_PID" 2>/dev/null || return 0
        log "---- diagnostics ----"
        tb_enter systemctl --no-pager status arkevent.service arkevent.socket 2>&1 | tail -n 30 >&2 || true
        tb_enter journalctl --no-pager -n 80 -u arkevent.service 2>&1 >&2 || true
}

tb_stop() {
        local rc=$?
        trap - EXIT
        [ "$rc" -ne 0 ] && tb_dump
        if [ -n "$TB_PID" ]; then
                kill -9 "$TB_PID" 2>/dev/null || true
        fi
        if [ -n "$TB_UNSHARE" ]; then
                wait "$TB_UNSHARE" 2>/dev/null || true
        fi
        [ -n "$TB_DIR" ] && rm -rf "$TB_DIR"
        TB_PID=
        exit "$rc"
}

tb_start() {
        local deadline
        [ "${1:-}" = "--host-net" ] && TB_NET=0
        tb_stage
        TB_DIR=$(mktemp -d "$ARKEVENT_BUILD_DIR/testbed.XXXXXX")
        mkdir -p "$TB_DIR/etc-upper/arkevent.d" "$TB_DIR/etc-work"
        trap tb_stop EXIT

        # Sanitizer builds: LeakSanitizer needs ptrace, which the unit's seccomp filter forbids.
        if ldd "$ARKEVENT_BUILD_DIR/src/arkeventd" | grep -q libasan; then
                mkdir -p "$TB_DIR/etc-upper/systemd/system/arkevent.service.d"
                cat >"$TB_DIR/etc-upper/systemd/system/arkevent.service.d/sanitizer.conf" <<-EOT
		[Service]
		SystemCallFilter=
		MemoryDenyWriteExecute=no
		Environment=ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		EOT
        fi

        local netopt=()
        [ "$TB_NET" = 1 ] && netopt=(--net)
        # shellcheck disable=SC2016
        unshare --pid --fork --mount --propagation private --mount-proc --cgroup "${netopt[@]}" sh -c '
                set -e
                stage=$1 dir=$2 net=$3
                mount -t overlay overlay -o ro,lowerdir=$stage/usr:/usr /usr
                mount -t overlay overlay -o lowerdir=$stage/etc:/etc,upperdir=$dir/etc-upper,workdir=$dir/etc-work /etc
                mount -t tmpfs tmpfs /var/lib
                mount -t tmpfs tmpfs /run
                mount -t tmpfs tmpfs /tmp
                mkdir -p /var/log/journal && mount -t tmpfs tmpfs /var/log/journal
                mount -t cgroup2 cgroup2 /sys/fs/cgroup
                [ "$net" = 1 ] && ip link set lo up
                export container=arkevent-test
                exec /lib/systemd/systemd --unit=basic.target
        ' sh "$TB_STAGE" "$TB_DIR" "$TB_NET" </dev/null >"$TB_DIR/systemd.log" 2>&1 &
        TB_UNSHARE=$!

        deadline=$((SECONDS + 20))
        while :; do
                TB_PID=$(pgrep -P "$TB_UNSHARE" | head -n1 || true)
                if [ -n "$TB_PID" ] && [ "$(cat "/proc/$TB_PID/comm" 2>/dev/null)" = systemd ] &&
                   nsenter -t "$TB_PID" -m test -S /run/systemd/private 2>/dev/null; then
                        break
                fi
                kill -0 "$TB_UNSHARE" 2>/dev/null || { cat "$TB_DIR/systemd.log" >&2; fail "the sandbox died"; }
                [ "$SECONDS" -lt "$deadline" ] || fail "systemd did not come up"
                sleep 0.05
        done
        timeout 60 nsenter -t "$TB_PID" -m -p -C systemctl is-system-running --wait >/dev/null 2>&1 || true
        tb_run systemctl start dbus.socket
        tb_run systemctl daemon-reload
        log "systemd up as PID $TB_PID"
}

# Starts the daemon through its socket and waits until it answers.
tb_start_arkevent() {
        tb_run systemctl start arkevent.socket
        tb_wait 30 curl -sf http://127.0.0.1:8092/healthz
}

tb_api_token() { tb_run cat /var/lib/arkevent/api-token; }

# POSTs JSON to the REST API with the API token.
tb_api() {
        local method=$1 path=$2
        shift 2
        tb_curl -X "$method" -H "Authorization: Bearer $(tb_api_token)" "$@" "http://127.0.0.1:8092$path"
}

# Waits until run ID reaches a final state; prints that state.
tb_wait_run() {
        local id=$1 secs=${2:-60} deadline state
        deadline=$((SECONDS + secs))
        while :; do
                state=$(tb_api GET "/api/v1/runs/$id" | json 'd["state"]' 2>/dev/null || true)
                case "$state" in
                Succeeded | Failed | Cancelled | TimedOut) echo "$state"; return 0 ;;
                esac
                [ "$SECONDS" -lt "$deadline" ] || fail "run $id did not finish in ${secs}s (state: $state)"
                sleep 0.1
        done
}
