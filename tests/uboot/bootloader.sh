#!/bin/sh
# Stands in for U-Boot at a reboot in the tests of the agent's `uboot` back end: the
# boot-count decision of the boot script in docs/agent.md, applied to the same
# environment through libubootenv's fw_printenv/fw_setenv (real tools, real environment
# format). What is not real: no kernel boots; the agent goes on in-process.
# Usage: bootloader.sh FW_ENV_CONFIG
set -eu
cfg="$1"
get() { fw_printenv -c "$cfg" -n "$1" 2>/dev/null || true; }
[ "$(get upgrade_available)" = 1 ] || exit 0
count=$(get bootcount); count=$(( ${count:-0} + 1 ))
limit=$(get bootlimit); limit=${limit:-3}
if [ "$count" -gt "$limit" ]; then
    # altbootcmd: the trial slot failed to come up often enough; boot the other one.
    if [ "$(get boot_slot)" = a ]; then slot=b; else slot=a; fi
    script="$cfg.fallback"
    printf 'boot_slot=%s\nupgrade_available=0\nbootcount=0\n' "$slot" > "$script"
    fw_setenv -c "$cfg" -s "$script"
else
    fw_setenv -c "$cfg" bootcount "$count"
fi
