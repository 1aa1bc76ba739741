#!/usr/bin/env bash
# Installs the storage emulators the upload tests need that are not npm packages.
# Idempotent: does nothing when the pinned version is already installed.
#   fake-gcs-server (GCS emulator), Go module, pinned version → .cache/bin/fake-gcs-server
# azurite and s3rver come from npm devDependencies; the Ali OSS emulator lives in test/harness/storage.ts.
set -euo pipefail
FAKE_GCS_VERSION="v1.56.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.cache/bin"
STAMP="$BIN/.fake-gcs-server.version"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
mkdir -p "$BIN"
if [[ -x "$BIN/fake-gcs-server" && -f "$STAMP" && "$(cat "$STAMP")" == "$FAKE_GCS_VERSION" ]]; then
  echo "fake-gcs-server $FAKE_GCS_VERSION already installed in $BIN"
  exit 0
fi
echo "installing fake-gcs-server $FAKE_GCS_VERSION into $BIN"
GOBIN="$BIN" "$GO" install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
echo "$FAKE_GCS_VERSION" > "$STAMP"
echo "fake-gcs-server $FAKE_GCS_VERSION installed"
