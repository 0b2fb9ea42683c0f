# shellcheck shell=bash
# The real-systemd test bed (DESIGN.md, "Testing against real systemd").
#
# Boots systemd as PID 1 in private PID, mount, cgroup and (by default) network namespaces, with
# the build installed into a stage and laid over /usr and /etc, so the sandbox sees an installed
# arkevent while the host is never touched:
#
#   /usr            read-only overlay: STAGE/usr over the host's /usr
#   /etc            overlay: STAGE/etc over the host's /etc, writes go to a private tmpfs
#   /var            overlay over the host's /var, writes go to a private tmpfs; on top of it
#                   fresh tmpfs on /var/lib, /var/tmp and /var/log/journal (no host state inside)
#   /run, /tmp      fresh tmpfs
#   /sys/fs/cgroup  a cgroup2 of the sandbox's own cgroup namespace
#
# Source it from a test, then call tb_start. Everything ends in the EXIT trap (tb_stop).
#
#   tb_start [--no-net]     boot, wait until running, start the system bus, daemon-reload;
#                           --no-net (alias --host-net) shares the host's network
#   tb_run CMD...           run a command inside all the sandbox's namespaces
#   tb_sh 'SHELL'           run a shell snippet inside
#   tb_wait SECS CMD...     retry CMD inside until it succeeds, with back-off; fail after SECS
#   tb_wait_sh SECS 'SHELL' the same for a shell condition
#   tb_curl ARGS...         curl inside (http://127.0.0.1:8092 is the daemon's socket)
#   tb_journal ARGS...      journalctl --no-pager inside
#   tb_journal_cursor       the journal's current end
#   tb_journal_after CURSOR [-u UNIT] [-p PRIO]
#                           messages after CURSOR (use this, not --after-cursor with -u)
#   tb_wait_journal SECS CURSOR TEXT [-u UNIT] [-p PRIO]
#                           wait until such a message contains TEXT
#   tb_write PATH           write stdin to PATH inside (directories created)
#   tb_write_file PATH STR  write STR to PATH inside
#   tb_start_arkevent       start arkevent.socket and wait until /healthz answers
#   tb_dump                 print diagnostics (done by tb_stop when the test fails)
#   tb_stop                 tear down (runs from the EXIT trap; safe to call twice)
#   tb_healthz [EXPR]       GET /healthz (must answer 200); with EXPR, print that of it (json)
#   log, fail, assert_eq, assert_contains, assert_not_contains, json
#   TB_VERSION              the project's version, as meson knows it
#
# Teardown: kill -9 of the sandbox's PID 1 ends every process of its PID namespace; the mount
# namespace, and with it every mount, goes with its last process. If the test itself is killed
# with SIGKILL, the kernel does it: unshare runs with a parent-death signal (setpriv --pdeathsig)
# and kills PID 1 when it dies (--kill-child). tb_stop checks that no process of the sandbox's
# namespaces and no mount of the stage is left on the host.
#
# Environment: ARKEVENT_BUILD_DIR (required), ARKEVENT_SOURCE_DIR, TB_BOOT_TIMEOUT (seconds,
# default 30), TB_KEEP_LOG=1 keeps the sandbox's console log in the build directory.

set -euo pipefail

: "${ARKEVENT_BUILD_DIR:?run through meson test, or set ARKEVENT_BUILD_DIR}"
: "${ARKEVENT_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
ARKEVENT_BUILD_DIR=$(cd "$ARKEVENT_BUILD_DIR" && pwd)

TB_NAME=$(basename "$0" .sh)
TB_STAGE=$ARKEVENT_BUILD_DIR/stage
TB_NET=1
TB_PID=           # the sandbox's PID 1 (systemd), as the host sees it
TB_UNSHARE=       # the unshare process that forked it
TB_PIDNS=         # namespace identities, to prove that nothing of them outlives tb_stop
TB_MNTNS=
TB_DIR=           # console log of the sandbox
TB_CGROUP=        # the sandbox's own cgroup (on the host's cgroup2 hierarchy), if there is one
TB_LOCK_FD=       # shared lock on the stage while the sandbox uses it
TB_T0=

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$TB_NAME" "$*" >&2; }

fail() {
        log "FAIL: $*"
        exit 1
}

