//! The corpus: representative resource types, together covering every schema feature the derive
//! supports. Each module is one resource (or one kind with several versions).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubeforge::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// 1. The classic: namespaced, status + scale subresources, printer columns, names, labels.
pub mod memcached {
    use super::*;

    /// Memcached runs a memcached Deployment of `size` replicas.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kubeforge(
        group = "cache.example.com",
        version = "v1",
        status = MemcachedStatus,
        short_name = "mc",
        category = "all",
        category = "caches",
        scale(spec_replicas_path = ".spec.size", status_replicas_path = ".status.replicas", label_selector_path = ".status.selector"),
        printer_column(name = "Size", type = "integer", json_path = ".spec.size", description = "Desired replicas", format = "int32"),
        printer_column(name = "Ready", type = "integer", json_path = ".status.replicas"),
        printer_column(name = "Image", type = "string", json_path = ".spec.image", priority = 1),
        printer_column(name = "Age", type = "date", json_path = ".metadata.creationTimestamp"),
        label(key = "app.kubernetes.io/part-of", value = "memcached-operator"),
        annotation(key = "example.com/owner", value = "team-cache"),
        derive = "PartialEq"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct MemcachedSpec {
        /// Number of memcached pods.
        #[kubeforge(minimum = 1, maximum = 10, default = 3)]
        #[serde(default = "three")]
        pub size: i32,
        /// Container image.
        #[kubeforge(pattern = "^[a-z0-9./:-]+$", min_length = 1)]
        pub image: String,
        /// Optional memory limit.
        pub memory: Option<Quantity>,
    }

    fn three() -> i32 {
        3
    }

    /// Observed state.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
    pub struct MemcachedStatus {
        /// Ready replicas.
        #[serde(default)]
        pub replicas: i32,
        /// Pod label selector, for the scale subresource.
        pub selector: Option<String>,
        /// Standard conditions.
        #[serde(default)]
        pub conditions: Vec<Condition>,
    }
}

/// 2. Cluster-scoped, unit enums (documented variants and not), `enum_values`, `format`.
pub mod policy {
    use super::*;

    /// A cluster-wide policy.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(
        group = "policy.example.com",
        version = "v1beta1",
        kind = "ClusterPolicy",
        plural = "clusterpolicies",
        cluster,
        short_name = "cpol"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ClusterPolicySpec {
        pub action: Action,
        pub severity: Option<Severity>,
        /// One of the listed strings.
        #[kubeforge(enum_values = ["audit", "enforce"], default = "audit")]
        pub mode: String,
        /// When the policy starts applying.
        #[kubeforge(format = "date-time")]
        pub not_before: Option<String>,
        #[kubeforge(format = "email")]
        pub contact: Option<String>,
    }

    /// What to do on a violation.
    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub enum Action {
        /// Allow and log.
        Allow,
        /// Reject the request.
        Deny,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Severity {
        Low,
        High,
    }
}

/// 3. Data-carrying enums: externally tagged, internally tagged, adjacently tagged, untagged.
pub mod backup {
    use super::*;

