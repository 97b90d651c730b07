//! The integration tests: one binary, one file per capability.

mod osb_bindings;
mod osb_contract;
mod osb_instances;
mod support;