tb_skip() {
        echo "SKIP: $*" >&2
        exit 77
}

[ "$(id -u)" -eq 0 ] || tb_skip "needs root"
for _tb_cmd in unshare nsenter setpriv flock curl python3; do
        command -v "$_tb_cmd" >/dev/null || tb_skip "needs $_tb_cmd"
done
[ -x /lib/systemd/systemd ] || tb_skip "needs /lib/systemd/systemd"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || tb_skip "needs overlayfs"
unset _tb_cmd

# shellcheck disable=SC2034 # for the tests
TB_VERSION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
        "$ARKEVENT_BUILD_DIR/meson-info/intro-projectinfo.json")

# Milliseconds since the epoch (wall clock; the deadlines here are seconds long).
tb_now_ms() {
        local t=${EPOCHREALTIME/./}
        echo $((t / 1000))
}

# ---- assertions ------------------------------------------------------------------------------

assert_eq() {
        [ "$1" = "$2" ] && return 0
        fail "${3:-value}: expected '$2', got '$1'"
}

assert_contains() {
        case "$1" in *"$2"*) return 0 ;; esac
        fail "${3:-output}: expected to contain '$2', got:
$1"
}

assert_not_contains() {
        case "$1" in *"$2"*) fail "${3:-output}: expected not to contain '$2', got:
$1" ;; esac
        return 0
}

# Evaluates a Python expression over the JSON document on stdin (bound to d); jq is not assumed.
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

# ---- the stage -------------------------------------------------------------------------------

# Identity of what `meson install` would copy: path, size and mtime of every installed file.
tb_stage_stamp() {
        python3 - "$ARKEVENT_BUILD_DIR/meson-info/intro-installed.json" <<-'EOF'
	import hashlib, json, os, sys
	h = hashlib.sha256()
	for src in sorted(json.load(open(sys.argv[1]))):
	    paths = [src]
	    if os.path.isdir(src):
	        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs)
	    for p in paths:
	        st = os.stat(p)
	        h.update(f"{p} {st.st_size} {st.st_mtime_ns}\n".encode())
	print(h.hexdigest())
	EOF
}

# Installs the build into the stage unless it is current. Running sandboxes hold a shared lock
# on it (their overlays read it), so a new install waits until none uses the old one instead of
# changing files under a live overlay; concurrent tests never install at the same time.
tb_stage() {
        local stamp deadline
        stamp=$(tb_stage_stamp) || fail "cannot read the install plan of $ARKEVENT_BUILD_DIR"
        exec {TB_LOCK_FD}>"$ARKEVENT_BUILD_DIR/.stage.lock"
        deadline=$(($(tb_now_ms) + 240000))
        while :; do
                flock -s -w 240 "$TB_LOCK_FD" || fail "timed out waiting for the stage lock"
                [ "$(cat "$TB_STAGE/.stamp" 2>/dev/null)" = "$stamp" ] && return 0
                # Converting the lock drops the shared one first: if this fails, another test
                # holds the stage (or is installing it), and the stamp is worth another look.
                if flock -x -n "$TB_LOCK_FD"; then
                        if [ "$(cat "$TB_STAGE/.stamp" 2>/dev/null)" != "$stamp" ]; then
                                rm -rf "$TB_STAGE"
                                meson install -C "$ARKEVENT_BUILD_DIR" --destdir "$TB_STAGE" \
                                        --no-rebuild --quiet >/dev/null ||
                                        fail "meson install into $TB_STAGE failed"
                                echo "$stamp" >"$TB_STAGE/.stamp"
                        fi
                        flock -s "$TB_LOCK_FD"
                        return 0
                fi
                [ "$(tb_now_ms)" -lt "$deadline" ] ||
                        fail "the stage is out of date and other tests kept using it for 240s"
                sleep 0.1
        done
}

# ---- entering the sandbox --------------------------------------------------------------------

tb_enter() {
        local ns=(-m -p -C)
        [ "$TB_NET" = 1 ] && ns+=(-n)
        [ -n "$TB_PID" ] || fail "the sandbox is not running"
        nsenter -t "$TB_PID" "${ns[@]}" --wd=/ "$@" {TB_LOCK_FD}>&-
}

