# Server image: `egress serve`, the worker that takes egress jobs from livekit-server over Redis.
#
# This file has not been built: the machines this project is developed on have no Docker engine.
# It is kept correct by construction instead: the only install step is scripts/setup.sh, the same
# script CI and every developer machine run, so the packages the image gets are the ones the tests
# run against. Change what gets installed there, not here.
#
#   docker build -t electron-egress .
#   docker run --rm -e EGRESS_CONFIG_BODY="$(cat config.yaml)" electron-egress
#
# The config must set `health_port: 8080` for the HEALTHCHECK below (see docs/configuration.md).
# To use another port, set it in the config and pass the same number as EGRESS_HEALTH_PORT
# (`docker run -e EGRESS_HEALTH_PORT=9090 ...`).

# Debian 12 (bookworm) slim with Node.js 20: Debian's own nodejs package is 18, and package.json
# requires Node >= 20.
FROM node:20-bookworm-slim

# No NODE_ENV=production here: it would make setup.sh's `npm ci` skip the dev dependencies the
# build needs (they are pruned after the build).
ENV EGRESS_HEALTH_PORT=8080

WORKDIR /opt/egress

# The install step: Chromium, GStreamer, ffmpeg, fonts, tini (--image) and the npm packages
# (`npm ci --ignore-scripts`, dev dependencies included: the build needs them). Without --test,
# nothing test-only (redis-server, livekit-server, storage emulators) is installed. Only the files
# setup.sh reads are copied first, so this layer is rebuilt only when they change.
COPY package.json package-lock.json ./
COPY scripts/ scripts/
RUN bash scripts/setup.sh --image \
 && rm -rf /var/lib/apt/lists/* \
 && npm cache clean --force

# Build (tsc + template bundles into dist/), then drop what only the build and the tests need.
COPY . .
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf dist/test dist/bench \
 && npm cache clean --force

# A non-root user. Its working directory /data is where relative local-storage paths of file
# outputs land (mount a volume there); per-egress temp files go to /tmp/egress (config `tmp_dir`).
RUN groupadd --system egress \
 && useradd --system --gid egress --create-home --home-dir /home/egress --shell /usr/sbin/nologin egress \
 && mkdir -p /data \
 && chown egress:egress /data
USER egress
WORKDIR /data
# GStreamer's plugin registry is per user and built on first use (tens of seconds): build it now.
RUN gst-inspect-1.0 > /dev/null

EXPOSE 8080

# GET / on the health port answers 200 with the worker's status JSON while the worker runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + process.env.EGRESS_HEALTH_PORT + '/').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# tini is PID 1: it forwards signals to the worker and reaps the processes a dead handler leaves.
# SIGTERM (docker stop) drains: no new jobs, running recordings finish, then the worker exits; give
# it time with `docker stop -t <seconds>` or `--stop-timeout`. SIGINT ends running recordings at
# once (FAILED `server is shutting down`, files still delivered).
# Chromium uses /dev/shm: Docker's default 64 MB is small for 1080p pages; run with --shm-size=1g.
# The config comes from `--config FILE` (append it to `docker run ... electron-egress`),
# EGRESS_CONFIG_FILE or EGRESS_CONFIG_BODY.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/egress/bin/egress.js", "serve"]
