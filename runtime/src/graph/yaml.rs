//! A small YAML tree in which every node and every mapping key knows its
//! line and column, built from saphyr's `MarkedYaml`.
//!
//! saphyr keeps one entry per key in a mapping, so a repeated key would
//! silently replace the earlier one. A second, cheap parse into [`Probe`]
//! nodes (whose keys never compare equal) sees every key and tells which
//! mappings repeat which keys; the repeats are then located in the text.

use std::collections::HashMap;

use saphyr::{
    AnnotatedMapping, LoadableYamlNode, MarkedYaml, Marker, Scalar as YScalar, Tag, YamlData,
};
use serde_json::Value;

use super::limits;
use super::yaml_keys::repeated_keys;

/// Where a value comes from: a place in the graph file (1-based line and
/// column) or the `--set` override of that index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pos {
    File { line: usize, col: usize },
    Override(usize),
}

impl Pos {
    pub fn at(line: usize, col: usize) -> Pos {
        Pos::File { line, col }
    }
    /// The position of a saphyr marker (its line is 1-based, its column 0-based).
    pub(crate) fn of(mark: &Marker) -> Pos {
        Pos::at(mark.line(), mark.col() + 1)
    }
}

#[derive(Debug, Clone)]
pub struct YamlNode {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<YamlNode>),
    Map(Vec<Entry>),
}

/// How a scalar was written; quoted and block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone)]
pub struct Scalar {
    /// The value as YAML resolves it: null, bool, integer, float or string.
    pub value: Value,
    /// The string itself for strings, else the text as written (`29.970`, `0x1F`).
    pub text: String,
    pub style: Style,
    /// A tag such as `!custom` (core-schema tags like `!!str` are already applied).
    pub tag: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: YamlNode,
}

/// A problem found while reading the YAML itself.
#[derive(Debug, Clone)]
pub struct Problem {
    pub pos: Pos,
    pub field: String,
    pub message: String,
}

pub struct Parsed {
    /// `None` when the text is not YAML or holds no document.
    pub root: Option<YamlNode>,
    pub problems: Vec<Problem>,
}

impl YamlNode {
    pub fn scalar(pos: Pos, value: Value, text: String, style: Style) -> YamlNode {
        YamlNode {
            pos,
            kind: NodeKind::Scalar(Scalar {
                value,
                text,
                style,
                tag: None,
            }),
        }
    }

    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[YamlNode]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a mapping entry.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    /// "a mapping", "a list", "the number 5", ... for "expected X, found Y".
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Map(_) => "a mapping".into(),
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Scalar(s) => match &s.value {
                Value::Null => "nothing".into(),
                Value::Bool(b) => format!("`{b}`"),
                Value::Number(_) => format!("the number {}", s.text),
                _ => format!("the string \"{}\"", s.text),
            },
        }
    }

    /// The subtree as JSON (for custom nodes' untyped params).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar(s) => s.value.clone(),
            NodeKind::Seq(items) => Value::Array(items.iter().map(YamlNode::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Resolves plain scalar text the way YAML's core schema does.
pub fn resolve_plain(text: &str) -> Value {
    scalar_to_json(&YScalar::parse_from_cow(text.into()), text)
}

fn scalar_to_json(s: &YScalar<'_>, raw: &str) -> Value {
    match s {
        YScalar::Null => Value::Null,
        YScalar::Boolean(b) => Value::Bool(*b),
        YScalar::Integer(i) => Value::from(*i),
        // JSON has no infinities: keep `.inf` as the text the user wrote.
        YScalar::FloatingPoint(f) if f.is_finite() => Value::from(f.into_inner()),
        YScalar::FloatingPoint(_) => Value::String(raw.to_string()),
        YScalar::String(s) => Value::String(s.to_string()),
    }
}

/// Parses one YAML document into a [`YamlNode`] tree.
pub fn parse(text: &str) -> Parsed {
    // Before saphyr sees the text: it would stop at a NUL, or expand aliases
    // without bound.
    if let Some(p) = limits::forbidden_char(text).or_else(|| limits::alias_expansion(text)) {
        return Parsed {
            root: None,
            problems: vec![p],
        };
    }
    let mut problems = Vec::new();
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(docs) => docs,
        Err(e) => {
            problems.push(Problem {
                pos: Pos::of(e.marker()),
                field: String::new(),
                message: format!("invalid YAML: {}", e.info()),
            });
            return Parsed {
                root: None,
                problems,
            };
        }
    };
    let Some(doc) = docs.first() else {
        problems.push(Problem {
            pos: Pos::at(1, 1),
            field: String::new(),
            message: "the file is empty: a graph needs at least `nodes:`".into(),
        });
        return Parsed {
            root: None,
            problems,
        };
    };
    if let Some(second) = docs.get(1) {
        problems.push(Problem {
            pos: Pos::of(&second.span.start),
            field: String::new(),
            message: "a graph file holds one YAML document; this is a second one".into(),
        });
    }
    let mut builder = Builder::new(text, repeated_keys(text));
    let root = builder.node(doc, doc.span.start, doc.span.end, "");
    problems.append(&mut builder.problems);
    Parsed {
        root: Some(root),
        problems,
    }
}

struct Builder<'s> {
    text: &'s str,
    /// Byte offset of each char index (saphyr markers count chars), plus the end.
    offsets: Vec<usize>,
    /// Mapping start (char index) → the keys that mapping repeats, with their count.
    repeats: HashMap<usize, Vec<(String, usize)>>,
    problems: Vec<Problem>,
}

