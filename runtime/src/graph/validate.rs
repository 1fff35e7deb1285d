//! Turns the spanned YAML tree into a [`Graph`], checking everything that can
//! be checked before anything runs. Every problem is reported, each at the
//! place in the file it comes from; the graph is returned only when there is
//! none.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use node_catalog::{
    builtin_kinds, container_accepts, container_for, crf_max, kind as builtin_kind, KindSpec,
    ParamType, Params, PortType, DEFAULT_QUEUE_SIZE,
};
use serde_json::{Map, Value};

use super::diagnostic::{did_you_mean, Sink};
use super::load::{override_value, Override};
use super::model::{
    Graph, InputDef, MachineNetwork, Network, NodeDef, NodeProgram, OutputDef, QueuePolicy,
    RestartPolicy, RESERVED_ID_PREFIX, RUNTIME_NAME,
};
use super::vars::{substitute, value_text, Expansion, Var, Vars};
use super::yaml::{join, Entry, Node, NodeKind, Pos, Style};

const TOP_FIELDS: &[&str] = &["name", "vars", "network", "nodes"];
/// The built-in variable holding the machine this runtime runs
/// (`--machine NAME`), usable as `${machine}`.
pub const MACHINE_BUILTIN: &str = "machine";
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
const INPUT_FIELDS: &[&str] = &["source", "queue_size", "policy"];
const MACHINE_FIELDS: &[&str] = &["listen", "connect"];
const DEPLOY_FIELDS: &[&str] = &["machine"];
const POLICIES: &[&str] = &["drop-oldest", "block"];
const RESTARTS: &[&str] = &["never", "on-failure", "always"];
const PORT_TYPES: &[&str] = &[
    "raw-video",
    "raw-audio",
    "encoded-video",
    "encoded-audio",
    "stats",
    "any",
];

const MAX_QUEUE_SIZE: i64 = 1024;
const DEFAULT_MAX_RESTARTS: u32 = 3;
const MAX_RESTARTS: i64 = 100;

