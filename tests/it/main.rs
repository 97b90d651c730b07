mod sacloud_client;
mod sacloud_client_faults;
mod sacloud_simulator;
mod sacloud_simulator_control;
mod support_sacloud;
