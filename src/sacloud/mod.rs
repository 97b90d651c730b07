//! SAKURA Cloud IaaS API: the client the broker uses, its model and errors, and a simulator
//! (an axum app) that behaves like the real API for tests and fake mode.

pub mod client;
mod database;
pub mod error;
mod lenient;
pub mod model;
mod naked;
mod pacing;
mod request;
#[cfg(feature = "simulator")]
pub mod simulator;

#[cfg(test)]
mod parse_tests;

pub use client::{Client, ClientConfig, DEFAULT_ROOT_URL};
pub use error::Error;
pub use model::{
    Backup, CreateDatabase, Database, DatabaseSettings, DatabaseStatus, EVERY_DAY, Engine,
    SettingsChange, SettingsDoc,
};
