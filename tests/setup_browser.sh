#!/usr/bin/env bash
# Installs headless Chromium from Debian's packages for the HTML report test, where possible.
# Where it cannot (not root, no apt), the browser test is skipped with a visible reason.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the HTML report test (Debian package)..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: the browser test will be skipped"
fi
exit 0
