//! Logging for node processes: `tracing` to stderr, filtered by `RUST_LOG`
//! (default `info`). The runtime prefixes each line with the node id on the
//! console and keeps the full log per node in the run directory.

/// Without `RUST_LOG`: our info lines, and only zenoh's errors (its warnings
/// are about link retries that are expected while a graph starts).
pub const DEFAULT_FILTER: &str = "info,zenoh=error,zenoh_transport=error,zenoh_link_unixsock_stream=error,zenoh_link_tcp=error,zenoh_shm=error,zenoh_config=error";

/// Installs the subscriber once; later calls do nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .try_init();
}