    /// A backup of a database.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "backup.example.com", version = "v1alpha1", status = BackupStatus)]
    pub struct BackupSpec {
        /// Where to store the backup (exactly one).
        pub target: Target,
        /// How often.
        pub schedule: Schedule,
        /// Retention as a count or a duration.
        pub retention: Option<Retention>,
        pub notify: Option<Notify>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
    #[serde(rename_all = "camelCase")]
    pub enum Target {
        S3 {
            /// Bucket names have 3 to 63 characters.
            #[kubeforge(min_length = 3, max_length = 63)]
            bucket: String,
            region: Option<String>,
        },
        Gcs {
            bucket: String,
        },
        Volume(VolumeTarget),
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct VolumeTarget {
        pub claim_name: String,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[serde(tag = "type")]
    pub enum Schedule {
        Cron { expression: String },
        Interval { minutes: u32 },
        Manual,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[serde(untagged)]
    pub enum Retention {
        Count(i64),
        Duration(String),
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[serde(tag = "kind", content = "config")]
    pub enum Notify {
        Slack(String),
        Email(String),
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
    pub struct BackupStatus {
        pub last_run: Option<Time>,
    }
}

/// 4. Lists: sets, list-type map with keys, atomic lists, item counts.
pub mod firewall {
    use super::*;

    /// Firewall rules.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "net.example.com", version = "v1")]
    #[serde(rename_all = "camelCase")]
    pub struct FirewallSpec {
        /// Allowed CIDRs (a set: no duplicates).
        pub allowed_cidrs: BTreeSet<String>,
        /// Open ports.
        #[kubeforge(max_items = 3)]
        pub open_ports: HashSet<u16>,
        /// Rules keyed by name and protocol.
        #[kubeforge(
            list_type = "map",
            list_map_key = "name",
            list_map_key = "protocol",
            min_items = 1
        )]
        pub rules: Vec<Rule>,
        /// Replaced as a whole on apply.
        #[kubeforge(list_type = "atomic")]
        pub tags: Vec<String>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
    pub struct Rule {
        pub name: String,
        #[kubeforge(enum_values = ["TCP", "UDP"])]
        pub protocol: String,
        #[kubeforge(minimum = 1, maximum = 65535)]
        pub port: i32,
    }
}

/// 5. Maps: string maps, maps of objects, atomic maps, property counts.
pub mod bundle {
    use super::*;

    /// A bundle of settings.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "config.example.com", version = "v1", kind = "ConfigBundle")]
    #[serde(rename_all = "camelCase")]
    pub struct ConfigBundleSpec {
        /// Plain settings.
        #[kubeforge(max_properties = 4)]
        pub settings: BTreeMap<String, String>,
        /// Per-environment overrides.
        pub environments: HashMap<String, Environment>,
        /// Replaced as a whole.
        #[kubeforge(map_type = "atomic")]
        pub owner: Owner,
        #[kubeforge(min_properties = 1)]
        pub weights: Option<BTreeMap<String, f64>>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct Environment {
        pub replicas: i32,
        pub debug: Option<bool>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct Owner {
        pub team: String,
        pub email: Option<String>,
    }
}

/// 6. Kubernetes value types: IntOrString, Quantity, Time, conditions, label selectors.
pub mod workload {
    use super::*;

    /// A workload with resource requests.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "apps.example.com", version = "v1", status = WorkloadStatus)]
    #[serde(rename_all = "camelCase")]
    pub struct WorkloadSpec {
        pub max_unavailable: IntOrString,
        pub max_surge: Option<IntOrString>,
        pub cpu: Quantity,
        pub memory: Option<Quantity>,
        pub selector: LabelSelector,
        pub start_after: Option<Time>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct WorkloadStatus {
        pub conditions: Option<Vec<Condition>>,
        pub observed_generation: Option<i64>,
        pub last_update: Option<Time>,
    }
}

/// 7. Free-form values: serde_json::Value, flattened extras, preserve-unknown-fields.
pub mod plugin {
    use super::*;

    /// A plugin with free-form configuration.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "plugins.example.com", version = "v1")]
    pub struct PluginSpec {
        pub name: String,
        /// Any JSON.
        pub config: serde_json::Value,
        /// Kept as written.
        #[kubeforge(preserve_unknown_fields)]
        pub raw: Option<Raw>,
        /// Unknown keys land here.
        #[serde(flatten)]
        pub extra: BTreeMap<String, serde_json::Value>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct Raw {
        pub version: Option<String>,
    }
}

/// 8. Embedded objects: a whole Kubernetes object, and a k8s-openapi pod template.
pub mod job {
    use super::*;

    /// Runs an embedded object template.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "batch.example.com", version = "v1", kind = "TemplateJob")]
    pub struct TemplateJobSpec {
        /// Any Kubernetes object (apiVersion, kind, metadata, ...).
        #[kubeforge(embedded_resource)]
        pub object: serde_json::Value,
        /// A pod template, typed.
        pub template: PodTemplateSpec,
    }
}

/// 9. CEL: rules on fields and types, messageExpression, reason, fieldPath, immutability, root rules.
pub mod rollout {
    use super::*;

    /// A progressive rollout.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(
        group = "deploy.example.com",
        version = "v1",
        status = RolloutStatus,
        validation(rule = "self.minReplicas <= self.maxReplicas", message = "minReplicas must not exceed maxReplicas", reason = "FieldValueInvalid", field_path = ".minReplicas"),
        root_validation(rule = "!has(self.status) || self.status.step <= 100", message = "status.step is a percentage")
    )]
    #[serde(rename_all = "camelCase")]
    pub struct RolloutSpec {
        #[kubeforge(validation(
            rule = "self.size() > 0",
            message_expression = "'name must not be empty'"
        ))]
        pub name: String,
        pub min_replicas: i32,
        pub max_replicas: i32,
        /// Cannot change after creation.
        #[kubeforge(immutable)]
        pub strategy: String,
        #[kubeforge(validation(
            rule = "!oldSelf.hasValue() || self >= oldSelf.value()",
            message = "generation only grows",
            optional_old_self
        ))]
        pub generation: Option<i64>,
        pub steps: Vec<Step>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
    #[kubeforge(validation(rule = "self.weight <= 100", message = "weight is a percentage"))]
    pub struct Step {
        #[kubeforge(minimum = 0)]
        pub weight: i32,
        pub pause_seconds: Option<u32>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
    pub struct RolloutStatus {
        pub step: i32,
    }
}

/// 10. Numbers and strings: exclusive bounds, multipleOf, integer widths, lengths.
pub mod tuning {
    use super::*;

