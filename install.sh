#!/usr/bin/env bash
# Set up the genre-driven film appliance. Idempotent: run it again at any time.
#
#   ./install.sh --dev          development machine: system packages + ./.venv with the project
#   ./install.sh                the box (Jetson, JetPack Ubuntu): /opt/appliance, user, config,
#                               state folders, systemd unit enabled and started
#   ./install.sh --uninstall    remove what the box install put there; shows, engines and
#                               show logs under /var/lib/appliance stay, and so do a config
#                               changed on the box and keys added to it
#   ./install.sh --uninstall --purge   ... and remove those too
#   ./install.sh --root DIR     the box's files under DIR instead of / (DIR/opt/appliance,
#                               DIR/etc/appliance, DIR/var/lib/appliance, the unit file), owned
#                               by whoever runs it: no user, groups or systemd (an image being
#                               built, or a test box); --uninstall takes it too
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=box
purge=no
root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) mode=dev ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=yes ;;
    --root) [ $# -ge 2 ] || { echo "install.sh: --root needs a folder" >&2; exit 2; }
            root="$2"; shift ;;
    --root=*) root="${1#--root=}" ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$root" ]; then
  [ "$mode" != dev ] || { echo "install.sh: --root is for the box install, not --dev" >&2; exit 2; }
  mkdir -p "$root"
  root="$(cd "$root" && pwd)"
fi

# system packages need root; a --root install writes only where its user may
apt_sudo=""
if [ "$(id -u)" -ne 0 ]; then apt_sudo="sudo"; fi
sudo_="$apt_sudo"
if [ -n "$root" ]; then sudo_=""; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Build and run dependencies of the Python packages (pyalsaaudio, systemd-python) plus the
# tools the tests and the training recipe use (fluidsynth + piano soundfonts, mma, sox, espeak-ng,
# systemd for systemd-analyze, which checks the unit; openssh-server/-client and rsync: the
# fleet test runs real sshd "boxes" on loopback ports and installs the box into each over SSH
# with ansible-playbook, and the box install copies with rsync).
RUNTIME_PKGS=(python3-venv python3-dev gcc pkg-config libasound2-dev alsa-utils libsystemd-dev)
DEV_PKGS=(fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small
          mma sox espeak-ng timidity freepats systemd openssh-server openssh-client rsync)

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    $apt_sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $apt_sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

install_dev() {
  apt_install "${RUNTIME_PKGS[@]}" "${DEV_PKGS[@]}"
  if [ ! -x "$here/.venv/bin/python" ]; then
    say "creating $here/.venv"
    python3 -m venv "$here/.venv"
  fi
  say "installing the project into .venv (with test and training extras)"
  "$here/.venv/bin/python" -m pip install -q --upgrade pip
  # torch is pinned to the CPU build (training only; the runtime never imports it); fleet:
  # ansible-core for the playbooks in fleet/ (the technician's laptop, never the box)
  "$here/.venv/bin/python" -m pip install -q -e "$here[dev,train,fleet]"
  say "done: $here/.venv/bin/appliance"
}

PREFIX="$root/opt/appliance"
STATE="$root/var/lib/appliance"
CONF="$root/etc/appliance"
UNIT="$root/etc/systemd/system/appliance.service"

