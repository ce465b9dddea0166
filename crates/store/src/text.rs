//! Client-supplied text on its way to a terminal, a log line or the audit table: control,
//! bidirectional and zero-width characters are escaped (a newline cannot forge a line, an ANSI
//! sequence cannot reach the admin's terminal, a bidi override cannot reorder what is read),
//! and long text is cut to a short excerpt.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters that change how text around them is shown without showing themselves.
#[must_use]
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'      // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{061C}'              // Arabic letter mark
            | '\u{FEFF}'              // zero-width no-break space
            | '\u{00AD}'              // soft hyphen
    )
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// `text` with control, bidi and zero-width characters written as `\u{..}` escapes;
/// unchanged (and not copied) when it has none. A backslash stays as it is: text already
/// escaped (an audit line stored that way) reads the same when printed again, and a typed
/// `\u{a}` can only ever look like a newline, never be one.
#[must_use]
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `text`, escaped, with `…(N bytes)` when it was cut: what a log
/// line or an audit row may carry of text an unauthenticated caller chose.
#[must_use]
pub fn excerpt(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    let mut out = escape(&cut).into_owned();
    if cut.len() < text.len() {
        let _ = write!(out, "…({} bytes)", text.len());
    }
    out
}

/// Whether `text` mixes ASCII letters with letters of other scripts that can look like them
/// (Cyrillic `а` for Latin `a`): worth a warning when it names an object.
#[must_use]
pub fn looks_confusable(text: &str) -> bool {
    let ascii_letters = text.chars().any(|c| c.is_ascii_alphabetic());
    let lookalikes = text.chars().any(|c| {
        matches!(c,
            '\u{0370}'..='\u{03FF}' // Greek
            | '\u{0400}'..='\u{04FF}' // Cyrillic
            | '\u{FF01}'..='\u{FF5E}' // full-width ASCII
            | '\u{1D400}'..='\u{1D7FF}' // mathematical alphanumerics
        )
    });
    ascii_letters && lookalikes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_or_hide() {
        assert!(matches!(escape("ca-2027"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\nb\x1b[31mc\u{202E}d"),
            "a\\u{a}b\\u{1b}[31mc\\u{202e}d"
        );
        assert_eq!(escape("x\u{200B}y"), "x\\u{200b}y");
        assert_eq!(
            escape(&escape("a\nb")),
            "a\\u{a}b",
            "escaping twice changes nothing"
        );
    }

    #[test]
    fn excerpts_are_short_and_say_how_long_the_text_was() {
        let long = "é".repeat(5000);
        let cut = excerpt(&long, 10);
        assert!(cut.starts_with("éééééééééé…("), "{cut}");
        assert!(cut.ends_with("(10000 bytes)"), "{cut}");
        assert_eq!(excerpt("short", 10), "short");
    }

    #[test]
    fn mixed_scripts_are_flagged() {
        assert!(looks_confusable("issuer_\u{0441}a")); // Cyrillic es
        assert!(!looks_confusable("issuer_ca"));
        assert!(!looks_confusable("\u{0441}\u{0430}"));
    }
}
