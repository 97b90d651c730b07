//! The integration tests: one binary, one file per capability.

mod binder_mariadb;
mod binder_postgres;
mod binder_support;
mod osb_bindings;
mod osb_contract;
mod osb_instances;
mod support;
