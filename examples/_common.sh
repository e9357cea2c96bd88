# Shared by the example scripts (source it): checks that mlops is installed, makes a
# throwaway work folder, and copies example "$1" into a fresh Git repository there.
#
#   PYTHON=/path/to/python   the interpreter mlops is installed in (default: python on PATH)
#   CLEANUP=1                remove the work folder afterwards

here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
script="$(basename "${BASH_SOURCE[1]}")"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
if ! "$PYTHON" -c "import mlops, sklearn" 2>/dev/null; then
    echo "$script: $PYTHON cannot import mlops and scikit-learn; run \`pip install .\` first" >&2
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/mlops-example.XXXXXX")"
# A script that sets its own EXIT trap calls cleanup_work from it.
cleanup_work() {
    if [ "${CLEANUP:-0}" = 1 ]; then chmod -R u+w "$work"; rm -rf "$work"; fi
}
trap cleanup_work EXIT
# The stages call `python`: make it the interpreter mlops is installed in.
mkdir "$work/bin"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$PYTHON" > "$work/bin/python"
chmod +x "$work/bin/python"
export PATH="$work/bin:$PATH"

mlops() { "$PYTHON" -m mlops "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# new_example_repo NAME: copy example NAME into $work/NAME as a new Git repository; cd there.
new_example_repo() {
    repo="$work/$1"
    cp -R "$here/$1" "$repo"
    cd "$repo"
    git init -q
    git config user.email "example@mlops.invalid"
    git config user.name "mlops example"
}
