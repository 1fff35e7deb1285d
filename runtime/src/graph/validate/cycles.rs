//! Data flows one way: a cycle of inputs is an error.

use crate::graph::diagnostic::DiagnosticsBuilder;

use super::nodes::Draft;

/// Reports every cycle found by a depth-first walk along the data flow, at
/// the input that closes it.
pub(super) fn cycles(
    drafts: &[Draft],
    edges: &[(usize, usize, usize)],
    sink: &mut DiagnosticsBuilder<'_>,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut consumers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); drafts.len()];
    for &(src, dst, input) in edges {
        consumers[src].push((dst, input));
    }
    let mut marks = vec![Mark::New; drafts.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        n: usize,
        consumers: &[Vec<(usize, usize)>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        drafts: &[Draft],
        sink: &mut DiagnosticsBuilder<'_>,
    ) {
        marks[n] = Mark::Active;
        stack.push(n);
        for &(next, input) in &consumers[n] {
            match marks[next] {
                Mark::New => visit(next, consumers, marks, stack, drafts, sink),
                Mark::Active => {
                    let at = stack.iter().position(|&s| s == next).unwrap_or(0);
                    let mut names: Vec<&str> =
                        stack[at..].iter().map(|&s| drafts[s].id.as_str()).collect();
                    names.push(&drafts[next].id);
                    let inp = &drafts[next].inputs[input];
                    let message = format!("cycle in the graph: {}", names.join(" → "));
                    let hint =
                        Some("data must flow one way; remove one of these inputs".to_string());
                    sink.error(inp.source_pos, &inp.field, message, hint);
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[n] = Mark::Done;
    }
    for n in 0..drafts.len() {
        if marks[n] == Mark::New {
            visit(n, &consumers, &mut marks, &mut stack, drafts, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::validate::test_util::*;

    #[test]
    fn self_loop_is_a_cycle() {
        let text = "nodes:\n  - id: a\n    node: video-normalize\n    inputs: {video: a/video}\n";
        assert_eq!(
            error(text),
            "4:21 nodes[0].inputs.video: cycle in the graph: a → a"
        );
    }
}
