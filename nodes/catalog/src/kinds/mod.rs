//! The built-in node kinds: one module per kind, each with its ports, its
//! param specs, its typed `Settings` (what the node reads) and its rules.

pub mod app_audio;
pub mod app_video;
pub mod audio_encode;
pub mod audio_mix;
pub mod audio_normalize;
pub mod camera;
pub mod common;
pub mod compose;
pub mod hls;
pub mod microphone;
pub mod mux;
pub mod noise_suppress;
pub mod replay_buffer;
pub mod screen;
pub mod stream;
pub mod sync;
pub mod video_decode;
pub mod video_encode;
pub mod video_normalize;

use crate::format::Format;

use serde_json::Value;

use crate::params::{ParamSpec, Params};
use crate::{PortType, Problem};

/// One port of a node kind.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec {
    pub name: &'static str,
    pub ty: PortType,
    pub doc: &'static str,
    /// The node works without this input connected (e.g. sync's extra cameras).
    pub optional: bool,
    /// Queue depth of this input when the graph gives no `queue_size`.
    pub queue_size: usize,
    /// An input that also takes this type and passes it through: the
    /// output of the same name then carries it too (sync's cameras take
    /// encoded packets from an encoder on the camera machine).
    pub passes: Option<PortType>,
}

/// The executable beside `runtime` that runs every built-in kind:
/// `mediagraph-nodes KIND [ARGS]`.
pub const BUILTIN_BINARY: &str = "mediagraph-nodes";

/// The flag under which a node forked by `mediagraph-nodes --fork-server`
/// shows its graph id in its command line (`mediagraph-nodes KIND
/// --node-id ID`): a fork keeps the server's environment in /proc, where an
/// exec'd node shows `MEDIAGRAPH_NODE_ID`.
pub const NODE_ID_FLAG: &str = "--node-id";

/// Queue depth of an input when neither the graph nor the port says otherwise.
pub const DEFAULT_QUEUE_SIZE: usize = 4;

impl PortSpec {
    /// A required port with the default queue depth.
    pub const fn new(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            name,
            ty,
            doc,
            optional: false,
            queue_size: DEFAULT_QUEUE_SIZE,
            passes: None,
        }
    }
    /// An input the node works without.
    pub const fn optional(name: &'static str, ty: PortType, doc: &'static str) -> PortSpec {
        PortSpec {
            optional: true,
            ..PortSpec::new(name, ty, doc)
        }
    }
    /// This input's queue holds `n` messages by default.
    pub const fn queue(self, n: usize) -> PortSpec {
        PortSpec {
            queue_size: n,
            ..self
        }
    }
    /// This input also takes `ty`, passed through to the output of the same
    /// name (see [`PortSpec::passes`]).
    pub const fn or_passed(self, ty: PortType) -> PortSpec {
        PortSpec {
            passes: Some(ty),
            ..self
        }
    }
}

/// A built-in node kind: what it consumes, produces and accepts as params.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub kind: &'static str,
    pub doc: &'static str,
    pub inputs: &'static [PortSpec],
    /// When set, the node accepts any number of inputs with any names, each of
    /// one of these types (the mux takes any number of tracks).
    pub any_inputs: Option<&'static [PortType]>,
    pub outputs: &'static [PortSpec],
    pub params: &'static [ParamSpec],
    /// Rules on the params (typed and in range) that hold wherever the node
    /// runs: several params together, a text param's grammar. `runtime
    /// check` applies them to every node, on this machine or another.
    pub rules: fn(&Params) -> Vec<Problem>,
    /// Checks against the machine the node runs on (files, directories):
    /// made only for the nodes of the machine checking.
    pub host_checks: fn(&Params) -> Vec<Problem>,
    /// A rule on one param's value as written, before its type and range
    /// are checked, given the params as written (a range that depends on
    /// another param: `crf` per codec).
    pub value_rule: fn(name: &str, value: &Value, written: &Params) -> Option<Problem>,
    /// Rules between the params and the names of the inputs connected (how
    /// many a mixer takes, a per-input gain naming no input). A problem
    /// about the inputs themselves names the param `inputs`.
    pub inputs_rule: fn(inputs: &[String], params: &Params) -> Vec<Problem>,
    /// Run inside the application that embeds the runtime (frames it
    /// submits), not as a process the runtime starts: `app-video`, `app-audio`.
    pub hosted: bool,
    /// The container an output kind writes with these params (mux, stream,
    /// hls, replay-buffer): `runtime check` refuses an encoder whose codec
    /// it cannot carry. `None`: not an output.
    pub format: Option<fn(&Params) -> Option<Format>>,
}

