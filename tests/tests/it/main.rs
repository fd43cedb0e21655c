//! One integration-test binary: the real server on a random port, real SQLite, the real
//! client and, where it matters, the server as its own process.

mod access;
mod agent;
mod amplification;
mod auth;
mod backup;
mod broker;
mod cli;
mod cli_output;
mod devices;
mod events;
mod exhaustion;
mod external_broker;
mod isolation;
mod memory;
mod openapi;
mod openssl;
mod operations;
mod presence;
mod refusals;
mod replicas;
mod rerun;
mod restart;
mod restart_rollout;
mod rollout_devices;
mod rollout_pause;
mod rollout_retry_budget;
mod rollouts;
mod shutdown;
mod simulate;
mod simulate_limits;
mod smaller;
mod store;
mod tls;
mod upload;
