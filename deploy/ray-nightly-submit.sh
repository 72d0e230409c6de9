#!/usr/bin/env bash
# Submit one nightly run to a Ray cluster as a Ray job (cron: deploy/crontab, second line).
#
# The job's driver runs on the head node with RAY_ADDRESS set by the job server, so
# `fer-stream nightly` uses the whole cluster; inbox and output must be on storage that the head and
# every worker mount at the same paths. Settings come from the environment or
# /etc/fer-stream/nightly.env: FER_STREAM_INBOX, FER_STREAM_OUTPUT, FER_STREAM_NIGHTLY_OPTS,
# RAY_JOB_ADDRESS (the dashboard, http://HEAD:8265), FER_STREAM_CHECKOUT (shipped as the job's
# working dir). With token auth (Ray >= 2.60) the token is read from RAY_AUTH_TOKEN or
# ~/.ray/auth_token as for any `ray job submit`. RAY overrides the ray command (tests).
#
# Exit status: ray job submit's: 0 the job succeeded, 1 it failed (the night could not run, or
# another run holds the lock: the job's log says which).
set -euo pipefail

ENV_FILE=${FER_STREAM_ENV_FILE:-/etc/fer-stream/nightly.env}
if [[ -r "$ENV_FILE" ]]; then
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi
: "${FER_STREAM_INBOX:?set FER_STREAM_INBOX (the inbox folder, shared storage)}"
: "${FER_STREAM_OUTPUT:?set FER_STREAM_OUTPUT (the records folder, shared storage)}"
: "${RAY_JOB_ADDRESS:=http://127.0.0.1:8265}"
: "${FER_STREAM_CHECKOUT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
read -r -a opts <<< "${FER_STREAM_NIGHTLY_OPTS:-}"

exec "${RAY:-ray}" job submit \
    --address "$RAY_JOB_ADDRESS" \
    --working-dir "$FER_STREAM_CHECKOUT" \
    --submission-id "fer-stream-nightly-$(date -u +%Y%m%dT%H%M%SZ)" \
    -- python -m fer_stream.cli nightly \
    --inbox "$FER_STREAM_INBOX" --output "$FER_STREAM_OUTPUT" --quiet "${opts[@]}"
