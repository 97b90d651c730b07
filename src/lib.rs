//! osb-sacloud: an Open Service Broker for SAKURA Cloud database appliances.
//!
//! One router serves both ways of running: on AWS Lambda (`lambda_http`) and as a local server
//! (`axum::serve`). See DESIGN notes in the README for the layers.

pub mod api;
pub mod app;
pub mod aws;
pub mod binder;
pub mod broker;
pub mod catalog;
pub mod config;
pub mod lambda;
pub mod logging;
pub mod sacloud;
pub mod secret;
pub mod secrets;
pub mod store;
