# Shared by the hack/ scripts: paths and the build directory.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One build directory outside the work tree, reused between checkouts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rkube/target}"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
