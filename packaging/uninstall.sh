#!/usr/bin/env sh
# Uninstall Few-Shot Labeler: remove exactly what install.sh installed (the files and folders listed in
# PREFIX/install-manifest.txt). Settings, caches and projects in your standard folders
# (~/.config/fewshot-gui, ~/.cache/fewshot-gui, ~/.local/share/fewshot-gui/..., your project files)
# stay: a folder is removed only when it was created by install.sh and is empty.
#
#   uninstall.sh [--prefix DIR] [--quiet]
#
# Without --prefix: the folder this script is in when it holds an install, else the default
# $XDG_DATA_HOME/fewshot-gui (~/.local/share/fewshot-gui).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
prefix=
quiet=0
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --quiet) quiet=1; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$prefix" ]; then
    if [ -f "$here/install-manifest.txt" ]; then prefix=$here; else prefix=$data_home/fewshot-gui; fi
fi
manifest=$prefix/install-manifest.txt
if [ ! -f "$manifest" ]; then
    echo "uninstall.sh: no Few-Shot Labeler install in $prefix (no install-manifest.txt)" >&2
    exit 1
fi
say() { [ "$quiet" = 1 ] || echo "$@"; }

keep=$(mktemp)
trap 'rm -f "$keep"' EXIT
cp "$manifest" "$keep"
# Files first, then the folders install.sh created, deepest first, each only when empty.
sed -n 's/^file://p' "$keep" | while IFS= read -r path; do
    if [ -f "$path" ] || [ -L "$path" ]; then rm -f "$path"; fi
done
# Refresh the desktop's caches (the tools are optional), then drop caches left with nothing to index.
if command -v update-mime-database >/dev/null 2>&1 && [ -d "$data_home/mime/packages" ]; then
    update-mime-database "$data_home/mime" >/dev/null 2>&1 || true
fi
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$data_home/applications" ]; then
    update-desktop-database "$data_home/applications" >/dev/null 2>&1 || true
fi
only_generated() {  # only_generated DIR SOURCES: true when DIR was created by install.sh and its
    # SOURCES folder holds nothing, so what remains in DIR is a cache generated from nothing.
    grep -qxF "dir:$1" "$keep" && [ -z "$(find "$1/$2" -type f 2>/dev/null | head -n 1)" ]
}
if only_generated "$data_home/mime" packages; then rm -rf "$data_home/mime"; fi
apps=$data_home/applications
if grep -qxF "dir:$apps" "$keep" && [ -d "$apps" ] &&
    [ -z "$(find "$apps" -type f ! -name mimeinfo.cache | head -n 1)" ]; then
    rm -f "$apps/mimeinfo.cache"
fi
sed -n 's/^dir://p' "$keep" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2- |
    while IFS= read -r dir; do
        if [ -d "$dir" ]; then rmdir "$dir" 2>/dev/null || true; fi
    done

if [ -d "$prefix" ]; then
    say "Uninstalled Few-Shot Labeler; kept $prefix (it holds files that are not the app's, or was there before)."
else
    say "Uninstalled Few-Shot Labeler."
fi
