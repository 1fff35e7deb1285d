//! Repeated keys in YAML mappings. saphyr's loader keeps one entry per key,
//! so the file is loaded a second time into throwaway nodes whose identities
//! are all distinct: every entry stays, and the repeats can be reported at
//! their positions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use saphyr::{AnnotatedMapping, LoadableYamlNode, Marker, ScalarStyle, Tag, Yaml};

/// Counts every key of every mapping, repeats included.
pub fn repeated_keys(text: &str) -> HashMap<usize, Vec<(String, usize)>> {
    let mut out = HashMap::new();
    if let Ok(docs) = Probe::load_from_str(text) {
        for doc in &docs {
            doc.collect_repeats(&mut out);
        }
    }
    out
}

static NEXT_PROBE: AtomicU64 = AtomicU64::new(0);

/// A throwaway YAML node whose identity is unique, so that saphyr's loader
/// keeps every mapping entry, repeated keys included.
struct Probe {
    id: u64,
    /// Char index of a collection's start (the same marker `MarkedYaml` gets).
    start: usize,
    kind: ProbeKind,
}

enum ProbeKind {
    Key(String),
    Empty,
    Seq(Vec<Probe>),
    Map(AnnotatedMapping<'static, Probe>),
}

impl Probe {
    fn new(kind: ProbeKind) -> Probe {
        Probe {
            id: NEXT_PROBE.fetch_add(1, Ordering::Relaxed),
            start: 0,
            kind,
        }
    }

    fn collect_repeats(&self, out: &mut HashMap<usize, Vec<(String, usize)>>) {
        match &self.kind {
            ProbeKind::Seq(items) => items.iter().for_each(|i| i.collect_repeats(out)),
            ProbeKind::Map(map) => {
                let mut counts: Vec<(String, usize)> = Vec::new();
                for (k, v) in map {
                    if let ProbeKind::Key(name) = &k.kind {
                        match counts.iter_mut().find(|(n, _)| n == name) {
                            Some((_, c)) => *c += 1,
                            None => counts.push((name.clone(), 1)),
                        }
                    }
                    v.collect_repeats(out);
                }
                counts.retain(|(_, c)| *c > 1);
                if !counts.is_empty() {
                    out.insert(self.start, counts);
                }
            }
            ProbeKind::Key(_) | ProbeKind::Empty => {}
        }
    }
}

impl Clone for Probe {
    // A clone (saphyr clones anchored nodes for aliases) is a new node.
    fn clone(&self) -> Self {
        let kind = match &self.kind {
            ProbeKind::Key(k) => ProbeKind::Key(k.clone()),
            ProbeKind::Empty => ProbeKind::Empty,
            ProbeKind::Seq(items) => ProbeKind::Seq(items.clone()),
            ProbeKind::Map(map) => ProbeKind::Map(map.clone()),
        };
        Probe {
            start: self.start,
            ..Probe::new(kind)
        }
    }
}

impl PartialEq for Probe {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Probe {}

impl std::hash::Hash for Probe {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<'input> LoadableYamlNode<'input> for Probe {
    type HashKey = Probe;

    fn from_bare_yaml(yaml: Yaml<'input>) -> Self {
        Probe::new(match yaml {
            Yaml::Sequence(_) => ProbeKind::Seq(Vec::new()),
            Yaml::Mapping(_) => ProbeKind::Map(AnnotatedMapping::default()),
            Yaml::Value(s) => ProbeKind::Key(format!("{s:?}")),
            Yaml::Tagged(tag, inner) => match Probe::from_bare_yaml(*inner).kind {
                ProbeKind::Key(k) => ProbeKind::Key(format!("{tag} {k}")),
                other => other,
            },
            Yaml::Representation(text, style, _) => {
                ProbeKind::Key(format!("{text:?}{}", style != ScalarStyle::Plain))
            }
            Yaml::Alias(_) | Yaml::BadValue => ProbeKind::Empty,
        })
    }

    fn is_sequence(&self) -> bool {
        matches!(self.kind, ProbeKind::Seq(_))
    }

    fn is_mapping(&self) -> bool {
        matches!(self.kind, ProbeKind::Map(_))
    }

    fn is_badvalue(&self) -> bool {
        matches!(self.kind, ProbeKind::Empty)
    }

    fn sequence_mut(&mut self) -> &mut Vec<Self> {
        match &mut self.kind {
            ProbeKind::Seq(items) => items,
            _ => panic!("sequence_mut on a non-sequence"),
        }
    }

    fn mapping_mut(&mut self) -> &mut AnnotatedMapping<'input, Self> {
        match &mut self.kind {
            ProbeKind::Map(map) => map,
            _ => panic!("mapping_mut on a non-mapping"),
        }
    }

    fn into_tagged(self, _tag: std::borrow::Cow<'input, Tag>) -> Self {
        self
    }

    fn take(&mut self) -> Self {
        std::mem::replace(self, Probe::new(ProbeKind::Empty))
    }

    fn with_start_marker(mut self, mark: Marker) -> Self {
        self.start = mark.index();
        self
    }
}
