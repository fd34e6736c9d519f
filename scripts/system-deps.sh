#!/usr/bin/env bash
# System packages the test suite needs, installed only when missing (Debian, as root; idempotent).
# Used by `make test` and therefore by .ci/run. Today that is one package:
#   chromium  - tests/test_browser.py drives Debian's browser through Playwright (never `playwright install`).
# No font package: map.png takes its Chinese font from the pip package mplfonts (planner/_fonts.py).
# PLANNER_CHROMIUM=/path/to/chromium points the tests at another browser and skips the install.
set -euo pipefail

missing=()
if [[ -n "${PLANNER_CHROMIUM:-}" && -x "${PLANNER_CHROMIUM}" ]] || command -v chromium >/dev/null 2>&1 \
  || command -v chromium-browser >/dev/null 2>&1; then
  :
else
  missing+=(chromium)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "${EUID}" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${missing[*]} (for tests/test_browser.py); install it as root with:" \
    "apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" \
    "(or set PLANNER_CHROMIUM=/path/to/chromium)" >&2
  exit 1
fi

echo "system-deps: installing Debian package(s) ${missing[*]} for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "system-deps: apt-get installed chromium but no chromium command is on PATH" >&2; exit 1; }
