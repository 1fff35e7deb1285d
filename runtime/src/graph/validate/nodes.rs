//! Each node on its own, before any edge is checked: its id, its program
//! (`node:` or `path:`), `deploy:`, `args:`, `env:`, restart policy. Its
//! params are read in [`super::params`], its ports in [`super::ports`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use node_catalog::{builtin_kinds, kind as builtin_kind, KindSpec, Params};

use crate::graph::diagnostic::{did_you_mean, DiagnosticsBuilder};
use crate::graph::model::{
    LinkEnd, Network, OutputDef, QueuePolicy, RestartPolicy, RESERVED_ID_PREFIX, RUNTIME_NAME,
};
use crate::graph::vars::Vars;
use crate::graph::yaml::{join, Entry, Pos, YamlNode};

use super::fields::{choice, int_in, text_of, unknown_fields};
use super::params::read_custom_params;
use super::ports::{read_inputs, read_outputs};

const NODE_FIELDS: &[&str] = &[
    "id",
    "node",
    "path",
    "args",
    "env",
    "params",
    "inputs",
    "outputs",
    "restart",
    "max_restarts",
    "deploy",
];
const DEPLOY_FIELDS: &[&str] = &["machine"];
const RESTARTS: &[&str] = &["never", "on-failure", "always"];
const DEFAULT_MAX_RESTARTS: u32 = 3;
const MAX_RESTARTS: i64 = 100;

/// Where a node's program comes from, once `node:`/`path:` is right.
pub(super) enum Program {
    Builtin(&'static KindSpec),
    Custom(PathBuf),
}

/// One node as read from the file, before its edges are checked.
pub(super) struct Draft {
    pub(super) field: String,
    pub(super) id: String,
    pub(super) id_pos: Pos,
    /// `None` when `node:`/`path:` is wrong (already reported).
    pub(super) program: Option<Program>,
    /// Where `node:`/`path:` is set.
    pub(super) program_pos: Pos,
    pub(super) builtin: bool,
    /// What its params and ports are checked against: a built-in kind's
    /// catalog entry, or the schema a custom node published (`--describe`).
    /// `None`: a custom node without one (its params go through as written).
    pub(super) kind: Option<&'static KindSpec>,
    pub(super) args: Vec<String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) params: Params,
    /// Where each param was set, for errors about it.
    pub(super) param_pos: BTreeMap<String, Pos>,
    pub(super) params_pos: Pos,
    /// All params read without error (cross-checks need them all).
    pub(super) params_ok: bool,
    /// The params that were set wrong (their default stands in for them).
    pub(super) bad_params: BTreeSet<String>,
    pub(super) inputs: Vec<DraftInput>,
    /// Every input name written, including ones with errors.
    pub(super) input_names: Vec<String>,
    pub(super) inputs_pos: Pos,
    pub(super) outputs: Option<Vec<OutputDef>>,
    /// `outputs:` had no wrong item, so an output missing from it is missing.
    pub(super) outputs_ok: bool,
    pub(super) restart: Option<RestartPolicy>,
    pub(super) max_restarts: u32,
    pub(super) machine: Option<String>,
    /// Put in by the runtime on a compressed link ([`super::remote`]).
    pub(super) link: Option<LinkEnd>,
}

impl Draft {
    /// A node the runtime puts in itself: `kind` on `machine`, its errors
    /// reported at `pos` under `field` (what in the file made it).
    pub(super) fn inserted(
        id: String,
        kind: &'static KindSpec,
        machine: String,
        field: String,
        pos: Pos,
        link: Option<LinkEnd>,
    ) -> Draft {
        Draft {
            field,
            id,
            id_pos: pos,
            program: Some(Program::Builtin(kind)),
            program_pos: pos,
            builtin: true,
            kind: Some(kind),
            args: Vec::new(),
            env: BTreeMap::new(),
            params: Params::default(),
            param_pos: BTreeMap::new(),
            params_pos: pos,
            params_ok: true,
            bad_params: BTreeSet::new(),
            inputs: Vec::new(),
            input_names: Vec::new(),
            inputs_pos: pos,
            outputs: None,
            outputs_ok: true,
            restart: None,
            max_restarts: DEFAULT_MAX_RESTARTS,
            machine: Some(machine),
            link,
        }
    }
}

