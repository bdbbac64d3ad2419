#!/usr/bin/env bash
# Starts what the tests talk to when it is not running: PostgreSQL (127.0.0.1:5432, trust,
# database test), Redis (127.0.0.1:6379), and installs Debian's chromium for browser tests
# and jemalloc for the web unit's allocator.
set -euo pipefail
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! command -v redis-server >/dev/null 2>&1; then apt_install redis-server; fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
# The web unit preloads jemalloc (deploy/systemd/mesdash-web.service); the stress stack and
# the default suite's soak start gunicorn the same way.
if [ ! -f /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then apt_install libjemalloc2; fi
# The warehouse names work centers and reasons in Chinese: without CJK fonts the pages'
# screenshots show boxes.
if [ ! -d /usr/share/fonts/opentype/noto ]; then apt_install fonts-noto-cjk; fi
