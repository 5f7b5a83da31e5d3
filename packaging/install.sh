#!/usr/bin/env sh
# Install Few-Shot Labeler for the current user (no root needed).
#
#   ./install.sh [--prefix DIR] [--bin-dir DIR]
#
#   --prefix   where the app goes (default: $XDG_DATA_HOME/fewshot-gui, i.e. ~/.local/share/fewshot-gui)
#   --bin-dir  where the `fewshot-gui` launcher goes (default: ~/.local/bin)
#
# Also installs the menu entry "Few-Shot Labeler", its icons and the *.fewshot file type under
# $XDG_DATA_HOME (~/.local/share). Every file it writes is listed in DIR/install-manifest.txt;
# DIR/uninstall.sh removes exactly those and leaves your settings, caches and projects alone.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
prefix=$data_home/fewshot-gui
bin_dir=$HOME/.local/bin
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a folder}; shift 2 ;;
        --bin-dir=*) bin_dir=${1#*=}; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

bundle=$here/fewshot-gui
if [ ! -x "$bundle/fewshot-gui" ] || [ ! -f "$bundle/BUILD_INFO" ]; then
    echo "install.sh: no app bundle next to this script ($bundle)" >&2
    exit 1
fi
resources=$bundle/_internal/resources
[ -d "$resources" ] || resources=$bundle/resources
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
case $bin_dir in /*) ;; *) bin_dir=$(pwd)/$bin_dir ;; esac
prefix=${prefix%/}
case $prefix in
    "$HOME"|""|"$data_home"|"$HOME/.local"|"$HOME/.local/share")
        echo "install.sh: refusing --prefix '$prefix' (use a folder of its own)" >&2; exit 2 ;;
esac

manifest=$prefix/install-manifest.txt
if [ -f "$manifest" ]; then  # an earlier install: remove it first (an upgrade)
    echo "Removing the earlier install in $prefix"
    sh "$here/uninstall.sh" --prefix "$prefix" --quiet
fi

new_manifest=$(mktemp)
trap 'rm -f "$new_manifest"' EXIT
record() { printf '%s\n' "$1" >> "$new_manifest"; }
make_dir() {  # mkdir -p, recording every folder it creates (uninstall removes them when empty)
    [ -d "$1" ] && return 0
    make_dir "$(dirname "$1")"
    mkdir "$1"
    record "dir:$1"
}
put() {  # put SOURCE TARGET [MODE]
    make_dir "$(dirname "$2")"
    cp "$1" "$2"
    chmod "${3:-644}" "$2"
    record "file:$2"
}
make_dir "$prefix"
make_dir "$bin_dir"

echo "Installing Few-Shot Labeler $(sed -n 's/^version=//p' "$bundle/BUILD_INFO") into $prefix"
# The app itself: every folder and file of the bundle.
(cd "$bundle" && find . -type d) | sort | while IFS= read -r d; do
    [ "$d" = . ] || make_dir "$prefix/${d#./}"
done
cp -a "$bundle/." "$prefix/"
(cd "$bundle" && find . ! -type d) | sort | sed "s|^\./|file:$prefix/|" >> "$new_manifest"
put "$here/uninstall.sh" "$prefix/uninstall.sh" 755

# The launcher.
launcher=$bin_dir/fewshot-gui
tmp=$(mktemp)
printf '#!/bin/sh\n# Few-Shot Labeler launcher (installed by install.sh)\nexec "%s/fewshot-gui" "$@"\n' \
    "$prefix" > "$tmp"
put "$tmp" "$launcher" 755
rm -f "$tmp"

# The menu entry: Exec/TryExec point at the installed app, so it works without ~/.local/bin on PATH.
case $prefix in *" "*) exec_path="\"$prefix/fewshot-gui\"" ;; *) exec_path="$prefix/fewshot-gui" ;; esac
tmp=$(mktemp)
sed -e "s|^Exec=fewshot-gui|Exec=$exec_path|" -e "s|^TryExec=.*|TryExec=$prefix/fewshot-gui|" \
    "$resources/fewshot-gui.desktop" > "$tmp"
put "$tmp" "$data_home/applications/fewshot-gui.desktop" 644
rm -f "$tmp"

# Icons: the app's, and the same picture for its project files.
for icon in "$resources"/icons/hicolor/*/apps/fewshot-gui.*; do
    size=$(basename "$(dirname "$(dirname "$icon")")")
    ext=${icon##*.}
    put "$icon" "$data_home/icons/hicolor/$size/apps/fewshot-gui.$ext"
    put "$icon" "$data_home/icons/hicolor/$size/mimetypes/application-x-fewshot-project.$ext"
done

# The *.fewshot file type.
put "$resources/fewshot-gui-mime.xml" "$data_home/mime/packages/fewshot-gui-mime.xml"

cp "$new_manifest" "$manifest"
echo "file:$manifest" >> "$manifest"

# Refresh the desktop's caches where the tools exist (they are optional).
if command -v update-mime-database >/dev/null 2>&1; then
    update-mime-database "$data_home/mime" >/dev/null 2>&1 || true
fi
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database "$data_home/applications" >/dev/null 2>&1 || true
fi
touch "$data_home/icons/hicolor"  # icon lookups notice the new files (no per-user icon cache)

echo "Installed. Start it from your applications menu (Few-Shot Labeler) or run: $launcher"
case :$PATH: in *":$bin_dir:"*) ;; *) echo "(Note: $bin_dir is not on your PATH.)" ;; esac
echo "To uninstall: $prefix/uninstall.sh"
