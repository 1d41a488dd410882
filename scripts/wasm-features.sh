# Sourced by build.sh and bench/build.sh: the post-MVP wasm features rustc
# emits for wasm32-wasip1 (SIMD: .cargo/config.toml), which binaryen must
# be told or it refuses the module.
# shellcheck disable=SC2034 # used by the scripts that source this
features=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-mutable-globals --enable-simd)
