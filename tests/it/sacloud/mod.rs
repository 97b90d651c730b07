//! The SAKURA Cloud client against the simulator on loopback, and the simulator itself on the
//! wire: request shapes, retries, faults, and the control API.

mod client;
mod client_faults;
mod simulator;
mod simulator_control;
