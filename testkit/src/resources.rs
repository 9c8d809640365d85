//! The table of resource types the server serves: built-in kinds plus CRD-registered ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// Where a CRD's scale subresource reads and writes replicas.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// JSON path (`.spec.replicas`) of the desired replica count.
    pub spec_replicas: String,
    /// JSON path (`.status.replicas`) of the observed replica count.
    pub status_replicas: String,
    /// JSON path of the serialized label selector, if any.
    pub label_selector: Option<String>,
}

/// One printer column of a CRD version (`additionalPrinterColumns`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// What the server knows about one CRD version beyond the built-in shape.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomInfo {
    /// The version's `openAPIV3Schema` (validation, pruning, defaulting).
    pub schema: Option<Value>,
    pub printer_columns: Vec<PrinterColumn>,
    /// `selectableFields` as field paths without the leading dot (`spec.color`).
    pub selectable_fields: Vec<String>,
    /// Name of the CRD that registered this resource.
    pub crd_name: String,
    /// Whether the schema has `default`s, which are applied on every read too (objects stored
    /// before a default was added get it, as from kube-apiserver).
    pub defaults_on_read: bool,
    /// The CRD's conversion webhook (`spec.conversion.strategy: Webhook`), if any.
    pub conversion: Option<ConversionWebhook>,
}

/// Where a CRD's versions are converted: its webhook, and the version objects are stored in.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionWebhook {
    /// `clientConfig.url` (`None` for a Service reference, which cannot be reached).
    pub url: Option<String>,
    /// `clientConfig.caBundle`, decoded PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// The storage version (`v1`).
    pub storage_version: String,
}

/// One served group/version/resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    pub status: bool,
    /// `Some` when the scale subresource is served.
    pub scale: Option<ScalePaths>,
    /// Field selector paths accepted besides `metadata.name` / `metadata.namespace`.
    pub field_selectors: Vec<String>,
    /// `Some` for resources registered from a CRD.
    pub custom: Option<CustomInfo>,
    /// How requests are answered: from the store, or computed for resources never stored.
    pub served: Served,
}

/// How a resource's requests are answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Served {
    /// Objects kept in the store: every verb.
    Stored,
    /// A create-only review (SubjectAccessReview, TokenReview, …): answered, never stored.
    Review,
    /// `Binding`: create-only, it writes the Pod it names.
    Binding,
    /// `ComponentStatus`: get and list of the control plane's health, computed on each read.
    ComponentStatus,
}

impl ResourceInfo {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key shared by every version of the resource. `events.k8s.io` Events are
    /// the core Events, as in kube-apiserver: one store served through both APIs.
    pub fn key(&self) -> ResourceKey {
        let group = if self.group == "events.k8s.io" && self.plural == "events" {
            String::new()
        } else {
            self.group.clone()
        };
        ResourceKey {
            group,
            plural: self.plural.clone(),
        }
    }

    /// `pods` or `deployments.apps`, as the real server names a resource in messages.
    pub fn group_resource(&self) -> String {
        ResourceKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
        .to_string()
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        match self.served {
            Served::Stored => {}
            Served::Review | Served::Binding => return vec!["create"],
            Served::ComponentStatus => return vec!["get", "list"],
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// `group/kind` identifying the kind for the strategic merge patch tables.
    pub fn patch_kind(&self) -> String {
        format!("{}/{}", self.api_version(), self.kind)
    }
}

/// Storage identity of a resource: every served version of it shares one set of objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    pub group: String,
    pub plural: String,
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// Built-in kind description: (group, version, kind, plural, short names, namespaced, status, scale).
struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    status: bool,
    scale: bool,
    fields: &'static [&'static str],
    categories: &'static [&'static str],
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        short,
        namespaced,
        status,
        scale: false,
        fields: &[],
        categories: &[],
    }
}

const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const ALL: &[&str] = &["all"];

