//! The built-in Kubernetes kinds `kubeforge create controller --kind <K>` can target.
//!
//! [`KINDS`] lists every object kind that k8s-openapi 0.29 knows for the Kubernetes version its
//! `latest` feature enables (the feature the CLI builds with), with the kind's API group,
//! version, plural resource name, scope and the Rust path a user writes to name its type.
//! Subresources (`Scale`, `Eviction` of pods, `TokenRequest`), lists and discovery documents
//! are left out; create-only kinds such as `TokenReview` or `Binding` are kept with
//! [`BuiltinKind::watchable`] set to `false`, since no controller can watch them.
//!
//! The table lives in `table.rs`, which is generated from the k8s-openapi sources in the cargo
//! registry: after bumping k8s-openapi run `python3 scripts/gen-kinds.py` from the workspace
//! root (`--check` fails when the file is out of date). Do not edit it by hand.
//!
//! [`resolve`] turns the user's `--kind` (and optional `--group` / `--version`) into one row.

mod table;

pub use table::KINDS;

/// One built-in kind: a row of [`KINDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinKind {
    /// The kind, as in an object's `kind` field (`Deployment`).
    pub kind: &'static str,
    /// The API group (`apps`); `""` for the core group.
    pub group: &'static str,
    /// The API version within the group (`v1`, `v1beta1`).
    pub version: &'static str,
    /// The plural resource name used in URLs and RBAC rules (`deployments`).
    pub plural: &'static str,
    /// Whether objects of this kind live in a namespace (`false`: cluster-scoped).
    pub namespaced: bool,
    /// Whether the API server lists and watches this kind, so a controller can reconcile it;
    /// `false` for create-only kinds such as `TokenReview`, `SubjectAccessReview` or `Binding`.
    pub watchable: bool,
    /// The public path of the k8s-openapi type (`k8s_openapi::api::apps::v1::Deployment`).
    pub rust_path: &'static str,
}

/// Why [`resolve`] found no single built-in kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No built-in kind matches the name (with the given `--group` / `--version`, if any).
    #[error(
        "unknown built-in kind `{kind}`{}; run `kubeforge kinds` for the full table",
        did_you_mean(.suggestions)
    )]
    Unknown {
        /// The `--kind` the user gave.
        kind: String,
        /// Up to 5 closest kinds by edit distance, as `Kind (group/version)`, closest first.
        suggestions: Vec<String>,
    },
    /// The kind exists in several API groups and no `--group` picked one.
    #[error(
        "kind `{kind}` exists in several API groups; add one of: {}",
        quoted(.candidates)
    )]
    Ambiguous {
        /// The `--kind` the user gave.
        kind: String,
        /// Every match, as the flags that select it: `--group <g> --version <v>`.
        candidates: Vec<String>,
    },
}

/// `; did you mean A (g/v), B (g/v)?`, or nothing without suggestions.
fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        many => format!("; did you mean one of {}?", many.join(", ")),
    }
}

/// The candidates in backticks, comma-separated.
fn quoted(candidates: &[String]) -> String {
    candidates
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many suggestions [`ResolveError::Unknown`] carries at most.
const MAX_SUGGESTIONS: usize = 5;

/// Resolves `--kind` (and optional `--group` / `--version`) to one built-in kind.
///
/// The kind matches case-sensitively first; only if nothing matches does it match
/// case-insensitively, against the kind or its plural (`deployment`, `deployments`). `--group`
/// and `--version` then filter the matches; `--group core` (or `""`) is the core group. Several
/// versions of one group resolve to the preferred version (stable before beta before alpha,
/// newest first: `autoscaling/v2` over `autoscaling/v1`); matches in several groups are
/// [`ResolveError::Ambiguous`].
pub fn resolve(
    kind: &str,
    group: Option<&str>,
    version: Option<&str>,
) -> Result<&'static BuiltinKind, ResolveError> {
    let mut named: Vec<&'static BuiltinKind> = KINDS.iter().filter(|k| k.kind == kind).collect();
    if named.is_empty() {
        named = KINDS
            .iter()
            .filter(|k| k.kind.eq_ignore_ascii_case(kind) || k.plural.eq_ignore_ascii_case(kind))
            .collect();
    }
    let group = group.map(|g| {
        if g.eq_ignore_ascii_case("core") {
            ""
        } else {
            g
        }
    });
    let matches: Vec<&'static BuiltinKind> = named
        .into_iter()
        .filter(|k| group.is_none_or(|g| k.group.eq_ignore_ascii_case(g)))
        .filter(|k| version.is_none_or(|v| k.version.eq_ignore_ascii_case(v)))
        .collect();

    let Some(&first) = matches.first() else {
        return Err(ResolveError::Unknown {
            kind: kind.to_owned(),
            suggestions: suggest(kind),
        });
    };
    if matches
        .iter()
        .all(|k| k.group == first.group && k.kind == first.kind)
    {
        let preferred = matches
            .iter()
            .copied()
            .max_by_key(|k| version_priority(k.version));
        return Ok(preferred.unwrap_or(first));
    }
    Err(ResolveError::Ambiguous {
        kind: kind.to_owned(),
        candidates: matches
            .iter()
            .map(|k| format!("--group {} --version {}", group_flag(k.group), k.version))
            .collect(),
    })
}

