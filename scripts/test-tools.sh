#!/usr/bin/env bash
# Brings in what `npm test` needs beyond the repository, before any test runs, so that the
# README's test command works on a fresh machine:
#   - the npm packages (npm ci, when node_modules is missing or older than package-lock.json);
#   - Debian's tools the tests drive for real: chromium (the UI test, through playwright-core),
#     nghttpx (a TLS proxy in front of the dev server), openssl (that test's certificates), promtool
#     (the alert rules and dashboard queries), PostgreSQL (throwaway ledger and cluster databases),
#     docker-compose (validates docker-compose.yml; no engine needed), and Go (builds the Temporal
#     server for the cluster test; this machine kind ships it).
# Where apt-get can install (root, or password-less sudo) it does; elsewhere it stops at once and
# names each missing tool and how to get it. A missing tool is never a skipped test.
# The Temporal CLI (dev server) is fetched by the tests' global setup (src/temporal/cli.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm packages: npm ci"
  npm ci --no-fund --no-audit
fi

# command-or-path | Debian package | what it is for
tools=(
  "chromium|chromium|the UI test (headless, driven by playwright-core)"
  "nghttpx|nghttp2-proxy|the TLS test's proxy in front of the dev server"
  "openssl|openssl|the TLS test's certificates"
  "promtool|prometheus|checking the alert rules and the dashboard's queries"
  "/usr/lib/postgresql/*/bin/initdb|postgresql|throwaway PostgreSQL servers (ledger and cluster tests)"
  "docker-compose|docker-compose|validating docker-compose.yml (no engine needed)"
  "curl|curl|the gateway's error statuses, asked as a user would"
  "python3|python3-venv|the Python clients' tests (temporalio, openai: each in a venv made once)"
)
have() {
  case "$1" in
    /*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
missing=()
packages=()
for t in "${tools[@]}"; do
  IFS='|' read -r cmd pkg why <<<"$t"
  if ! have "$cmd"; then
    missing+=("$cmd (Debian package $pkg): $why")
    packages+=("$pkg")
  fi
done

if [ ${#packages[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && sudo=(sudo -n); }
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; } && [ -z "${SWITCHYARD_NO_INSTALL:-}" ]; then
    echo "== installing from Debian: ${packages[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    # The package's own cluster is not used: the tests start the servers they need.
    if command -v pg_lsclusters >/dev/null 2>&1; then
      pg_lsclusters -h | while read -r version cluster _; do "${sudo[@]}" pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true; done
    fi
  else
    echo "npm test needs these tools, which are not installed:" >&2
    for m in "${missing[@]}"; do echo "  - $m" >&2; done
    echo "Install them (Debian/Ubuntu: sudo apt-get install ${packages[*]}; elsewhere your system's packages of the same tools), then run npm test again." >&2
    exit 1
  fi
fi

if ! command -v go >/dev/null 2>&1; then
  echo "npm test needs Go >= 1.23 to build the Temporal server for the cluster test: install it from your system's packages or go.dev/dl, then run npm test again." >&2
  exit 1
fi
echo "== test tools: all present"
