//! The `#[kubeforge(...)]` attribute grammar, as `darling` models: one documented field per key.
//!
//! Parsing only: values are checked in `model`, which turns these into what `emit` needs.

use darling::util::{Flag, PreservedStrExpr, SpannedValue};
use darling::{FromDeriveInput, FromField, FromMeta, FromVariant};
use syn::{Expr, Ident, LitStr, Path, Type};

/// Resource-level attributes on the spec struct of `#[derive(CustomResource)]`.
#[derive(Debug, FromDeriveInput)]
#[darling(
    attributes(kubeforge),
    forward_attrs(doc, serde, schemars),
    supports(struct_named)
)]
pub struct ResourceAttrs {
    pub ident: Ident,
    pub vis: syn::Visibility,
    pub generics: syn::Generics,
    pub attrs: Vec<syn::Attribute>,
    pub data: darling::ast::Data<darling::util::Ignored, SchemaField>,

    /// API group, a DNS subdomain with at least one dot (`cache.example.com`).
    pub group: Option<LitStr>,
    /// Version: `v1`, `v1beta2`, `v2alpha1`, ...
    pub version: Option<LitStr>,
    /// Kind, UpperCamelCase; defaults to the struct name without its `Spec` suffix.
    #[darling(default)]
    pub kind: Option<LitStr>,
    /// Plural resource name; defaults to the lowercase kind, pluralised.
    #[darling(default)]
    pub plural: Option<LitStr>,
    /// Singular resource name; defaults to the lowercase kind.
    #[darling(default)]
    pub singular: Option<LitStr>,
    /// A `kubectl` short name (repeatable).
    #[darling(multiple)]
    pub short_name: Vec<LitStr>,
    /// A category such as `all` (repeatable).
    #[darling(multiple)]
    pub category: Vec<LitStr>,
    /// Namespaced scope (the default).
    pub namespaced: Flag,
    /// Cluster scope.
    pub cluster: Flag,
    /// The status type; enables the status subresource.
    #[darling(default)]
    pub status: Option<Path>,
    /// The scale subresource.
    #[darling(default)]
    pub scale: Option<ScaleAttrs>,
    /// An additional printer column (repeatable).
    #[darling(multiple)]
    pub printer_column: Vec<PrinterColumnAttrs>,
    /// A JSON path usable in field selectors (repeatable).
    #[darling(multiple)]
    pub selectable_field: Vec<LitStr>,
    /// Whether this version is served (default true).
    #[darling(default)]
    pub served: Option<SpannedValue<bool>>,
    /// Marks this version as the storage version (needed when a kind has several versions).
    pub storage: Flag,
    /// Marks this version as deprecated.
    pub deprecated: Flag,
    /// The warning returned to clients of a deprecated version.
    #[darling(default)]
    pub deprecation_warning: Option<LitStr>,
    /// A label on the CRD object (repeatable).
    #[darling(multiple)]
    pub label: Vec<KeyValue>,
    /// An annotation on the CRD object (repeatable).
    #[darling(multiple)]
    pub annotation: Vec<KeyValue>,
    /// Cap on every description's length in the schema (0 drops descriptions).
    #[darling(default)]
    pub max_description_len: Option<SpannedValue<usize>>,
    /// An extra derive on the root type (repeatable), e.g. `derive = "PartialEq"`.
    #[darling(multiple)]
    pub derive: Vec<Path>,
    /// The path of the `kubeforge` crate in generated code (default `::kubeforge`).
    #[darling(default)]
    pub crate_path: Option<Path>,
    /// `"manual"`: the spec implements `JsonSchema` itself (derive or hand-written).
    #[darling(default)]
    pub schema: Option<LitStr>,
    /// A CEL rule on the spec type (repeatable).
    #[darling(multiple)]
    pub validation: Vec<ValidationAttrs>,
    /// A CEL rule on the root object, e.g. comparing spec and status (repeatable).
    #[darling(multiple)]
    pub root_validation: Vec<ValidationAttrs>,
}

/// `scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas",
/// label_selector_path = ".status.selector")`.
#[derive(Debug, FromMeta)]
pub struct ScaleAttrs {
    pub spec_replicas_path: LitStr,
    pub status_replicas_path: LitStr,
    #[darling(default)]
    pub label_selector_path: Option<LitStr>,
}

/// `printer_column(name = "Ready", type = "integer", json_path = ".status.ready", ...)`.
#[derive(Debug, FromMeta)]
pub struct PrinterColumnAttrs {
    pub name: LitStr,
    #[darling(rename = "type")]
    pub type_: LitStr,
    pub json_path: LitStr,
    #[darling(default)]
    pub description: Option<LitStr>,
    #[darling(default)]
    pub format: Option<LitStr>,
    #[darling(default)]
    pub priority: Option<i32>,
}

/// `label(key = "app.kubernetes.io/part-of", value = "my-operator")`.
#[derive(Debug, FromMeta)]
pub struct KeyValue {
    pub key: LitStr,
    pub value: LitStr,
}

/// A CEL validation rule: `validation(rule = "self.min <= self.max", message = "...")`.
#[derive(Debug, FromMeta)]
pub struct ValidationAttrs {
    pub rule: LitStr,
    #[darling(default)]
    pub message: Option<LitStr>,
    #[darling(default)]
    pub message_expression: Option<LitStr>,
    /// `FieldValueInvalid`, `FieldValueForbidden`, `FieldValueRequired` or `FieldValueDuplicate`.
    #[darling(default)]
    pub reason: Option<LitStr>,
    #[darling(default)]
    pub field_path: Option<LitStr>,
    /// Evaluate the transition rule even when there is no old value.
    pub optional_old_self: Flag,
}

