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
    /// What is listed: the problems (at most [`MAX_REPORTED_ERRORS`]), then
    /// notices of those not listed and of where checking stopped.
    pub errors: Vec<ScenarioError>,
    /// Problems found, listed or not (the notices are not problems).
    pub problems: usize,
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
            problems: 1,
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

/// Most errors listed for one file: the first by position; the rest are
/// counted in a last line. A file of a million bad values gets a screenful,
/// not hundreds of megabytes of messages.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// An error before its position is known: the byte offset is turned into a
/// line and column only for the errors listed (counting lines for each of a
/// million errors from the start of the text took minutes).
struct Pending {
    offset: usize,
    key: String,
    message: String,
}

/// Collects errors while a file is checked.
pub(crate) struct Collector<'a> {
    pub text: &'a str,
    pub path: &'a Path,
    pending: Vec<Pending>,
    /// Errors dropped past [`MAX_REPORTED_ERRORS`] so far (after the earliest).
    omitted: usize,
    /// Why checking stopped before the end, and where: listed last, whatever the cap.
    stopped: Option<Pending>,
}

impl<'a> Collector<'a> {
    pub fn new(text: &'a str, path: &'a Path) -> Self {
        Collector {
            text,
            path,
            pending: Vec::new(),
            omitted: 0,
            stopped: None,
        }
    }

    /// Checking stops at `offset` for `reason`: said after the errors listed,
    /// so that no one takes the list for all there is.
    pub fn stop(&mut self, offset: usize, reason: impl Into<String>) {
        self.stopped = Some(Pending {
            offset,
            key: String::new(),
            message: reason.into(),
        });
    }

    pub fn push(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.pending.push(Pending {
            offset: span.start,
            key: key.into(),
            message: message.into(),
        });
        // Keep memory bounded: only the earliest errors are listed anyway.
        if self.pending.len() >= 8 * MAX_REPORTED_ERRORS {
            self.compact();
        }
    }

    /// Sort by position, drop exact repeats, and keep the earliest
    /// [`MAX_REPORTED_ERRORS`] plus one (the position of the first omitted),
    /// counting the rest.
    fn compact(&mut self) {
        self.pending.sort_by_key(|e| e.offset);
        self.pending
            .dedup_by(|a, b| a.offset == b.offset && a.key == b.key && a.message == b.message);
        let keep = MAX_REPORTED_ERRORS + 1;
        if self.pending.len() > keep {
            self.omitted += self.pending.len() - keep;
            self.pending.truncate(keep);
        }
    }

    pub fn finish(mut self) -> Result<(), ScenarioErrors> {
        if self.pending.is_empty() && self.stopped.is_none() {
            return Ok(());
        }
        self.compact();
        let mut omitted = self.omitted;
        if self.pending.len() > MAX_REPORTED_ERRORS {
            omitted += self.pending.len() - MAX_REPORTED_ERRORS;
        }
        let problems = self.pending.len().min(MAX_REPORTED_ERRORS) + omitted;
        let mut positions = Positions::new(self.text);
        let mut errors: Vec<ScenarioError> = Vec::with_capacity(self.pending.len());
        for (i, e) in self.pending.into_iter().enumerate() {
            let (line, col) = positions.line_col(e.offset);
            let (key, message) = if i < MAX_REPORTED_ERRORS {
                (e.key, e.message)
            } else {
                // At the first error not listed: where to look next.
                (
                    String::new(),
                    format!(
                        "... and {omitted} more error(s) from here on, not listed (only the first {MAX_REPORTED_ERRORS} of a file are); fix these and validate again"
                    ),
                )
            };
            errors.push(ScenarioError {
                path: self.path.to_path_buf(),
                line,
                col,
                key,
                message,
            });
        }
        if let Some(stop) = self.stopped {
            // Its own pass: it may come before the last error listed.
            let (line, col) = line_col(self.text, stop.offset);
            errors.push(ScenarioError {
                path: self.path.to_path_buf(),
                line,
                col,
                key: stop.key,
                message: stop.message,
            });
        }
        Err(ScenarioErrors {
            path: self.path.to_path_buf(),
            errors,
            problems,
        })
    }
}

