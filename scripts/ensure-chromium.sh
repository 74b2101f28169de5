#!/usr/bin/env bash
# Make sure headless Chromium is available for the HTML report test (tests/test_report.py).
# Idempotent: does nothing when a browser is already installed; installs the Debian `chromium`
# package with apt-get when it is missing and apt is usable (root, or sudo without a password).
# Never fails the build: without a browser the test skips with a clear reason.
set -u

for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    echo "ensure-chromium: found $(command -v "$b")"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no apt-get here; install Chromium yourself to run the HTML test" >&2
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "ensure-chromium: not root and no passwordless sudo; the HTML test will skip" >&2
  exit 0
fi

echo "ensure-chromium: installing chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; then
  echo "ensure-chromium: installed $(command -v chromium)"
else
  echo "ensure-chromium: apt-get could not install chromium; the HTML test will skip" >&2
fi
exit 0