#[derive(Clone)]
pub(super) struct DraftInput {
    pub(super) name: String,
    pub(super) name_pos: Pos,
    pub(super) field: String,
    pub(super) source_node: String,
    pub(super) source_output: String,
    pub(super) source_pos: Pos,
    /// None: the port's default.
    pub(super) queue_size: Option<usize>,
    pub(super) policy: Option<(QueuePolicy, Pos)>,
    /// `link:`: how this edge crosses machines (see [`super::remote`]).
    pub(super) link: Option<Entry>,
}

pub(super) struct NodeReader<'a> {
    pub(super) dir: &'a Path,
    pub(super) network: &'a Network,
    pub(super) vars: &'a Vars,
    /// The machine this runtime runs (`--machine`): the files and devices
    /// of nodes deployed elsewhere are checked there, not here.
    pub(super) local_machine: Option<&'a str>,
}

impl NodeReader<'_> {
    /// What a node is: its id, program, args, env and machine. Its params
    /// and ports are read by [`NodeReader::read_ports_and_params`] once
    /// every custom node was asked for its schema.
    pub(super) fn read_head(
        &self,
        index: usize,
        node: &YamlNode,
        sink: &mut DiagnosticsBuilder<'_>,
    ) -> Option<Draft> {
        let field = format!("nodes[{index}]");
        if node.as_map().is_none() {
            let message = format!(
                "expected a node (a mapping with `id` and `node` or `path`), found {}",
                node.describe()
            );
            sink.error(node.pos, field, message, None);
            return None;
        }
        unknown_fields(node, &field, NODE_FIELDS, sink);

        let (id, id_pos) = self.read_id(node, &field, sink);
        let (program, builtin) = self.read_program(node, &field, sink);
        let kind = match &program {
            Some(Program::Builtin(k)) => Some(*k),
            _ => None,
        };
        let mut draft = Draft {
            field: field.clone(),
            id,
            id_pos,
            program,
            program_pos: node
                .get("path")
                .or_else(|| node.get("node"))
                .map_or(node.pos, |e| e.value.pos),
            builtin,
            kind,
            args: Vec::new(),
            env: BTreeMap::new(),
            params: Params::default(),
            param_pos: BTreeMap::new(),
            params_pos: node.get("params").map_or(node.pos, |e| e.key_pos),
            params_ok: true,
            bad_params: BTreeSet::new(),
            inputs: Vec::new(),
            input_names: node
                .get("inputs")
                .and_then(|e| e.value.as_map())
                .map(|m| m.iter().map(|e| e.key.clone()).collect())
                .unwrap_or_default(),
            inputs_pos: node.get("inputs").map_or(node.pos, |e| e.key_pos),
            outputs: None,
            outputs_ok: true,
            restart: None,
            max_restarts: DEFAULT_MAX_RESTARTS,
            machine: None,
            link: None,
        };
        if let Some(e) = node.get("args") {
            draft.args = read_args(e, &field, builtin, sink);
        }
        if let Some(e) = node.get("env") {
            draft.env = read_env(e, &field, sink);
        }
        if let Some(e) = node.get("deploy") {
            draft.machine = self.read_deploy(e, &field, sink);
        }
        Some(draft)
    }

    /// The rest of a node: params, inputs, outputs, restart policy.
    pub(super) fn read_ports_and_params(
        &self,
        draft: &mut Draft,
        node: &YamlNode,
        sink: &mut DiagnosticsBuilder<'_>,
    ) {
        let field = draft.field.clone();
        match (draft.kind, draft.builtin) {
            (Some(k), _) => self.read_typed_params(k, node.get("params"), draft, sink),
            (None, false) => read_custom_params(node.get("params"), draft, sink),
            // An unknown kind: its params cannot be checked.
            (None, true) => draft.params_ok = false,
        }
        if let Some(e) = node.get("inputs") {
            draft.inputs = read_inputs(e, &field, sink);
        }
        if let Some(e) = node.get("outputs") {
            let errors = sink.error_count();
            draft.outputs = read_outputs(e, &field, draft.kind, draft.builtin, sink);
            draft.outputs_ok &= sink.error_count() == errors;
        }
        if let Some(e) = node.get("restart") {
            let f = join(&field, "restart");
            draft.restart = choice(&e.value, &f, RESTARTS, sink).map(|r| match r {
                "never" => RestartPolicy::Never,
                "always" => RestartPolicy::Always,
                _ => RestartPolicy::OnFailure,
            });
        }
        if let Some(e) = node.get("max_restarts") {
            let f = join(&field, "max_restarts");
            if let Some(n) = int_in(&e.value, &f, 0, MAX_RESTARTS, sink) {
                draft.max_restarts = n as u32;
            }
        }
    }

    fn read_id(
        &self,
        node: &YamlNode,
        field: &str,
        sink: &mut DiagnosticsBuilder<'_>,
    ) -> (String, Pos) {
        let f = join(field, "id");
        let Some(e) = node.get("id") else {
            sink.error(
                node.pos,
                f,
                "missing required field `id`",
                Some("e.g. `id: camera`".into()),
            );
            return (String::new(), node.pos);
        };
        let Some(s) = e.value.as_scalar().filter(|s| !s.value.is_null()) else {
            sink.error(
                e.value.pos,
                f,
                format!("expected an id, found {}", e.value.describe()),
                None,
            );
            return (String::new(), e.value.pos);
        };
        if !valid_id(&s.text) {
            let fixed = suggest_id(&s.text);
            let hint = (!fixed.is_empty()).then(|| format!("try `{fixed}`"));
            let message = format!(
                "invalid id `{}`: ids use lowercase letters, digits, `-` and `_`",
                s.text
            );
            sink.error(e.value.pos, f, message, hint);
        } else if s.text.starts_with(RESERVED_ID_PREFIX) {
            let fixed = s.text.trim_start_matches(RESERVED_ID_PREFIX);
            let hint = (!fixed.is_empty()).then(|| format!("try `{fixed}`"));
            let message = format!(
                "id `{}` is reserved: ids starting with `{RESERVED_ID_PREFIX}` belong to the runtime (its own socket is `{RUNTIME_NAME}.sock` beside the nodes')",
                s.text
            );
            sink.error(e.value.pos, f, message, hint);
        }
        (s.text.clone(), e.value.pos)
    }

    /// The program and whether the node is built in (for defaults even when
    /// the program itself is wrong).
    fn read_program(
        &self,
        node: &YamlNode,
        field: &str,
        sink: &mut DiagnosticsBuilder<'_>,
    ) -> (Option<Program>, bool) {
        match (node.get("node"), node.get("path")) {
            (Some(_), Some(p)) => {
                let message =
                    "set either `node` (a built-in kind) or `path` (a custom executable), not both";
                sink.error(p.key_pos, join(field, "path"), message, None);
                (None, true)
            }
            (None, None) => {
                let hint = "`node: <kind>` for a built-in node (`runtime nodes` lists them), `path: <executable>` for your own";
                sink.error(
                    node.pos,
                    field,
                    "a node needs `node:` or `path:`",
                    Some(hint.into()),
                );
                (None, true)
            }
            (Some(k), None) => {
                let f = join(field, "node");
                let Some(name) = text_of(&k.value, &f, "a node kind", sink) else {
                    return (None, true);
                };
                match builtin_kind(&name) {
                    Some(spec) => (Some(Program::Builtin(spec)), true),
                    None => {
                        let kinds = builtin_kinds().iter().map(|k| k.kind);
                        let hint = did_you_mean(&name, kinds)
                            .or_else(|| Some("`runtime nodes` lists the built-in kinds".into()));
                        sink.error(k.value.pos, f, format!("unknown node kind `{name}`"), hint);
                        (None, true)
                    }
                }
            }
            (None, Some(p)) => {
                let f = join(field, "path");
                let Some(raw) = text_of(&p.value, &f, "a path", sink) else {
                    return (None, false);
                };
                match resolve_executable(&raw, self.dir) {
                    Ok(path) => (Some(Program::Custom(path)), false),
                    Err((message, hint)) => {
                        sink.error(p.value.pos, f, message, hint);
                        (None, false)
                    }
                }
            }
        }
    }

    fn read_deploy(
        &self,
        e: &Entry,
        field: &str,
        sink: &mut DiagnosticsBuilder<'_>,
    ) -> Option<String> {
        let f = join(field, "deploy");
        if e.value.as_map().is_none() {
            let message = format!("expected `machine: <name>`, found {}", e.value.describe());
            sink.error(e.value.pos, f, message, None);
            return None;
        }
        unknown_fields(&e.value, &f, DEPLOY_FIELDS, sink);
        let m = e.value.get("machine")?;
        let mf = join(&f, "machine");
        let name = text_of(&m.value, &mf, "a machine name", sink)?;
        let machines = &self.network.machines;
        if !machines.is_empty() && !machines.contains_key(&name) {
            let names = machines.keys().map(String::as_str);
            let hint = did_you_mean(&name, names.clone()).or_else(|| {
                Some(format!(
                    "machines under `network:`: {}",
                    names.collect::<Vec<_>>().join(", ")
                ))
            });
            sink.error(m.value.pos, mf, format!("unknown machine `{name}`"), hint);
        }
        Some(name)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `Front Camera` → `front-camera`.
pub(super) fn suggest_id(id: &str) -> String {
    let mapped: String = id
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    mapped.trim_matches('-').to_string()
}

/// Resolves a custom node's `path:` against the graph file's directory.
fn resolve_executable(raw: &str, dir: &Path) -> Result<PathBuf, (String, Option<String>)> {
    let given = Path::new(raw);
    let path = if given.is_absolute() {
        given.to_path_buf()
    } else {
        dir.join(given)
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) => {
            let hint = (!given.is_absolute())
                .then(|| "relative paths start at the graph file's directory".to_string());
            return Err((
                format!("`{raw}` does not exist (looked for {})", path.display()),
                hint,
            ));
        }
    };
    if !meta.is_file() {
        return Err((format!("`{raw}` is not a file"), None));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err((
                format!("`{raw}` is not executable"),
                Some(format!("chmod +x {}", path.display())),
            ));
        }
    }
    // Absolute, so the node starts the same whatever the runtime's working
    // directory; symlinks are kept (a venv's python depends on its own path).
    Ok(std::path::absolute(&path).unwrap_or(path))
}

