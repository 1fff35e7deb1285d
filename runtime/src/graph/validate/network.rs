//! `network:`: the zenoh endpoints each machine listens on and connects to.

use crate::graph::diagnostic::DiagnosticsBuilder;
use crate::graph::model::{MachineNetwork, Network};
use crate::graph::yaml::{join, YamlNode};

use super::fields::unknown_fields;

const MACHINE_FIELDS: &[&str] = &["listen", "connect"];

pub(super) fn read_network(root: &YamlNode, sink: &mut DiagnosticsBuilder<'_>) -> Network {
    let mut network = Network::default();
    let Some(e) = root.get("network") else {
        return network;
    };
    let Some(machines) = e.value.as_map() else {
        if e.value.as_scalar().is_none_or(|s| !s.value.is_null()) {
            let message = format!(
                "`network` must map machine names to endpoints, found {}",
                e.value.describe()
            );
            sink.error(e.value.pos, "network", message, None);
        }
        return network;
    };
    for m in machines {
        let field = join("network", &m.key);
        let mut machine = MachineNetwork::default();
        if m.value.as_map().is_some() {
            unknown_fields(&m.value, &field, MACHINE_FIELDS, sink);
            for (name, list) in [
                ("listen", &mut machine.listen),
                ("connect", &mut machine.connect),
            ] {
                if let Some(l) = m.value.get(name) {
                    *list = endpoints(&l.value, &join(&field, name), sink);
                }
            }
        } else if m.value.as_scalar().is_none_or(|s| !s.value.is_null()) {
            let message = format!(
                "expected `listen:` and `connect:` endpoints, found {}",
                m.value.describe()
            );
            sink.error(m.value.pos, field, message, None);
        }
        network.machines.insert(m.key.clone(), machine);
    }
    network
}

fn endpoints(node: &YamlNode, field: &str, sink: &mut DiagnosticsBuilder<'_>) -> Vec<String> {
    let Some(items) = node.as_seq() else {
        let message = format!(
            "expected a list of endpoints like `tcp/127.0.0.1:7447`, found {}",
            node.describe()
        );
        sink.error(node.pos, field, message, None);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(s) = item.as_scalar() else {
            sink.error(
                item.pos,
                f,
                format!("expected an endpoint, found {}", item.describe()),
                None,
            );
            continue;
        };
        match check_endpoint(&s.text) {
            Ok(()) => out.push(s.text.clone()),
            Err((message, hint)) => sink.error(item.pos, f, message, hint),
        }
    }
    out
}

/// A zenoh locator: `<protocol>/<address>`; IP transports need a port.
fn check_endpoint(text: &str) -> Result<(), (String, Option<String>)> {
    let example = Some(
        "endpoints look like `tcp/192.168.1.10:7447` or `unixsock-stream/tmp/zenoh.sock`"
            .to_string(),
    );
    let Some((proto, addr)) = text.split_once('/') else {
        return Err((format!("`{text}` is not an endpoint"), example));
    };
    if proto.is_empty() || addr.is_empty() {
        return Err((format!("`{text}` is not an endpoint"), example));
    }
    if matches!(proto, "tcp" | "udp" | "tls" | "quic" | "ws") {
        let port = addr
            .split('#')
            .next()
            .unwrap_or(addr)
            .rsplit_once(':')
            .map(|(_, p)| p);
        if port.is_none_or(|p| p.parse::<u16>().is_err()) {
            return Err((
                format!("`{text}` has no valid port"),
                Some(format!("e.g. `{proto}/{addr}:7447`")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(check_endpoint("tcp/10.0.0.2:7447").is_ok());
        assert!(check_endpoint("tcp/[::1]:7447").is_ok());
        assert!(check_endpoint("unixsock-stream/tmp/z.sock").is_ok());
        assert!(check_endpoint("localhost:7447").is_err());
        assert!(check_endpoint("tcp/host:http").is_err());
    }
}
