#!/usr/bin/env bash
# Debian packages for the real-tool adapters of `scactive compare` (R, Seurat, SingleR, scran)
# and for the browser test of `scactive annotate` (Chromium, driven by Playwright).
# Installs only what is missing; without root or apt-get it says what to install and goes on
# (the adapters' and the browser tests then skip, naming the missing package).
set -euo pipefail
packages=(r-base-core r-cran-seurat r-bioc-singler r-bioc-scran chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: the real-tool adapters need Debian packages: ${missing[*]}" >&2
    echo "      install them with: sudo apt-get install ${missing[*]}" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -q --no-install-recommends "${missing[@]}"
