#!/usr/bin/env bash
# Make sure what the tests need is there: PostgreSQL (installed if missing, started if down),
# Dovecot's binaries (installed if missing; the tests start private instances themselves),
# nginx's (to check the deploy sample) and Chromium (the page tests).
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Dovecot: tests/dovecot.py runs a private instance per test session (own config, temp dir, free
# port), so only the binaries are needed. Debian's package starts a system-wide dovecot on port 143
# when it is installed (unless policy-rc.d forbids it); nothing uses that one, so stop it and keep it
# from coming back at boot.
if [ ! -x /usr/sbin/dovecot ]; then
  echo "installing Dovecot ..." >&2
  apt_install dovecot-imapd
  pidfile=/run/dovecot/master.pid
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "stopping the system-wide Dovecot the package started ..." >&2
    as_root kill "$(cat "$pidfile")" 2>/dev/null || true
  fi
  as_root systemctl disable --quiet dovecot.service dovecot.socket >/dev/null 2>&1 || true
  as_root update-rc.d dovecot disable >/dev/null 2>&1 || true
fi

# nginx: only its binary, for `nginx -t` on deploy/nginx/hub.conf (tests/test_deploy.py); the
# package's own server is stopped and kept from starting at boot.
if [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (for checking deploy/nginx) ..." >&2
  apt_install nginx-light
  as_root /usr/sbin/nginx -s stop >/dev/null 2>&1 || true
  as_root systemctl disable --quiet nginx.service >/dev/null 2>&1 || true
  as_root update-rc.d nginx disable >/dev/null 2>&1 || true
fi

# Chromium: Debian's, driven by Playwright in the page tests (tests/browser.py); never
# `playwright install`, which downloads a browser of its own.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium (for the page tests) ..." >&2
  apt_install chromium
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  echo "installing PostgreSQL ..." >&2
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  echo "starting PostgreSQL ..." >&2
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 && exit 0
  sleep 1
done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
