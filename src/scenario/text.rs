//! Rules for the text a scenario gives: its name, which names the report
//! directory, and free text (description, task, variant and target names),
//! which is printed to terminals.

use super::limits::MAX_NAME_CHARS;

/// What a scenario name may be, for messages.
pub fn name_accepted() -> String {
    format!("ASCII letters, digits, `-`, `_` and `.` (not `.` or `..` alone), at most {MAX_NAME_CHARS} characters")
}

/// Whether `name` can name a scenario: it becomes the directory its reports
/// are written to (`--out DIR/NAME/`), so it must be one path component on
/// every file system. `report::write_report` refuses what this refuses
/// (except the length, which a file system refuses at 255 bytes).
pub fn is_valid_scenario_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The first control character in `text` that a terminal would act on
/// (escape sequences, carriage return, bell, ...), or a bidirectional
/// override or isolate (U+202A-U+202E, U+2066-U+2069: they reorder what
/// follows them on screen, so a name can read as another); a newline and a
/// tab are allowed when `allow_layout` is set, a carriage return before a
/// newline too.
pub fn control_character(text: &str, allow_layout: bool) -> Option<char> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let layout = matches!(c, '\n' | '\t') || (c == '\r' && chars.peek() == Some(&'\n'));
        if acts_on_terminal(c) && !(allow_layout && layout) {
            return Some(c);
        }
    }
    None
}

/// A control character, or a bidirectional override or isolate.
fn acts_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` for a message: control characters escaped, and cut after
/// `max_chars` characters.
pub fn quoted(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .flat_map(char::escape_debug)
        .collect();
    let total = text.chars().count();
    if total > max_chars {
        out.push_str(&format!("... ({total} characters)"));
    }
    out
}

/// `text` with every control character but newline and tab escaped, so that
/// printing it cannot move the cursor, clear the screen or retitle the window.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if control_character(text, true).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let layout = matches!(c, '\n' | '\t') || (c == '\r' && chars.peek() == Some(&'\n'));
        if acts_on_terminal(c) && !layout {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_safe_path_components() {
        for ok in ["fraud-scoring", "v1.2_b", "a"] {
            assert!(is_valid_scenario_name(ok), "{ok}");
        }
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        for bad in [
            "",
            ".",
            "..",
            "../../escape",
            "a/b",
            "a b",
            "café",
            "x\u{1b}[2J",
            &long,
        ] {
            assert!(!is_valid_scenario_name(bad), "{bad:?}");
        }
        assert!(is_valid_scenario_name(&long[1..]));
    }

    #[test]
    fn control_characters_are_found_and_escaped() {
        assert_eq!(control_character("a\nb\tc\r\n", true), None);
        assert_eq!(control_character("a\nb", false), Some('\n'));
        assert_eq!(
            control_character("x\u{1b}]0;title\u{7}", true),
            Some('\u{1b}')
        );
        assert_eq!(control_character("over\rwrite", true), Some('\r'));
        // C1 controls (8-bit CSI) too
        assert_eq!(control_character("a\u{9b}2J", true), Some('\u{9b}'));
        // A right-to-left override makes "cod\u{202e}gnp.exe" read "codexe.png".
        assert_eq!(
            control_character("cod\u{202e}gnp.exe", true),
            Some('\u{202e}')
        );
        assert!(!printable("a\u{2066}b").contains('\u{2066}'));
        assert_eq!(printable("ok\n"), "ok\n");
        assert_eq!(printable("\u{1b}[2Jx\n"), "\\u{1b}[2Jx\n");
        assert_eq!(quoted("\u{1b}ab", 2), "\\u{1b}a... (3 characters)");
    }
}