impl KindSpec {
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether param `name` is an action (done once when sent, not kept;
    /// see [`ParamSpec::action`]).
    pub fn is_action(&self, name: &str) -> bool {
        self.param(name).is_some_and(|p| p.action)
    }

    /// The params as they may be shown (the control API, reports): every
    /// secret (a stream key, a passphrase) as `***`.
    pub fn shown(&self, params: &Params) -> Params {
        let mut shown = params.clone();
        for (name, value) in shown.0.iter_mut() {
            if self.param(name).is_some_and(|p| p.secret) {
                *value = Value::from("***");
            }
        }
        shown
    }

    pub fn input(&self, name: &str) -> Option<&'static PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }
    pub fn output(&self, name: &str) -> Option<&'static PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }
    /// A node with no inputs produces media from outside the graph.
    pub fn is_source(&self) -> bool {
        self.inputs.is_empty() && self.any_inputs.is_none()
    }

    /// Every rule of the kind: the pure ones, then (`on_this_machine`) the
    /// host checks.
    pub fn check(&self, params: &Params, on_this_machine: bool) -> Vec<Problem> {
        let mut problems = (self.rules)(params);
        if on_this_machine {
            problems.extend((self.host_checks)(params));
        }
        problems
    }

    /// A param update for a running node of this kind (`current`: its
    /// params; `inputs`: the names of its inputs): the new value,
    /// normalized, or why it cannot be applied (an unknown param, one fixed
    /// once the node started, a bad value, an input it does not have).
    pub fn check_update(
        &self,
        inputs: &[String],
        current: &Params,
        name: &str,
        value: &Value,
    ) -> Result<Value, String> {
        let Some(spec) = self.param(name) else {
            return Err(format!("{} has no param `{name}`", self.kind));
        };
        if !spec.live {
            let mutable: Vec<&str> = self
                .params
                .iter()
                .filter(|p| p.live)
                .map(|p| p.name)
                .collect();
            let which = match mutable.as_slice() {
                [] => format!("no param of {} does", self.kind),
                names => format!("of {}, only {} can", self.kind, names.join(", ")),
            };
            return Err(format!("`{name}` cannot change while running ({which})"));
        }
        let value = spec.ty.coerce(value)?;
        let mut after = current.clone();
        after.0.insert(name.to_string(), value.clone());
        let mut problems = (self.rules)(&after).into_iter();
        match problems
            .next()
            .or_else(|| (self.inputs_rule)(inputs, &after).pop())
        {
            Some(problem) => Err(problem.message),
            None => Ok(value),
        }
    }
}

/// No rule beyond the params' types and ranges.
pub(crate) fn no_rules(_: &Params) -> Vec<Problem> {
    Vec::new()
}

/// No rule on a value before its type.
pub(crate) fn no_value_rule(_: &str, _: &Value, _: &Params) -> Option<Problem> {
    None
}

/// No rule on the inputs beyond their types.
pub(crate) fn no_inputs_rule(_: &[String], _: &Params) -> Vec<Problem> {
    Vec::new()
}

/// The problem of a typed read, if any, as a list.
pub(crate) fn problems<T>(read: Result<T, Problem>) -> Vec<Problem> {
    read.err().into_iter().collect()
}

static KINDS: &[KindSpec] = &[
    app_video::SPEC,
    app_audio::SPEC,
    camera::SPEC,
    screen::SPEC,
    microphone::SPEC,
    video_normalize::SPEC,
    audio_normalize::SPEC,
    noise_suppress::SPEC,
    audio_mix::SPEC,
    sync::SPEC,
    compose::SPEC,
    video_encode::SPEC,
    video_decode::SPEC,
    audio_encode::SPEC,
    mux::SPEC,
    stream::SPEC,
    hls::SPEC,
    replay_buffer::SPEC,
];

/// Every built-in kind, in pipeline order.
pub fn builtin_kinds() -> &'static [KindSpec] {
    KINDS
}

