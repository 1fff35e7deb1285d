//! Logging for node processes: `tracing` to stderr, filtered by `RUST_LOG`
//! (default `info`). The runtime prefixes each line with the node id on the
//! console and keeps the full log per node in the run directory.

/// Without `RUST_LOG`: our info lines, and only zenoh's errors (its warnings
/// are about link retries that are expected while a graph starts).
pub const DEFAULT_FILTER: &str = "info,zenoh=error,zenoh_transport=error,zenoh_link_unixsock_stream=error,zenoh_link_tcp=error,zenoh_shm=error,zenoh_config=error";

/// Installs the subscriber once; later calls do nothing. Besides the log,
/// it keeps the causes of messages zenoh drops (see `transport_log`).
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(crate::transport_log::layer())
        .try_init();
}
