//! The integration tests: one binary, one file per capability.

mod binder_mariadb;
mod binder_postgres;
mod binder_support;
mod lambda_events;
mod lambda_scripts;
mod lambda_secrets;
mod osb_bindings;
mod osb_contract;
mod osb_instances;
mod sacloud_client;
mod sacloud_client_faults;
mod sacloud_simulator;
mod sacloud_simulator_control;
mod support;
mod support_lambda;
mod support_sacloud;
