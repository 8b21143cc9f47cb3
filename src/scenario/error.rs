//! Scenario errors: every problem in a file, each with its position, key and a
//! message naming the bad value and what would be accepted.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a scenario file, printed as `path:line:col: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// Dotted key path, e.g. `traffic.rate_per_s` or `targets.cloud[0].catalog`;
    /// empty for problems with the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.col)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// All problems found in one scenario file (never empty), in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioErrors {
    pub path: PathBuf,
    pub errors: Vec<ScenarioError>,
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ScenarioErrors {
    /// A single problem with the file as a whole (missing, unreadable, empty).
    pub fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        ScenarioErrors {
            path: path.to_path_buf(),
            errors: vec![ScenarioError {
                path: path.to_path_buf(),
                line: 1,
                col: 1,
                key: String::new(),
                message: message.into(),
            }],
        }
    }
}

/// 1-based line and column (in characters) of a byte offset; offsets past the
/// end or inside a character are clamped.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Collects errors while a file is checked.
pub(crate) struct Collector<'a> {
    pub text: &'a str,
    pub path: &'a Path,
    pub errors: Vec<ScenarioError>,
}

impl<'a> Collector<'a> {
    pub fn new(text: &'a str, path: &'a Path) -> Self {
        Collector {
            text,
            path,
            errors: Vec::new(),
        }
    }

    pub fn push(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let (line, col) = line_col(self.text, span.start);
        self.errors.push(ScenarioError {
            path: self.path.to_path_buf(),
            line,
            col,
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn finish(mut self) -> Result<(), ScenarioErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|e| (e.line, e.col));
        self.errors.dedup();
        Err(ScenarioErrors {
            path: self.path.to_path_buf(),
            errors: self.errors,
        })
    }
}

/// The closest accepted name to `got`, for "did you mean ...?".
pub fn did_you_mean<'n>(got: &str, accepted: impl IntoIterator<Item = &'n str>) -> Option<&'n str> {
    accepted
        .into_iter()
        .map(|name| (strsim::jaro_winkler(got, name), name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// "`x`; did you mean `y`? (accepted: a, b, c)"
pub fn not_accepted(what: &str, got: &str, accepted: &[&str]) -> String {
    let mut msg = format!("{what} `{got}` is not accepted");
    if let Some(best) = did_you_mean(got, accepted.iter().copied()) {
        msg.push_str(&format!("; did you mean `{best}`?"));
    }
    msg.push_str(&format!(" (accepted: {})", accepted.join(", ")));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes: the '=' (byte 10) is the 4th character of "bé = 2".
        assert_eq!(line_col(text, 10), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
        // inside the two-byte character: clamped back to its start
        assert_eq!(line_col(text, 8), (2, 2));
    }

    #[test]
    fn suggestion_picks_the_close_name() {
        assert_eq!(
            did_you_mean("rate_per_sec", ["process", "rate_per_s", "duration_s"]),
            Some("rate_per_s")
        );
        assert_eq!(did_you_mean("zzz", ["process", "rate_per_s"]), None);
    }
}
