#!/usr/bin/env bash
# Idempotent installer for livekit-server v1.13.5 into <repo>/.cache/bin/livekit-server.
# Usage: bash scripts/install-livekit.sh   (env: LIVEKIT_VERSION, GO)
set -euo pipefail

VERSION="${LIVEKIT_VERSION:-v1.13.5}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$REPO_ROOT/.cache/bin"
TARGET="$BIN_DIR/livekit-server"
STAMP="$BIN_DIR/livekit-server.version"

GO_BIN="${GO:-}"
if [[ -z "$GO_BIN" ]]; then
  if command -v go >/dev/null 2>&1; then GO_BIN="$(command -v go)";
  elif [[ -x /usr/local/go/bin/go ]]; then GO_BIN=/usr/local/go/bin/go;
  else echo "install-livekit: go toolchain not found" >&2; exit 1; fi
fi

installed_version() {
  [[ -x "$TARGET" ]] || return 1
  # `livekit-server --version` prints e.g. "livekit-server version 1.13.5"
  local v
  v="$("$TARGET" --version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)"
  [[ -n "$v" ]] || return 1
  echo "v$v"
}

if cur="$(installed_version)" && [[ "$cur" == "$VERSION" ]]; then
  echo "install-livekit: livekit-server $VERSION already installed at $TARGET"
  exit 0
fi

mkdir -p "$BIN_DIR"
echo "install-livekit: building livekit-server $VERSION with $("$GO_BIN" version) (this takes several minutes)"
TMP_BIN="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$TMP_BIN"' EXIT
GOBIN="$TMP_BIN" GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED="${CGO_ENABLED:-0}" \
  "$GO_BIN" install "github.com/livekit/livekit-server/cmd/server@$VERSION"
[[ -x "$TMP_BIN/server" ]] || { echo "install-livekit: go install produced no binary" >&2; exit 1; }
mv -f "$TMP_BIN/server" "$TARGET"
echo "$VERSION" > "$STAMP"

if cur="$(installed_version)" && [[ "$cur" == "$VERSION" ]]; then
  echo "install-livekit: installed livekit-server $cur at $TARGET"
else
  echo "install-livekit: warning: installed binary reports version '${cur:-unknown}', expected $VERSION" >&2
fi
