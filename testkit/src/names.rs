//! Name and label validation with apimachinery's exact messages (`util/validation/validation.go`).
//!
//! Every `*_errors` function returns one message per violated rule, as apimachinery does, so a
//! caller can emit one `Status` cause per message. The `is_*` functions are the same checks folded
//! into a `Result`, with the messages joined by `"; "` (what apimachinery itself does when it turns
//! a list of messages into a single `field.Invalid` detail, e.g. for label keys in selectors).

use regex::Regex;
use std::sync::LazyLock;

/// Longest DNS-1123 label (`metav1.Namespace` names, Service names, …).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain (most object names).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest name part of a qualified name (label and annotation keys).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn anchored(fmt: &str) -> Regex {
    // The formats are constants above; a failure here is a bug in this file, caught by every test.
    Regex::new(&format!("^(?:{fmt})$")).expect("constant regex compiles")
}

static DNS1123_LABEL_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1123_SUBDOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));
static QUALIFIED_NAME_RE: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE_RE: LazyLock<Regex> = LazyLock::new(|| anchored(LABEL_VALUE_FMT));

/// apimachinery's `RegexError`: the message, examples, and the regex used.
///
/// The odd `',  or '` spacing is apimachinery's and is kept so messages compare equal.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// apimachinery's `MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// apimachinery's `EmptyError`.
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

fn fold(errs: Vec<String>) -> Result<(), String> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// Every rule a DNS-1123 subdomain (`example.com`) breaks; empty when valid.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !DNS1123_SUBDOMAIN_RE.is_match(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Every rule a DNS-1123 label (`my-name`) breaks; empty when valid.
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !DNS1123_LABEL_RE.is_match(value) {
        if DNS1123_SUBDOMAIN_RE.is_match(value) {
            // A valid subdomain that is not a valid label can only be wrong by its dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Checks a DNS-1123 subdomain, the rule for most object names (`NameIsDNSSubdomain`).
pub fn is_dns1123_subdomain(value: &str) -> Result<(), String> {
    fold(dns1123_subdomain_errors(value))
}

/// Checks a DNS-1123 label, the rule for Namespace and Service names (`NameIsDNSLabel`).
pub fn is_dns1123_label(value: &str) -> Result<(), String> {
    fold(dns1123_label_errors(value))
}

/// Every rule a name used as a URL path segment breaks (`IsValidPathSegmentName`).
///
/// The apiserver applies this to every object name, because names are path segments in the REST
/// API; kinds with no stricter rule (e.g. RBAC roles) only get this check.
pub fn path_segment_name_errors(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .into_iter()
        .filter(|illegal| name.contains(illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Checks a name used as a URL path segment (`IsValidPathSegmentName`).
pub fn is_valid_path_segment_name(name: &str) -> Result<(), String> {
    fold(path_segment_name_errors(name))
}

/// Every rule a qualified name (a label or annotation key such as `app.kubernetes.io/name`)
/// breaks (`IsQualifiedName`).
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let name_regex_error = || {
        regex_error(
            QUALIFIED_NAME_ERR_MSG,
            QUALIFIED_NAME_FMT,
            &["MyName", "my.name", "123-abc"],
        )
    };
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                name_regex_error()
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !QUALIFIED_NAME_RE.is_match(name) {
        errs.push(format!("name part {}", name_regex_error()));
    }
    errs
}

/// Checks a qualified name: a label key, annotation key or finalizer name.
pub fn is_qualified_name(value: &str) -> Result<(), String> {
    fold(qualified_name_errors(value))
}

/// Every rule a label value breaks (`IsValidLabelValue`); the empty string is a valid value.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !LABEL_VALUE_RE.is_match(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Checks a label value.
pub fn is_valid_label_value(value: &str) -> Result<(), String> {
    fold(label_value_errors(value))
}

/// Go's `%q` quoting of a string, which apimachinery uses for bad values in error messages.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const QNAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }

    #[test]
    fn subdomain_accepts_dotted_lowercase_names() {
        for ok in ["a", "example.com", "a-b.c-d", "0", "x".repeat(253).as_str()] {
            assert_eq!(is_dns1123_subdomain(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn subdomain_rejects_with_apimachinery_messages() {
        let cases: Vec<(String, Vec<String>)> = vec![
            ("".into(), vec![SUBDOMAIN_MSG.into()]),
            ("Foo".into(), vec![SUBDOMAIN_MSG.into()]),
            ("-a".into(), vec![SUBDOMAIN_MSG.into()]),
            ("a.".into(), vec![SUBDOMAIN_MSG.into()]),
            ("a_b".into(), vec![SUBDOMAIN_MSG.into()]),
            (
                "x".repeat(254),
                vec!["must be no more than 253 characters".into()],
            ),
            (
                format!("{}A", "x".repeat(253)),
                vec![
                    "must be no more than 253 characters".into(),
                    SUBDOMAIN_MSG.into(),
                ],
            ),
        ];
        for (value, want) in cases {
            assert_eq!(dns1123_subdomain_errors(&value), want, "{value}");
        }
        assert_eq!(
            is_dns1123_subdomain("Foo"),
            Err(SUBDOMAIN_MSG.to_string()),
            "Result form carries the message"
        );
    }

    #[test]
    fn label_rejects_dots_and_case_with_apimachinery_messages() {
        assert_eq!(is_dns1123_label("my-name"), Ok(()));
        assert_eq!(
            dns1123_label_errors("a.b"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(dns1123_label_errors("A"), vec![LABEL_MSG.to_string()]);
        assert_eq!(
            dns1123_label_errors(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn path_segment_names_reject_dots_slash_and_percent() {
        assert_eq!(path_segment_name_errors("ok:name"), Vec::<String>::new());
        assert_eq!(path_segment_name_errors(".."), vec!["may not be '..'"]);
        assert_eq!(path_segment_name_errors("."), vec!["may not be '.'"]);
        assert_eq!(
            path_segment_name_errors("a/b%c"),
            vec!["may not contain '/'", "may not contain '%'"]
        );
    }

    #[test]
    fn qualified_names_check_prefix_and_name_parts() {
        for ok in ["app", "app.kubernetes.io/name", "A_b.C-1", "example.com/X"] {
            assert_eq!(is_qualified_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(qualified_name_errors("-app"), vec![QNAME_MSG.to_string()]);
        assert_eq!(
            qualified_name_errors("/app"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            qualified_name_errors("Example.com/app"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(
            qualified_name_errors("example.com/"),
            vec!["name part must be non-empty".to_string(), QNAME_MSG.into()]
        );
        assert_eq!(
            qualified_name_errors(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters".to_string()]
        );
        let too_many = qualified_name_errors("a/b/c");
        assert_eq!(too_many.len(), 1);
        assert!(
            too_many[0].starts_with("a valid label key must consist of")
                && too_many[0].ends_with(
                    "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                ),
            "{too_many:?}"
        );
    }

    #[test]
    fn label_values_allow_empty_and_reject_bad_edges() {
        assert_eq!(is_valid_label_value(""), Ok(()));
        assert_eq!(is_valid_label_value("My_value.1"), Ok(()));
        assert_eq!(
            is_valid_label_value("-x"),
            Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string())
        );
        assert_eq!(
            label_value_errors(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
    }
}
