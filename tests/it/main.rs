//! The one integration-test binary: each module tests one capability.

mod binder_mariadb;
mod binder_postgres;
mod binder_support;
