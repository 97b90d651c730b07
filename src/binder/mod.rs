//! binder
