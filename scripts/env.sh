# Sourced by the other scripts: installs what a fresh machine lacks and sets the
# shared build directory. Idempotent.

# RocksDB's Rust bindings are generated with libclang at build time.
ensure_libclang() {
  # bindgen loads libclang.so / libclang-N.so; libclang-cpp (often present alone) is not it.
  if compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib/llvm-*/lib/libclang-[0-9]*.so*" >/dev/null \
    || compgen -G "/usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*" >/dev/null || compgen -G "/usr/lib/x86_64-linux-gnu/libclang.so*" >/dev/null; then
    return 0
  fi
  echo "==> installing clang/libclang (needed to build RocksDB's bindings)" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # An install interrupted earlier leaves dpkg half-configured; finish it first.
  $sudo dpkg --configure -a >/dev/null 2>&1 || true
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-dev >/dev/null
}

# A command from Debian's packages, installed when missing: ensure_deb COMMAND PACKAGE WHY.
ensure_deb() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "==> installing $2 ($3)" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo dpkg --configure -a >/dev/null 2>&1 || true
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# One target directory for tests, binaries and benchmarks, outside the clone so that
# every checkout on this machine reuses the (14-minute) RocksDB C++ build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/atonomi/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
ensure_libclang

# Cargo copies a binary to $CARGO_TARGET_DIR/debug/ only when it compiles it, so after
# another checkout built into the shared directory, this checkout's "fresh" build
# would leave that checkout's `atonomi` there (tests would run the other sources, with
# the other checkout's compiled-in paths). When the checkout changes, the crates whose
# binaries are copied out are marked changed, so they are rebuilt and copied again.
atonomi_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
atonomi_marker="$CARGO_TARGET_DIR/.last-checkout"
if [ "$(cat "$atonomi_marker" 2>/dev/null)" != "$atonomi_root" ]; then
  touch "$atonomi_root/bridge/src/lib.rs" "$atonomi_root/cli/src/main.rs"
  mkdir -p "$CARGO_TARGET_DIR" && echo "$atonomi_root" > "$atonomi_marker"
fi
