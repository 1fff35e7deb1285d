//! What zenoh says, at debug level only, when it drops a message it received:
//! kept so a loss the node's numbering finds can name its cause.
//!
//! zenoh drops a shared-memory message it cannot map ("Error receiving SHM
//! buffer: ..."; e.g. the buffer's watchdog expired, or the segment could not
//! be mapped) with a debug line and nothing else. A layer of our subscriber
//! listens to exactly those lines, whatever `RUST_LOG` says, and keeps the last.

use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};

/// The receive paths of zenoh's transports, which log the drops.
const RX_TARGETS: [&str; 3] = [
    "zenoh_transport::unicast::universal::rx",
    "zenoh_transport::unicast::lowlatency::rx",
    "zenoh_transport::multicast::rx",
];

const DROP_PREFIX: &str = "Error receiving SHM buffer: ";

static LAST_DROP: Mutex<Option<String>> = Mutex::new(None);

/// The cause of the last message zenoh dropped on receipt, if any.
pub fn last_drop() -> Option<String> {
    LAST_DROP.lock().unwrap().clone()
}

/// The layer to add to the node's subscriber, with its own filter.
pub fn layer<S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>>() -> impl Layer<S>
{
    let targets = RX_TARGETS.iter().fold(Targets::new(), |t, target| {
        t.with_target(*target, Level::DEBUG)
    });
    DropCapture.with_filter(targets)
}

struct DropCapture;

impl<S: Subscriber> Layer<S> for DropCapture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Some(cause) = message.0.strip_prefix(DROP_PREFIX) {
            *LAST_DROP.lock().unwrap() = Some(explain(cause));
        }
    }
}

/// zenoh's text, with what it means for a user.
fn explain(cause: &str) -> String {
    let cause = cause.split(" at /").next().unwrap_or(cause);
    let hint = if cause.contains("invalidated") {
        " (the buffer's shared-memory watchdog expired before it was read: a process of the \
         graph was not scheduled for over 100 ms)"
    } else if cause.contains("OS error 12") {
        " (out of memory, or the memlock limit `ulimit -l` is too low for zenoh's segments)"
    } else {
        ""
    };
    format!("zenoh dropped a shared-memory message: {cause}{hint}")
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cause_says_what_it_means() {
        let e = super::explain("Buffer is invalidated at /x/reader.rs:79.");
        assert!(e.ends_with("for over 100 ms)"), "{e}");
        assert!(e.contains("Buffer is invalidated ("), "{e}");
    }
}
