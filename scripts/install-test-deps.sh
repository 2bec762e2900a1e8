#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and starts PostgreSQL if it is down.
# Idempotent and quick when everything is already there.
set -euo pipefail

need_apt=()
command -v psql >/dev/null || need_apt+=(postgresql postgresql-client)
command -v npm >/dev/null || need_apt+=(nodejs npm)
command -v cc >/dev/null || need_apt+=(build-essential)
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)   # interop/test/browser.test.mjs (playwright-core drives it)
[[ -d /etc/ssl/certs ]] && compgen -G "/etc/ssl/certs/*.pem" >/dev/null || need_apt+=(ca-certificates)   # mandate-fetch trusts the system store
command -v openssl >/dev/null || need_apt+=(openssl)   # interop/lib/tls.mjs makes a throwaway CA for https on loopback
command -v cmake >/dev/null || true   # aws-lc-sys builds without cmake on x86_64 Linux
if ((${#need_apt[@]})); then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# PostgreSQL on 127.0.0.1:5432 with trust auth for user postgres (the machine's default setup).
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi

# The MCP Python SDK for interop/test/example-mcp-server-python.test.mjs, in interop/.venv
# (gitignored), every package pinned by interop/python/requirements.txt; set up again only when
# that file changes or the venv no longer imports it.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/interop/.venv"
requirements="$root/interop/python/requirements.txt"
if ! cmp -s "$requirements" "$venv/requirements.installed" || ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
  echo "installing the MCP Python SDK into interop/.venv"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.installed"
fi
