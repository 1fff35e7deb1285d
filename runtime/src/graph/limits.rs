//! Checks on a graph file's text made before saphyr builds a tree of it:
//! characters YAML does not allow (saphyr reads a NUL as the end of the
//! text, so everything after one would be silently dropped), and aliases
//! whose expansion would be huge (saphyr copies an anchored node at each
//! alias, so nested aliases — a "billion laughs" — grow exponentially).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

use super::yaml::{Pos, Problem};

/// The most values (scalars, lists, mappings; keys count) a graph may hold
/// once its aliases are expanded: far above any real graph (a 100-node
/// graph has a few thousand), far below what takes noticeable memory.
pub const MAX_VALUES: u64 = 100_000;

/// The deepest nesting of lists and mappings, aliases expanded: real graphs
/// nest about 5 deep; deeper ones would only exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// The first character YAML does not allow in a file: C0 controls other
/// than tab, line feed and carriage return, DEL, C1 controls other than NEL,
/// U+FFFE and U+FFFF.
pub fn forbidden_char(text: &str) -> Option<Problem> {
    let (mut line, mut col) = (1, 1);
    for c in text.chars() {
        let allowed = match c {
            '\t' | '\n' | '\r' | '\u{85}' => true,
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' => false,
            _ => true,
        };
        if !allowed {
            let name = if c == '\0' {
                "a NUL byte".to_string()
            } else {
                format!("the control character U+{:04X}", c as u32)
            };
            return Some(Problem {
                pos: Pos::at(line, col),
                field: String::new(),
                message: format!(
                    "{name}: YAML does not allow this character in a graph file; remove it"
                ),
            });
        }
        if c == '\n' {
            (line, col) = (line + 1, 1);
        } else {
            col += 1;
        }
    }
    None
}

/// A collection being read: where its count of values started and the
/// deepest nesting below it so far.
struct Open {
    anchor: usize,
    first: u64,
    height: usize,
}

/// Counts values and nesting as saphyr would build them, aliases expanded,
/// without building anything; the first alias or collection past
/// [`MAX_VALUES`] or [`MAX_DEPTH`] is the problem. Syntax errors are left
/// to the loader, which reports them with their place.
pub fn alias_expansion(text: &str) -> Option<Problem> {
    // Expanded (values, height) of each anchor, by saphyr's anchor id (0:
    // none). An anchored scalar is one value: the default.
    let mut anchors: HashMap<usize, (u64, usize)> = HashMap::new();
    let mut open: Vec<Open> = Vec::new();
    let mut total = 0u64;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        let (values, height) = match event {
            Event::Scalar(..) => (1, 1),
            Event::Alias(id) => anchors.get(&id).copied().unwrap_or((1, 1)),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                total += 1;
                open.push(Open {
                    anchor,
                    first: total - 1,
                    height: 1,
                });
                if open.len() > MAX_DEPTH {
                    return Some(too_much(text, span, total, open.len()));
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let done = open.pop()?;
                if done.anchor != 0 {
                    anchors.insert(done.anchor, (total - done.first, done.height));
                }
                if let Some(parent) = open.last_mut() {
                    parent.height = parent.height.max(done.height + 1);
                }
                continue;
            }
            _ => continue,
        };
        total += values;
        if let Some(parent) = open.last_mut() {
            parent.height = parent.height.max(height + 1);
        }
        if total > MAX_VALUES || open.len() + height > MAX_DEPTH {
            return Some(too_much(text, span, total, open.len() + height));
        }
    }
    None
}

fn too_much(text: &str, span: Span, values: u64, depth: usize) -> Problem {
    let what = match alias_name(text, span.start.index()) {
        Some(name) => format!("the alias `*{name}` here expands"),
        None => "here".into(),
    };
    let message = if values > MAX_VALUES {
        format!(
            "{what} the graph past {MAX_VALUES} values: aliases that repeat aliases grow exponentially; write the values out"
        )
    } else {
        format!("{what} the graph to {depth} levels of nesting, more than the {MAX_DEPTH} allowed")
    };
    Problem {
        pos: Pos::of(&span.start),
        field: String::new(),
        message,
    }
}

/// The name of the alias `*name` at char index `at`, if one is there.
fn alias_name(text: &str, at: usize) -> Option<String> {
    let mut chars = text.chars().skip(at);
    if chars.next()? != '*' {
        return None;
    }
    let name: String = chars
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `levels` anchors, each a list of ten aliases of the one before.
    fn laughs(levels: usize) -> String {
        let mut text = "a0: &a0 [lol]\n".to_string();
        for i in 1..=levels {
            let items = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        text
    }

    #[test]
    fn nul_and_control_characters_are_placed() {
        let p = forbidden_char("a: 1\nb: x\0y\n").unwrap();
        assert_eq!(p.pos, Pos::at(2, 5));
        assert!(p.message.starts_with("a NUL byte"), "{}", p.message);
        let p = forbidden_char("a: \u{1b}[31m\n").unwrap();
        assert!(p.message.contains("U+001B"), "{}", p.message);
        assert!(forbidden_char("a:\t\"é日本\"\r\nb: 2\n").is_none());
    }

    #[test]
    fn nested_aliases_are_refused_at_the_alias_that_overflows() {
        assert!(alias_expansion(&laughs(4)).is_none());
        // 23464 values up to `a5: &a5 [`, 21111 per `*a4`: the fourth passes.
        let p = alias_expansion(&laughs(9)).unwrap();
        assert!(p.message.contains("`*a4` here expands"), "{}", p.message);
        assert_eq!(p.pos, Pos::at(6, 25));
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!("a: {}{}\n", "[".repeat(70), "]".repeat(70));
        let p = alias_expansion(&deep).unwrap();
        assert!(p.message.contains("65 levels"), "{}", p.message);
        // Through aliases too: 40 + 40 levels.
        let nested = format!(
            "a: &x {}1{}\nb: {}*x{}\n",
            "[".repeat(40),
            "]".repeat(40),
            "[".repeat(40),
            "]".repeat(40)
        );
        let p = alias_expansion(&nested).unwrap();
        assert!(p.message.contains("`*x`"), "{}", p.message);
        assert!(alias_expansion("a: &x [1, [2]]\nb: [*x, *x]\n").is_none());
    }
}
