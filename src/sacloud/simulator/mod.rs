//! A SAKURA Cloud IaaS API simulator.

pub mod backing;
