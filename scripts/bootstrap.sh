#!/usr/bin/env bash
# Create (or reuse) the project's two virtual environments and system packages:
#   .venv      Python 3.10, requirements.lock: the Rasa server, the action server, trainer, Rasa-side tests
#   .venv-svc  Python 3.13 (or 3.12), requirements-svc.lock: signing service, desk, notifier, dev TSA
#              and their tests (docs/deploy.md, "Supported runtimes")
# Each venv lives outside the clone, keyed by the hash of its lock file, so a fresh clone (CI) on
# the same machine reuses it instead of spending minutes reinstalling Rasa.
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

# A supported Python for the service environment: CSKH_SVC_PYTHON if set (nothing else then),
# else 3.13, else 3.12: python3.13/python3.12 on the PATH, pyenv's newest 3.13.x/3.12.x, the system's.
is_svc_python() {
  [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null
}
find_python_svc() {
  if [ -n "${CSKH_SVC_PYTHON:-}" ]; then
    is_svc_python "$CSKH_SVC_PYTHON" && { echo "$CSKH_SVC_PYTHON"; return 0; }
    echo "ERROR: CSKH_SVC_PYTHON=$CSKH_SVC_PYTHON is not a Python 3.12 or 3.13 interpreter." >&2
    return 1
  fi
  local cands=() v p pyenv_root
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for v in 3.13 3.12; do
    command -v "python$v" >/dev/null 2>&1 && cands+=("$(command -v "python$v")")
    while IFS= read -r p; do cands+=("$p"); done < <(
      for p in "$pyenv_root"/versions/"$v".*/bin/python "$HOME"/.pyenv/versions/"$v".*/bin/python; do
        [ -x "$p" ] && echo "$p"
      done | sort -rV)
    cands+=("/usr/bin/python$v" "/usr/local/bin/python$v")
  done
  for p in "${cands[@]}"; do
    is_svc_python "$p" && { echo "$p"; return 0; }
  done
  return 1
}

root="${CSKH_CACHE_DIR:-$HOME/.cache/cskh-assistant}"
mkdir -p "$root"
# Two clones bootstrapping at once (CI beside a developer) must not build the same venv together.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$root/.bootstrap.lock"
  flock 9
fi

hash=$(cat requirements.lock | sha256sum | cut -c1-12)
venv="$root/venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  py=$(find_python310) || {
    echo "ERROR: Python 3.10 is required (Rasa 3.6 does not run on newer Pythons)." >&2
    echo "Set CSKH_PYTHON=/path/to/python3.10, put python3.10 on PATH, or 'pyenv install 3.10.13'." >&2
    exit 1
  }
  echo ">> creating virtual environment $venv with $py (first time: about 4 minutes)"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "pip==24.0" "setuptools==70.3.0" "wheel==0.45.1"
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements.lock
  "$venv/bin/pip" check
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv

svc_hash=$(cat requirements-svc.lock | sha256sum | cut -c1-12)
svc="$root/venv-svc-$svc_hash"
if [ ! -x "$svc/bin/python" ] || [ ! -f "$svc/.complete" ]; then
  py=$(find_python_svc) || {
    echo "ERROR: Python 3.13 or 3.12 is required for the signing service, the desk and the notifier" >&2
    echo "(they hold personal data and keys: not on Python 3.10, which is end-of-life; docs/deploy.md)." >&2
    echo "Set CSKH_SVC_PYTHON=/path/to/python3.13, put python3.13 or python3.12 on PATH," >&2
    echo "or 'pyenv install 3.13'." >&2
    exit 1
  }
  echo ">> creating virtual environment $svc with $py (first time: about 1 minute)"
  rm -rf "$svc"
  "$py" -m venv "$svc"
  "$svc/bin/pip" install -q --disable-pip-version-check "$(grep -i '^pip==' requirements-svc.lock)"
  "$svc/bin/pip" install -q --disable-pip-version-check -r requirements-svc.lock
  "$svc/bin/pip" check
  touch "$svc/.complete"
fi
ln -sfn "$svc" .venv-svc

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
