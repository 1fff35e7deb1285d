//! The text of `runtime nodes [KIND]`: the built-in node kinds, straight from
//! the catalog the validator uses, so the reference cannot drift from it, and
//! their metrics from the names the nodes publish them by
//! (`node_api::metrics`).

use std::fmt::Write;

use node_api::metrics;
use node_catalog::{
    builtin_kinds, kind as builtin_kind, KindSpec, ParamSpec, PortSpec, PortType,
    DEFAULT_QUEUE_SIZE,
};

use crate::graph::did_you_mean;

/// `None`: every kind with its one-line doc, ports and param names.
/// `Some(kind)`: that kind's ports and full param table.
pub fn describe(kind: Option<&str>) -> Result<String, String> {
    match kind {
        None => Ok(overview()),
        Some(name) => {
            match builtin_kind(name) {
                Some(k) => Ok(details(k)),
                None => {
                    let names = builtin_kinds().iter().map(|k| k.kind);
                    let hint = did_you_mean(name, names)
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    Err(format!("unknown node kind `{name}`{hint}; `runtime nodes` lists the built-in kinds"))
                }
            }
        }
    }
}

fn ports(ports: &[PortSpec]) -> String {
    if ports.is_empty() {
        return "none".into();
    }
    ports
        .iter()
        .map(|p| {
            let notes: String = port_notes(p).iter().map(|n| format!(", {n}")).collect();
            format!("{} ({}{notes})", p.name, p.ty)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What sets a port apart beside its type: "optional", "queue 8 by default".
fn port_notes(p: &PortSpec) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(other) = p.passes {
        notes.push(format!("or {other}, passed through"));
    }
    if p.optional {
        notes.push("optional".to_string());
    }
    if p.queue_size != DEFAULT_QUEUE_SIZE {
        notes.push(format!("queue {} by default", p.queue_size));
    }
    notes
}

fn any_inputs(types: &[PortType]) -> String {
    let types: Vec<&str> = types.iter().map(|t| t.name()).collect();
    format!("any number, named freely, each {}", types.join(" or "))
}

fn inputs_line(k: &KindSpec) -> String {
    match k.any_inputs {
        Some(types) => any_inputs(types),
        None => ports(k.inputs),
    }
}

fn overview() -> String {
    let mut out = String::from("Built-in node kinds (`runtime nodes <KIND>` shows one in full):\n");
    for k in builtin_kinds() {
        let params: Vec<&str> = k.params.iter().map(|p| p.name).collect();
        let metrics: Vec<String> = metrics::published_by(k.kind)
            .map(|m| m.display_name())
            .collect();
        let _ = write!(
            out,
            "\n{}\n    {}\n    inputs:  {}\n    outputs: {}\n    params:  {}\n",
            k.kind,
            k.doc,
            inputs_line(k),
            ports(k.outputs),
            if params.is_empty() {
                "none".into()
            } else {
                params.join(", ")
            },
        );
        if !metrics.is_empty() {
            let _ = writeln!(out, "    metrics: {}", metrics.join(", "));
        }
    }
    let types: Vec<&str> = PORT_TYPES.iter().map(|t| t.name()).collect();
    let _ = write!(
        out,
        "\nCustom nodes: `path: <executable>` (relative to the graph file) with `args:`, `env:`,\n\
         untyped `params:` and `outputs:` as `name` or `name: <type>`; a node that answers\n\
         `<executable> --describe` with its schema has its params and ports checked like these.\n\
         Port types: {}.\n",
        types.join(", ")
    );
    out
}

const PORT_TYPES: &[PortType] = &[
    PortType::RawVideo,
    PortType::RawAudio,
    PortType::EncodedVideo,
    PortType::EncodedAudio,
    PortType::Stats,
    PortType::Any,
];

/// Rows of cells as left-aligned columns; the last column is not padded.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn port_rows(ports: &[PortSpec]) -> Vec<Vec<String>> {
    ports
        .iter()
        .map(|p| {
            let notes = port_notes(p);
            let ty = if notes.is_empty() {
                p.ty.to_string()
            } else {
                format!("{} ({})", p.ty, notes.join(", "))
            };
            vec![p.name.to_string(), ty, p.doc.to_string()]
        })
        .collect()
}

fn param_row(p: &ParamSpec) -> Vec<String> {
    let doc = if p.live {
        format!("{} (changes while running)", p.doc)
    } else {
        p.doc.to_string()
    };
    vec![
        p.name.to_string(),
        p.ty.describe(),
        // No default: the param is absent unless set; its doc says what that means.
        p.default_text().unwrap_or_else(|| "unset".into()),
        doc,
    ]
}

fn details(k: &KindSpec) -> String {
    let mut out = format!("{}: {}\n\nInputs:\n", k.kind, k.doc);
    match k.any_inputs {
        Some(types) => {
            let _ = writeln!(out, "  {}", any_inputs(types));
        }
        None if k.inputs.is_empty() => {
            out.push_str("  none (a source: it produces media from outside the graph)\n")
        }
        None => table(&mut out, &port_rows(k.inputs)),
    }
    out.push_str("\nOutputs:\n");
    if k.outputs.is_empty() {
        out.push_str("  none (a sink)\n");
    } else {
        table(&mut out, &port_rows(k.outputs));
    }
    out.push_str("\nParams:\n");
    if k.params.is_empty() {
        out.push_str("  none\n");
    } else {
        let mut rows = vec![["NAME", "TYPE", "DEFAULT", "DESCRIPTION"]
            .map(String::from)
            .to_vec()];
        rows.extend(k.params.iter().map(param_row));
        table(&mut out, &rows);
    }
    out.push_str("\nMetrics (in `--report`: nodes.<id>.stats.metrics):\n");
    let rows: Vec<Vec<String>> = metrics::published_by(k.kind)
        .map(|m| vec![m.display_name(), m.doc_line()])
        .collect();
    if rows.is_empty() {
        out.push_str("  none of its own\n");
    } else {
        table(&mut out, &rows);
    }
    out.push_str("\nExample:\n");
    let _ = writeln!(out, "  - id: {}\n    node: {}", k.kind, k.kind);
    if !k.inputs.is_empty() || k.any_inputs.is_some() {
        out.push_str("    inputs:\n");
        for p in k.inputs {
            let _ = writeln!(out, "      {}: <node-id>/<output>   # {}", p.name, p.ty);
        }
        if let Some(types) = k.any_inputs {
            for t in types {
                let name = t
                    .name()
                    .trim_start_matches("encoded-")
                    .trim_start_matches("raw-");
                let _ = writeln!(out, "      {name}: <node-id>/<output>   # {t}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overview_lists_every_kind() {
        let text = describe(None).unwrap();
        for k in builtin_kinds() {
            assert!(
                text.contains(&format!("\n{}\n    {}", k.kind, k.doc)),
                "{}",
                k.kind
            );
        }
        assert!(text.contains("outputs: video (raw-video)"));
        assert!(
            text.contains("inputs:  any number, named freely, each encoded-video or encoded-audio")
        );
    }

    #[test]
    fn details_have_types_ranges_and_defaults() {
        let text = describe(Some("video-encode")).unwrap();
        assert!(text.starts_with("video-encode: Encodes raw video"));
        let crf = text
            .lines()
            .find(|l| l.trim_start().starts_with("crf "))
            .unwrap();
        assert!(crf.contains("integer 0..=63"), "{crf}");
        assert!(crf.contains("unset"), "{crf}");
        assert!(crf.contains("absent: from quality"), "{crf}");
        let codec = text
            .lines()
            .find(|l| l.trim_start().starts_with("codec "))
            .unwrap();
        assert!(
            codec.contains("one of h264 | h265 | vp9 | av1") && codec.contains("h264"),
            "{codec}"
        );
        assert!(text.contains("video  raw-video"), "{text}");
        assert!(text.contains("video  encoded-video"), "{text}");
        // Columns line up: every param row has its type at the same offset.
        let header = text.lines().find(|l| l.contains("NAME")).unwrap();
        let offset = header.find("TYPE").unwrap();
        assert_eq!(&crf[offset..offset + 7], "integer");
    }

    #[test]
    fn mutable_params_say_so() {
        let text = describe(Some("sync")).unwrap();
        let row = |name: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap()
                .to_string()
        };
        assert!(row("tolerance_ms ").ends_with("(changes while running)"));
        assert!(row("buffer_ms ").ends_with("(changes while running)"));
        assert!(row("paused ").ends_with("(changes while running)"));
        assert!(!row("max_drift_ppm ").contains("while running"));
        assert!(
            row("tolerance_ms ").contains(" 20 "),
            "{}",
            row("tolerance_ms ")
        );
    }

    #[test]
    fn metrics_are_listed_with_their_meaning() {
        let text = describe(Some("video-encode")).unwrap();
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("overloaded_pct "))
            .unwrap();
        assert!(
            row.contains("input queue skipped in the last second"),
            "{row}"
        );
        let mux = describe(Some("mux")).unwrap();
        assert!(mux.contains("  latency_p50_ms_<input>  "), "{mux}");
        assert!(describe(Some("audio-normalize"))
            .unwrap()
            .contains("\n  gain_db "));
        let overview = describe(None).unwrap();
        assert!(
            overview.contains("    metrics: dropped, av_offset_ms, drift_ppm, "),
            "{overview}"
        );
    }

    /// A metric's publishers are kinds (or the test node): a typo would
    /// leave the metric out of `runtime nodes`.
    #[test]
    fn metrics_are_published_by_known_kinds() {
        for m in metrics::all() {
            for kind in m.published_by {
                assert!(
                    *kind == "testkit" || builtin_kind(kind).is_some(),
                    "{}: {kind}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn sources_and_sinks() {
        assert!(describe(Some("camera")).unwrap().contains("none (a source"));
        assert!(describe(Some("mux")).unwrap().contains("none (a sink)"));
    }

    #[test]
    fn unknown_kind_suggests() {
        let err = describe(Some("camra")).unwrap_err();
        assert!(err.contains("unknown node kind `camra`"), "{err}");
        assert!(err.contains("did you mean `camera`?"), "{err}");
    }
}