/// Checks a parsed graph file; `None` when `sink` holds any error.
pub(crate) fn graph(
    mut root: Node,
    file: &Path,
    overrides: &[Override],
    builtins: &BTreeMap<String, String>,
    sink: &mut Sink<'_>,
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
    read_vars(&root, &mut vars, sink);
    override_vars(overrides, &mut vars, sink);
    vars.resolve_all(sink);

    let name = graph_name(&root, file, sink);
    let network = read_network(&root, sink);

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
    override_params(overrides, &mut nodes_entry.value, &vars, sink);

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
    let drafts: Vec<Option<Draft>> = items
        .iter()
        .enumerate()
        .map(|(i, n)| reader.read(i, n, sink))
        .collect();
    let drafts: Vec<Draft> = drafts.into_iter().flatten().collect();

    let nodes = link(&drafts, sink);
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

// ---------------------------------------------------------------- top level

fn unknown_fields(node: &Node, field: &str, known: &[&str], sink: &mut Sink<'_>) {
    for e in node.as_map().unwrap_or_default() {
        if !known.contains(&e.key.as_str()) {
            let hint = did_you_mean(&e.key, known.iter().copied())
                .or_else(|| Some(format!("expected one of: {}", known.join(", "))));
            sink.error(
                e.key_pos,
                join(field, &e.key),
                format!("unknown field `{}`", e.key),
                hint,
            );
        }
    }
}

fn graph_name(root: &Node, file: &Path, sink: &mut Sink<'_>) -> String {
    let stem = || {
        file.file_stem()
            .map_or("graph".into(), |s| s.to_string_lossy().into_owned())
    };
    match root.get("name") {
        None => stem(),
        Some(e) => match e.value.as_scalar() {
            Some(s) if !s.text.trim().is_empty() => s.text.clone(),
            _ => {
                sink.error(
                    e.value.pos,
                    "name",
                    format!("expected a name, found {}", e.value.describe()),
                    None,
                );
                stem()
            }
        },
    }
}

fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn read_vars(root: &Node, vars: &mut Vars, sink: &mut Sink<'_>) {
    let Some(e) = root.get("vars") else { return };
    let Some(entries) = e.value.as_map() else {
        if e.value.as_scalar().is_none_or(|s| !s.value.is_null()) {
            let message = format!(
                "`vars` must map names to values, found {}",
                e.value.describe()
            );
            sink.error(e.value.pos, "vars", message, None);
        }
        return;
    };
    for v in entries {
        let field = join("vars", &v.key);
        if vars.get(&v.key).is_some_and(|var| var.builtin) {
            let message = format!("`{}` is a built-in variable and cannot be redefined", v.key);
            sink.error(v.key_pos, field, message, Some("pick another name".into()));
            continue;
        }
        if !valid_var_name(&v.key) {
            let message = format!("invalid variable name `{}`", v.key);
            sink.error(
                v.key_pos,
                field,
                message,
                Some("use letters, digits, `_` and `-`".into()),
            );
            continue;
        }
        let Some(s) = v.value.as_scalar() else {
            let message = format!("a variable holds one value, found {}", v.value.describe());
            sink.error(v.value.pos, field, message, None);
            continue;
        };
        let var = Var {
            value: s.value.clone(),
            // As written, so `${v}` inside a longer string keeps `1.10` as is.
            text: if s.value.is_null() {
                String::new()
            } else {
                s.text.clone()
            },
            pos: v.value.pos,
            builtin: false,
            plain: s.style == Style::Plain,
            failed: false,
        };
        vars.insert(v.key.clone(), var);
    }
}

/// `--set VAR=VALUE`: only variables the graph defines can be set.
fn override_vars(overrides: &[Override], vars: &mut Vars, sink: &mut Sink<'_>) {
    for (i, o) in overrides.iter().enumerate() {
        if o.target.contains('.') {
            continue;
        }
        let pos = Pos::Override(i);
        match vars.get(&o.target) {
            Some(var) if var.builtin => {
                let message = format!("`{}` is a built-in variable and cannot be set", o.target);
                sink.error(pos, "", message, None);
            }
            Some(_) => {
                let (value, style) = override_value(&o.value);
                let plain = style == Style::Plain;
                let var = Var {
                    text: value_text(&value),
                    value,
                    pos,
                    builtin: false,
                    plain,
                    failed: false,
                };
                vars.insert(o.target.clone(), var);
            }
            None => {
                let names: Vec<&str> = vars
                    .names()
                    .filter(|n| vars.get(n).is_some_and(|v| !v.builtin))
                    .collect();
                let hint = did_you_mean(&o.target, names.iter().copied()).or_else(|| {
                    Some(if names.is_empty() {
                        "the graph defines no `vars:`; to set a param use `--set NODE.PARAM=VALUE`"
                            .into()
                    } else {
                        format!("the graph's variables: {}", names.join(", "))
                    })
                });
                sink.error(
                    pos,
                    "",
                    format!("no variable `{}` in this graph", o.target),
                    hint,
                );
            }
        }
    }
}

/// `--set NODE.PARAM=VALUE`: writes the param into the node's `params:` as if
/// the file said so, positioned at the override so errors name it.
fn override_params(overrides: &[Override], nodes: &mut Node, vars: &Vars, sink: &mut Sink<'_>) {
    for (i, o) in overrides.iter().enumerate() {
        let Some((id, param)) = o.target.split_once('.') else {
            continue;
        };
        let pos = Pos::Override(i);
        let (mut value, style) = override_value(&o.value);
        if let Value::String(text) = &value {
            match vars.expand(text) {
                Ok(Expansion::Unchanged) => {}
                Ok(Expansion::Whole(v)) => value = v,
                Ok(Expansion::Text(t)) if style == Style::Plain => {
                    value = super::yaml::resolve_plain(&t)
                }
                Ok(Expansion::Text(t)) => value = Value::String(t),
                Err(errors) => {
                    for (message, hint) in errors {
                        sink.error(pos, "", message, hint);
                    }
                    sink.poison(pos);
                    value = Value::Null;
                }
            }
        }
        let scalar = Node::scalar(pos, value.clone(), value_text(&value), style);
        let Some(items) = seq_mut(nodes) else {
            continue;
        };
        let ids: Vec<String> = items.iter().filter_map(node_id).collect();
        let Some(target) = items.iter_mut().find(|n| node_id(n).as_deref() == Some(id)) else {
            let hint = did_you_mean(id, ids.iter().map(String::as_str))
                .or_else(|| Some(format!("node ids: {}", ids.join(", "))));
            sink.error(pos, "", format!("no node `{id}` in this graph"), hint);
            continue;
        };
        let Some(entries) = target.as_map_mut() else {
            continue;
        };
        let entry = Entry {
            key: param.to_string(),
            key_pos: pos,
            value: scalar,
        };
        match entries.iter_mut().find(|e| e.key == "params") {
            Some(params) => {
                // A null `params:` becomes a mapping; any other non-mapping is reported later.
                if params.value.as_scalar().is_some_and(|s| s.value.is_null()) {
                    params.value = Node {
                        pos,
                        kind: NodeKind::Map(vec![entry]),
                    };
                } else if let Some(list) = params.value.as_map_mut() {
                    list.retain(|e| e.key != param);
                    list.push(entry);
                }
            }
            None => entries.push(Entry {
                key: "params".into(),
                key_pos: pos,
                value: Node {
                    pos,
                    kind: NodeKind::Map(vec![entry]),
                },
            }),
        }
    }
}

fn seq_mut(node: &mut Node) -> Option<&mut Vec<Node>> {
    match &mut node.kind {
        NodeKind::Seq(items) => Some(items),
        _ => None,
    }
}

fn node_id(node: &Node) -> Option<String> {
    Some(node.get("id")?.value.as_scalar()?.text.clone())
}

fn read_network(root: &Node, sink: &mut Sink<'_>) -> Network {
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

fn endpoints(node: &Node, field: &str, sink: &mut Sink<'_>) -> Vec<String> {
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

// ---------------------------------------------------------------- nodes

enum Program {
    Builtin(&'static KindSpec),
    Custom(PathBuf),
}

/// One node as read from the file, before its edges are checked.
struct Draft {
    field: String,
    id: String,
    id_pos: Pos,
    /// `None` when `node:`/`path:` is wrong (already reported).
    program: Option<Program>,
    builtin: bool,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    params: Params,
    /// Where each param was set, for errors about it.
    param_pos: BTreeMap<String, Pos>,
    params_pos: Pos,
    /// All params read without error (cross-checks need them all).
    params_ok: bool,
    /// The params that were set wrong (their default stands in for them).
    bad_params: BTreeSet<String>,
    inputs: Vec<DraftInput>,
    /// Every input name written, including ones with errors.
    input_names: Vec<String>,
    inputs_pos: Pos,
    outputs: Option<Vec<OutputDef>>,
    /// `outputs:` had no wrong item, so an output missing from it is missing.
    outputs_ok: bool,
    restart: Option<RestartPolicy>,
    max_restarts: u32,
    machine: Option<String>,
}

struct DraftInput {
    name: String,
    name_pos: Pos,
    field: String,
    source_node: String,
    source_output: String,
    source_pos: Pos,
    /// None: the port's default.
    queue_size: Option<usize>,
    policy: Option<(QueuePolicy, Pos)>,
}

struct NodeReader<'a> {
    dir: &'a Path,
    network: &'a Network,
    vars: &'a Vars,
    /// The machine this runtime runs (`--machine`): the files and devices
    /// of nodes deployed elsewhere are checked there, not here.
    local_machine: Option<&'a str>,
}

impl NodeReader<'_> {
    fn read(&self, index: usize, node: &Node, sink: &mut Sink<'_>) -> Option<Draft> {
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
            builtin,
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
        match (kind, builtin) {
            (Some(k), _) => self.read_builtin_params(k, node.get("params"), &mut draft, sink),
            (None, false) => read_custom_params(node.get("params"), &mut draft, sink),
            // An unknown kind: its params cannot be checked.
            (None, true) => draft.params_ok = false,
        }
        if let Some(e) = node.get("inputs") {
            draft.inputs = read_inputs(e, &field, sink);
        }
        if let Some(e) = node.get("outputs") {
            let errors = sink.error_count();
            draft.outputs = read_outputs(e, &field, kind, builtin, sink);
            draft.outputs_ok = sink.error_count() == errors;
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
        Some(draft)
    }

    fn read_id(&self, node: &Node, field: &str, sink: &mut Sink<'_>) -> (String, Pos) {
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
        node: &Node,
        field: &str,
        sink: &mut Sink<'_>,
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

    fn read_builtin_params(
        &self,
        kind: &KindSpec,
        entry: Option<&Entry>,
        draft: &mut Draft,
        sink: &mut Sink<'_>,
    ) {
        let pfield = join(&draft.field, "params");
        let mut values = Map::new();
        let given = entry.and_then(|e| match e.value.as_map() {
            Some(m) => Some(m),
            None if e.value.as_scalar().is_some_and(|s| s.value.is_null()) => None,
            None => {
                let message = format!("`params` must be a mapping, found {}", e.value.describe());
                sink.error(e.value.pos, &pfield, message, None);
                draft.params_ok = false;
                None
            }
        });
        for p in given.unwrap_or_default() {
            let f = join(&pfield, &p.key);
            let Some(spec) = kind.param(&p.key) else {
                let names: Vec<&str> = kind.params.iter().map(|s| s.name).collect();
                let hint = did_you_mean(&p.key, names.iter().copied())
                    .or_else(|| Some(format!("params of {}: {}", kind.kind, names.join(", "))));
                sink.error(
                    p.key_pos,
                    f,
                    format!("unknown param `{}` for {}", p.key, kind.kind),
                    hint,
                );
                draft.params_ok = false;
                continue;
            };
            let Some(s) = p.value.as_scalar() else {
                let message = format!(
                    "expected {}, found {}",
                    spec.ty.describe(),
                    p.value.describe()
                );
                sink.error(p.value.pos, f, message, None);
                draft.params_ok = false;
                draft.bad_params.insert(p.key.clone());
                continue;
            };
            // An explicit null means "not set": the default (or absence) applies.
            if s.value.is_null() {
                continue;
            }
            // Text params get the text as written (`1.10` stays `1.10`).
            let raw = match spec.ty {
                ParamType::Str | ParamType::Enum(_) if !s.value.is_string() => {
                    Value::String(s.text.clone())
                }
                _ => s.value.clone(),
            };
            if kind.kind == "video-encode" && p.key == "crf" {
                if let Some(crf) = raw.as_i64() {
                    let codec = given_codec(given.unwrap_or_default(), kind);
                    let max = crf_max(&codec);
                    if !(0..=max).contains(&crf) {
                        let message = format!("crf {crf} is out of range 0..={max} for {codec}");
                        let hint = "h264 and h265 take crf 0..=51, vp9 and av1 0..=63; lower is better quality";
                        sink.error(p.value.pos, f, message, Some(hint.into()));
                        draft.params_ok = false;
                        draft.bad_params.insert(p.key.clone());
                        continue;
                    }
                }
            }
            match spec.ty.coerce(&raw) {
                Ok(v) => {
                    values.insert(p.key.clone(), v);
                    draft.param_pos.insert(p.key.clone(), p.value.pos);
                }
                Err(message) => {
                    let hint = match spec.ty {
                        ParamType::Enum(choices) => raw
                            .as_str()
                            .and_then(|t| did_you_mean(t, choices.iter().copied())),
                        _ if message.starts_with("expected") => {
                            Some(format!("`{}` takes {}", spec.name, spec.ty.describe()))
                        }
                        _ => None,
                    };
                    sink.error(p.value.pos, f, message, hint);
                    draft.params_ok = false;
                    draft.bad_params.insert(p.key.clone());
                }
            }
        }
        for spec in kind.params {
            if values.contains_key(spec.name) {
                continue;
            }
            if let Some(mut v) = spec.default_value() {
                // Defaults may use built-ins (`recordings/${timestamp}.mp4`). One
                // that cannot be expanded here is left for the node to expand.
                if let Some(Ok(exp)) = v.as_str().map(|t| self.vars.expand(t)) {
                    match exp {
                        Expansion::Unchanged => {}
                        Expansion::Whole(x) => v = x,
                        Expansion::Text(t) => v = Value::String(t),
                    }
                }
                values.insert(spec.name.to_string(), v);
            }
        }
        draft.params = Params(values);
        let elsewhere = matches!(
            (self.local_machine, draft.machine.as_deref()),
            (Some(here), Some(there)) if here != there
        );
        if draft.params_ok && !elsewhere {
            for (param, message) in (kind.check)(&draft.params) {
                let pos = draft
                    .param_pos
                    .get(param)
                    .copied()
                    .unwrap_or(draft.params_pos);
                sink.error(pos, join(&pfield, param), message, None);
                draft.params_ok = false;
            }
        }
    }

    fn read_deploy(&self, e: &Entry, field: &str, sink: &mut Sink<'_>) -> Option<String> {
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

/// The codec a video-encode node is given in the file, else its default.
fn given_codec(params: &[Entry], kind: &KindSpec) -> String {
    let choices = match kind.param("codec").map(|s| s.ty) {
        Some(ParamType::Enum(c)) => c,
        _ => &[],
    };
    params
        .iter()
        .find(|e| e.key == "codec")
        .and_then(|e| e.value.as_scalar())
        .map(|s| s.text.clone())
        .filter(|c| choices.contains(&c.as_str()))
        .or_else(|| kind.param("codec")?.default.map(str::to_string))
        .unwrap_or_default()
}

fn read_custom_params(entry: Option<&Entry>, draft: &mut Draft, sink: &mut Sink<'_>) {
    let Some(e) = entry else { return };
    match e.value.to_json() {
        Value::Object(map) => draft.params = Params(map),
        Value::Null => {}
        _ => {
            let message = format!("`params` must be a mapping, found {}", e.value.describe());
            sink.error(e.value.pos, join(&draft.field, "params"), message, None);
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `Front Camera` → `front-camera`.
fn suggest_id(id: &str) -> String {
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

fn read_args(e: &Entry, field: &str, builtin: bool, sink: &mut Sink<'_>) -> Vec<String> {
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

fn read_env(e: &Entry, field: &str, sink: &mut Sink<'_>) -> BTreeMap<String, String> {
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

fn read_inputs(e: &Entry, field: &str, sink: &mut Sink<'_>) -> Vec<DraftInput> {
    let f = join(field, "inputs");
    let Some(entries) = e.value.as_map() else {
        if e.value.as_scalar().is_none_or(|s| !s.value.is_null()) {
            let message = format!(
                "expected a mapping of input names to sources, found {}",
                e.value.describe()
            );
            sink.error(
                e.value.pos,
                f,
                message,
                Some("e.g. `video: camera/video`".into()),
            );
        }
        return Vec::new();
    };
    let mut inputs = Vec::new();
    for i in entries {
        let inf = join(&f, &i.key);
        let (source, source_pos, queue_size, policy) = match &i.value.kind {
            NodeKind::Map(_) => {
                unknown_fields(&i.value, &inf, INPUT_FIELDS, sink);
                let Some(src) = i.value.get("source") else {
                    let hint = Some("e.g. `source: camera/video`".into());
                    sink.error(
                        i.value.pos,
                        join(&inf, "source"),
                        "missing required field `source`",
                        hint,
                    );
                    continue;
                };
                let queue_size = i.value.get("queue_size").and_then(|q| {
                    int_in(&q.value, &join(&inf, "queue_size"), 1, MAX_QUEUE_SIZE, sink)
                        .map(|n| n as usize)
                });
                let policy = i.value.get("policy").and_then(|p| {
                    let choice = choice(&p.value, &join(&inf, "policy"), POLICIES, sink)?;
                    let policy = if choice == "block" {
                        QueuePolicy::Block
                    } else {
                        QueuePolicy::DropOldest
                    };
                    Some((policy, p.value.pos))
                });
                (&src.value, src.value.pos, queue_size, policy)
            }
            _ => (&i.value, i.value.pos, None, None),
        };
        let parsed = source
            .as_scalar()
            .filter(|s| s.value.is_string())
            .and_then(|s| s.text.split_once('/'))
            .filter(|(n, o)| !n.is_empty() && !o.is_empty());
        let Some((node, output)) = parsed else {
            let message = format!("expected `<node-id>/<output>`, found {}", source.describe());
            sink.error(
                source_pos,
                &inf,
                message,
                Some("e.g. `camera/video`".into()),
            );
            continue;
        };
        inputs.push(DraftInput {
            name: i.key.clone(),
            name_pos: i.key_pos,
            field: inf,
            source_node: node.to_string(),
            source_output: output.to_string(),
            source_pos,
            queue_size,
            policy,
        });
    }
    inputs
}

fn read_outputs(
    e: &Entry,
    field: &str,
    kind: Option<&KindSpec>,
    builtin: bool,
    sink: &mut Sink<'_>,
) -> Option<Vec<OutputDef>> {
    let f = join(field, "outputs");
    let Some(items) = e.value.as_seq() else {
        let message = format!(
            "expected a list of output names, found {}",
            e.value.describe()
        );
        sink.error(
            e.value.pos,
            f,
            message,
            Some("e.g. `outputs: [detections, image: raw-video]`".into()),
        );
        return None;
    };
    let mut outputs: Vec<OutputDef> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let itf = format!("{f}[{i}]");
        let (name, ty) = match &item.kind {
            NodeKind::Scalar(s) if s.value.is_string() => (s.text.clone(), PortType::Any),
            NodeKind::Map(entries) if entries.len() == 1 && !builtin => {
                let t = &entries[0];
                let type_name = t
                    .value
                    .as_scalar()
                    .map(|s| s.text.clone())
                    .unwrap_or_default();
                match PortType::from_name(&type_name) {
                    Some(ty) => (t.key.clone(), ty),
                    None => {
                        let hint = did_you_mean(&type_name, PORT_TYPES.iter().copied())
                            .or_else(|| Some(format!("port types: {}", PORT_TYPES.join(", "))));
                        let message = format!("unknown port type `{type_name}`");
                        sink.error(t.value.pos, join(&itf, &t.key), message, hint);
                        continue;
                    }
                }
            }
            _ => {
                let expected = if builtin {
                    "an output name"
                } else {
                    "`name` or `name: type`"
                };
                let message = format!("expected {expected}, found {}", item.describe());
                sink.error(item.pos, itf, message, None);
                continue;
            }
        };
        if name.is_empty() || name.contains(['/', ' ']) {
            sink.error(
                item.pos,
                itf,
                format!("invalid output name `{name}`"),
                Some("no `/` or spaces".into()),
            );
            continue;
        }
        if outputs.iter().any(|o| o.name == name) {
            sink.error(
                item.pos,
                itf,
                format!("output `{name}` is listed twice"),
                None,
            );
            continue;
        }
        if let Some(k) = kind {
            let Some(port) = k.output(&name) else {
                let names: Vec<&str> = k.outputs.iter().map(|o| o.name).collect();
                let hint = did_you_mean(&name, names.iter().copied())
                    .or_else(|| Some(format!("outputs of {}: {}", k.kind, list_or_none(&names))));
                sink.error(
                    item.pos,
                    itf,
                    format!("`{name}` is not an output of {}", k.kind),
                    hint,
                );
                continue;
            };
            outputs.push(OutputDef { name, ty: port.ty });
            continue;
        }
        outputs.push(OutputDef { name, ty });
    }
    Some(outputs)
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

// ---------------------------------------------------------------- scalars

fn text_of(node: &Node, field: &str, what: &str, sink: &mut Sink<'_>) -> Option<String> {
    match node.as_scalar() {
        Some(s) if !s.value.is_null() && !s.text.is_empty() => Some(s.text.clone()),
        _ => {
            sink.error(
                node.pos,
                field,
                format!("expected {what}, found {}", node.describe()),
                None,
            );
            None
        }
    }
}

fn int_in(node: &Node, field: &str, min: i64, max: i64, sink: &mut Sink<'_>) -> Option<i64> {
    let Some(n) = node.as_scalar().and_then(|s| s.value.as_i64()) else {
        let message = format!(
            "expected an integer {min}..={max}, found {}",
            node.describe()
        );
        sink.error(node.pos, field, message, None);
        return None;
    };
    if !(min..=max).contains(&n) {
        sink.error(
            node.pos,
            field,
            format!("{n} is out of range {min}..={max}"),
            None,
        );
        return None;
    }
    Some(n)
}

fn choice(
    node: &Node,
    field: &str,
    choices: &[&'static str],
    sink: &mut Sink<'_>,
) -> Option<&'static str> {
    let text = node
        .as_scalar()
        .map(|s| s.text.as_str())
        .unwrap_or_default();
    if let Some(c) = choices.iter().find(|c| **c == text) {
        return Some(c);
    }
    let hint = did_you_mean(text, choices.iter().copied());
    let message = format!(
        "expected one of {}, found {}",
        choices.join(", "),
        node.describe()
    );
    sink.error(node.pos, field, message, hint);
    None
}

// ---------------------------------------------------------------- edges

/// Checks ids, edges, port types, cycles and codec/container pairs, and
/// builds the nodes when everything is right.
fn link(drafts: &[Draft], sink: &mut Sink<'_>) -> Option<Vec<NodeDef>> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if d.id.is_empty() {
            continue;
        }
        if let Some(&first) = ids.get(d.id.as_str()) {
            let message = format!(
                "duplicate id `{}` (also used by {})",
                d.id, drafts[first].field
            );
            sink.error(d.id_pos, join(&d.field, "id"), message, None);
        } else {
            ids.insert(&d.id, i);
        }
    }
    let all_ids: Vec<&str> = drafts
        .iter()
        .map(|d| d.id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    let outputs: Vec<Option<Vec<OutputDef>>> = drafts.iter().map(outputs_of).collect();

    let mut resolved: Vec<Vec<InputDef>> = Vec::new();
    // Data-flow edges: (source draft, consumer draft, consumer input index).
    let mut edges: Vec<(usize, usize, usize)> = Vec::new();
    for (di, d) in drafts.iter().enumerate() {
        let kind = match &d.program {
            Some(Program::Builtin(k)) => Some(*k),
            _ => None,
        };
        let mut inputs = Vec::new();
        for (ii, input) in d.inputs.iter().enumerate() {
            // What the consumer accepts: None when it cannot be known.
            let accepts: Option<Accepts> = match (&d.program, kind) {
                (Some(_), Some(k)) => input_port(k, input, sink),
                (Some(Program::Custom(_)), _) => Some(Accepts::One(PortType::Any)),
                _ => None,
            };
            let source_ty = source_type(input, &ids, &all_ids, drafts, &outputs, sink);
            if let Some(&si) = ids.get(input.source_node.as_str()) {
                edges.push((si, di, ii));
            }
            let mut ty = match accepts {
                Some(Accepts::One(t)) if t != PortType::Any => t,
                _ => source_ty.unwrap_or(PortType::Any),
            };
            if let (Some(accepts), Some(src)) = (&accepts, source_ty) {
                if let Err((message, hint)) = accepts.check(src, input, d, kind) {
                    sink.error(input.source_pos, &input.field, message, hint);
                    ty = PortType::Any;
                }
            }
            let encoded = matches!(ty, PortType::EncodedVideo | PortType::EncodedAudio);
            let policy = match input.policy {
                Some((QueuePolicy::DropOldest, pos)) if encoded => {
                    let message = format!(
                        "encoded packets are never dropped: `{}` carries {ty}",
                        input.name
                    );
                    let hint = Some("remove `policy`: encoded inputs always block".to_string());
                    sink.error(pos, join(&input.field, "policy"), message, hint);
                    QueuePolicy::Block
                }
                Some((p, _)) => p,
                // Raw video may skip a frame under overload (the next one
                // replaces it); audio never drops by default, since a lost
                // audio frame is an audible gap and shifts everything after it.
                None if ty == PortType::RawVideo => QueuePolicy::DropOldest,
                None => QueuePolicy::Block,
            };
            inputs.push(InputDef {
                name: input.name.clone(),
                source_node: input.source_node.clone(),
                source_output: input.source_output.clone(),
                queue_size: input.queue_size.unwrap_or_else(|| {
                    kind.and_then(|k| k.input(&input.name))
                        .map_or(DEFAULT_QUEUE_SIZE, |port| port.queue_size)
                }),
                policy,
                ty,
            });
        }
        if let Some(k) = kind {
            required_inputs(k, d, drafts, &outputs, sink);
        }
        resolved.push(inputs);
    }
    cycles(drafts, &edges, sink);
    containers(drafts, sink);

    if sink.has_errors() {
        return None;
    }
    let nodes = drafts
        .iter()
        .zip(resolved)
        .zip(outputs)
        .map(|((d, inputs), outputs)| NodeDef {
            id: d.id.clone(),
            program: match &d.program {
                Some(Program::Builtin(k)) => NodeProgram::Builtin(k.kind.to_string()),
                Some(Program::Custom(p)) => NodeProgram::Custom(p.clone()),
                None => unreachable!("a node without a program is an error"),
            },
            args: d.args.clone(),
            env: d.env.clone(),
            params: d.params.clone(),
            inputs,
            outputs: outputs.unwrap_or_default(),
            restart: d.restart.unwrap_or(if d.builtin {
                RestartPolicy::OnFailure
            } else {
                RestartPolicy::Never
            }),
            max_restarts: d.max_restarts,
            machine: d.machine.clone(),
        })
        .collect();
    Some(nodes)
}

/// A node's outputs; `None` when its program is unknown (already reported).
fn outputs_of(d: &Draft) -> Option<Vec<OutputDef>> {
    match (&d.program, &d.outputs) {
        (Some(_), Some(declared)) => Some(declared.clone()),
        (Some(Program::Builtin(k)), None) => Some(
            k.outputs
                .iter()
                .map(|o| OutputDef {
                    name: o.name.to_string(),
                    ty: o.ty,
                })
                .collect(),
        ),
        (Some(Program::Custom(_)), None) => Some(Vec::new()),
        (None, _) => None,
    }
}

enum Accepts {
    One(PortType),
    AnyOf(&'static [PortType]),
}

fn compatible(output: PortType, input: PortType) -> bool {
    output == input || output == PortType::Any || input == PortType::Any
}

impl Accepts {
    fn check(
        &self,
        src: PortType,
        input: &DraftInput,
        d: &Draft,
        kind: Option<&KindSpec>,
    ) -> Result<(), (String, Option<String>)> {
        let consumer = kind.map_or_else(|| format!("node `{}`", d.id), |k| k.kind.to_string());
        let from = format!("`{}/{}`", input.source_node, input.source_output);
        let (ok, wants) = match self {
            Accepts::One(t) => (compatible(src, *t), t.to_string()),
            Accepts::AnyOf(list) => (
                src == PortType::Any || list.contains(&src),
                list.iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        };
        if ok {
            return Ok(());
        }
        let message = format!(
            "type mismatch: {from} is {src}, but input `{}` of {consumer} takes {wants}",
            input.name
        );
        let hint = match src {
            PortType::RawVideo if wants.contains("encoded-video") => {
                Some("encode it first with a `video-encode` node")
            }
            PortType::RawAudio if wants.contains("encoded-audio") => {
                Some("encode it first with an `audio-encode` node")
            }
            PortType::EncodedVideo | PortType::EncodedAudio if wants.starts_with("raw") => {
                Some("this input takes raw frames: connect it before the encoder")
            }
            _ => None,
        };
        Err((message, hint.map(str::to_string)))
    }
}

/// The port an input of a built-in kind connects to; reports unknown names.
fn input_port(k: &KindSpec, input: &DraftInput, sink: &mut Sink<'_>) -> Option<Accepts> {
    if let Some(types) = k.any_inputs {
        return Some(Accepts::AnyOf(types));
    }
    if let Some(port) = k.input(&input.name) {
        return Some(Accepts::One(port.ty));
    }
    let names: Vec<&str> = k.inputs.iter().map(|p| p.name).collect();
    let (message, hint) = if names.is_empty() {
        (format!("{} takes no inputs (it is a source)", k.kind), None)
    } else {
        let hint = did_you_mean(&input.name, names.iter().copied())
            .or_else(|| Some(format!("inputs of {}: {}", k.kind, names.join(", "))));
        (
            format!("`{}` is not an input of {}", input.name, k.kind),
            hint,
        )
    };
    sink.error(input.name_pos, &input.field, message, hint);
    None
}

/// The type of the output an input reads; reports dangling references.
fn source_type(
    input: &DraftInput,
    ids: &HashMap<&str, usize>,
    all_ids: &[&str],
    drafts: &[Draft],
    outputs: &[Option<Vec<OutputDef>>],
    sink: &mut Sink<'_>,
) -> Option<PortType> {
    let Some(&si) = ids.get(input.source_node.as_str()) else {
        let hint = did_you_mean(&input.source_node, all_ids.iter().copied())
            .or_else(|| Some(format!("node ids: {}", all_ids.join(", "))));
        let message = format!("unknown node `{}`", input.source_node);
        sink.error(input.source_pos, &input.field, message, hint);
        return None;
    };
    let outs = outputs[si].as_ref()?;
    if let Some(o) = outs.iter().find(|o| o.name == input.source_output) {
        return Some(o.ty);
    }
    let src = &drafts[si];
    if !src.outputs_ok {
        return None; // its `outputs:` is already reported
    }
    let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    let hint = if names.is_empty() && !src.builtin {
        Some(format!(
            "`{}` declares no outputs: list them under its `outputs:`",
            src.id
        ))
    } else {
        did_you_mean(&input.source_output, names.iter().copied())
            .or_else(|| Some(format!("outputs of `{}`: {}", src.id, list_or_none(&names))))
    };
    let message = format!("node `{}` has no output `{}`", src.id, input.source_output);
    sink.error(input.source_pos, &input.field, message, hint);
    None
}

/// Every declared input of a built-in kind must be connected.
fn required_inputs(
    k: &KindSpec,
    d: &Draft,
    drafts: &[Draft],
    outputs: &[Option<Vec<OutputDef>>],
    sink: &mut Sink<'_>,
) {
    let field = join(&d.field, "inputs");
    if let Some(types) = k.any_inputs {
        if d.input_names.is_empty() {
            let wants = types
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(" or ");
            let message = format!("{} needs at least one input ({wants})", k.kind);
            sink.error(
                d.inputs_pos,
                field,
                message,
                Some(example_source(types, d, drafts, outputs)),
            );
        }
        return;
    }
    for port in k.inputs {
        if port.optional || d.input_names.iter().any(|n| n == port.name) {
            continue;
        }
        let message = format!(
            "{} needs input `{}` ({}) connected",
            k.kind, port.name, port.ty
        );
        let hint = example_source(&[port.ty], d, drafts, outputs);
        sink.error(
            d.inputs_pos,
            &field,
            message,
            Some(format!("add `{}: {}`", port.name, hint)),
        );
    }
}

/// A `<node>/<output>` of the wanted type from another node, for hints.
fn example_source(
    types: &[PortType],
    d: &Draft,
    drafts: &[Draft],
    outputs: &[Option<Vec<OutputDef>>],
) -> String {
    for (other, outs) in drafts.iter().zip(outputs) {
        if other.id == d.id {
            continue;
        }
        if let Some(o) = outs.iter().flatten().find(|o| types.contains(&o.ty)) {
            return format!("{}/{}", other.id, o.name);
        }
    }
    "<node-id>/<output>".into()
}

/// Reports every cycle found by a depth-first walk along the data flow, at
/// the input that closes it.
fn cycles(drafts: &[Draft], edges: &[(usize, usize, usize)], sink: &mut Sink<'_>) {
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
        sink: &mut Sink<'_>,
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

/// Each mux's container must accept the codec of every encoder feeding it.
fn containers(drafts: &[Draft], sink: &mut Sink<'_>) {
    let by_id: HashMap<&str, &Draft> = drafts.iter().map(|d| (d.id.as_str(), d)).collect();
    let codec_choices = |kind: &str| match builtin_kind(kind)
        .and_then(|k| k.param("codec"))
        .map(|p| p.ty)
    {
        Some(ParamType::Enum(c)) => c,
        _ => &[],
    };
    let all_codecs: Vec<&str> =
        [codec_choices("video-encode"), codec_choices("audio-encode")].concat();
    let all_containers: Vec<&str> = match builtin_kind("mux")
        .and_then(|k| k.param("container"))
        .map(|p| p.ty)
    {
        Some(ParamType::Enum(c)) => c.iter().copied().filter(|c| *c != "auto").collect(),
        _ => Vec::new(),
    };
    for d in drafts {
        let Some(Program::Builtin(k)) = &d.program else {
            continue;
        };
        if k.kind != "mux" || d.bad_params.contains("path") || d.bad_params.contains("container") {
            continue;
        }
        let Some(container) = container_for(
            d.params.str_or("container", "auto"),
            d.params.str_or("path", ""),
        ) else {
            continue;
        };
        for input in &d.inputs {
            let Some(src) = by_id.get(input.source_node.as_str()) else {
                continue;
            };
            let Some(Program::Builtin(sk)) = &src.program else {
                continue;
            };
            if !matches!(sk.kind, "video-encode" | "audio-encode")
                || src.bad_params.contains("codec")
            {
                continue;
            }
            let Some(codec) = src.params.str("codec") else {
                continue;
            };
            if container_accepts(container, codec) {
                continue;
            }
            let takes: Vec<&str> = all_codecs
                .iter()
                .copied()
                .filter(|c| container_accepts(container, c))
                .collect();
            let fits: Vec<&str> = all_containers
                .iter()
                .copied()
                .filter(|c| container_accepts(c, codec))
                .collect();
            let message = format!(
                "{codec} cannot go in a {container} file ({container} takes {})",
                takes.join(", ")
            );
            let hint = Some(format!(
                "{codec} fits in {}: change the mux `path` extension or `container`, or the encoder's `codec`",
                fits.join(" or ")
            ));
            sink.error(input.source_pos, &input.field, message, hint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{load_str, Diagnostics};

    fn check(text: &str) -> Result<Graph, Diagnostics> {
        load_str(text, Path::new("t.yaml"), &[], &BTreeMap::new())
    }

    /// The single error of `text`, as `line:col field: message`.
    #[track_caller]
    fn error(text: &str) -> String {
        let diags = check(text).expect_err("should not validate");
        assert_eq!(diags.len(), 1, "{diags}");
        let d = &diags.0[0];
        format!("{}:{} {}: {}", d.line, d.col, d.field, d.message)
    }

    const CHAIN: &str = "  - id: enc\n    node: video-encode\n    inputs: {video: cam/video}\n  - id: mux\n    node: mux\n    inputs: {video: enc/video}\n    params: {path: a.mkv}\n";

    fn with_camera(camera_extra: &str) -> String {
        format!("nodes:\n  - id: cam\n    node: camera\n{camera_extra}{CHAIN}")
    }

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

    #[test]
    fn null_params_mean_unset() {
        let g = check(&with_camera("    params:\n      width: ~\n")).unwrap();
        assert_eq!(
            g.nodes[0].params.i64("width"),
            Some(1920),
            "the default applies"
        );
        let g = check(&with_camera("    params:\n")).unwrap();
        assert_eq!(g.nodes[0].params.i64("width"), Some(1920));
        let g = check(&with_camera("")).unwrap();
        assert_eq!(g.nodes[2].params.get("crf"), None, "no default: absent");
    }

    #[test]
    fn text_params_keep_the_text_as_written() {
        let g = check(&with_camera("    params: {source: 1.10}\n")).unwrap();
        assert_eq!(g.nodes[0].params.str("source"), Some("1.10"));
    }

    #[test]
    fn explicit_block_on_raw_input_and_long_form() {
        let text = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs:\n      video: {source: cam/video, policy: block, queue_size: 16}",
        );
        let g = check(&text).unwrap();
        let input = &g.nodes[1].inputs[0];
        assert_eq!((input.policy, input.queue_size), (QueuePolicy::Block, 16));
    }

    #[test]
    fn queue_size_defaults_come_from_the_port() {
        let g = check(&with_camera("")).unwrap();
        // video-encode's input absorbs uneven encode times; the mux's is the usual depth.
        assert_eq!(g.nodes[1].inputs[0].queue_size, 8);
        assert_eq!(g.nodes[2].inputs[0].queue_size, DEFAULT_QUEUE_SIZE);
        let short = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs:\n      video: {source: cam/video, queue_size: 2}",
        );
        assert_eq!(check(&short).unwrap().nodes[1].inputs[0].queue_size, 2);
    }

    #[test]
    fn long_form_input_errors() {
        let text = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs:\n      video: {from: cam/video}",
        );
        let diags = check(&text).unwrap_err();
        let found: Vec<_> = diags
            .iter()
            .map(|d| (d.field.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "nodes[1].inputs.video.source",
                    "missing required field `source`"
                ),
                ("nodes[1].inputs.video.from", "unknown field `from`"),
            ],
            "{diags}"
        );
        let text = with_camera("").replace("video: cam/video", "video: cam");
        assert_eq!(
            error(&text),
            "6:21 nodes[1].inputs.video: expected `<node-id>/<output>`, found the string \"cam\""
        );
        let text = with_camera("").replace(
            "inputs: {video: cam/video}",
            "inputs: {video: {source: cam/video, policy: drop}}",
        );
        let diags = check(&text).unwrap_err();
        assert_eq!(
            diags.0[0].hint.as_deref(),
            Some("did you mean `drop-oldest`?")
        );
    }

    #[test]
    fn mux_needs_an_input() {
        let text = "nodes:\n  - id: mux\n    node: mux\n    params: {path: a.mp4}\n";
        assert_eq!(
            error(text),
            "2:5 nodes[0].inputs: mux needs at least one input (encoded-video or encoded-audio)"
        );
    }

    #[test]
    fn sources_take_no_inputs() {
        let text = with_camera("    inputs: {video: enc/video}\n");
        let diags = check(&text).unwrap_err();
        assert!(
            diags
                .iter()
                .any(|d| d.message == "camera takes no inputs (it is a source)"),
            "{diags}"
        );
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let text = "nodes:\n  - id: a\n    node: video-normalize\n    inputs: {video: a/video}\n";
        assert_eq!(
            error(text),
            "4:21 nodes[0].inputs.video: cycle in the graph: a → a"
        );
    }

    #[test]
    fn custom_outputs_must_be_declared() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "nodes:\n  - id: det\n    path: {dir}/tests/fixtures/nodes/detector.sh\n  - id: enc\n    node: video-encode\n    inputs: {{video: det/image}}\n"
        );
        let diags = check(&text).unwrap_err();
        let d = diags
            .iter()
            .find(|d| d.field == "nodes[1].inputs.video")
            .unwrap();
        assert_eq!(d.message, "node `det` has no output `image`");
        assert_eq!(
            d.hint.as_deref(),
            Some("`det` declares no outputs: list them under its `outputs:`")
        );
    }

    #[test]
    fn deploy_without_network_accepts_any_machine() {
        let g = check(&with_camera("    deploy: {machine: anywhere}\n")).unwrap();
        assert_eq!(g.nodes[0].machine.as_deref(), Some("anywhere"));
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("tcp/10.0.0.2:7447").is_ok());
        assert!(check_endpoint("tcp/[::1]:7447").is_ok());
        assert!(check_endpoint("unixsock-stream/tmp/z.sock").is_ok());
        assert!(check_endpoint("localhost:7447").is_err());
        assert!(check_endpoint("tcp/host:http").is_err());
    }

    #[test]
    fn ids() {
        assert!(valid_id("video-encode_2"));
        assert!(!valid_id("Camera"));
        assert!(!valid_id(""));
        assert_eq!(suggest_id(" Front Camera "), "front-camera");
    }

    #[test]
    fn outputs_listed_twice_and_typed_builtin_outputs() {
        let text = with_camera("    outputs: [video, video]\n");
        assert_eq!(
            error(&text),
            "4:22 nodes[0].outputs[1]: output `video` is listed twice"
        );
        let text = with_camera("    outputs: [{video: raw-video}]\n");
        assert!(error(&text).contains("expected an output name, found a mapping"));
    }

    #[test]
    fn vars_must_be_scalars() {
        let text = format!("vars:\n  size: [1, 2]\n{}", with_camera(""));
        assert_eq!(
            error(&text),
            "2:9 vars.size: a variable holds one value, found a list"
        );
    }
}
