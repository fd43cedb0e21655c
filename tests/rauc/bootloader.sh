#!/bin/sh
# Stands in for the bootloader in the tests of the agent's `rauc` back end: RAUC's
# `custom` bootloader back end (system.conf `bootloader-custom-backend`) calls it to read
# and set the primary slot and each slot's state, kept in boot.state next to it. Like
# barebox's bootchooser, making a slot primary also gives it a fresh chance (state good);
# reboot.sh then boots the primary slot while it is good, else the other one.
set -eu
STATE="$(dirname "$0")/boot.state"
[ -f "$STATE" ] || printf 'primary=A\nstate_A=good\nstate_B=good\n' > "$STATE"
get() { sed -n "s/^$1=//p" "$STATE"; }
put() { grep -v "^$1=" "$STATE" > "$STATE.tmp" || true; echo "$1=$2" >> "$STATE.tmp"; mv "$STATE.tmp" "$STATE"; }
echo "$*" >> "$STATE.log"
case "$1" in
  get-primary) get primary ;;
  set-primary) put primary "$2"; put "state_$2" good ;;
  get-state)   get "state_$2" ;;
  set-state)   put "state_$2" "$3" ;;
  get-current) get primary ;;
  *) echo "unknown: $*" >&2; exit 1 ;;
esac
