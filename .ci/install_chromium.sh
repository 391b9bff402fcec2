#!/bin/sh
# Install Debian's headless-capable Chromium for tests/test_ui.py's screenshot test.
# Idempotent; never fails the CI: without apt (or root) it prints a note and the test skips.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    echo "chromium already installed: $(command -v chromium || command -v chromium-browser)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: apt-get is unavailable; chromium not installed, the UI screenshot test will be skipped"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "note: not root and no sudo; chromium not installed, the UI screenshot test will be skipped"
        exit 0
    fi
fi
if $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; then
    echo "chromium installed: $(command -v chromium)"
else
    echo "note: installing chromium with apt failed; the UI screenshot test will be skipped"
fi
exit 0
