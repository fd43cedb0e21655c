#!/bin/sh
# Stands in for a reboot in the tests of the agent's `rauc` back end: the bootloader's
# choice (the primary slot of boot.state while its state is good, else the other one),
# then RAUC's D-Bus service restarted as if that slot had booted
# (`rauc service --override-boot-slot`). What is not real: no kernel boots, the agent goes
# on in-process. Needs DBUS_SYSTEM_BUS_ADDRESS (the test's private bus).
# Usage: reboot.sh BOARD_DIR   (holds system.conf, bootloader.sh, mnt/)
set -eu
dir="$1"
"$dir/bootloader.sh" get-primary > /dev/null   # creates boot.state on the first boot
get() { sed -n "s/^$1=//p" "$dir/boot.state"; }
slot=$(get primary)
if [ "$(get "state_$slot")" != good ]; then
    if [ "$slot" = A ]; then slot=B; else slot=A; fi
fi
owned() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
        string:de.pengutronix.rauc 2>/dev/null | grep -q 'boolean true'
}
if [ -f "$dir/service.pid" ]; then
    kill "$(cat "$dir/service.pid")" 2>/dev/null || true
    # Its bus name goes with its connection (the process may linger as a zombie).
    for _ in $(seq 100); do owned || break; sleep 0.05; done
fi
echo "boot $slot" >> "$dir/boot.state.log"
rauc -c "$dir/system.conf" --mount="$dir/mnt" service --override-boot-slot="$slot" \
    >> "$dir/service.log" 2>&1 < /dev/null &
echo $! > "$dir/service.pid"
for _ in $(seq 100); do owned && exit 0; sleep 0.05; done
echo "rauc service did not come up (service.log)" >&2
exit 1
