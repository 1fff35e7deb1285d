//! Turns the spanned YAML tree into a [`Graph`], checking everything that can
//! be checked before anything runs. Every problem is reported, each at the
//! place in the file it comes from; the graph is returned only when there is
//! none.
//!
//! The checks run in phases, one module each:
//! [`top`] (the graph's name, `vars:` and `--set` overrides),
//! [`network`] (`network:` endpoints),
//! [`nodes`] and [`params`] (each node on its own: id, program, params,
//! deploy, args, env; [`custom`]: the schema a custom node publishes),
//! [`ports`] (its `inputs:` and `outputs:` as written),
//! [`remote`] (raw video between machines: compressed links put in),
//! [`link`] (edges between nodes: references, port types, required inputs),
//! [`cycles`], and [`kind_rules`] (rules specific to one built-in kind).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diagnostic::DiagnosticsBuilder;
use super::load::Override;
use super::model::Graph;
use super::vars::{substitute, Vars};
use super::yaml::YamlNode;

mod custom;
mod cycles;
mod fields;
mod kind_rules;
mod link;
mod network;
mod nodes;
mod params;
mod ports;
mod remote;
mod top;

#[cfg(test)]
mod test_util;

use fields::unknown_fields;
use nodes::{Draft, NodeReader};
pub use top::MACHINE_BUILTIN;

const TOP_FIELDS: &[&str] = &["name", "vars", "network", "link", "nodes"];

/// Checks a parsed graph file; `None` when `sink` holds any error.
pub(crate) fn graph(
    mut root: YamlNode,
    file: &Path,
    overrides: &[Override],
    builtins: &BTreeMap<String, String>,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<Graph> {
    if root.as_map().is_none() {
        let message = format!(
            "a graph file must be a mapping with `nodes:` at the top, found {}",
            root.describe()
        );
        sink.error(root.pos, "", message, None);
        return None;
    }
    unknown_fields(&root, "", TOP_FIELDS, sink);

    let mut vars = Vars::with_builtins(builtins);
    top::read_vars(&root, &mut vars, sink);
    top::override_vars(overrides, &mut vars, sink);
    vars.resolve_all(sink);

    let name = top::graph_name(&root, file, sink);
    let network = network::read_network(&root, sink);
    // The default of every compressed link between machines.
    let default_link = root.get("link").cloned().map(|mut e| {
        substitute(&mut e.value, "link", &vars, sink);
        e
    });

    let root_pos = root.pos;
    let Some(nodes_entry) = root
        .as_map_mut()
        .and_then(|m| m.iter_mut().find(|e| e.key == "nodes"))
    else {
        sink.error(
            root_pos,
            "nodes",
            "missing required field `nodes` (the list of nodes)",
            None,
        );
        return None;
    };
    substitute(&mut nodes_entry.value, "nodes", &vars, sink);
    top::override_params(overrides, &mut nodes_entry.value, &vars, sink);

    let Some(items) = nodes_entry.value.as_seq() else {
        let message = format!(
            "`nodes` must be a list of nodes, found {}",
            nodes_entry.value.describe()
        );
        sink.error(nodes_entry.value.pos, "nodes", message, None);
        return None;
    };
    if items.is_empty() {
        sink.error(nodes_entry.key_pos, "nodes", "the graph has no nodes", None);
        return None;
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let reader = NodeReader {
        dir: &dir,
        network: &network,
        vars: &vars,
        local_machine: builtins.get(MACHINE_BUILTIN).map(String::as_str),
    };
    let mut drafts: Vec<Option<Draft>> = items
        .iter()
        .enumerate()
        .map(|(i, n)| reader.read_head(i, n, sink))
        .collect();
    custom::describe_custom_nodes(&mut drafts, sink);
    for (d, n) in drafts.iter_mut().zip(items) {
        if let Some(d) = d {
            reader.read_ports_and_params(d, n, sink);
        }
    }
    let mut drafts: Vec<Draft> = drafts.into_iter().flatten().collect();
    remote::compress_remote_edges(&reader, &mut drafts, default_link.as_ref(), sink);

    let nodes = link::link(&drafts, sink);
    if sink.has_errors() {
        return None;
    }
    Some(Graph {
        name,
        file: file.to_path_buf(),
        nodes: nodes?,
        network,
    })
}

#[cfg(test)]
mod tests {
    use crate::graph::validate::test_util::*;

    #[test]
    fn empty_files_and_node_lists() {
        assert_eq!(
            error(""),
            "1:1 : the file is empty: a graph needs at least `nodes:`"
        );
        assert_eq!(error("nodes: []\n"), "1:1 nodes: the graph has no nodes");
        assert_eq!(
            error("nodes: {a: 1}\n"),
            "1:8 nodes: `nodes` must be a list of nodes, found a mapping"
        );
        assert_eq!(
            error("nodes:\n  - camera\n"),
            "2:5 nodes[0]: expected a node (a mapping with `id` and `node` or `path`), found the string \"camera\""
        );
    }

    #[test]
    fn flow_style_and_crlf_files_validate() {
        let text = "nodes: [{id: cam, node: camera}, {id: enc, node: video-encode, inputs: {video: cam/video}}, {id: mux, node: mux, inputs: {v: enc/video}, params: {path: a.mp4}}]\n";
        assert_eq!(check(text).unwrap().nodes.len(), 3);
        let crlf = with_camera("    params:\n      width: 640\n").replace('\n', "\r\n");
        let g = check(&crlf).unwrap();
        assert_eq!(g.nodes[0].params.i64("width"), Some(640));
        let dup =
            with_camera("    params:\n      width: 640\n      width: 320\n").replace('\n', "\r\n");
        assert_eq!(
            error(&dup),
            "6:7 nodes[0].params.width: duplicate key `width` (first set at line 5, column 7)"
        );
    }
}