tb_run() { tb_enter "$@"; }
tb_sh() { tb_enter sh -c "$1"; }
tb_curl() { tb_enter curl -sS --max-time 30 "$@"; }
tb_journal() { tb_enter journalctl --no-pager "$@"; }

tb_write() {
        # shellcheck disable=SC2016
        tb_enter sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1"' sh "$1"
}

tb_write_file() { printf '%s' "$2" | tb_write "$1"; }

# Retries CMD inside until it succeeds; back-off from 20 ms doubling to 250 ms.
tb_wait() {
        local secs=$1 deadline delay=20 out
        shift
        deadline=$(($(tb_now_ms) + secs * 1000))
        until out=$(tb_enter "$@" 2>&1); do
                if [ "$(tb_now_ms)" -ge "$deadline" ]; then
                        fail "timed out after ${secs}s waiting for: $*${out:+ (last output: ${out:0:400})}"
                fi
                sleep "$(printf '0.%03d' "$delay")"
                delay=$((delay * 2 > 250 ? 250 : delay * 2))
        done
}

tb_wait_sh() { tb_wait "$1" sh -c "$2"; }

# The journal's current end: pass it to tb_journal_after or tb_wait_journal.
tb_journal_cursor() { tb_journal -n 0 --show-cursor | sed -n 's/^-- cursor: //p'; }

# tb_journal_after CURSOR [-u UNIT] [-p MAXPRIO]: the messages logged after CURSOR (all of the
# journal if it is empty), by or about UNIT, at priority MAXPRIO or more important. The filter
# runs here because journalctl 252 drops the first match when --after-cursor is combined with
# matches (-u, -p, FIELD=VALUE) and the cursor's own entry does not match.
tb_journal_after() {
        local cursor=$1 unit='' prio=7
        shift
        while [ $# -gt 0 ]; do
                case "$1" in
                -u) unit=$2; shift 2 ;;
                -p) prio=$2; shift 2 ;;
                *) fail "tb_journal_after: unknown argument $1" ;;
                esac
        done
        tb_journal -o json ${cursor:+"--after-cursor=$cursor"} | python3 -c '
import json, sys
unit, prio = sys.argv[1], int(sys.argv[2])
for line in sys.stdin:
    e = json.loads(line)
    if unit and unit not in (e.get("_SYSTEMD_UNIT"), e.get("UNIT"), e.get("OBJECT_SYSTEMD_UNIT")):
        continue
    if int(e.get("PRIORITY", 6)) > prio:
        continue
    m = e.get("MESSAGE", "")
    print(bytes(m).decode(errors="replace") if isinstance(m, list) else m)
' "$unit" "$prio"
}

# tb_wait_journal SECS CURSOR TEXT [-u UNIT] [-p MAXPRIO]: waits until a message that
# tb_journal_after would print contains TEXT; journald stores messages asynchronously.
tb_wait_journal() {
        local secs=$1 cursor=$2 text=$3 deadline delay=20 out
        shift 3
        deadline=$(($(tb_now_ms) + secs * 1000))
        while :; do
                out=$(tb_journal_after "$cursor" "$@" 2>&1 || true)
                case "$out" in *"$text"*) return 0 ;; esac
                if [ "$(tb_now_ms)" -ge "$deadline" ]; then
                        fail "no journal message containing '$text' ($*) after ${secs}s; there are:
$(tail -n 20 <<<"$out")"
                fi
                sleep "$(printf '0.%03d' "$delay")"
                delay=$((delay * 2 > 250 ? 250 : delay * 2))
        done
}

# ---- diagnostics and teardown ----------------------------------------------------------------

tb_dump() {
        [ -n "$TB_PID" ] && kill -0 "$TB_PID" 2>/dev/null || return 0
        local ns=(-m -p -C)
        [ "$TB_NET" = 1 ] && ns+=(-n)
        log "---- diagnostics ----"
        {
                timeout 10 nsenter -t "$TB_PID" "${ns[@]}" systemctl --no-pager --full status \
                        arkevent.socket arkevent.service
                echo "---- failed units"
                timeout 10 nsenter -t "$TB_PID" "${ns[@]}" systemctl --no-pager --failed
                echo "---- journal of arkevent*"
                timeout 10 nsenter -t "$TB_PID" "${ns[@]}" journalctl --no-pager -o short-monotonic \
                        -n 150 -u 'arkevent*'
        } 2>&1 | sed 's/^/  | /' >&2 || true
        if [ -s "$TB_DIR/console.log" ]; then
                echo "---- console of the sandbox (last lines)" >&2
                tail -n 20 "$TB_DIR/console.log" | sed 's/^/  | /' >&2 || true
        fi
}

