#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian 12 machine, idempotently.
#   bash scripts/setup.sh          runtime: Chromium, GStreamer, ffmpeg (probing), npm packages
#   bash scripts/setup.sh --test   also what the tests start: redis-server, nginx-rtmp, srt-tools, livekit-server v1.13.5
#                                  and the storage emulators (Go modules, cached in .cache/bin)
#   bash scripts/setup.sh --image  also tini, the init process of the server image (Dockerfile): it
#                                  reaps the browser and gst-launch processes a dead handler leaves
# Run as root (as in the Dockerfile) it needs no sudo.
# No Xvfb, no PulseAudio: the browser runs headless and audio is captured inside the page.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WITH_TEST=0
WITH_IMAGE=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    --image) WITH_IMAGE=1 ;;
    *) echo "setup: unknown option $arg (known: --test, --image)" >&2; exit 2 ;;
  esac
done

# The Go builds (livekit-server, fake-gcs-server) take minutes of CPU and need only the Go toolchain:
# they run in the background while apt and npm (network and disk bound) do their part.
GO_LOG_DIR=""
GO_PIDS=()
if (( WITH_TEST )); then
  GO_LOG_DIR="$(mktemp -d)"
  bash scripts/install-livekit.sh > "$GO_LOG_DIR/livekit.log" 2>&1 & GO_PIDS+=($!)
  bash scripts/install-storage-emulators.sh > "$GO_LOG_DIR/emulators.log" 2>&1 & GO_PIDS+=($!)
fi

PKGS=(chromium gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav ffmpeg fonts-dejavu-core
      iproute2)
# iproute2: `ss`, whose TCP counters (bytes acked by the server) are the RTMP liveness check's progress.
# nginx + libnginx-mod-rtmp and srt-tools (srt-live-transmit): the RTMP server and SRT listener the
# stream tests publish to and read back from.
(( WITH_TEST )) && PKGS+=(redis-server nginx libnginx-mod-rtmp srt-tools)
(( WITH_IMAGE )) && PKGS+=(tini)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# GStreamer builds its plugin registry (~/.cache/gstreamer-1.0) on first use: 26 s measured on a cold
# disk. Built here, so the first recording does not wait for it.
gst-inspect-1.0 > /dev/null 2>&1 || true

# npm packages without install scripts: the electron package (and its types) is needed, its binary
# download is not (it cannot be fetched on build machines; the Chromium host covers servers/tests).
stamp=node_modules/.setup-lock-hash
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  npm ci --ignore-scripts --no-audit --no-fund
  echo "$want" > "$stamp"
fi

go_failed=0
for pid in "${GO_PIDS[@]}"; do
  wait "$pid" || go_failed=1
done
if [[ -n "$GO_LOG_DIR" ]]; then
  cat "$GO_LOG_DIR/livekit.log" "$GO_LOG_DIR/emulators.log"
  rm -rf "$GO_LOG_DIR"
fi
(( go_failed )) && { echo "setup: a Go build failed (its output is above)" >&2; exit 1; }
echo "setup: done"
