#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and system packages.
# The venv lives outside the clone, keyed by the hash of requirements.lock, so a fresh
# clone (CI) on the same machine reuses it instead of spending minutes reinstalling Rasa.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
  local cands=()
  [ -n "${CSKH_PYTHON:-}" ] && cands+=("$CSKH_PYTHON")
  command -v python3.10 >/dev/null 2>&1 && cands+=("$(command -v python3.10)")
  if command -v pyenv >/dev/null 2>&1; then
    cands+=("$(pyenv root)/versions/3.10.13/bin/python")
  fi
  cands+=("$HOME/.pyenv/versions/3.10.13/bin/python" /usr/bin/python3.10 /usr/local/bin/python3.10)
  for p in "${cands[@]}"; do
    if [ -x "$p" ] && "$p" -c 'import sys; sys.exit(0 if sys.version_info[:2]==(3,10) else 1)' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

hash=$(cat requirements.lock | sha256sum | cut -c1-12)
root="${CSKH_CACHE_DIR:-$HOME/.cache/cskh-assistant}"
venv="$root/venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  py=$(find_python310) || {
    echo "ERROR: Python 3.10 is required (Rasa 3.6 does not run on newer Pythons)." >&2
    echo "Set CSKH_PYTHON=/path/to/python3.10, put python3.10 on PATH, or 'pyenv install 3.10.13'." >&2
    exit 1
  }
  echo ">> creating virtual environment $venv with $py (first time: about 4 minutes)"
  rm -rf "$venv"; mkdir -p "$root"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "pip==24.0" "setuptools==70.3.0" "wheel==0.45.1"
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements.lock
  "$venv/bin/pip" check
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv

# System tools used by tests: poppler's pdfsig/pdftotext, zbar's zbarimg, Debian's chromium, DejaVu fonts, nginx.
missing=()
command -v pdfsig >/dev/null 2>&1 || missing+=(poppler-utils)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)  # reads the certificate's QR code in tests
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -x /usr/sbin/nginx ] || missing+=(nginx)  # reverse proxy of `make run-scaled` and its fault tests
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo ">> installing system packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  else
    echo "WARNING: missing system packages: ${missing[*]} (install them with apt)" >&2
  fi
fi
mkdir -p var models