# Processes on the host that are in namespace $1 (e.g. pid:[4026532178]) of type $2.
tb_ns_members() {
        local p n found=
        for p in /proc/[0-9]*; do
                n=$(readlink "$p/ns/$2" 2>/dev/null) || continue
                [ "$n" = "$1" ] && found+=" ${p#/proc/}"
        done
        echo "${found# }"
}

# A fresh cgroup for the sandbox on the host's cgroup2 hierarchy (none: share the current one).
tb_cgroup_create() {
        local root
        root=$(findmnt -rn -t cgroup2 -o TARGET 2>/dev/null | head -n1)
        [ -n "$root" ] && [ -w "$root" ] || return 0
        TB_CGROUP=$root/arkevent-testbed.$TB_NAME.$$
        mkdir "$TB_CGROUP" 2>/dev/null || TB_CGROUP=
}

# Removes the sandbox's cgroup tree once its processes are gone (bounded wait).
tb_cgroup_remove() {
        local deadline
        [ -n "$TB_CGROUP" ] && [ -d "$TB_CGROUP" ] || return 0
        deadline=$(($(tb_now_ms) + 5000))
        until find "$TB_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null; do
                if [ "$(tb_now_ms)" -ge "$deadline" ]; then
                        log "cannot remove the sandbox's cgroup $TB_CGROUP"
                        return 1
                fi
                sleep 0.05
        done
        TB_CGROUP=
}

tb_stop() {
        local deadline left
        [ -n "$TB_UNSHARE" ] || return 0

        # PID 1 of a PID namespace takes every process of the namespace with it. Before its PID
        # is known, killing unshare does the same (--kill-child).
        if [ -n "$TB_PID" ]; then
                kill -9 "$TB_PID" 2>/dev/null || true
        else
                kill -9 "$TB_UNSHARE" 2>/dev/null || true
        fi
        deadline=$(($(tb_now_ms) + 10000))
        while kill -0 "$TB_UNSHARE" 2>/dev/null; do
                if [ "$(tb_now_ms)" -ge "$deadline" ]; then
                        # Its child is killed by the kernel (--kill-child) when unshare dies.
                        kill -9 "$TB_UNSHARE" 2>/dev/null || true
                        deadline=$(($(tb_now_ms) + 10000))
                fi
                sleep 0.02
        done
        wait "$TB_UNSHARE" 2>/dev/null || true
        TB_UNSHARE=

        # Killed processes take a moment to be reaped (a sanitizer build's large mappings, a
        # loaded machine), and an nsenter on the host (outside the PID namespace, inside the
        # mount namespace) ends after its child inside: give them a bounded time.
        left=
        deadline=$(($(tb_now_ms) + 15000))
        while [ -n "$TB_PIDNS" ]; do
                left=$(tb_ns_members "$TB_PIDNS" pid)
                [ -n "$left" ] || left=$(tb_ns_members "$TB_MNTNS" mnt)
                [ -n "$left" ] && [ "$(tb_now_ms)" -lt "$deadline" ] || break
                sleep 0.05
        done
        [ -z "$left" ] || left+=" ($(ps -o pid=,comm=,args= -p "${left// /,}" 2>/dev/null | tr '\n' ';'))"
        # Overlays of our stage visible on the host would mean a mount escaped the namespace.
        if findmnt -rn -t overlay -o OPTIONS 2>/dev/null | grep -F "lowerdir=$TB_STAGE/" >/dev/null; then
                left+=" (a mount of $TB_STAGE on the host)"
        fi
        TB_PID=
        tb_cgroup_remove || left+=" (the cgroup $TB_CGROUP)"
        if [ -n "$left" ]; then
                for p in $left; do
                        case "$p" in [0-9]*) left+=" [$p: $(cat "/proc/$p/comm" 2>/dev/null) $(awk '/^State/ {print $2}' "/proc/$p/status" 2>/dev/null)]" ;; esac
                done
                log "FAIL: the sandbox left something behind: $left"
                return 1
        fi
        if [ -n "$TB_DIR" ] && [ "${TB_KEEP_LOG:-0}" != 1 ]; then
                rm -rf "$TB_DIR"
        fi
        TB_DIR=
}