fn read_args(
    e: &Entry,
    field: &str,
    builtin: bool,
    sink: &mut DiagnosticsBuilder<'_>,
) -> Vec<String> {
    let f = join(field, "args");
    if builtin {
        let message =
            "`args` only applies to custom nodes (`path:`); built-in nodes take `params:`";
        sink.error(e.key_pos, f, message, None);
        return Vec::new();
    }
    let Some(items) = e.value.as_seq() else {
        let message = format!("expected a list of arguments, found {}", e.value.describe());
        sink.error(
            e.value.pos,
            f,
            message,
            Some("e.g. `args: [--model, yolo.onnx]`".into()),
        );
        return Vec::new();
    };
    let mut args = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_scalar() {
            Some(s) => args.push(s.text.clone()),
            None => {
                let message = format!("expected an argument, found {}", item.describe());
                sink.error(item.pos, format!("{f}[{i}]"), message, None);
            }
        }
    }
    args
}

fn read_env(e: &Entry, field: &str, sink: &mut DiagnosticsBuilder<'_>) -> BTreeMap<String, String> {
    let f = join(field, "env");
    let mut env = BTreeMap::new();
    let Some(entries) = e.value.as_map() else {
        let message = format!(
            "expected a mapping of environment variables, found {}",
            e.value.describe()
        );
        sink.error(e.value.pos, f, message, None);
        return env;
    };
    for v in entries {
        let vf = join(&f, &v.key);
        if v.key.is_empty() || v.key.contains(['=', '\0']) {
            sink.error(
                v.key_pos,
                vf,
                format!("`{}` is not a valid environment variable name", v.key),
                None,
            );
            continue;
        }
        match v.value.as_scalar() {
            // Text as written (`1.10` stays `1.10`); null is empty.
            Some(s) => {
                let text = if s.value.is_null() {
                    String::new()
                } else {
                    s.text.clone()
                };
                env.insert(v.key.clone(), text);
            }
            None => {
                let message = format!("expected a value, found {}", v.value.describe());
                sink.error(v.value.pos, vf, message, None);
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::validate::test_util::*;

    #[test]
    fn deploy_without_network_accepts_any_machine() {
        let g = check(&with_camera("    deploy: {machine: anywhere}\n")).unwrap();
        assert_eq!(g.nodes[0].machine.as_deref(), Some("anywhere"));
    }

    #[test]
    fn ids() {
        assert!(valid_id("video-encode_2"));
        assert!(!valid_id("Camera"));
        assert!(!valid_id(""));
        assert_eq!(suggest_id(" Front Camera "), "front-camera");
    }
}