fn builtins() -> Vec<Builtin> {
    vec![
        Builtin {
            fields: POD_FIELDS,
            categories: ALL,
            ..b("", "v1", "Pod", "pods", &["po"], true, true)
        },
        Builtin {
            categories: ALL,
            ..b("", "v1", "Service", "services", &["svc"], true, true)
        },
        b("", "v1", "ConfigMap", "configmaps", &["cm"], true, false),
        Builtin {
            fields: &["type"],
            ..b("", "v1", "Secret", "secrets", &[], true, false)
        },
        Builtin {
            fields: &["status.phase"],
            ..b("", "v1", "Namespace", "namespaces", &["ns"], false, true)
        },
        Builtin {
            fields: &["spec.unschedulable"],
            ..b("", "v1", "Node", "nodes", &["no"], false, true)
        },
        b(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            &["sa"],
            true,
            false,
        ),
        b("", "v1", "Endpoints", "endpoints", &["ep"], true, false),
        b(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            &["pvc"],
            true,
            true,
        ),
        b(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            &["pv"],
            false,
            true,
        ),
        Builtin {
            fields: EVENT_FIELDS,
            ..b("", "v1", "Event", "events", &["ev"], true, false)
        },
        Builtin {
            scale: true,
            categories: ALL,
            fields: &[],
            ..b(
                "apps",
                "v1",
                "Deployment",
                "deployments",
                &["deploy"],
                true,
                true,
            )
        },
        Builtin {
            scale: true,
            categories: ALL,
            fields: &["status.replicas"],
            ..b(
                "apps",
                "v1",
                "ReplicaSet",
                "replicasets",
                &["rs"],
                true,
                true,
            )
        },
        Builtin {
            scale: true,
            categories: ALL,
            ..b(
                "apps",
                "v1",
                "StatefulSet",
                "statefulsets",
                &["sts"],
                true,
                true,
            )
        },
        Builtin {
            categories: ALL,
            ..b("apps", "v1", "DaemonSet", "daemonsets", &["ds"], true, true)
        },
        b(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            &[],
            true,
            false,
        ),
        Builtin {
            fields: &["status.successful"],
            categories: ALL,
            ..b("batch", "v1", "Job", "jobs", &[], true, true)
        },
        Builtin {
            categories: ALL,
            ..b("batch", "v1", "CronJob", "cronjobs", &["cj"], true, true)
        },
        Builtin {
            categories: ALL,
            ..b(
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                &["hpa"],
                true,
                true,
            )
        },
        // The same objects through v1 (one store; `convert::hpa` converts).
        Builtin {
            categories: ALL,
            ..b(
                "autoscaling",
                "v1",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                &["hpa"],
                true,
                true,
            )
        },
        b(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            &["ing"],
            true,
            true,
        ),
        b(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            &[],
            false,
            false,
        ),
        b(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            &["netpol"],
            true,
            false,
        ),
        b(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            &[],
            true,
            false,
        ),
        b(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            &[],
            true,
            false,
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            &[],
            true,
            false,
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            &[],
            true,
            false,
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            &[],
            false,
            false,
        ),
        b(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            &[],
            false,
            false,
        ),
        Builtin {
            fields: crate::convert::EVENTS_API_FIELD_LABELS,
            ..b(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                &["ev"],
                true,
                false,
            )
        },
        b(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            &["crd", "crds"],
            false,
            true,
        ),
        b(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            &[],
            false,
            false,
        ),
        b(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            &[],
            false,
            false,
        ),
        b(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            &["pdb"],
            true,
            true,
        ),
        b(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            &["pc"],
            false,
            false,
        ),
        b(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            &["sc"],
            false,
            false,
        ),
    ]
}