/// The built-in kind of that name.
pub fn kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.kind == name)
}

/// Shared by the kinds' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The params a kind's node receives when the graph sets none: every default.
    pub fn defaults(kind: &KindSpec) -> Params {
        Params(
            kind.params
                .iter()
                .filter_map(|p| Some((p.name.to_string(), p.default_value()?)))
                .collect(),
        )
    }

    /// `defaults` with `name` set to `value`.
    pub fn with(kind: &KindSpec, name: &str, value: Value) -> Params {
        let mut p = defaults(kind);
        p.0.insert(name.to_string(), value);
        p
    }

    /// A kind's settings parse from its defaults and from no params at all
    /// (both giving `Default`), and from every choice of every enum param.
    pub fn assert_settings_parse<S>(kind: &KindSpec, parse: fn(&Params) -> Result<S, Problem>)
    where
        S: Default + PartialEq + std::fmt::Debug,
    {
        assert_eq!(parse(&defaults(kind)), Ok(S::default()));
        assert_eq!(parse(&Params::default()), Ok(S::default()));
        for p in every_choice(kind) {
            parse(&p).unwrap();
        }
    }

    /// Every choice of every enum param of `kind`, as params over the defaults.
    pub fn every_choice(kind: &KindSpec) -> Vec<Params> {
        let mut out = Vec::new();
        for spec in kind.params {
            if let crate::ParamType::Enum(names) = spec.ty {
                for name in names {
                    out.push(with(kind, spec.name, Value::from(*name)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_default_is_valid() {
        for k in builtin_kinds() {
            for p in k.params {
                let _ = p.default_value();
            }
        }
    }

    #[test]
    fn every_kinds_defaults_pass_its_rules() {
        for k in builtin_kinds() {
            if matches!(k.kind, "mux" | "stream") {
                continue; // the mux's default path names the run's start time; a stream needs a url
            }
            assert_eq!((k.rules)(&testing::defaults(k)), vec![], "{}", k.kind);
        }
    }

    #[test]
    fn updates_are_checked_against_the_schema() {
        let sync = kind("sync").unwrap();
        let current = testing::defaults(sync);
        // A sync has one input at least (its inputs rule).
        let inputs = ["video".to_string()];
        assert_eq!(
            sync.check_update(&inputs, &current, "tolerance_ms", &json!(40)),
            Ok(json!(40.0))
        );
        assert!(sync
            .check_update(&inputs, &current, "tolerance_ms", &json!(5000))
            .unwrap_err()
            .contains("out of range"));
        let e = sync
            .check_update(&inputs, &current, "max_drift_ppm", &json!(10))
            .unwrap_err();
        assert!(e.contains("cannot change while running"), "{e}");
        assert!(e.contains("buffer_ms, tolerance_ms"), "{e}");
        assert!(sync
            .check_update(&inputs, &current, "gain", &json!(1))
            .unwrap_err()
            .contains("no param `gain`"));
        let encode = kind("video-encode").unwrap();
        let e = encode
            .check_update(
                &inputs,
                &testing::defaults(encode),
                "quality",
                &json!("high"),
            )
            .unwrap_err();
        assert!(
            e.contains("of video-encode, only crf, bitrate, keyframe can"),
            "{e}"
        );
    }
}