    /// Tuning knobs.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "perf.example.com", version = "v2beta3")]
    #[serde(rename_all = "camelCase")]
    pub struct TuningSpec {
        #[kubeforge(minimum = 0, exclusive_minimum, maximum = 1, exclusive_maximum)]
        pub ratio: f64,
        #[kubeforge(multiple_of = 8)]
        pub block_size: u32,
        pub small: u8,
        pub big: i64,
        pub unsigned_big: u64,
        #[kubeforge(min_length = 3, max_length = 8)]
        pub label: String,
        #[kubeforge(minimum = -10.5, maximum = 10.5)]
        pub offset: f32,
    }
}

/// 11. Defaults of every shape, checked at build time where possible and by the server.
pub mod defaults {
    use super::*;

    /// Everything has a default.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "defaults.example.com", version = "v1", kind = "Defaulted")]
    #[serde(rename_all = "camelCase")]
    pub struct DefaultedSpec {
        #[kubeforge(default = 8080)]
        pub port: Option<i32>,
        #[kubeforge(default = "info", enum_values = ["debug", "info", "warn"])]
        pub log_level: Option<String>,
        #[kubeforge(default = true)]
        pub enabled: Option<bool>,
        #[kubeforge(default = 0.5)]
        pub ratio: Option<f64>,
        #[kubeforge(default = ["a", "b"])]
        pub names: Option<Vec<String>>,
        #[kubeforge(default_json = r#"{"team": "platform"}"#)]
        pub owner: Option<BTreeMap<String, String>>,
        #[kubeforge(default = "Always")]
        pub policy: Option<PullPolicy>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub enum PullPolicy {
        Always,
        IfNotPresent,
    }
}

/// 12. A recursive type: the recursion point keeps unknown fields (no finite structural schema).
pub mod tree {
    use super::*;

    /// A tree of nodes.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "data.example.com", version = "v1")]
    pub struct TreeSpec {
        pub root: Node,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct Node {
        pub value: String,
        #[serde(default)]
        pub children: Vec<Node>,
    }
}

/// 13. Several versions of one kind: merged into one CRD, `v1` stores, `v1alpha1` deprecated.
pub mod widget {
    use super::*;

    pub mod v1alpha1 {
        use super::*;

        /// The first widget API.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
        #[kubeforge(
            group = "widgets.example.com",
            version = "v1alpha1",
            kind = "Widget",
            deprecated,
            deprecation_warning = "widgets.example.com/v1alpha1 is deprecated; use v1"
        )]
        pub struct WidgetSpec {
            pub size: i32,
        }
    }

    pub mod v1 {
        use super::*;

        /// The stable widget API.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
        #[kubeforge(group = "widgets.example.com", version = "v1", kind = "Widget", storage, status = WidgetStatus)]
        pub struct WidgetSpec {
            #[kubeforge(minimum = 0)]
            pub size: i64,
            pub color: Option<String>,
        }

        #[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
        pub struct WidgetStatus {
            pub ready: bool,
        }
    }
}

/// 14. Long documentation, capped so the CRD stays small.
pub mod documented {
    use super::*;

    /// A resource with long documentation that would otherwise make the CRD large: every
    /// description is cut to the length given by `max_description_len`.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "docs.example.com", version = "v1", max_description_len = 40)]
    pub struct DocumentedSpec {
        /// This field has a very long description, which goes on and on about details that
        /// nobody reads in `kubectl explain`, and is cut short in the schema.
        pub field: String,
        /// Short.
        pub other: i32,
    }
}

/// 15. serde renames, skips, container defaults and nested KubeSchema types (structs and enums).
pub mod renamed {
    use super::*;