/// The other kinds kube-apiserver 1.37 serves from storage (`kubectl api-resources` on a real
/// control plane), which the server keeps without behaviour of their own. Columns: group (`-`
/// for core), version, kind, plural, scope, subresources, short names, categories.
const STORED_KINDS: &str = "
-                            v1 LimitRange                       limitranges                       ns      -            limits -
-                            v1 PodTemplate                      podtemplates                      ns      -            -      -
-                            v1 ReplicationController            replicationcontrollers            ns      status,scale rc     all
-                            v1 ResourceQuota                    resourcequotas                    ns      status       quota  -
apiregistration.k8s.io       v1 APIService                       apiservices                       cluster status       -      api-extensions
admissionregistration.k8s.io v1 MutatingAdmissionPolicy          mutatingadmissionpolicies         cluster -            -      api-extensions
admissionregistration.k8s.io v1 MutatingAdmissionPolicyBinding   mutatingadmissionpolicybindings   cluster -            -      api-extensions
admissionregistration.k8s.io v1 ValidatingAdmissionPolicy        validatingadmissionpolicies       cluster status       -      api-extensions
admissionregistration.k8s.io v1 ValidatingAdmissionPolicyBinding validatingadmissionpolicybindings cluster -            -      api-extensions
certificates.k8s.io          v1 CertificateSigningRequest        certificatesigningrequests        cluster status       csr    -
certificates.k8s.io          v1 ClusterTrustBundle               clustertrustbundles               cluster -            -      -
certificates.k8s.io          v1 PodCertificateRequest            podcertificaterequests            ns      status       -      -
flowcontrol.apiserver.k8s.io v1 FlowSchema                       flowschemas                       cluster status       -      -
flowcontrol.apiserver.k8s.io v1 PriorityLevelConfiguration       prioritylevelconfigurations       cluster status       -      -
networking.k8s.io            v1 IPAddress                        ipaddresses                       cluster -            ip     -
networking.k8s.io            v1 ServiceCIDR                      servicecidrs                      cluster status       -      -
node.k8s.io                  v1 RuntimeClass                     runtimeclasses                    cluster -            -      -
resource.k8s.io              v1 DeviceClass                      deviceclasses                     cluster -            -      -
resource.k8s.io              v1 DeviceTaintRule                  devicetaintrules                  cluster status       -      -
resource.k8s.io              v1 ResourceClaim                    resourceclaims                    ns      status       -      -
resource.k8s.io              v1 ResourceClaimTemplate            resourceclaimtemplates            ns      -            -      -
resource.k8s.io              v1 ResourceSlice                    resourceslices                    cluster -            -      -
storage.k8s.io               v1 CSIDriver                        csidrivers                        cluster -            -      -
storage.k8s.io               v1 CSINode                          csinodes                          cluster status       -      -
storage.k8s.io               v1 CSIStorageCapacity               csistoragecapacities              ns      -            -      -
storage.k8s.io               v1 VolumeAttachment                 volumeattachments                 cluster status       -      -
storage.k8s.io               v1 VolumeAttributesClass            volumeattributesclasses           cluster -            vac    -
storagemigration.k8s.io      v1 StorageVersionMigration          storageversionmigrations          cluster status       -      -
";

/// The rows of [`STORED_KINDS`].
fn stored_kinds() -> impl Iterator<Item = ResourceInfo> {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| *x != "-")
            .map(str::to_string)
            .collect()
    };
    STORED_KINDS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(move |line| {
            let c: Vec<&str> = line.split_whitespace().collect();
            let [
                group,
                version,
                kind,
                plural,
                scope,
                subresources,
                short,
                categories,
            ] = c[..]
            else {
                panic!("STORED_KINDS row {line:?} does not have eight columns");
            };
            let subresources = list(subresources);
            ResourceInfo {
                group: if group == "-" {
                    String::new()
                } else {
                    group.into()
                },
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: kind.to_ascii_lowercase(),
                short_names: list(short),
                categories: list(categories),
                namespaced: scope == "ns",
                status: subresources.iter().any(|s| s == "status"),
                scale: subresources
                    .iter()
                    .any(|s| s == "scale")
                    .then(|| ScalePaths {
                        spec_replicas: ".spec.replicas".into(),
                        status_replicas: ".status.replicas".into(),
                        label_selector: None,
                    }),
                field_selectors: match kind {
                    "ReplicationController" => vec!["status.replicas".into()],
                    "CertificateSigningRequest" => vec!["spec.signerName".into()],
                    _ => Vec::new(),
                },
                custom: None,
                served: Served::Stored,
            }
        })
}

/// The resources kube-apiserver answers without storing them (the reviews, Binding,
/// ComponentStatus): (group, kind, plural, namespaced, how).
const COMPUTED: &[(&str, &str, &str, bool, Served)] = &[
    ("", "Binding", "bindings", true, Served::Binding),
    (
        "",
        "ComponentStatus",
        "componentstatuses",
        false,
        Served::ComponentStatus,
    ),
    (
        "authentication.k8s.io",
        "TokenReview",
        "tokenreviews",
        false,
        Served::Review,
    ),
    (
        "authentication.k8s.io",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
        Served::Review,
    ),
    (
        "authorization.k8s.io",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
        Served::Review,
    ),
    (
        "authorization.k8s.io",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
        Served::Review,
    ),
    (
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        Served::Review,
    ),
    (
        "authorization.k8s.io",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
        Served::Review,
    ),
];

