//! SAKURA Cloud IaaS API: the client the broker uses, its model and errors, and a simulator
//! (an axum app) that behaves like the real API for tests and fake mode.

pub mod model;
pub mod simulator;

pub use model::Engine;
