#!/usr/bin/env bash
# Set up the genre-driven film appliance. Idempotent: run it again at any time.
#
#   ./install.sh --dev          development machine: system packages + ./.venv with the project
#   ./install.sh                the box (Jetson, JetPack Ubuntu): /opt/appliance, user, config,
#                               state folders, systemd unit enabled and started
#   ./install.sh --uninstall    remove what the box install put there; shows, engines and
#                               show logs under /var/lib/appliance and the config stay
#   ./install.sh --uninstall --purge   ... and remove those too
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=box
purge=no
for arg in "$@"; do
  case "$arg" in
    --dev) mode=dev ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=yes ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

sudo_=""
if [ "$(id -u)" -ne 0 ]; then sudo_="sudo"; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Build and run dependencies of the Python packages (pyalsaaudio, systemd-python) plus the
# tools the tests and the training recipe use (fluidsynth + piano soundfonts, mma, sox, espeak-ng,
# systemd for systemd-analyze, which checks the unit).
RUNTIME_PKGS=(python3-venv python3-dev gcc pkg-config libasound2-dev alsa-utils libsystemd-dev)
DEV_PKGS=(fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small
          mma sox espeak-ng timidity freepats systemd)

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends \
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
  # torch is pinned to the CPU build (training only; the runtime never imports it)
  "$here/.venv/bin/python" -m pip install -q -e "$here[dev,train]"
  say "done: $here/.venv/bin/appliance"
}

PREFIX=/opt/appliance
STATE=/var/lib/appliance
CONF=/etc/appliance
UNIT=/etc/systemd/system/appliance.service

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

  if ! id appliance >/dev/null 2>&1; then
    say "creating the 'appliance' user"
    $sudo_ useradd --system --home-dir "$STATE" --shell /usr/sbin/nologin appliance
  fi
  # technicians in appliance-admin may use the control socket (appliance status / reload)
  getent group appliance-admin >/dev/null || $sudo_ groupadd --system appliance-admin
  for g in audio video render input appliance-admin; do
    getent group "$g" >/dev/null && $sudo_ usermod -aG "$g" appliance
  done
  $sudo_ mkdir -p "$STATE"/{engines,shows,events,plans} "$CONF/trusted_keys"
  $sudo_ chown -R appliance:appliance "$STATE"
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
  $sudo_ install -m 0644 "$here/firmware_config/systemd/appliance.service" "$UNIT"
  # the box's own configuration: ALSA by card name, udev, journald limits, console, Jetson
  # power, the unit waiting for the sound card and storage (idempotent; --uninstall undoes it)
  $sudo_ "$here/firmware_config/box/box-config.sh" install "${root:-}"
  $sudo_ systemctl daemon-reload
  $sudo_ systemctl enable --now appliance.service
  say "installed; logs: journalctl -u appliance -f"
}

uninstall_box() {
  $sudo_ "$here/firmware_config/box/box-config.sh" uninstall "${root:-}"
  if [ -f "$UNIT" ]; then
    $sudo_ systemctl disable --now appliance.service || true
    $sudo_ rm -f "$UNIT"
    $sudo_ systemctl daemon-reload || true
  fi
  $sudo_ rm -rf "$PREFIX"
  if [ "$purge" = yes ]; then
    say "purging shows, engines, show logs and config"
    $sudo_ rm -rf "$STATE" "$CONF"
    id appliance >/dev/null 2>&1 && $sudo_ userdel appliance || true
    getent group appliance-admin >/dev/null && $sudo_ groupdel appliance-admin || true
  else
    say "kept $STATE (shows, engines, logs) and $CONF; --uninstall --purge removes them"
  fi
}

case "$mode" in
  dev) install_dev ;;
  box) install_box ;;
  uninstall) uninstall_box ;;
esac
