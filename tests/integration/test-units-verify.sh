#!/usr/bin/env bash
# The installed units are clean for systemd-analyze verify, and the bus name activates the daemon.
source "$(dirname "$0")/testbed.sh"
tb_start

out=$(tb_sh 'cd /usr/lib/systemd/system && systemd-analyze verify arkevent.service arkevent.socket arkevent.slice arkevent-cron@x.service 2>&1' || true)
assert_eq "$out" "" "systemd-analyze verify output"

# D-Bus activation: a bus call starts the stopped daemon.
assert_eq "$(tb_run systemctl is-active arkevent.service || true)" inactive "before the call"
version=$(tb_run busctl get-property dev.arkonis.ArkEvent1 /dev/arkonis/ArkEvent1 dev.arkonis.ArkEvent1.Manager Version)
assert_eq "$version" 's "0.1.0"' "Version property"
assert_eq "$(tb_run systemctl is-active arkevent.service)" active "after the call"
log "ok"