/// Container-level attributes of `#[derive(KubeSchema)]`.
#[derive(Debug, FromDeriveInput)]
#[darling(
    attributes(kubeforge),
    forward_attrs(doc, serde, schemars),
    supports(struct_named, struct_newtype, enum_any)
)]
pub struct SchemaAttrs {
    pub ident: Ident,
    pub generics: syn::Generics,
    pub attrs: Vec<syn::Attribute>,
    pub data: darling::ast::Data<SchemaVariant, SchemaField>,
    /// A CEL rule on this type (repeatable).
    #[darling(multiple)]
    pub validation: Vec<ValidationAttrs>,
    /// Keep unknown fields of this object instead of pruning them.
    pub preserve_unknown_fields: Flag,
    /// `atomic` or `granular`.
    #[darling(default)]
    pub map_type: Option<LitStr>,
    /// The path of the `kubeforge` crate in generated code.
    #[darling(default)]
    pub crate_path: Option<Path>,
}

/// An enum variant of a `KubeSchema` type: its fields may carry field attributes.
#[derive(Debug, FromVariant)]
#[darling(attributes(kubeforge), forward_attrs(doc, serde, schemars))]
pub struct SchemaVariant {
    pub ident: Ident,
    pub attrs: Vec<syn::Attribute>,
    pub fields: darling::ast::Fields<SchemaField>,
    pub discriminant: Option<Expr>,
}

/// Field-level validation attributes (on spec fields and on `KubeSchema` fields).
#[derive(Debug, FromField)]
#[darling(attributes(kubeforge), forward_attrs(doc, serde, schemars))]
pub struct SchemaField {
    pub ident: Option<Ident>,
    pub ty: Type,
    pub attrs: Vec<syn::Attribute>,

    #[darling(default)]
    pub minimum: Option<PreservedStrExpr>,
    #[darling(default)]
    pub maximum: Option<PreservedStrExpr>,
    pub exclusive_minimum: Flag,
    pub exclusive_maximum: Flag,
    #[darling(default)]
    pub multiple_of: Option<PreservedStrExpr>,
    #[darling(default)]
    pub min_length: Option<SpannedValue<u64>>,
    #[darling(default)]
    pub max_length: Option<SpannedValue<u64>>,
    /// A regular expression the string must match (compiled at build time).
    #[darling(default)]
    pub pattern: Option<LitStr>,
    #[darling(default)]
    pub min_items: Option<SpannedValue<u64>>,
    #[darling(default)]
    pub max_items: Option<SpannedValue<u64>>,
    #[darling(default)]
    pub min_properties: Option<SpannedValue<u64>>,
    #[darling(default)]
    pub max_properties: Option<SpannedValue<u64>>,
    /// The allowed values: `enum_values = ["a", "b"]`.
    #[darling(default)]
    pub enum_values: Option<PreservedStrExpr>,
    #[darling(default)]
    pub format: Option<LitStr>,
    /// The default, as a literal (`3`, `"x"`, `true`, `[1, 2]`).
    #[darling(default)]
    pub default: Option<PreservedStrExpr>,
    /// The default, as JSON text (for objects): `default_json = r#"{"a": 1}"#`.
    #[darling(default)]
    pub default_json: Option<LitStr>,
    /// A CEL rule on this field (repeatable).
    #[darling(multiple)]
    pub validation: Vec<ValidationAttrs>,
    /// The field cannot change once set (`self == oldSelf`).
    pub immutable: Flag,
    /// `atomic`, `set` or `map`.
    #[darling(default)]
    pub list_type: Option<LitStr>,
    /// A key of a `list_type = "map"` list (repeatable).
    #[darling(multiple)]
    pub list_map_key: Vec<LitStr>,
    /// `atomic` or `granular`.
    #[darling(default)]
    pub map_type: Option<LitStr>,
    /// Keep unknown fields below this field.
    pub preserve_unknown_fields: Flag,
    /// The field holds a whole Kubernetes object (apiVersion, kind, metadata).
    pub embedded_resource: Flag,
    /// Accepts an integer or a string.
    pub int_or_string: Flag,
    /// Allows `null`.
    pub nullable: Flag,
    /// Replaces the doc-comment description.
    #[darling(default)]
    pub description: Option<LitStr>,
}

impl SchemaField {
    /// Whether any kubeforge field attribute is present.
    pub fn has_schema_attrs(&self) -> bool {
        self.minimum.is_some()
            || self.maximum.is_some()
            || self.exclusive_minimum.is_present()
            || self.exclusive_maximum.is_present()
            || self.multiple_of.is_some()
            || self.min_length.is_some()
            || self.max_length.is_some()
            || self.pattern.is_some()
            || self.min_items.is_some()
            || self.max_items.is_some()
            || self.min_properties.is_some()
            || self.max_properties.is_some()
            || self.enum_values.is_some()
            || self.format.is_some()
            || self.default.is_some()
            || self.default_json.is_some()
            || !self.validation.is_empty()
            || self.immutable.is_present()
            || self.list_type.is_some()
            || !self.list_map_key.is_empty()
            || self.map_type.is_some()
            || self.preserve_unknown_fields.is_present()
            || self.embedded_resource.is_present()
            || self.int_or_string.is_present()
            || self.nullable.is_present()
            || self.description.is_some()
    }
}
