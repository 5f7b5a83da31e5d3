#!/usr/bin/env bash
# Build the self-contained Linux bundle and its installable artifact.
#
#   packaging/build.sh [--variant cpu|cuda] [--out DIR] [--reuse-venv]
#
# Creates a fresh virtual environment under build/<variant>/venv (git-ignored), installs the project,
# PyTorch for the variant and PyInstaller into it, freezes DIR/fewshot-gui/ (onedir; default DIR is
# dist/) and packs DIR/fewshot-gui-<version>-linux-x86_64-<variant>.tar.gz with install.sh and
# uninstall.sh. Needs Python 3.11 (PYTHON=..., default python3) and only the package registries.
set -euo pipefail

variant=cpu
out=dist
reuse_venv=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --variant) variant="${2:?--variant needs cpu or cuda}"; shift 2 ;;
        --variant=*) variant="${1#*=}"; shift ;;
        --out) out="${2:?--out needs a folder}"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        --reuse-venv) reuse_venv=1; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[[ "$variant" == cpu || "$variant" == cuda ]] || { echo "build.sh: --variant is cpu or cuda" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packaging="$root/packaging"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$root/build/$variant"
venv="$work/venv"
python="${PYTHON:-python3}"
start=$(date +%s)
step() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "build.sh: needs Python 3.11 (the PyTorch wheels are cp311); set PYTHON=" >&2; exit 2; }

step "virtual environment $venv"
if [[ $reuse_venv == 0 ]]; then rm -rf "$venv"; fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
constraints="$packaging/constraints-$variant.txt"

step "PyTorch ($variant)"
"${pip[@]}" install -c "$constraints" torch torchvision
step "the project and PyInstaller"
"${pip[@]}" install -c "$constraints" "$root" pyinstaller pyinstaller-hooks-contrib
if [[ $reuse_venv == 1 ]]; then  # same version number: make pip take the current sources
    "${pip[@]}" install --no-deps --force-reinstall "$root"
fi
rm -rf "$root/build/lib" "$root/build/bdist."* "$root"/*.egg-info  # setuptools' leftovers

version="$("$venv/bin/python" -c 'import fewshot_gui; print(fewshot_gui.__version__)')"
torch_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')"

step "PyInstaller (fewshot-gui $version, torch $torch_version)"
rm -rf "$out/fewshot-gui"
FEWSHOT_VARIANT="$variant" "$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$out" --workpath "$work/pyinstaller" "$packaging/fewshot-gui.spec"
bundle="$out/fewshot-gui"
cat > "$bundle/BUILD_INFO" <<INFO
name=fewshot-gui
version=$version
variant=$variant
torch=$torch_version
python=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
INFO

step "artifact"
name="fewshot-gui-$version-linux-x86_64-$variant"
stage="$work/stage/$name"
rm -rf "$work/stage"
mkdir -p "$stage"
cp -al "$bundle" "$stage/fewshot-gui" 2>/dev/null || cp -a "$bundle" "$stage/fewshot-gui"
cp "$packaging/install.sh" "$packaging/uninstall.sh" "$stage/"
chmod +x "$stage/install.sh" "$stage/uninstall.sh"
artifact="$out/$name.tar.gz"
compress=gzip
command -v pigz >/dev/null && compress=pigz
tar -C "$work/stage" -I "$compress -6" -cf "$artifact" "$name"
rm -rf "$work/stage"

seconds=$(( $(date +%s) - start ))
bundle_mb=$(du -sm "$bundle" | cut -f1)
artifact_mb=$(du -sm "$artifact" | cut -f1)
summary="variant=$variant version=$version torch=$torch_version build_s=$seconds bundle_mb=$bundle_mb artifact_mb=$artifact_mb"
echo "$summary" | tee "$work/build-stats.txt"
step "done: $bundle and $artifact"
