#!/usr/bin/env bash
# The box's own configuration, installed and removed by install.sh (box mode):
#
#   firmware_config/box/box-config.sh install   [ROOT]
#   firmware_config/box/box-config.sh uninstall [ROOT]
#
# ALSA: the stage mic by card NAME with plug + dsnoop (/etc/asound.conf, only where none
# exists: a venue's own is kept); udev: the USB mic is always card "StageMic"; journald: size
# limits; the console never blanks and the box boots to it (multi-user.target); Jetson power
# mode and clocks at boot (skipped with a message where nvpmodel/jetson_clocks are absent);
# appliance.service waits for the sound card (20 s at most) and for its storage.
#
# Idempotent: a second install changes nothing (files are only written when they differ).
# ROOT: install under this folder instead of / (an image being built, or a test); nothing is
# reloaded or started then. Uninstall removes exactly what install put there and restores the
# default target it replaced; /etc/asound.conf goes only if it is still the one installed.
set -euo pipefail

action="${1:-}"
root="${2:-}"
root="${root%/}"
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"  # firmware_config/

FILES=(
  "udev/85-appliance-stage-mic.rules:/etc/udev/rules.d/85-appliance-stage-mic.rules"
  "journald/appliance.conf:/etc/systemd/journald.conf.d/appliance.conf"
  "systemd/appliance-console.service:/etc/systemd/system/appliance-console.service"
  "systemd/appliance-power.service:/etc/systemd/system/appliance-power.service"
  "systemd/appliance.service.d/wait-for-hardware.conf:/etc/systemd/system/appliance.service.d/wait-for-hardware.conf"
)
ASOUND="alsa/asound.conf:/etc/asound.conf"
WANTED=(appliance-console.service appliance-power.service)
WANTS_DIR=/etc/systemd/system/multi-user.target.wants
DEFAULT=/etc/systemd/system/default.target
SAVED=/var/lib/appliance/box-config   # what install replaced (the default target)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

put() {  # put SRC DEST: write only when the content differs (idempotent)
  local from="$src/$1" to="$root$2"
  if ! cmp -s "$from" "$to"; then
    install -D -m 0644 "$from" "$to"
    echo "  $2"
  fi
}

install_config() {
  say "the box's own configuration${root:+ under $root}"
  for pair in "${FILES[@]}"; do put "${pair%%:*}" "${pair#*:}"; done
  if [ ! -e "$root${ASOUND#*:}" ]; then
    put "${ASOUND%%:*}" "${ASOUND#*:}"
  elif ! cmp -s "$src/${ASOUND%%:*}" "$root${ASOUND#*:}"; then
    echo "  ${ASOUND#*:} kept (the venue's own; the example is firmware_config/alsa/asound.conf)"
  fi
  mkdir -p "$root$WANTS_DIR"
  for unit in "${WANTED[@]}"; do  # what `systemctl enable` does, without a running systemd
    ln -sfn "/etc/systemd/system/$unit" "$root$WANTS_DIR/$unit"
  done
  # boot to the console: multi-user.target, no desktop on the screen the film needs
  local want=/lib/systemd/system/multi-user.target
  if [ "$(readlink "$root$DEFAULT" 2>/dev/null || true)" != "$want" ]; then
    mkdir -p "$root$SAVED"
    if [ ! -e "$root$SAVED/default.target" ]; then
      readlink "$root$DEFAULT" > "$root$SAVED/default.target" 2>/dev/null || : > "$root$SAVED/default.target"
    fi
    ln -sfn "$want" "$root$DEFAULT"
    echo "  $DEFAULT -> multi-user.target (boot to the console)"
  fi
  for tool in nvpmodel jetson_clocks; do
    command -v "$tool" >/dev/null || \
      echo "  $tool not found (not a Jetson?): appliance-power.service will skip it at boot"
  done
  if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable appliance-console.service appliance-power.service >/dev/null 2>&1 || true
    udevadm control --reload 2>/dev/null && udevadm trigger -s sound 2>/dev/null || true
    systemctl restart systemd-journald || true
  fi
}

uninstall_config() {
  say "removing the box's own configuration${root:+ under $root}"
  for pair in "${FILES[@]}"; do rm -f "$root${pair#*:}"; done
  rmdir "$root/etc/systemd/system/appliance.service.d" "$root/etc/systemd/journald.conf.d" \
    2>/dev/null || true
  if cmp -s "$src/${ASOUND%%:*}" "$root${ASOUND#*:}"; then rm -f "$root${ASOUND#*:}"; fi
  for unit in "${WANTED[@]}"; do rm -f "$root$WANTS_DIR/$unit"; done
  rmdir "$root$WANTS_DIR" 2>/dev/null || true
  if [ -e "$root$SAVED/default.target" ]; then
    local before
    before="$(cat "$root$SAVED/default.target")"
    if [ -n "$before" ]; then ln -sfn "$before" "$root$DEFAULT"; else rm -f "$root$DEFAULT"; fi
    rm -rf "$root$SAVED"
  fi
  if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
}

case "$action" in
  install) install_config ;;
  uninstall) uninstall_config ;;
  *) echo "usage: $0 install|uninstall [ROOT]" >&2; exit 2 ;;
esac