install_box() {
  apt_install "${RUNTIME_PKGS[@]}" rsync
  say "copying the appliance to $PREFIX"
  $sudo_ mkdir -p "$PREFIX"
  $sudo_ rsync -a --delete --exclude .git --exclude .venv --exclude venv --exclude training/cache \
    --exclude '__pycache__' "$here/" "$PREFIX/src/"
  if [ ! -x "$PREFIX/venv/bin/python" ]; then
    # --system-site-packages: JetPack ships TensorRT as python3-libnvinfer, not on PyPI
    $sudo_ python3 -m venv --system-site-packages "$PREFIX/venv"
  fi
  $sudo_ "$PREFIX/venv/bin/python" -m pip install -q --upgrade pip
  # editable: the package finds its shipped engines/ and media/ beside it in $PREFIX/src
  $sudo_ "$PREFIX/venv/bin/python" -m pip install -q -e "$PREFIX/src"
  if [ -d /usr/local/cuda ] && ! "$PREFIX/venv/bin/python" -c "import pycuda" 2>/dev/null; then
    say "building pycuda against /usr/local/cuda (TensorRT backend)"
    PATH="/usr/local/cuda/bin:$PATH" $sudo_ -E "$PREFIX/venv/bin/python" -m pip install -q pycuda \
      || echo "warning: pycuda did not build; the box will use ONNX Runtime on the CPU" >&2
  fi

  if [ -z "$root" ]; then box_user; fi
  $sudo_ mkdir -p "$STATE"/{engines,shows,events,plans,metrics} "$CONF/trusted_keys"
  if [ -z "$root" ]; then $sudo_ chown -R appliance:appliance "$STATE"; fi
  if [ ! -f "$CONF/appliance.toml" ]; then
    $sudo_ install -m 0644 "$here/firmware_config/appliance.toml" "$CONF/appliance.toml"
  fi
  # the project's public key signs the shipped engines; keys added on the box are kept
  for key in "$here"/firmware_config/trusted_keys/*.pub; do
    [ -f "$CONF/trusted_keys/$(basename "$key")" ] || \
      $sudo_ install -m 0644 "$key" "$CONF/trusted_keys/$(basename "$key")"
  done
  "$PREFIX/venv/bin/appliance" check-config --config "$CONF/appliance.toml" || \
    echo "warning: fix $CONF/appliance.toml (the box runs with defaults for the keys above)" >&2
  $sudo_ mkdir -p "$(dirname "$UNIT")"
  # rewritten only when it changed: a second install touches nothing
  cmp -s "$here/firmware_config/systemd/appliance.service" "$UNIT" || \
    $sudo_ install -m 0644 "$here/firmware_config/systemd/appliance.service" "$UNIT"
  # the box's own configuration: ALSA by card name, udev, journald limits, console, Jetson
  # power, the unit waiting for the sound card and storage (idempotent; --uninstall undoes it)
  $sudo_ "$here/firmware_config/box/box-config.sh" install "${root:-}"
  if [ -n "$root" ]; then
    say "installed under $root (no user, groups or systemd: nothing started)"
    return 0
  fi
  $sudo_ systemctl daemon-reload
  $sudo_ systemctl enable --now appliance.service
  say "installed; logs: journalctl -u appliance -f"
}

box_user() {
  if ! id appliance >/dev/null 2>&1; then
    say "creating the 'appliance' user"
    $sudo_ useradd --system --home-dir "$STATE" --shell /usr/sbin/nologin appliance
  fi
  # technicians in appliance-admin may use the control socket (appliance status / reload)
  getent group appliance-admin >/dev/null || $sudo_ groupadd --system appliance-admin
  for g in audio video render input appliance-admin; do
    getent group "$g" >/dev/null && $sudo_ usermod -aG "$g" appliance
  done
  return 0
}

uninstall_box() {
  $sudo_ "$here/firmware_config/box/box-config.sh" uninstall "${root:-}"
  if [ -f "$UNIT" ] && [ -z "$root" ]; then
    $sudo_ systemctl disable --now appliance.service || true
    $sudo_ rm -f "$UNIT"
    $sudo_ systemctl daemon-reload || true
  fi
  $sudo_ rm -f "$UNIT"
  # the config and keys install put there go when nobody changed them; an edited config or
  # a key added on the box stays (compared before $PREFIX goes: this script may run from it)
  drop_if_unchanged "$CONF/appliance.toml" "$here/firmware_config/appliance.toml"
  for key in "$here"/firmware_config/trusted_keys/*.pub; do
    drop_if_unchanged "$CONF/trusted_keys/$(basename "$key")" "$key"
  done
  $sudo_ rmdir "$CONF/trusted_keys" "$CONF" 2>/dev/null || true
  $sudo_ rm -rf "$PREFIX" "$STATE/metrics"
  if [ -n "$root" ]; then  # a scratch root: the folders the install made, now empty
    find "$root" -depth -mindepth 1 -type d -empty -not -path "$STATE" -not -path "$STATE/*" \
      -delete
  fi
  if [ "$purge" = yes ]; then
    say "purging shows, engines, show logs and config"
    $sudo_ rm -rf "$STATE" "$CONF"
    if [ -z "$root" ]; then
      id appliance >/dev/null 2>&1 && $sudo_ userdel appliance || true
      getent group appliance-admin >/dev/null && $sudo_ groupdel appliance-admin || true
    fi
  elif [ -d "$CONF" ]; then
    say "kept $STATE (shows, engines, logs) and $CONF (changed on this box); --uninstall --purge removes them"
  else
    say "kept $STATE (shows, engines, logs); --uninstall --purge removes it"
  fi
}

drop_if_unchanged() {  # FILE SHIPPED: remove FILE when it is still the shipped one
  if [ -f "$1" ] && cmp -s "$1" "$2"; then $sudo_ rm -f "$1"; fi
}

case "$mode" in
  dev) install_dev ;;
  box) install_box ;;
  uninstall) uninstall_box ;;
esac
