//! Validation errors with their place in the graph file.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Pos;
use super::Override;

/// One problem found in a graph file.
///
/// `line` and `col` are 1-based; both are 0 when the problem comes from a
/// `--set` override or concerns the file as a whole, and then `field` names
/// the override (`--set camera.fps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// Where in the graph, e.g. `nodes[3].inputs.video`; empty for syntax errors.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem of a graph file, in file order (overrides first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collects diagnostics while a graph is checked, so that every problem is
/// reported at once instead of stopping at the first.
pub(crate) struct DiagnosticsBuilder<'a> {
    file: &'a Path,
    overrides: &'a [Override],
    /// With the order to report in: file position, then `--set` order.
    found: Vec<((usize, usize, usize), Diagnostic)>,
    /// Values already reported as wrong: later errors there would only
    /// repeat the first one (an undefined `${var}` then being "not a number").
    poisoned: HashSet<Pos>,
}

impl<'a> DiagnosticsBuilder<'a> {
    pub(crate) fn new(file: &'a Path, overrides: &'a [Override]) -> Self {
        DiagnosticsBuilder {
            file,
            overrides,
            found: Vec::new(),
            poisoned: HashSet::new(),
        }
    }

    /// Records a problem at `pos`; a position inside an override is reported
    /// as that override rather than as a place in the file.
    pub(crate) fn error(
        &mut self,
        pos: Pos,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        if self.poisoned.contains(&pos) {
            return;
        }
        let (line, col, field, order) = match pos {
            Pos::File { line, col } => (line, col, field.into(), 0),
            Pos::Override(i) => (0, 0, format!("--set {}", self.overrides[i].target), i),
        };
        let diagnostic = Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            field,
            message: message.into(),
            hint,
        };
        self.found.push(((line, col, order), diagnostic));
    }

    /// Drops any further error at `pos`.
    pub(crate) fn poison(&mut self, pos: Pos) {
        self.poisoned.insert(pos);
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    pub(crate) fn error_count(&self) -> usize {
        self.found.len()
    }

    /// The problems sorted by place (overrides first, in command-line
    /// order); problems at one place keep the order they were found in.
    pub(crate) fn finish(mut self) -> Diagnostics {
        self.found.sort_by_key(|(order, _)| *order);
        Diagnostics(self.found.into_iter().map(|(_, d)| d).collect())
    }
}

/// `did you mean `x`?` for the closest candidate, if one is close enough to
/// be a plausible typo.
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate nearest to `word` when it is a plausible typo of it: a
/// small edit distance (transpositions count once), a close Jaro-Winkler
/// score, or `word` abbreviating it.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let edits = strsim::damerau_levenshtein(word, c);
            (edits, -strsim::jaro_winkler(word, c), c)
        })
        .filter(|&(edits, neg_jw, c)| {
            let len = c.chars().count();
            (edits <= (len / 3).max(1) && edits < len)
                || -neg_jw >= 0.85
                || (word.len() >= 3 && c.starts_with(word))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_and_without_position() {
        let d = Diagnostic {
            file: "graphs/x.yaml".into(),
            line: 12,
            col: 7,
            field: "nodes[2].params.crf".into(),
            message: "crf 70 is out of range 0..=51 for h264".into(),
            hint: Some("lower is better".into()),
        };
        assert_eq!(
            d.to_string(),
            "graphs/x.yaml:12:7: nodes[2].params.crf: crf 70 is out of range 0..=51 for h264 (hint: lower is better)"
        );
        let o = Diagnostic {
            line: 0,
            col: 0,
            field: "--set camera.fps".into(),
            hint: None,
            ..d
        };
        assert_eq!(
            o.to_string(),
            "graphs/x.yaml: --set camera.fps: crf 70 is out of range 0..=51 for h264"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("camra", ["camera", "mux"]), Some("camera"));
        assert_eq!(closest("zzz", ["camera", "mux"]), None);
        assert_eq!(closest("fsp", ["fps", "width"]), Some("fps"));
        assert_eq!(closest("vid", ["video", "audio"]), Some("video"));
        assert_eq!(
            closest("rawvideo", ["raw-video", "raw-audio"]),
            Some("raw-video")
        );
        assert_eq!(closest("x", ["y", "mux"]), None);
        assert_eq!(
            did_you_mean("parms", ["params", "inputs"]).as_deref(),
            Some("did you mean `params`?")
        );
    }
}
