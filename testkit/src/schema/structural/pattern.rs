//! The `pattern` check of the OpenAPI pass (`openapi`): a schema's `pattern` must be a regular
//! expression Go's `regexp` accepts, reported with Go's parser message. The `regex` crate
//! shares RE2's syntax but accepts or words a few things differently, so those cases are
//! recognised here first.

use super::str_of;
use crate::names::go_quote;
use crate::schema::FieldError;
use crate::schema::validate::{compiled, expand_quoted};
use serde_json::Value;

/// Reports `s.pattern` when Go would not compile it.
pub(super) fn check(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(pattern) = str_of(s, "pattern")
        && let Some(reason) = go_syntax_error(pattern)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.pattern"),
            &go_quote(pattern),
            &format!(
                "must be a valid regular expression, but isn't: error parsing regexp: {reason}"
            ),
        ));
    } else if let Some(pattern) = str_of(s, "pattern")
        && compiled(pattern).is_none()
    {
        let reason = match regex::Regex::new(&expand_quoted(pattern)) {
            Err(e) => {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid pattern")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                go_wording(pattern, &last)
            }
            Ok(_) => "invalid pattern".to_string(),
        };
        errs.push(FieldError::invalid(
            &format!("{path}.pattern"),
            &go_quote(pattern),
            &format!(
                "must be a valid regular expression, but isn't: error parsing regexp: {reason}"
            ),
        ));
    }
}

static REPEAT_COUNT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^\{\d+(,\d*)?\}").expect("constant regex compiles")
});

/// Go's `regexp/syntax` message for a pattern Go refuses, for the cases the `regex` crate
/// accepts or words differently: lookaround, backreferences and unknown escapes, nested
/// repetition (`a++`), and unclosed classes and groups.
fn go_syntax_error(pattern: &str) -> Option<String> {
    for construct in ["(?<=", "(?<!", "(?=", "(?!"] {
        if pattern.contains(construct) {
            return Some(format!("invalid or unsupported Perl syntax: `{construct}`"));
        }
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    // Where the previous repetition operator started, if the last token was one.
    let mut last_repeat: Option<usize> = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                last_repeat = None;
                let Some(&c) = chars.get(i + 1) else {
                    return Some("trailing backslash at end of expression: ``".to_string());
                };
                if c == 'Q' {
                    // A literal span up to `\E`.
                    let rest: String = chars[i + 2..].iter().collect();
                    match rest.find("\\E") {
                        Some(end) => i += 2 + rest[..end].chars().count() + 2,
                        None => i = chars.len(),
                    }
                    continue;
                }
                let valid = !c.is_ascii_alphanumeric()
                    || "afntrvxpPdDsSwWbBAzE0".contains(c)
                    || (('1'..='7').contains(&c)
                        && chars.get(i + 2).is_some_and(|d| ('0'..='7').contains(d)));
                if !valid {
                    return Some(format!("invalid escape sequence: `\\{c}`"));
                }
                i += 2;
            }
            '[' => {
                last_repeat = None;
                let start = i;
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                loop {
                    match chars.get(i) {
                        None => {
                            let rest: String = chars[start..].iter().collect();
                            return Some(format!("missing closing ]: `{rest}`"));
                        }
                        Some('\\') => i += 2,
                        Some('[') if chars.get(i + 1) == Some(&':') => {
                            let rest: String = chars[i..].iter().collect();
                            i += rest.find(":]").map_or(1, |e| rest[..e].chars().count() + 2);
                        }
                        Some(']') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            '*' | '+' | '?' | '{' => {
                let start = i;
                let len = if chars[i] == '{' {
                    let rest: String = chars[i..].iter().collect();
                    match REPEAT_COUNT.find(&rest) {
                        Some(m) => m.as_str().chars().count(),
                        None => {
                            // A `{` that is not a repeat count is a literal in Go.
                            last_repeat = None;
                            i += 1;
                            continue;
                        }
                    }
                } else {
                    1
                };
                i += len;
                if chars.get(i) == Some(&'?') {
                    i += 1;
                }
                if let Some(previous) = last_repeat {
                    let text: String = chars[previous..i].iter().collect();
                    return Some(format!("invalid nested repetition operator: `{text}`"));
                }
                last_repeat = Some(start);
            }
            _ => {
                last_repeat = None;
                i += 1;
            }
        }
    }
    None
}

/// Go's wording for what the `regex` crate reports differently.
fn go_wording(pattern: &str, rust_error: &str) -> String {
    if rust_error.contains("unclosed group") {
        format!("missing closing ): `{pattern}`")
    } else if rust_error.contains("unopened group") {
        format!("unexpected ): `{pattern}`")
    } else if rust_error.contains("repetition operator missing expression") {
        let op: String = pattern
            .chars()
            .find(|c| matches!(c, '*' | '+' | '?'))
            .map(String::from)
            .unwrap_or_default();
        format!("missing argument to repetition operator: `{op}`")
    } else {
        rust_error.to_string()
    }
}
