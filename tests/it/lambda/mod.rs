//! The Lambda path: the events in `events/` through the runtime adapter, secrets from Secrets
//! Manager at cold start, the operator scripts, and the deploy pipeline's template and zip.

mod deploy_pipeline;
mod events;
mod scripts;
mod secrets;
mod warm_up;
