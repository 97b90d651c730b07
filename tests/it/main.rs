//! The integration tests: one binary, in rooms by what they exercise. Each room's `mod.rs` says
//! what it holds; `support/` is what several rooms share (brokers on simulators, moto, processes,
//! log capture, proxies). Tests that need MariaDB, PostgreSQL or moto are ignored by a bare
//! `cargo test` and run by `scripts/test.sh` (`--features services`).

mod binder;
mod concurrency;
mod hostile;
mod lambda;
mod logs;
mod osb;
mod platforms;
mod sacloud;
mod store;
mod support;
