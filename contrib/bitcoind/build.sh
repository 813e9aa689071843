#!/usr/bin/env bash
# Builds Bitcoin Core's bitcoind and bitcoin-cli (no wallet, no GUI) from the source tree
# inside the crates.io package libbitcoinkernel-sys 0.4.1 (Bitcoin Core 31.99), for the
# watch tests against a real regtest node. Debian: cmake, libboost-dev, libevent-dev.
# The binaries are cached in $CHAINTRACE_BITCOIND_DIR (default ~/.cache/chaintrace-bitcoind):
# built once per machine (measured here: 9 minutes on 2 cores). The crate leaves out the ASMap data
# (src/node/data/ip_asn.dat), so it is not embedded (-DWITH_EMBEDDED_ASMAP=OFF).
set -euo pipefail
out="${CHAINTRACE_BITCOIND_DIR:-$HOME/.cache/chaintrace-bitcoind}"
if [ -x "$out/bin/bitcoind" ] && [ -x "$out/bin/bitcoin-cli" ]; then
  exit 0
fi
fetch="$out/fetch"
mkdir -p "$fetch/src"
cat > "$fetch/Cargo.toml" <<'TOML'
[package]
name = "fetch-bitcoin-core"
version = "0.0.0"
edition = "2021"
[dependencies]
libbitcoinkernel-sys = "=0.4.1"
TOML
echo 'fn main() {}' > "$fetch/src/main.rs"
(cd "$fetch" && cargo fetch -q)
src=$(cd "$fetch" && cargo metadata --format-version 1 -q \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print([p["manifest_path"] for p in m["packages"] if p["name"]=="libbitcoinkernel-sys"][0])')
src="$(dirname "$src")/bitcoin"
cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release \
  -DENABLE_WALLET=OFF -DENABLE_IPC=OFF -DWITH_ZMQ=OFF -DBUILD_GUI=OFF -DBUILD_TESTS=OFF \
  -DBUILD_BENCH=OFF -DBUILD_FUZZ_BINARY=OFF -DBUILD_TX=OFF -DBUILD_UTIL=OFF \
  -DBUILD_WALLET_TOOL=OFF -DBUILD_KERNEL_LIB=OFF -DWITH_EMBEDDED_ASMAP=OFF >/dev/null
cmake --build "$out/build" -j"$(nproc)" --target bitcoind bitcoin-cli
mkdir -p "$out/bin"
cp "$out/build/bin/bitcoind" "$out/build/bin/bitcoin-cli" "$out/bin/"
"$out/bin/bitcoind" -version | head -1
