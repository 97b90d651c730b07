//! The integration tests: one binary, one file per capability.

mod binder_mariadb;
mod binder_postgres;
mod binder_support;
mod hostile_bodies;
mod hostile_body_gen;
mod hostile_cases;
mod hostile_gen;
mod hostile_headers;
mod hostile_paths;
mod hostile_queries;
mod hostile_support;
mod logs_audit;
mod logs_capture;
mod logs_debug;
mod logs_failures;
mod logs_secrets;
mod logs_support;
mod osb_bindings;
mod osb_contract;
mod osb_instances;
mod sacloud_client;
mod sacloud_client_faults;
mod sacloud_simulator;
mod sacloud_simulator_control;
mod support;
mod support_sacloud;
