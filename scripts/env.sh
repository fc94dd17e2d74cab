# Sourced by the other scripts: installs what a fresh machine lacks and sets the
# shared build directory. Idempotent.

# RocksDB's Rust bindings are generated with libclang at build time.
ensure_libclang() {
  if ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    return 0
  fi
  echo "==> installing clang/libclang (needed to build RocksDB's bindings)" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-dev >/dev/null
}

# One target directory for tests, binaries and benchmarks, outside the clone so that
# every checkout on this machine reuses the (14-minute) RocksDB C++ build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/atonomi/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
ensure_libclang
