//! osb-sacloud: an Open Service Broker for SAKURA Cloud database appliances.
//!
//! One router serves both ways of running: on AWS Lambda (`lambda_http`) and as a local server
//! (`server`, plain HTTP/1.1 with timeouts and a connection cap). `docs/ARCHITECTURE.md` maps the
//! layers.

pub mod api;
pub mod app;
pub mod aws;
pub mod binder;
pub mod broker;
pub mod budget;
pub mod catalog;
pub mod config;
pub mod engine;
pub mod lambda;
pub mod logging;
pub mod networks;
pub mod sacloud;
pub mod secret;
pub mod secrets;
pub mod server;
pub mod store;
