mod sacloud_client;
mod sacloud_simulator;
mod support_sacloud;