fn computed() -> impl Iterator<Item = ResourceInfo> {
    COMPUTED
        .iter()
        .map(|(group, kind, plural, namespaced, served)| ResourceInfo {
            group: group.to_string(),
            version: "v1".into(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_ascii_lowercase(),
            short_names: match *served {
                Served::ComponentStatus => vec!["cs".into()],
                _ => Vec::new(),
            },
            categories: Vec::new(),
            namespaced: *namespaced,
            status: false,
            scale: None,
            field_selectors: Vec::new(),
            custom: None,
            served: *served,
        })
}

fn builtin_info(x: &Builtin) -> ResourceInfo {
    ResourceInfo {
        group: x.group.to_string(),
        version: x.version.to_string(),
        kind: x.kind.to_string(),
        plural: x.plural.to_string(),
        singular: x.kind.to_ascii_lowercase(),
        short_names: x.short.iter().map(|s| s.to_string()).collect(),
        categories: x.categories.iter().map(|s| s.to_string()).collect(),
        namespaced: x.namespaced,
        status: x.status,
        scale: x.scale.then(|| ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        }),
        field_selectors: x.fields.iter().map(|s| s.to_string()).collect(),
        custom: None,
        served: Served::Stored,
    }
}

/// All served resources, indexed by group → version → plural.
#[derive(Debug, Clone)]
pub struct Registry {
    by_gv: BTreeMap<(String, String), BTreeMap<String, Arc<ResourceInfo>>>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry {
            by_gv: BTreeMap::new(),
        };
        for x in builtins() {
            r.insert(builtin_info(&x));
        }
        for info in stored_kinds().chain(computed()) {
            r.insert(info);
        }
        r
    }
}

impl Registry {
    pub fn insert(&mut self, info: ResourceInfo) {
        self.by_gv
            .entry((info.group.clone(), info.version.clone()))
            .or_default()
            .insert(info.plural.clone(), Arc::new(info));
    }

    /// Removes every version registered by the CRD `crd_name`.
    pub fn remove_crd(&mut self, crd_name: &str) {
        for m in self.by_gv.values_mut() {
            m.retain(|_, r| r.custom.as_ref().is_none_or(|c| c.crd_name != crd_name));
        }
        self.by_gv.retain(|_, m| !m.is_empty());
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_gv
            .get(&(group.to_string(), version.to_string()))?
            .get(plural)
            .cloned()
    }

    /// Whether group/version is served at all (for the 404 message of unknown paths).
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.by_gv
            .contains_key(&(group.to_string(), version.to_string()))
    }

    /// Finds the resource for an `apiVersion` + `kind` (used by seeding and garbage collection).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.by_gv
            .get(&(group.to_string(), version.to_string()))?
            .values()
            .find(|r| r.kind == kind)
            .cloned()
    }

    /// Every served group/version with its resources.
    pub fn group_versions(
        &self,
    ) -> impl Iterator<Item = (&(String, String), &BTreeMap<String, Arc<ResourceInfo>>)> {
        self.by_gv.iter()
    }

    /// Groups in discovery order (core first, built-ins before custom), each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (g, v) in self.by_gv.keys() {
            match out.iter_mut().find(|(og, _)| og == g) {
                Some((_, vs)) => vs.push(v.clone()),
                None => out.push((g.clone(), vec![v.clone()])),
            }
        }
        for (_, vs) in out.iter_mut() {
            vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        out
    }

    /// Every resource, one entry per version.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_gv.values().flat_map(|m| m.values())
    }

    /// The preferred (newest) version of the resource stored under `key`.
    pub fn preferred(&self, key: &ResourceKey) -> Option<Arc<ResourceInfo>> {
        self.all()
            .filter(|r| r.group == key.group && r.plural == key.plural)
            .max_by_key(|r| version_priority(&r.version))
            .cloned()
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Kubernetes version ordering: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    (level, major, num.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_has_the_kinds_controllers_use() {
        let r = Registry::default();
        let dep = r.get("apps", "v1", "deployments").expect("deployments");
        assert!(dep.scale.is_some() && dep.status && dep.namespaced);
        assert_eq!(
            r.get("", "v1", "namespaces").map(|n| n.namespaced),
            Some(false)
        );
        assert!(
            r.by_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
                .is_some()
        );
        assert_eq!(dep.group_resource(), "deployments.apps");
    }

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1beta1", "v2", "v1", "v1alpha1", "v2beta2"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v1beta1", "v1alpha1"]);
    }
}
