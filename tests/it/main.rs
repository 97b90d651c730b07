//! The integration tests: one binary, one file per capability.

mod binder_mariadb;
mod binder_postgres;
mod binder_support;
mod faults;
mod lambda_events;
mod lambda_scripts;
mod lambda_secrets;
mod osb_bindings;
mod osb_contract;
mod osb_dedicated;
mod osb_dedicated_faults;
mod osb_instances;
mod sacloud_client;
mod sacloud_client_faults;
mod sacloud_simulator;
mod sacloud_simulator_control;
mod store_cases;
mod store_dynamodb;
mod store_file;
mod store_suite;
mod support;
mod support_dedicated;
mod support_lambda;
mod support_moto;
mod support_sacloud;
