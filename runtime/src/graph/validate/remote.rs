//! Raw video between machines is compressed on the way. For every raw-video
//! edge whose two ends are deployed on different machines, a `video-encode`
//! on the sending machine and a `video-decode` on the receiving one are put
//! in between, so the nodes on both sides stay as written and frames inside
//! each machine stay raw in shared memory (see [`node_catalog::link`]).
//!
//! Every runtime of a run reads the same file and so puts in the same nodes
//! with the same ids: they meet over the network like any other nodes.
//! Their ids start with `_`, which no node written in a file may.

use std::collections::HashMap;

use node_catalog::kinds::video_encode::Codec;
use node_catalog::kinds::{video_decode, video_encode};
use node_catalog::{link, Choice, Params, PortType};
use serde_json::Value;

use crate::graph::diagnostic::DiagnosticsBuilder;
use crate::graph::model::{LinkEnd, LinkRole, RESERVED_ID_PREFIX};
use crate::graph::yaml::{join, Entry, Pos};

use super::fields::choice;
use super::link::outputs_of;
use super::nodes::{suggest_id, Draft, DraftInput, NodeReader};

/// One encoder per output and link settings; one decoder per encoder and
/// receiving machine.
#[derive(Default)]
struct Inserted {
    encoders: HashMap<(String, String), String>,
    decoders: HashMap<(String, String), String>,
    drafts: Vec<Draft>,
}

/// A link's encoder settings, checked; `None`: no encoder (`codec: raw`,
/// or a wrong codec, already reported).
type LinkSettings = Option<(Codec, Params)>;

/// Puts the link nodes into `drafts` and rewires the inputs they serve.
/// `default`: the graph's top-level `link:`.
pub(super) fn compress_remote_edges(
    reader: &NodeReader<'_>,
    drafts: &mut Vec<Draft>,
    default: Option<&Entry>,
    sink: &mut DiagnosticsBuilder<'_>,
) {
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        ids.entry(d.id.clone()).or_insert(i);
    }
    let mut inserted = Inserted::default();
    // Each place settings are written in is read once, however many edges
    // it serves (the graph's `link:`: every edge without its own).
    let mut settings: HashMap<Option<Pos>, LinkSettings> = HashMap::new();
    for di in 0..drafts.len() {
        for ii in 0..drafts[di].inputs.len() {
            let input = &drafts[di].inputs[ii];
            let Some(&si) = ids.get(&input.source_node) else {
                continue;
            };
            let (src, dst) = (&drafts[si], &drafts[di]);
            let (Some(from), Some(to)) = (src.machine.clone(), dst.machine.clone()) else {
                continue;
            };
            let raw_video = outputs_of(src)
                .unwrap_or_default()
                .iter()
                .any(|o| o.name == input.source_output && o.ty == PortType::RawVideo);
            if from == to || !raw_video {
                continue;
            }
            let (entry, field) = match &input.link {
                Some(e) => (Some(e), join(&input.field, "link")),
                None => (default, "link".to_string()),
            };
            let read = settings
                .entry(entry.map(|e| e.value.pos))
                .or_insert_with(|| read_link(reader, entry, &field, sink));
            let Some((codec, params)) = read.clone() else {
                continue;
            };
            let pos = entry.map_or(input.source_pos, |e| e.value.pos);
            let encoder = inserted.encoder(input, &from, codec, params, field, pos);
            let decoder = inserted.decoder(reader, input, &encoder, codec, &to, sink);
            let input = &mut drafts[di].inputs[ii];
            input.source_node = decoder;
            input.source_output = "video".into();
        }
    }
    drafts.extend(inserted.drafts);
}

/// The settings of the link written at `entry` (`None`: the built-in
/// default), checked as a `video-encode`'s params with the link's own
/// defaults where they give none.
fn read_link(
    reader: &NodeReader<'_>,
    entry: Option<&Entry>,
    field: &str,
    sink: &mut DiagnosticsBuilder<'_>,
) -> LinkSettings {
    let codec = link_codec(entry, field, sink)?;
    let pos = entry.map_or(Pos::at(0, 0), |e| e.value.pos);
    let mut draft = Draft::inserted(
        String::new(),
        &video_encode::SPEC,
        String::new(),
        field.to_string(),
        pos,
        None,
    );
    reader.read_typed_params_at(&video_encode::SPEC, entry, field, &mut draft, sink);
    for (name, value) in link::defaults(codec) {
        if !draft.param_pos.contains_key(name) {
            draft.params.0.insert(name.to_string(), value);
        }
    }
    // The link's own defaults are checked with the settings given.
    reader.cross_check(&video_encode::SPEC, field, &mut draft, sink);
    Some((codec, draft.params))
}