/// The group as a user passes it to `--group`: `core` for the core group.
fn group_flag(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}

/// Orders versions the way Kubernetes prefers them, greatest first: GA over beta over alpha,
/// then the higher major, then the higher pre-release number (`v2 > v1 > v1beta2 > v1alpha1`).
/// Versions that do not parse sort below all others.
fn version_priority(version: &str) -> Option<(u8, u32, u32)> {
    let rest = version.strip_prefix('v')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let major = rest[..digits].parse().ok()?;
    let (stability, pre) = match &rest[digits..] {
        "" => return Some((2, major, 0)),
        tail => match (tail.strip_prefix("beta"), tail.strip_prefix("alpha")) {
            (Some(n), _) => (1, n),
            (_, Some(n)) => (0, n),
            _ => return None,
        },
    };
    Some((stability, major, pre.parse().ok()?))
}

/// The kinds closest to `kind` by edit distance (to the kind or its plural, ignoring case),
/// formatted as `Kind (group/version)`; none further away than a third of the input (or 2).
fn suggest(kind: &str) -> Vec<String> {
    let query = kind.to_ascii_lowercase();
    let max_distance = (query.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, usize, &BuiltinKind)> = KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let to_kind = levenshtein(&query, &k.kind.to_ascii_lowercase());
            (to_kind.min(levenshtein(&query, k.plural)), i, k)
        })
        .filter(|(distance, _, _)| *distance <= max_distance)
        .collect();
    scored.sort_by_key(|&(distance, i, _)| (distance, i));
    scored
        .into_iter()
        .map(|(_, _, k)| format!("{} ({}/{})", k.kind, group_flag(k.group), k.version))
        .take(MAX_SUGGESTIONS)
        .collect()
}

