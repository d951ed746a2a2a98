#!/usr/bin/env bash
# Debian packages the system tests use: Chromium (the browser test drives the Dagster UI
# with Playwright), PostgreSQL (the tests of a PostgreSQL-backed Dagster instance), Prometheus
# (it scrapes `tdm api`'s /metrics in the REST API test), openssh-server, openssh-client and
# rsync (remote deploys against a throwaway sshd), and Redis (the Celery broker of the test
# that runs steps on per-box workers).
# Optional for users: without them those tests are skipped, unless TDM_REQUIRE_SYSTEM_TESTS=1
# (CI sets it), which turns a missing package into a failure.
set -euo pipefail
packages=(chromium chromium-driver postgresql prometheus openssh-server openssh-client rsync redis-server)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${packages[*]}" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