tb_on_exit() {
        local rc=$?
        trap - EXIT
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
                tb_dump || true
        fi
        tb_stop || rc=1
        [ "$rc" -eq 0 ] && log "ok ($(($(tb_now_ms) - TB_T0)) ms)"
        exit "$rc"
}

# A command that fails outside an assertion says which one it was (set -e alone is silent).
trap 'log "FAIL: exit status $? from line $LINENO: $BASH_COMMAND"' ERR

# A terminating signal (meson's timeout sends SIGTERM first) still runs the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- boot ------------------------------------------------------------------------------------

# The sandbox's init, run as PID 1 of the new namespaces before it becomes systemd. The scratch
# tmpfs for the overlays' upper directories is mounted on /run first and covered by the real
# /run afterwards: the overlays keep using it, nothing else sees it, and a stage anywhere
# (even below /tmp) is still visible when the overlays are set up.
# shellcheck disable=SC2016
TB_INIT='
set -e
stage=$1 net=$2 asan=$3 asan_opts=$4 ubsan_opts=$5
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/tb/etc/upper /run/tb/etc/work /run/tb/var/upper /run/tb/var/work
mount -t overlay overlay -o ro,lowerdir="$stage/usr":/usr /usr
mount -t overlay overlay -o lowerdir="$stage/etc":/etc,upperdir=/run/tb/etc/upper,workdir=/run/tb/etc/work /etc
mount -t overlay overlay -o lowerdir=/var,upperdir=/run/tb/var/upper,workdir=/run/tb/var/work /var
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mkdir -p /var/log/journal
mount -t tmpfs -o mode=2755 tmpfs /var/log/journal
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /etc/arkevent.d
if [ "$asan" = 1 ]; then
        # AddressSanitizer and UBSan stay on for the daemon. LeakSanitizer does not: its
        # exit-time check stops the process with ptrace from a helper task, and under systemd
        # that fails now and then (a fatal error, or a spin until the stop times out), which
        # would make the tests flaky. Leaks are checked by the unit tests and the fuzzers.
        mkdir -p /etc/systemd/system/arkevent.service.d
        printf "[Service]\nSystemCallFilter=\nMemoryDenyWriteExecute=no\n" \
                >/etc/systemd/system/arkevent.service.d/sanitizer.conf
        # The same options for everything systemd starts: the daemon, ExecReload=, the steps.
        mkdir -p /etc/systemd/system.conf.d
        printf "[Manager]\nDefaultEnvironment=\"ASAN_OPTIONS=%s:detect_leaks=0\" \"UBSAN_OPTIONS=%s\"\n" \
                "$asan_opts" "$ubsan_opts" >/etc/systemd/system.conf.d/sanitizer.conf
fi
[ "$net" = 1 ] && ip link set lo up
export container=arkevent-test
exec /lib/systemd/systemd --unit=basic.target
'

