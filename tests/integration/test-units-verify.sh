#!/usr/bin/env bash
# The installed units are clean for systemd-analyze verify, and the bus name activates the daemon.
source "$(dirname "$0")/testbed.sh"
tb_start

units="arkevent.service arkevent.socket arkevent.slice arkevent-cron@x.service"
for u in $units; do
        tb_run test -f "/usr/lib/systemd/system/${u/@x/@}" || fail "$u is not installed"
done
rc=0
out=$(tb_sh "cd /usr/lib/systemd/system && systemd-analyze verify $units 2>&1") || rc=$?
assert_eq "$out" "" "systemd-analyze verify output"
assert_eq "$rc" 0 "systemd-analyze verify exit status"

# D-Bus activation: a bus call starts the stopped daemon.
assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "arkevent.service before the call"
version=$(tb_run busctl get-property dev.arkonis.ArkEvent1 /dev/arkonis/ArkEvent1 dev.arkonis.ArkEvent1.Manager Version)
assert_eq "$version" "s \"$TB_VERSION\"" "Version property"
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "arkevent.service after the call"
