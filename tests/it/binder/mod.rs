//! Dedicated bindings' database accounts on the real MariaDB and PostgreSQL servers, with and
//! without TLS.

mod mariadb;
mod postgres;
mod tls;
