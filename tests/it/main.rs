//! The integration tests: one binary, one file per capability.

mod binder_mariadb;
mod binder_postgres;
mod binder_support;
mod chaos;
mod faults;
mod osb_bindings;
mod osb_contract;
mod osb_dedicated;
mod osb_dedicated_faults;
mod osb_instances;
mod sacloud_client;
mod sacloud_client_faults;
mod sacloud_simulator;
mod sacloud_simulator_control;
mod support;
mod support_dedicated;
mod support_sacloud;