/// The link's codec; `None` for `codec: raw` or a wrong setting (reported).
fn link_codec(
    entry: Option<&Entry>,
    field: &str,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Option<Codec> {
    let Some(entry) = entry else {
        return Some(link::DEFAULT_CODEC);
    };
    if entry.value.as_map().is_none() {
        let message = format!(
            "`link` must be a mapping of encoder settings, found {}",
            entry.value.describe()
        );
        let hint = "e.g. `link: {codec: h264, bitrate: 8M}`, `link: {codec: mjpeg}` or `link: {codec: raw}`";
        sink.error(entry.value.pos, field, message, Some(hint.into()));
        return None;
    }
    let Some(c) = entry.value.get("codec") else {
        return Some(link::DEFAULT_CODEC);
    };
    let names: Vec<&str> = [link::RAW]
        .into_iter()
        .chain(Codec::NAMES.iter().copied())
        .collect();
    let name = choice(&c.value, &join(field, "codec"), &names, sink)?;
    Codec::from_name(name)
}

impl Inserted {
    /// The encoder of `input`'s source output with these settings, put in
    /// on the first edge that needs it; `pos`: where its settings are.
    fn encoder(
        &mut self,
        input: &DraftInput,
        machine: &str,
        codec: Codec,
        params: Params,
        field: String,
        pos: Pos,
    ) -> String {
        let from = format!("{}/{}", input.source_node, input.source_output);
        let base = format!(
            "{RESERVED_ID_PREFIX}link-{}-{}",
            input.source_node, input.source_output
        );
        let mut draft = Draft::inserted(
            String::new(),
            &video_encode::SPEC,
            machine.to_string(),
            field,
            pos,
            Some(LinkEnd {
                role: LinkRole::Encode,
                from: from.clone(),
                codec: codec.name().to_string(),
                encoder: String::new(),
            }),
        );
        draft.params = params;
        let settings = Value::Object(draft.params.0.clone()).to_string();
        if let Some(id) = self.encoders.get(&(from.clone(), settings.clone())) {
            return id.clone();
        }
        let same_output = self.encoders.keys().filter(|(f, _)| *f == from).count();
        let id = match same_output {
            0 => base,
            n => format!("{base}-{}", n + 1),
        };
        draft.id = id.clone();
        draft.link.as_mut().expect("set above").encoder = id.clone();
        draft.input_names = vec!["video".into()];
        draft.inputs = vec![DraftInput {
            name: "video".into(),
            link: None,
            queue_size: None,
            policy: None,
            ..input.clone()
        }];
        self.encoders.insert((from, settings), id.clone());
        self.drafts.push(draft);
        id
    }

    /// The decoder of `encoder`'s packets on `machine`.
    fn decoder(
        &mut self,
        reader: &NodeReader<'_>,
        input: &DraftInput,
        encoder: &str,
        codec: Codec,
        machine: &str,
        sink: &mut DiagnosticsBuilder<'_>,
    ) -> String {
        let key = (encoder.to_string(), machine.to_string());
        if let Some(id) = self.decoders.get(&key) {
            return id.clone();
        }
        let id = format!("{encoder}-to-{}", suggest_id(machine));
        let mut draft = Draft::inserted(
            id.clone(),
            &video_decode::SPEC,
            machine.to_string(),
            input.field.clone(),
            input.source_pos,
            Some(LinkEnd {
                role: LinkRole::Decode,
                from: format!("{}/{}", input.source_node, input.source_output),
                codec: codec.name().to_string(),
                encoder: encoder.to_string(),
            }),
        );
        let field = join(&input.field, "link");
        reader.read_typed_params_at(&video_decode::SPEC, None, &field, &mut draft, sink);
        draft.input_names = vec!["video".into()];
        draft.inputs = vec![DraftInput {
            name: "video".into(),
            source_node: encoder.to_string(),
            source_output: "video".into(),
            link: None,
            queue_size: None,
            policy: None,
            ..input.clone()
        }];
        self.decoders.insert(key, id.clone());
        self.drafts.push(draft);
        id
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::model::LinkRole;
    use crate::graph::validate::test_util::*;

    /// A camera on machine `a`, its encoder, sync and mux on `b`; `link`
    /// goes on the top level, `input_link` on the sync's input.
    fn two_machines(link: &str, input_link: &str) -> String {
        format!(
            "network:\n  a: {{}}\n  b: {{}}\n{link}nodes:\n  - id: cam\n    node: camera\n    deploy: {{machine: a}}\n    params: {{source: test}}\n  - id: sync\n    node: sync\n    deploy: {{machine: b}}\n    inputs:\n      video: {{source: cam/video{input_link}}}\n  - id: enc\n    node: video-encode\n    deploy: {{machine: b}}\n    inputs: {{video: sync/video}}\n  - id: mux\n    node: mux\n    deploy: {{machine: b}}\n    inputs: {{video: enc/video}}\n    params: {{path: a.mkv}}\n"
        )
    }

    #[test]
    fn raw_video_between_machines_goes_through_an_encoder_and_a_decoder() {
        let g = check(&two_machines("", "")).unwrap();
        let enc = g.node("_link-cam-video").expect("the link's encoder");
        assert_eq!(enc.machine.as_deref(), Some("a"));
        assert_eq!(enc.params.str("codec"), Some("mjpeg"));
        assert_eq!(enc.params.str("quality"), Some("high"));
        assert_eq!(enc.inputs[0].source_node, "cam");
        let dec = g.node("_link-cam-video-to-b").expect("the link's decoder");
        assert_eq!(dec.machine.as_deref(), Some("b"));
        assert_eq!(dec.inputs[0].source_node, "_link-cam-video");
        let link = dec.link.as_ref().unwrap();
        assert_eq!(
            (link.role, link.from.as_str()),
            (LinkRole::Decode, "cam/video")
        );
        // The sync reads the decoder; inside machine b nothing changed.
        let sync = g.node("sync").unwrap();
        assert_eq!(sync.inputs[0].source_node, "_link-cam-video-to-b");
        assert_eq!(g.node("enc").unwrap().inputs[0].source_node, "sync");
    }

    #[test]
    fn the_graph_and_each_edge_choose_the_link() {
        let g = check(&two_machines("link: {codec: h264, bitrate: 8M}\n", "")).unwrap();
        let enc = g.node("_link-cam-video").unwrap();
        assert_eq!(enc.params.str("codec"), Some("h264"));
        assert_eq!(enc.params.0["bitrate"], serde_json::json!(8_000_000));
        assert_eq!(enc.params.str("tune"), Some("zerolatency"));
        assert_eq!(enc.params.0["keyframe_interval"], serde_json::json!(1.0));
        // An edge's own link wins; `raw` sends frames as they are.
        let g = check(&two_machines(
            "link: {codec: h264}\n",
            ", link: {codec: raw}",
        ))
        .unwrap();
        assert!(g.nodes.iter().all(|n| n.link.is_none()));
        assert_eq!(g.node("sync").unwrap().inputs[0].source_node, "cam");
    }

    #[test]
    fn wrong_link_settings_name_their_place() {
        assert_eq!(
            error(&two_machines("", ", link: {codec: mpeg2}")),
            "13:48 nodes[1].inputs.video.link.codec: expected one of raw, h264, h265, vp9, av1, mjpeg, found the string \"mpeg2\""
        );
        assert_eq!(
            error(&two_machines("link: {bitrate: 1}\n", "")),
            "4:17 link.bitrate: bitrate 1 b/s is out of range 10000..=400000000"
        );
        assert_eq!(
            error(&two_machines("link: {codec: mjpeg, crf: 40}\n", "")),
            "4:27 link.crf: crf 40 is out of range 0..=31 for mjpeg"
        );
        assert!(error(&two_machines("link: mjpeg\n", ""))
            .starts_with("4:7 link: `link` must be a mapping"));
        // A wrong graph-wide link is said once, however many edges use it.
        let two_cameras = two_machines("link: {bitrate: 1}\n", "").replace(
            "      video: {source: cam/video}\n",
            "      video: {source: cam/video}\n      video2: {source: cam2/video}\n",
        ) + "  - id: cam2\n    node: camera\n    deploy: {machine: a}\n    params: {source: test}\n";
        assert_eq!(
            error(&two_cameras),
            "4:17 link.bitrate: bitrate 1 b/s is out of range 10000..=400000000"
        );
    }
}
