#!/usr/bin/env bash
# System packages for building and testing IConNet Studio on Debian/Ubuntu (root or sudo).
# Build: pkg-config + ALSA headers (cpal). Run/test without hardware: Mesa's lavapipe (software
# Vulkan) for the wgpu parity test, Xvfb for GUI tests. X11/Wayland/GL/D-Bus are loaded at run time.
set -euo pipefail
packages=(build-essential pkg-config libasound2-dev libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6
  libxkbcommon0 libxkbcommon-x11-0 libwayland-client0 libegl1 libgl1 libgl1-mesa-dri libvulkan1
  mesa-vulkan-drivers libdbus-1-3 xvfb xauth)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