tb_start() {
        local deadline state asan=0 staged booted ready unshare_opts=()
        case "${1:-}" in
        "") ;;
        --no-net | --host-net) TB_NET=0 ;;
        *) fail "tb_start: unknown option $1" ;;
        esac
        [ -z "$TB_UNSHARE" ] || fail "tb_start: the sandbox is already running"
        TB_T0=$(tb_now_ms)

        tb_stage
        staged=$(tb_now_ms)
        TB_DIR=$(mktemp -d "$ARKEVENT_BUILD_DIR/testbed-$TB_NAME.XXXXXX")
        if ldd "$ARKEVENT_BUILD_DIR/src/arkeventd" 2>/dev/null | grep libasan >/dev/null; then
                asan=1
        fi

        trap tb_on_exit EXIT
        unshare_opts=(--pid --fork --kill-child --mount --propagation private --mount-proc --cgroup)
        [ "$TB_NET" = 1 ] && unshare_opts+=(--net)
        # The cgroup namespace is rooted where unshare runs. Each sandbox gets a cgroup of its
        # own, or two sandboxes at once (two build trees tested together) would share one root
        # and remove each other's unit cgroups (units fail with 219/CGROUP).
        tb_cgroup_create
        # setpriv: unshare gets SIGKILL when this shell dies, and takes the sandbox with it.
        setpriv --pdeathsig KILL sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"' \
                sh "$TB_CGROUP" \
                unshare "${unshare_opts[@]}" sh -c "$TB_INIT" sh "$TB_STAGE" "$TB_NET" "$asan" \
                "${ASAN_OPTIONS:-detect_leaks=1}" "${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
                </dev/null >"$TB_DIR/console.log" 2>&1 {TB_LOCK_FD}>&- &
        TB_UNSHARE=$!

        # The child of unshare is the init script until it execs systemd, and systemctl has
        # nobody to talk to until systemd listens on /run/systemd/private.
        deadline=$(($(tb_now_ms) + ${TB_BOOT_TIMEOUT:-30} * 1000))
        while :; do
                if [ -z "$TB_PID" ]; then
                        TB_PID=$(pgrep -P "$TB_UNSHARE" | head -n1 || true)
                fi
                if [ -n "$TB_PID" ] && [ "$(cat "/proc/$TB_PID/comm" 2>/dev/null)" = systemd ] &&
                   nsenter -t "$TB_PID" -m test -d /run/systemd/system -a -S /run/systemd/private \
                           2>/dev/null; then
                        break
                fi
                if ! kill -0 "$TB_UNSHARE" 2>/dev/null; then
                        sed 's/^/  | /' "$TB_DIR/console.log" >&2
                        fail "the sandbox died while booting"
                fi
                [ "$(tb_now_ms)" -lt "$deadline" ] || fail "systemd did not come up in ${TB_BOOT_TIMEOUT:-30}s"
                sleep 0.02
        done
        TB_PIDNS=$(readlink "/proc/$TB_PID/ns/pid")
        TB_MNTNS=$(readlink "/proc/$TB_PID/ns/mnt")
        booted=$(tb_now_ms)

        state=$(tb_enter timeout "${TB_BOOT_TIMEOUT:-30}" systemctl is-system-running --wait 2>&1 || true)
        case "$state" in
        running) ;;
        degraded) log "the sandbox is degraded: $(tb_enter systemctl --failed --no-legend --plain | tr '\n' ' ')" ;;
        *) fail "the sandbox did not reach running: '$state'" ;;
        esac
        ready=$(tb_now_ms)
        tb_run systemctl start dbus.socket
        tb_run systemctl daemon-reload
        log "boot: stage $((staged - TB_T0)) ms, systemd up $((booted - staged)) ms, $state $((ready - staged)) ms, bus and reload $(($(tb_now_ms) - staged)) ms (PID $TB_PID)"
}

# ---- arkevent helpers ------------------------------------------------------------------------

# Starts the daemon through its socket and waits until it answers.
tb_start_arkevent() {
        tb_run systemctl start arkevent.socket
        tb_wait 30 curl -sf http://127.0.0.1:8092/healthz
}

tb_healthz() {
        local out
        out=$(tb_curl -f http://127.0.0.1:8092/healthz) || fail "GET /healthz failed: $out"
        if [ $# -eq 0 ]; then
                echo "$out"
        else
                json "$1" <<<"$out" || fail "GET /healthz: cannot read $1 from: $out"
        fi
}

tb_api_token() { tb_run cat /var/lib/arkevent/api-token; }

# Calls the REST API with the API token: tb_api METHOD PATH [CURL ARGS...].
tb_api() {
        local method=$1 path=$2
        shift 2
        tb_curl -X "$method" -H "Authorization: Bearer $(tb_api_token)" "$@" "http://127.0.0.1:8092$path"
}

# Waits until run ID reaches a final state; prints that state.
tb_wait_run() {
        local id=$1 secs=${2:-60} deadline state
        deadline=$(($(tb_now_ms) + secs * 1000))
        while :; do
                state=$(tb_api GET "/api/v1/runs/$id" | json 'd["state"]' 2>/dev/null || true)
                case "$state" in
                Succeeded | Failed | Cancelled | TimedOut) echo "$state"; return 0 ;;
                esac
                [ "$(tb_now_ms)" -lt "$deadline" ] || fail "run $id did not finish in ${secs}s (state: $state)"
                sleep 0.1
        done
}