    /// Serde attributes are honoured by the schema.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default)]
    #[kubeforge(group = "serde.example.com", version = "v1", kind = "Renamed")]
    #[serde(rename_all = "kebab-case", default)]
    pub struct RenamedSpec {
        pub max_connections: i32,
        #[serde(rename = "TTL")]
        pub ttl_seconds: i64,
        #[serde(skip)]
        pub cache: Option<String>,
        pub mode: Mode,
        pub limits: Limits,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, KubeSchema)]
    #[serde(rename_all = "camelCase")]
    pub enum Mode {
        #[default]
        Fast,
        Careful {
            #[kubeforge(minimum = 1)]
            retries: i32,
        },
    }

    #[derive(Serialize, Deserialize, Clone, Debug, Default, KubeSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct Limits {
        #[kubeforge(maximum = 100)]
        pub cpu_percent: i32,
        #[kubeforge(pattern = "^[0-9]+(Mi|Gi)$")]
        pub memory: Option<String>,
    }
}

/// 16. Field selectors and a version that is not served.
pub mod pet {
    use super::*;

    /// A pet, selectable by species.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(
        group = "pets.example.com",
        version = "v1",
        selectable_field = ".spec.species",
        selectable_field = ".spec.age"
    )]
    pub struct PetSpec {
        pub species: String,
        pub age: i32,
    }
}

/// 17. Shapes that once lost or refused real objects.
///
/// Maps with integer keys, one generic [`KubeSchema`] type at two parameters, an internally
/// tagged enum with a newtype variant, `isize` and `usize`, a `KubeSchema` newtype, and a doc
/// comment that starts with a heading.
pub mod shapes {
    use super::*;

    /// # Shapes
    ///
    /// A resource whose every field is a shape the derive once got wrong.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kubeforge(group = "shapes.example.com", version = "v1")]
    #[serde(rename_all = "camelCase")]
    pub struct ShapeSpec {
        /// Port → the service listening on it.
        pub ports: BTreeMap<u16, String>,
        pub memory: Bounds<Quantity>,
        pub versions: Bounds<String>,
        pub trigger: Trigger,
        pub offset: isize,
        pub count: usize,
        pub replicas: Replicas,
        /// schemars' own attributes are the escape hatch.
        #[schemars(length(min = 2, max = 8))]
        pub label: String,
    }

    /// A replica count: a newtype, written as its inner number.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
    pub struct Replicas(#[kubeforge(minimum = 1, maximum = 10)] pub i32);

    /// A closed range of `T`.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
    pub struct Bounds<T> {
        pub min: T,
        pub max: T,
    }

    /// What starts a run.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
    #[serde(tag = "type")]
    pub enum Trigger {
        Cron { schedule: String },
        Webhook(WebhookTrigger),
    }

    /// A webhook trigger's settings.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
    pub struct WebhookTrigger {
        pub url: String,
        pub secret: Option<String>,
    }
}

/// 18. Enums whose variants carry different shapes.
///
/// An adjacently tagged enum whose content is a struct in each variant (one structural schema: every
/// variant's fields, each variant's `required` in its branch), untagged enums of one scalar type
/// (a known name or any string; an integer or a float), and the two shapes no structural schema
/// describes, kept unvalidated: an untagged string-or-struct and adjacently tagged content that is
/// a string in one variant and a struct in another.
pub mod unions {
    use super::*;

    /// A pipeline of steps.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kubeforge(group = "unions.example.com", version = "v1")]
    pub struct PipelineSpec {
        pub steps: Vec<Step>,
        pub source: Source,
        pub image: ImageRef,
        pub limit: Limit,
        pub alert: Option<Alert>,
    }

    /// One step: the operation and its arguments.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
    #[serde(tag = "op", content = "args")]
    pub enum Step {
        Scale {
            #[kubeforge(minimum = 0)]
            replicas: i32,
        },
        Wait(WaitArgs),
        Pause,
    }

    /// How long to wait.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
    pub struct WaitArgs {
        pub seconds: u32,
        pub reason: Option<String>,
    }

    /// A repository by name, or spelled out.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(untagged)]
    pub enum Source {
        Name(String),
        Git {
            url: String,
            revision: Option<String>,
        },
    }

    /// A well-known image, or any reference.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(untagged)]
    pub enum ImageRef {
        Known(KnownImage),
        Custom(String),
    }

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum KnownImage {
        Nginx,
        Redis,
    }

    /// A whole count or a fraction.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(untagged)]
    pub enum Limit {
        Count(i64),
        Fraction(f64),
    }

    /// Where to send alerts: an address, or a webhook.
    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
    #[serde(tag = "channel", content = "target")]
    pub enum Alert {
        Email(String),
        Webhook { url: String },
    }
}
