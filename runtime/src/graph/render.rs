//! Drawing a graph as Mermaid or Graphviz dot text.

use std::fmt::Write;

use super::model::{Graph, NodeDef, NodeProgram};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// A Mermaid `flowchart` (renders in GitHub and GitLab markdown).
    Mermaid,
    /// Graphviz dot (`dot -Tsvg`).
    Dot,
}

/// Nodes are labeled with their id and kind, edges with `output → input`
/// and the type they carry.
pub fn render(graph: &Graph, format: RenderFormat) -> String {
    match format {
        RenderFormat::Mermaid => mermaid(graph),
        RenderFormat::Dot => dot(graph),
    }
}

fn kind_label(node: &NodeDef) -> String {
    match &node.program {
        NodeProgram::Builtin(kind) => kind.clone(),
        NodeProgram::Custom(path) => {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            format!("custom: {name}")
        }
    }
}

fn mermaid(graph: &Graph) -> String {
    // Mermaid ids cannot hold every character node ids can (`-` reads as an
    // edge), so nodes are named by position and labeled with their id.
    let key = |id: &str| {
        graph
            .nodes
            .iter()
            .position(|n| n.id == id)
            .map(|i| format!("n{i}"))
    };
    let esc = |s: &str| s.replace('"', "#quot;");
    let mut out = String::from("flowchart LR\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        let label = format!("{}<br/>({})", esc(&node.id), esc(&kind_label(node)));
        // Sources (no inputs) are drawn rounded.
        if node.is_source() {
            let _ = writeln!(out, "    n{i}([\"{label}\"])");
        } else {
            let _ = writeln!(out, "    n{i}[\"{label}\"]");
        }
    }
    for node in &graph.nodes {
        for input in &node.inputs {
            let (Some(from), Some(to)) = (key(&input.source_node), key(&node.id)) else {
                continue;
            };
            let label = format!(
                "{} → {}<br/>{}",
                esc(&input.source_output),
                esc(&input.name),
                input.ty
            );
            let _ = writeln!(out, "    {from} -->|\"{label}\"| {to}");
        }
    }
    out
}

fn dot(graph: &Graph) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box];\n",
        esc(&graph.name)
    );
    for node in &graph.nodes {
        // `\n` inside a dot label is a line break.
        let label = format!("{}\\n({})", esc(&node.id), esc(&kind_label(node)));
        let shape = if node.is_source() {
            ", style=rounded"
        } else {
            ""
        };
        let _ = writeln!(out, "    \"{}\" [label=\"{label}\"{shape}];", esc(&node.id));
    }
    for node in &graph.nodes {
        for input in &node.inputs {
            let label = format!(
                "{} → {}\\n{}",
                esc(&input.source_output),
                esc(&input.name),
                input.ty
            );
            let (from, to) = (esc(&input.source_node), esc(&node.id));
            let _ = writeln!(out, "    \"{from}\" -> \"{to}\" [label=\"{label}\"];");
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{InputDef, Network, OutputDef, QueuePolicy, RestartPolicy};
    use node_catalog::{Params, PortType};

    fn node(id: &str, program: NodeProgram, inputs: Vec<InputDef>) -> NodeDef {
        NodeDef {
            id: id.into(),
            program,
            args: vec![],
            env: Default::default(),
            params: Params::default(),
            inputs,
            outputs: vec![OutputDef {
                name: "video".into(),
                ty: PortType::RawVideo,
            }],
            restart: RestartPolicy::Never,
            max_restarts: 0,
            machine: None,
            link: None,
            described: None,
        }
    }

    fn graph() -> Graph {
        let input = InputDef {
            name: "video".into(),
            source_node: "camera".into(),
            source_output: "video".into(),
            queue_size: 4,
            policy: QueuePolicy::DropOldest,
            ty: PortType::RawVideo,
        };
        Graph {
            name: "demo \"x\"".into(),
            file: "demo.yaml".into(),
            nodes: vec![
                node("camera", NodeProgram::Builtin("camera".into()), vec![]),
                node(
                    "my-det",
                    NodeProgram::Custom("/opt/det.py".into()),
                    vec![input],
                ),
            ],
            network: Network::default(),
        }
    }

    #[test]
    fn mermaid_labels() {
        let text = render(&graph(), RenderFormat::Mermaid);
        assert!(text.starts_with("flowchart LR\n"));
        assert!(text.contains("n0([\"camera<br/>(camera)\"])"), "{text}");
        assert!(
            text.contains("n1[\"my-det<br/>(custom: det.py)\"]"),
            "{text}"
        );
        assert!(
            text.contains("n0 -->|\"video → video<br/>raw-video\"| n1"),
            "{text}"
        );
    }

    #[test]
    fn dot_labels_and_quoting() {
        let text = render(&graph(), RenderFormat::Dot);
        assert!(text.starts_with("digraph \"demo \\\"x\\\"\" {"), "{text}");
        assert!(
            text.contains("\"camera\" [label=\"camera\\n(camera)\", style=rounded];"),
            "{text}"
        );
        assert!(
            text.contains("\"camera\" -> \"my-det\" [label=\"video → video\\nraw-video\"];"),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
    }
}