impl<'s> Builder<'s> {
    fn new(text: &'s str, repeats: HashMap<usize, Vec<(String, usize)>>) -> Self {
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        Builder {
            text,
            offsets,
            repeats,
            problems: Vec::new(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        self.offsets[char_index.min(self.offsets.len() - 1)]
    }

    fn raw(&self, start: &Marker, end: &Marker) -> &'s str {
        let (a, b) = (self.byte(start.index()), self.byte(end.index()));
        if a <= b {
            &self.text[a..b]
        } else {
            ""
        }
    }

    fn problem(&mut self, pos: Pos, field: &str, message: String) {
        self.problems.push(Problem {
            pos,
            field: field.to_string(),
            message,
        });
    }

    // `start`/`end` come from the caller because a tagged node's inner value
    // carries no span of its own in saphyr.
    fn node(&mut self, y: &MarkedYaml<'_>, start: Marker, end: Marker, field: &str) -> YamlNode {
        let pos = Pos::of(&start);
        match &y.data {
            YamlData::Value(s) => {
                let raw = self.raw(&start, &end);
                YamlNode {
                    pos,
                    kind: NodeKind::Scalar(self.scalar(s, raw, start.index())),
                }
            }
            YamlData::Representation(text, style, tag) => {
                let parsed =
                    YScalar::parse_from_cow_and_metadata(text.clone(), *style, tag.as_ref())
                        .unwrap_or_else(|| YScalar::String(text.clone()));
                let raw = self.raw(&start, &end);
                YamlNode {
                    pos,
                    kind: NodeKind::Scalar(self.scalar(&parsed, raw, start.index())),
                }
            }
            YamlData::Tagged(tag, inner) => {
                let mut node = self.node(inner, start, end, field);
                if let NodeKind::Scalar(s) = &mut node.kind {
                    s.tag = Some(tag_text(tag));
                }
                node
            }
            YamlData::Sequence(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.node(
                            item,
                            item.span.start,
                            item.span.end,
                            &format!("{field}[{i}]"),
                        )
                    })
                    .collect();
                YamlNode {
                    pos,
                    kind: NodeKind::Seq(items),
                }
            }
            YamlData::Mapping(map) => self.mapping(map, start, field),
            YamlData::BadValue => {
                let raw = self.raw(&start, &end).to_string();
                self.problem(
                    pos,
                    field,
                    format!("`{raw}` is not a valid value for its YAML tag"),
                );
                YamlNode::scalar(pos, Value::String(raw.clone()), raw, Style::Plain)
            }
            YamlData::Alias(_) => {
                self.problem(pos, field, "alias to an unknown anchor".into());
                YamlNode::scalar(pos, Value::Null, String::new(), Style::Plain)
            }
        }
    }

    fn scalar(&self, s: &YScalar<'_>, raw: &str, start_index: usize) -> Scalar {
        let style = if raw.starts_with(['"', '\'']) {
            Style::Quoted
        } else if self.is_block(start_index) {
            Style::Block
        } else {
            Style::Plain
        };
        let text = match s {
            YScalar::String(s) => s.to_string(),
            _ => raw.to_string(),
        };
        Scalar {
            value: scalar_to_json(s, raw),
            text,
            style,
            tag: None,
        }
    }

    /// saphyr's span of a `|` or `>` scalar starts at its content, so look
    /// back over the indentation and the header for the indicator.
    fn is_block(&self, start_index: usize) -> bool {
        let before = &self.text[..self.byte(start_index)];
        let header = before.trim_end();
        let header = header.trim_end_matches(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
        header.ends_with(['|', '>'])
    }

    fn mapping(
        &mut self,
        map: &AnnotatedMapping<'_, MarkedYaml<'_>>,
        start: Marker,
        field: &str,
    ) -> YamlNode {
        let pos = Pos::of(&start);
        let repeats = self
            .repeats
            .get(&start.index())
            .cloned()
            .unwrap_or_default();
        let mut entries: Vec<(usize, Entry)> = Vec::new();
        for (k, v) in map {
            let key_pos = Pos::of(&k.span.start);
            let key = match self.node(k, k.span.start, k.span.end, field).kind {
                NodeKind::Scalar(s) => s.text,
                _ => {
                    self.problem(
                        key_pos,
                        field,
                        "mapping keys must be names, not lists or mappings".into(),
                    );
                    continue;
                }
            };
            let child = join(field, &key);
            if let Some(canon) = canonical(&k.data) {
                if let Some((_, count)) = repeats.iter().find(|(c, _)| *c == canon) {
                    self.report_repeats(&key, *count, k, v, start, &child);
                }
            }
            let value = self.node(v, v.span.start, v.span.end, &child);
            entries.push((
                k.span.start.index(),
                Entry {
                    key,
                    key_pos,
                    value,
                },
            ));
        }
        // A repeated key moves its entry to the back in saphyr: restore file order.
        entries.sort_by_key(|(index, _)| *index);
        let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
        for (_, entry) in entries {
            // Keys that differ to YAML but not as names (`1` and `"1"`).
            if let Some(first) = out.iter().find(|e| e.key == entry.key) {
                let message = format!(
                    "duplicate key `{}` (first set {})",
                    entry.key,
                    where_(first.key_pos)
                );
                self.problem(entry.key_pos, &join(field, &entry.key), message);
                continue;
            }
            out.push(entry);
        }
        YamlNode {
            pos,
            kind: NodeKind::Map(out),
        }
    }

    /// saphyr kept the first key and the last value of a repeated key: every
    /// other occurrence of the key lies between the two.
    fn report_repeats(
        &mut self,
        key: &str,
        count: usize,
        k: &MarkedYaml<'_>,
        v: &MarkedYaml<'_>,
        map_start: Marker,
        field: &str,
    ) {
        let first = Pos::of(&k.span.start);
        let flow = self.text[self.byte(map_start.index())..].starts_with('{');
        let from = self.byte(k.span.end.index());
        let to = self.byte(v.span.start.index()).max(from);
        let mut found = if flow {
            self.flow_keys(from, to, key)
        } else {
            self.block_keys(from, to, k.span.start.col(), key)
        };
        found.truncate(count - 1);
        while found.len() < count - 1 {
            found.push(first);
        }
        for pos in found {
            let message = format!("duplicate key `{key}` (first set {})", where_(first));
            self.problem(pos, field, message);
        }
    }

    /// Keys of a block mapping start a line at the mapping's indentation.
    fn block_keys(&self, from: usize, to: usize, col: usize, key: &str) -> Vec<Pos> {
        let mut found = Vec::new();
        let mut line_start = self.text[..from].rfind('\n').map_or(0, |i| i + 1);
        while let Some(nl) = self.text[line_start..to].find('\n') {
            line_start += nl + 1;
            if line_start >= to {
                break;
            }
            let line = &self.text[line_start..];
            let indent = line.len() - line.trim_start_matches(' ').len();
            if indent == col && key_token(&line[indent..]) == Some(key) {
                found.push(self.pos_of_byte(line_start + indent));
            }
        }
        found
    }

    /// Keys of a flow mapping follow a comma at the mapping's own depth.
    fn flow_keys(&self, from: usize, to: usize, key: &str) -> Vec<Pos> {
        let mut found = Vec::new();
        let bytes = self.text.as_bytes();
        let (mut depth, mut quote) = (0i32, None::<u8>);
        let mut i = from;
        while i < to {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'"' | b'\'' => quote = Some(b),
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => depth -= 1,
                    b',' if depth == 0 => {
                        let rest = &self.text[i + 1..];
                        let at = i + 1 + (rest.len() - rest.trim_start().len());
                        if at < to && key_token(&self.text[at..]) == Some(key) {
                            found.push(self.pos_of_byte(at));
                        }
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        found
    }

    fn pos_of_byte(&self, byte: usize) -> Pos {
        let before = &self.text[..byte];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        Pos::at(line, col)
    }
}

/// The key at the start of `s` (`name:`, `"name":`, `'name':`), unquoted.
fn key_token(s: &str) -> Option<&str> {
    let (token, rest) = match s.chars().next()? {
        q @ ('"' | '\'') => {
            let end = s[1..].find(q)? + 1;
            (&s[1..end], &s[end + 1..])
        }
        _ => {
            let end = s.find(':')?;
            (s[..end].trim_end(), &s[end..])
        }
    };
    let after = rest.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t', '\n', '\r', ',', '}'])).then_some(token)
}

fn where_(pos: Pos) -> String {
    match pos {
        Pos::File { line, col } => format!("at line {line}, column {col}"),
        Pos::Override(_) => "by --set".into(),
    }
}

/// `parent.key`, or `key` at the top.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn tag_text(tag: &Tag) -> String {
    tag.to_string()
}

