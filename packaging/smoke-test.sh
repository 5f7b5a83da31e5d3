#!/usr/bin/env bash
# Smoke-test a built bundle and its artifact, as a user without the project's Python would run it.
#
#   packaging/smoke-test.sh [BUNDLE_DIR]      (default: dist/fewshot-gui)
#
# 1. The bundle's `fewshot-gui --version` and `fewshot-gui self-test` run offscreen with a bare
#    environment (env -i, PATH=/usr/bin:/bin: no virtual environment, no PYTHONPATH) and HOME in a
#    temporary folder.
# 2. The artifact next to the bundle (fewshot-gui-*-linux-x86_64-*.tar.gz) is unpacked and installed
#    with HOME in a temporary folder; the desktop entry, icons, MIME type and launcher must exist and
#    the launcher must run `--version` and `self-test`.
# 3. uninstall.sh removes all of it and keeps a settings file and a project put there "by the user".
# Exits 0 only if every check passes.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="${1:-$root/dist/fewshot-gui}"
bundle="$(cd "$bundle" 2>/dev/null && pwd)" || { echo "smoke-test: no bundle at ${1:-dist/fewshot-gui}" >&2; exit 1; }
failures=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

check() {  # check DESCRIPTION COMMAND...
    local description="$1"; shift
    if "$@" >"$tmp/last.log" 2>&1; then
        echo "ok    $description"
    else
        echo "FAIL  $description"; sed 's/^/      | /' "$tmp/last.log" | tail -n 25
        failures=$((failures + 1))
    fi
}
bare() {  # bare HOME COMMAND...: run with an empty environment but for a minimal PATH and HOME
    local home="$1"; shift
    env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
        TMPDIR="$tmp" "$@"
}
timed() {  # timed LABEL COMMAND...: like the command; prints its wall time
    local t0 t1 rc
    t0=$(date +%s.%N); "${@:2}"; rc=$?; t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v label="$1" 'BEGIN { printf "%s: %.1f s\n", label, b - a }' >&2
    return $rc
}

echo "== bundle $bundle"
mkdir -p "$tmp/home1"
check "bundle --version" bare "$tmp/home1" "$bundle/fewshot-gui" --version
check "bundle self-test (offscreen, bare environment)" \
    timed "self-test wall time" bare "$tmp/home1" "$bundle/fewshot-gui" self-test
grep -h "wall time" "$tmp/last.log" || true
check "no Python of the project on PATH" bare "$tmp/home1" sh -c '! command -v fewshot-gui'

artifact="$(ls -t "$(dirname "$bundle")"/fewshot-gui-*-linux-x86_64-*.tar.gz 2>/dev/null | head -n 1)"
if [[ -z "$artifact" ]]; then
    echo "FAIL  no artifact fewshot-gui-*-linux-x86_64-*.tar.gz next to the bundle"
    exit 1
fi
echo "== artifact $artifact"
home="$tmp/home2"
mkdir -p "$home" "$tmp/unpacked"
check "artifact unpacks" tar -C "$tmp/unpacked" -xzf "$artifact"
installer="$(ls "$tmp"/unpacked/*/install.sh 2>/dev/null | head -n 1)"
check "install.sh into a temporary HOME" bare "$home" sh "$installer"
share="$home/.local/share"
desktop="$share/applications/fewshot-gui.desktop"
check "desktop entry installed" test -f "$desktop"
check "desktop entry: Name=Few-Shot Labeler" grep -qx "Name=Few-Shot Labeler" "$desktop"
check "desktop entry: MimeType" grep -q "^MimeType=.*application/x-fewshot-project;" "$desktop"
exec_line="$(sed -n 's/^Exec=//p' "$desktop")"
exec_app="${exec_line% %f}"
check "desktop entry: Exec points at the installed app" test -x "$exec_app"
check "icon 256x256 installed" test -f "$share/icons/hicolor/256x256/apps/fewshot-gui.png"
check "icon scalable installed" test -f "$share/icons/hicolor/scalable/apps/fewshot-gui.svg"
check "MIME type installed" test -f "$share/mime/packages/fewshot-gui-mime.xml"
if command -v update-mime-database >/dev/null; then
    check "MIME database knows *.fewshot" grep -q "application/x-fewshot-project:\*\.fewshot" "$share/mime/globs2"
fi
launcher="$home/.local/bin/fewshot-gui"
check "launcher installed" test -x "$launcher"
check "launcher --version" bare "$home" "$launcher" --version
check "desktop Exec line runs self-test" bare "$home" "$exec_app" self-test

echo "== uninstall keeps user data"
mkdir -p "$home/.config/fewshot-gui" "$home/Documents"
echo "[General]" > "$home/.config/fewshot-gui/settings.ini"
echo '{"format": "fewshot-gui-project"}' > "$home/Documents/mine.fewshot"
check "uninstall.sh" bare "$home" sh "$share/fewshot-gui/uninstall.sh"
check "app removed" test ! -e "$share/fewshot-gui/fewshot-gui"
check "launcher removed" test ! -e "$launcher"
check "desktop entry removed" test ! -e "$desktop"
check "icons removed" test ! -e "$share/icons/hicolor/256x256/apps/fewshot-gui.png"
check "settings kept" test -f "$home/.config/fewshot-gui/settings.ini"
check "project kept" test -f "$home/Documents/mine.fewshot"

if [[ $failures -eq 0 ]]; then echo "smoke test passed"; else echo "smoke test FAILED ($failures)"; fi
[[ $failures -eq 0 ]]
