//! Packs the binary's relative relocations (`-z pack-relative-relocs`, DT_RELR) when it is built
//! for the machine it is built on and that machine's glibc can load them (2.36 and later).
//!
//! A position-independent Rust binary carries one 24-byte relocation per pointer in its
//! read-only data, some 35,000 here: about 850 KB that the loader reads at every start and that
//! stays resident. Packed, they take about 10 KB, and the broker's resident memory drops by
//! about 0.9 MB (measured with `scripts/bench.sh`). A binary with packed relocations does not
//! start on an older glibc, so it is done only with the default linker for the build machine
//! itself. These are left as they are:
//! - cross builds, and builds through a configured linker;
//! - anything built by cargo-lambda, even natively: Amazon Linux 2023 has glibc 2.34;
//! - older machines.
//!
//! `OSB_NO_RELR=1` turns it off, for a binary meant to run elsewhere.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OSB_NO_RELR");
    println!("cargo:rerun-if-env-changed=CARGO_LAMBDA_COLOR");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = env::var("TARGET").unwrap_or_default();
    let host = env::var("HOST").unwrap_or_default();
    // Cargo sets RUSTC_LINKER when a linker is configured for the target (cargo-lambda's zig
    // wrapper is one); cargo-lambda also marks its builds with CARGO_LAMBDA_* variables.
    let other_linker = env::var_os("RUSTC_LINKER").is_some();
    let cargo_lambda = env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("CARGO_LAMBDA"));
    if target != host
        || !target.ends_with("-linux-gnu")
        || other_linker
        || cargo_lambda
        || env::var_os("OSB_NO_RELR").is_some()
    {
        return;
    }
    if glibc_version().is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// The build machine's glibc, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_version() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.trim().strip_prefix("glibc ")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}