/// Line and column of ascending byte offsets in one pass: line starts are
/// found by binary search, and a column is counted on from the previous
/// offset when it is on the same line (a hundred errors at the end of one
/// 4 MB line count its characters once, not a hundred times).
struct Positions<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
    /// The last offset resolved: (offset, line index, column).
    last: Option<(usize, usize, usize)>,
}

impl<'t> Positions<'t> {
    fn new(text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Positions {
            text,
            line_starts,
            last: None,
        }
    }

    /// 1-based line and column of `offset`, clamped as [`line_col`] does.
    fn line_col(&mut self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let col = match self.last {
            Some((from, last_line, last_col)) if last_line == line && from <= offset => {
                last_col + self.text[from..offset].chars().count()
            }
            _ => self.text[self.line_starts[line]..offset].chars().count() + 1,
        };
        self.last = Some((offset, line, col));
        (line + 1, col)
    }
}

/// The closest accepted name to `got`, for "did you mean ...?". Case is
/// ignored first (`Relu` means `relu`, not `gelu`), then names are compared
/// in lower case.
pub fn did_you_mean<'n>(got: &str, accepted: impl IntoIterator<Item = &'n str>) -> Option<&'n str> {
    let accepted: Vec<&'n str> = accepted.into_iter().collect();
    if let Some(same) = accepted.iter().find(|name| name.eq_ignore_ascii_case(got)) {
        return Some(same);
    }
    // A long string is no one's typo; comparing it costs its length squared.
    if got.chars().count() > 200 {
        return None;
    }
    let got = got.to_lowercase();
    accepted
        .into_iter()
        .map(|name| (strsim::jaro_winkler(&got, &name.to_lowercase()), name))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// "`x`; did you mean `y`? (accepted: a, b, c)"
pub fn not_accepted(what: &str, got: &str, accepted: &[&str]) -> String {
    let mut msg = format!("{what} `{}` is not accepted", super::text::quoted(got, 60));
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

    #[test]
    fn suggestion_ignores_case_first() {
        assert_eq!(
            did_you_mean("Relu", ["relu", "gelu", "sigmoid", "tanh"]),
            Some("relu")
        );
        assert_eq!(
            did_you_mean("MLP", ["mlp", "convnet", "transformer"]),
            Some("mlp")
        );
        assert_eq!(
            did_you_mean("Rate_Per_Sec", ["process", "rate_per_s"]),
            Some("rate_per_s")
        );
    }

    #[test]
    fn positions_agree_with_line_col_in_ascending_order() {
        let text = "a = 1\nbé = [0, 0,\n 0]\n";
        let mut positions = Positions::new(text);
        for offset in [0, 3, 6, 9, 12, 15, 16, 19, 22, 999] {
            assert_eq!(
                positions.line_col(offset),
                line_col(text, offset),
                "{offset}"
            );
        }
    }

    #[test]
    fn errors_past_the_cap_are_counted_from_the_first_not_listed() {
        let text = "x\n".repeat(1000);
        let path = Path::new("t.toml");
        let mut c = Collector::new(&text, path);
        // pushed last to first, as a later stage may report earlier lines
        for line in (0..1000).rev() {
            c.push(2 * line..2 * line + 1, "k", format!("bad {line}"));
        }
        let found = c.finish().unwrap_err();
        // every problem counts, the notice does not
        assert_eq!(found.problems, 1000);
        let errors = found.errors;
        assert_eq!(errors.len(), MAX_REPORTED_ERRORS + 1);
        assert_eq!(errors[0].message, "bad 0");
        assert_eq!(errors[99].line, 100);
        let last = &errors[MAX_REPORTED_ERRORS];
        assert_eq!((last.line, last.col), (101, 1));
        assert!(
            last.message.contains("and 900 more error(s)"),
            "{}",
            last.message
        );
    }
}
