//! The names a user gives the generator, checked before anything is written: Kubernetes kinds,
//! API groups and versions, and the Rust and file names derived from them.
//!
//! Every check returns a message that names what was wrong and what would be accepted, because
//! the CLI prints it as is.

/// A name the generator refuses, with what was wrong and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// Checks a kind: UpperCamelCase ASCII, starting with a capital letter (`Memcached`, `CronTab`).
pub fn check_kind(kind: &str) -> Result<(), InvalidName> {
    let ok = kind.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric())
        && kind.len() <= 63;
    if ok {
        return Ok(());
    }
    Err(InvalidName(format!(
        "invalid --kind {kind:?}: a kind is UpperCamelCase letters and digits starting with a \
         capital letter, at most 63 characters (e.g. --kind {})",
        to_upper_camel(kind)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Memcached".into())
    )))
}

/// `crontab-job`/`cron_tab` → `CronTabJob`, when the input is letters, digits, `-` and `_`.
fn to_upper_camel(s: &str) -> Option<String> {
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    Some(
        s.split(['-', '_'])
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut cs = p.chars();
                cs.next()
                    .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                    .unwrap_or_default()
            })
            .collect(),
    )
}

/// Checks a DNS-1123 subdomain (lowercase alphanumerics, `-` and `.`, each label starting and
/// ending with an alphanumeric, at most 253 characters) — what Kubernetes requires of an API
/// group or a domain.
pub fn check_dns_subdomain(flag: &str, value: &str) -> Result<(), InvalidName> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !value.is_empty() && value.len() <= 253 && value.split('.').all(label_ok) {
        return Ok(());
    }
    Err(InvalidName(format!(
        "invalid {flag} {value:?}: it must be a DNS-1123 subdomain — lowercase letters, digits, \
         '-' and '.', each dot-separated part starting and ending with a letter or digit \
         (e.g. {flag} {})",
        suggestion_subdomain(value)
    )))
}

fn suggestion_subdomain(value: &str) -> String {
    let s: String = value
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '-' || c == '.').to_owned();
    if s.is_empty() {
        "example.com".into()
    } else {
        s
    }
}

/// Checks an API group: a DNS-1123 subdomain that is not a built-in group (those are served by
/// kube-apiserver and cannot be defined by a CRD).
pub fn check_group(group: &str) -> Result<(), InvalidName> {
    check_dns_subdomain("--group", group)?;
    if group == "k8s.io" || group.ends_with(".k8s.io") || !group.contains('.') {
        let hint = if group.contains('.') {
            "groups under k8s.io are reserved for Kubernetes".to_owned()
        } else {
            format!(
                "a CRD's group needs a dot (its name is <plural>.<group>); use the project's \
                 domain, e.g. --group {group}.example.com"
            )
        };
        return Err(InvalidName(format!("invalid --group {group:?}: {hint}")));
    }
    Ok(())
}

/// Checks a Kubernetes API version: `v1`, `v1alpha1`, `v2beta3` (no leading zeros).
pub fn check_version(version: &str) -> Result<(), InvalidName> {
    let bad = || {
        InvalidName(format!(
            "invalid --version {version:?}: a Kubernetes API version is v<N>, v<N>alpha<M> or \
             v<N>beta<M> with N ≥ 1 and no leading zeros (e.g. v1, v1alpha1, v2beta3)"
        ))
    };
    let rest = version.strip_prefix('v').ok_or_else(bad)?;
    let digits =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && !s.starts_with('0');
    let (major, tail) = rest
        .find(|c: char| !c.is_ascii_digit())
        .map_or((rest, ""), |i| rest.split_at(i));
    if !digits(major) {
        return Err(bad());
    }
    let ok = match tail {
        "" => true,
        t => t
            .strip_prefix("alpha")
            .or_else(|| t.strip_prefix("beta"))
            .is_some_and(digits),
    };
    if ok { Ok(()) } else { Err(bad()) }
}

/// `CronTab` → `cron_tab` (module and file names).
pub fn snake(kind: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = kind.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && !chars[i - 1].is_ascii_uppercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// The plural resource name the derive gives a kind by default (`Memcached` → `memcacheds`,
/// `Policy` → `policies`, `Box` → `boxes`), so the generator and the derive agree.
pub fn default_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

/// Checks a project name: lowercase letters, digits and `-`, starting with a letter — a valid
/// crate name, binary name and Kubernetes object name at once.
pub fn check_project_name(name: &str) -> Result<(), InvalidName> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if ok {
        return Ok(());
    }
    Err(InvalidName(format!(
        "invalid project name {name:?}: use lowercase letters, digits and '-', starting with a \
         letter, at most 40 characters (it becomes the crate, binary and Deployment name); pass \
         --name, e.g. --name {}",
        suggestion_subdomain(name).replace('.', "-")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(check_kind("Memcached").is_ok());
        assert!(check_kind("CronTab2").is_ok());
        let err = check_kind("cron-tab").unwrap_err().0;
        assert!(
            err.contains("UpperCamelCase") && err.contains("--kind CronTab"),
            "{err}"
        );
        assert!(check_kind("").is_err());
        assert!(check_kind("Cron_Tab").is_err());
    }

    #[test]
    fn groups_and_domains() {
        assert!(check_group("cache.example.com").is_ok());
        let err = check_group("Cache.Example.com").unwrap_err().0;
        assert!(
            err.contains("DNS-1123") && err.contains("cache.example.com"),
            "{err}"
        );
        assert!(
            check_group("apps.k8s.io")
                .unwrap_err()
                .0
                .contains("reserved")
        );
        assert!(
            check_group("cache")
                .unwrap_err()
                .0
                .contains("cache.example.com")
        );
        assert!(check_dns_subdomain("--domain", "-bad.com").is_err());
    }

    #[test]
    fn versions() {
        for ok in ["v1", "v2", "v1alpha1", "v2beta3", "v10beta12"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1", "v0", "v01", "v1alpha", "v1gamma1", "V1", "v1beta01", "",
        ] {
            let err = check_version(bad).unwrap_err().0;
            assert!(err.contains("v1alpha1"), "{bad}: {err}");
        }
    }

    #[test]
    fn derived_names() {
        assert_eq!(snake("CronTab"), "cron_tab");
        assert_eq!(
            snake("HorizontalPodAutoscaler"),
            "horizontal_pod_autoscaler"
        );
        assert_eq!(snake("APIService"), "api_service");
        assert_eq!(default_plural("Memcached"), "memcacheds");
        assert_eq!(default_plural("Policy"), "policies");
        assert_eq!(default_plural("Gateway"), "gateways");
        assert_eq!(default_plural("Box"), "boxes");
        assert!(check_project_name("memcached-operator").is_ok());
        assert!(
            check_project_name("Memcached_Operator")
                .unwrap_err()
                .0
                .contains("--name")
        );
    }
}