/// A key's identity as saphyr compares keys; `None` for keys we do not track.
fn canonical<'a>(data: &YamlData<'a, MarkedYaml<'a>>) -> Option<String> {
    match data {
        YamlData::Value(s) => Some(format!("{s:?}")),
        YamlData::Tagged(tag, inner) => Some(format!("{tag} {}", canonical(&inner.data)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> YamlNode {
        let parsed = parse(text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        parsed.root.unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let r = root("a: 1\nb:\n  c: x\n");
        let b = r.get("b").unwrap();
        assert_eq!(b.key_pos, Pos::at(2, 1));
        let c = b.value.get("c").unwrap();
        assert_eq!(c.key_pos, Pos::at(3, 3));
        assert_eq!(c.value.pos, Pos::at(3, 6));
    }

    #[test]
    fn scalars_resolve_like_yaml() {
        let r =
            root("a: true\nb: 12\nc: 2.50\nd: \"12\"\ne: ~\nf: x y\ng: 'it''s'\nh: |\n  text\n");
        let s = |k: &str| r.get(k).unwrap().value.as_scalar().unwrap().clone();
        assert_eq!(s("a").value, Value::Bool(true));
        assert_eq!(s("b").value, Value::from(12));
        assert_eq!(s("c").value, Value::from(2.5));
        assert_eq!(s("c").text, "2.50");
        assert_eq!(s("d").value, Value::from("12"));
        assert_eq!(s("d").style, Style::Quoted);
        assert_eq!(s("e").value, Value::Null);
        assert_eq!(s("f").value, Value::from("x y"));
        assert_eq!(s("f").style, Style::Plain);
        assert_eq!(s("g").text, "it's");
        assert_eq!(s("h").style, Style::Block);
        assert_eq!(s("h").value, Value::from("text\n"));
    }

    #[test]
    fn columns_count_characters() {
        let r = root("name: \"é日本\"\nx: 1\n");
        assert_eq!(r.get("x").unwrap().key_pos, Pos::at(2, 1));
        let r = root("a: {é: 1, b: 2}\n");
        let b = r.get("a").unwrap().value.get("b").unwrap();
        assert_eq!(b.key_pos, Pos::at(1, 11));
    }

    #[test]
    fn tags_are_kept() {
        let r = root("a: !custom 5\nb: !!str 5\n");
        let a = r.get("a").unwrap().value.as_scalar().unwrap();
        assert_eq!(a.tag.as_deref(), Some("!custom"));
        assert_eq!(a.value, Value::from(5));
        // saphyr places a tagged node at its value, after the tag.
        assert_eq!(r.get("a").unwrap().value.pos, Pos::at(1, 12));
        assert_eq!(
            r.get("b").unwrap().value.as_scalar().unwrap().value,
            Value::from("5")
        );
    }

    #[test]
    fn repeated_block_keys_are_found() {
        let p = parse("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\nc: 2\na: 4\n");
        let found: Vec<_> = p
            .problems
            .iter()
            .map(|p| (p.pos, p.field.as_str()))
            .collect();
        assert_eq!(found, vec![(Pos::at(5, 3), "b.x"), (Pos::at(7, 1), "a")]);
        assert!(p.problems[1]
            .message
            .contains("first set at line 1, column 1"));
        // The tree keeps file order and the last value.
        let r = p.root.unwrap();
        let keys: Vec<_> = r.as_map().unwrap().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn repeated_flow_keys_are_found() {
        let p = parse("m: {a: 1, b: [1, {a: 0}], \"a\": 3}\n");
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert_eq!(p.problems[0].pos, Pos::at(1, 27));
        assert_eq!(p.problems[0].field, "m.a");
    }

    #[test]
    fn keys_equal_as_names_are_duplicates() {
        let p = parse("1: a\n\"1\": b\n");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].pos, Pos::at(2, 1));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let p = parse("a: [1, 2\nb: 3\n");
        assert!(p.root.is_none());
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0].message.starts_with("invalid YAML"));
        assert!(matches!(p.problems[0].pos, Pos::File { line: 2, .. }));
    }

    #[test]
    fn empty_and_multi_document_files() {
        assert!(parse("# nothing\n").root.is_none());
        let p = parse("a: 1\n---\nb: 2\n");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].pos, Pos::at(3, 1));
    }

    #[test]
    fn bad_tagged_values_are_problems() {
        let p = parse("a: !!int foo\n");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].field, "a");
    }

    #[test]
    fn key_tokens() {
        assert_eq!(key_token("a: 1"), Some("a"));
        assert_eq!(key_token("\"a b\": 1"), Some("a b"));
        assert_eq!(key_token("a:"), Some("a"));
        assert_eq!(key_token("a:b"), None);
        assert_eq!(key_token("- a"), None);
    }
}