/// Levenshtein distance between two strings, in chars (insertions, deletions, substitutions).
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::HashSet;

    use k8s_openapi::Resource;

    use super::*;

    #[test]
    fn deployment_resolves_to_apps_v1() {
        let k = resolve("Deployment", None, None).unwrap();
        assert_eq!((k.kind, k.group, k.version), ("Deployment", "apps", "v1"));
        assert_eq!(k.plural, "deployments");
        assert!(k.namespaced && k.watchable);
        assert_eq!(k.rust_path, "k8s_openapi::api::apps::v1::Deployment");
    }

    #[test]
    fn lowercase_and_plural_names_resolve() {
        for name in ["deployment", "deployments", "Deployments", "DEPLOYMENT"] {
            let k = resolve(name, None, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (k.kind, k.group, k.version),
                ("Deployment", "apps", "v1"),
                "{name}"
            );
        }
    }

    #[test]
    fn group_and_version_filter_matches() {
        let k = resolve("Deployment", Some("apps"), Some("v1")).unwrap();
        assert_eq!(k.kind, "Deployment");
        let err = resolve("Deployment", Some("core"), None).unwrap_err();
        let ResolveError::Unknown { suggestions, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            suggestions.first().map(String::as_str),
            Some("Deployment (apps/v1)")
        );
    }

    #[test]
    fn event_is_ambiguous_across_groups() {
        let err = resolve("Event", None, None).unwrap_err();
        let ResolveError::Ambiguous { kind, candidates } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(kind, "Event");
        assert!(
            candidates.contains(&"--group core --version v1".to_owned()),
            "{candidates:?}"
        );
        assert!(candidates.contains(&"--group events.k8s.io --version v1".to_owned()));
        let message = err.to_string();
        assert!(message.contains("--group events.k8s.io"), "{message}");
        assert!(message.contains("--group core"), "{message}");
    }

    #[test]
    fn event_with_group_resolves() {
        for core in ["core", "", "Core"] {
            let k = resolve("Event", Some(core), None).unwrap();
            assert_eq!((k.group, k.version), ("", "v1"), "--group {core:?}");
            assert_eq!(k.rust_path, "k8s_openapi::api::core::v1::Event");
        }
        let k = resolve("Event", Some("events.k8s.io"), Some("v1")).unwrap();
        assert_eq!(k.rust_path, "k8s_openapi::api::events::v1::Event");
    }

    #[test]
    fn several_versions_of_one_group_prefer_the_newest_stable() {
        let k = resolve("HorizontalPodAutoscaler", None, None).unwrap();
        assert_eq!((k.group, k.version), ("autoscaling", "v2"));
        let k = resolve("HorizontalPodAutoscaler", None, Some("v1")).unwrap();
        assert_eq!((k.group, k.version), ("autoscaling", "v1"));
        // Stable beats any beta or alpha of the same group.
        let k = resolve("ResourceClaim", None, None).unwrap();
        assert_eq!((k.group, k.version), ("resource.k8s.io", "v1"));
    }

    #[test]
    fn version_priority_orders_like_kubernetes() {
        let mut versions = ["v1alpha1", "v1", "v2beta2", "v1beta1", "v2", "v1beta2", "x"];
        versions.sort_by_key(|v| Reverse(version_priority(v)));
        assert_eq!(
            versions,
            ["v2", "v1", "v2beta2", "v1beta2", "v1beta1", "v1alpha1", "x"]
        );
    }

    #[test]
    fn misspelled_kind_is_unknown_with_suggestions() {
        let err = resolve("Deploymnet", None, None).unwrap_err();
        let ResolveError::Unknown { kind, suggestions } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(kind, "Deploymnet");
        assert_eq!(
            suggestions.first().map(String::as_str),
            Some("Deployment (apps/v1)")
        );
        assert!(suggestions.len() <= MAX_SUGGESTIONS);
        let message = err.to_string();
        assert!(message.contains("`Deploymnet`"), "{message}");
        assert!(message.contains("Deployment (apps/v1)"), "{message}");
        assert!(
            message.contains("run `kubeforge kinds` for the full table"),
            "{message}"
        );
    }

    #[test]
    fn far_off_kind_has_no_suggestions() {
        let err = resolve("Memcached", None, None).unwrap_err();
        assert_eq!(
            err,
            ResolveError::Unknown {
                kind: "Memcached".into(),
                suggestions: vec![]
            }
        );
        assert!(!err.to_string().contains("did you mean"));
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("pod", ""), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("deploymnet", "deployment"), 2);
    }

    #[test]
    fn table_is_sorted_unique_and_large() {
        let mut seen = HashSet::new();
        for k in KINDS {
            assert!(seen.insert((k.kind, k.group, k.version)), "duplicate {k:?}");
            assert!(k.rust_path.starts_with("k8s_openapi::"), "{k:?}");
            assert!(
                k.rust_path
                    .ends_with(&format!("::{}::{}", k.version, k.kind)),
                "{k:?}"
            );
            assert!(!k.plural.is_empty() && !k.kind.ends_with("List"), "{k:?}");
        }
        assert!(
            KINDS
                .windows(2)
                .all(|w| (w[0].kind, w[0].group) <= (w[1].kind, w[1].group))
        );
        let kinds: HashSet<_> = KINDS.iter().map(|k| k.kind).collect();
        assert!(kinds.len() >= 50, "only {} kinds", kinds.len());
    }

    #[test]
    fn create_only_kinds_are_not_watchable() {
        for name in [
            "TokenReview",
            "SubjectAccessReview",
            "SelfSubjectReview",
            "Binding",
        ] {
            assert!(!resolve(name, None, None).unwrap().watchable, "{name}");
        }
        assert!(resolve("ConfigMap", None, None).unwrap().watchable);
    }

    #[test]
    fn table_agrees_with_k8s_openapi() {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;

        fn check<R: Resource>(rust_path: &str) {
            let k = resolve(R::KIND, Some(R::GROUP), Some(R::VERSION)).unwrap();
            assert_eq!(k.plural, R::URL_PATH_SEGMENT);
            assert_eq!(k.rust_path, rust_path);
        }
        check::<k8s_openapi::api::apps::v1::Deployment>("k8s_openapi::api::apps::v1::Deployment");
        check::<k8s_openapi::api::core::v1::Event>("k8s_openapi::api::core::v1::Event");
        check::<apiextensions::CustomResourceDefinition>(concat!(
            "k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::",
            "CustomResourceDefinition",
        ));
        check::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(
            "k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService",
        );
    }
}
