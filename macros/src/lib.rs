//! Derive macros for kubeforge operators, re-exported by the `kubeforge` crate.
//!
//! - `#[derive(CustomResource)]` on a spec struct generates the root type, `kube::Resource`,
//!   serde, `new`, `crd()` (apiextensions.k8s.io/v1, structural schema) and registers the
//!   version for `kubeforge::crd::registry::crds()`.
//! - `#[derive(KubeSchema)]` gives nested types a `JsonSchema` that understands the same
//!   `#[kubeforge(...)]` field validation attributes.
//! - `#[controller(for = K, owns(..), watches(..), rbac(..))]` registers a controller and the
//!   RBAC rules it needs.
//!
//! Layout: `attrs` (darling models) → `model` (checks, spanned errors reported together) →
//! `emit` / `schema` (code, through `::kubeforge::__private` or `crate_path`).
//!
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod attrs;
mod controller;
mod emit;
mod json;
mod list_map;
mod model;
mod schema;

use darling::FromDeriveInput;
use proc_macro::TokenStream;
use quote::quote;
use serde_json::{Map, Value};
use syn::{DeriveInput, parse_macro_input};

use crate::attrs::{ResourceAttrs, SchemaAttrs};

/// Derives a Kubernetes custom resource from its spec struct. The attribute reference, with
/// examples, is `kubeforge::attributes`. schemars' own field attributes (`#[schemars(length(..))]`,
/// `range`, `regex`, `with`, `schema_with`, `extend`, …) are accepted too, as the escape hatch
/// for what `#[kubeforge(...)]` does not say.
#[proc_macro_derive(CustomResource, attributes(kubeforge, schemars))]
pub fn derive_custom_resource(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match custom_resource(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.write_errors().into(),
    }
}

/// Derives `schemars::JsonSchema` for a type nested in a spec or status, applying
/// `#[kubeforge(...)]` field validations (use instead of `#[derive(JsonSchema)]`).
#[proc_macro_derive(KubeSchema, attributes(kubeforge, schemars))]
pub fn derive_kube_schema(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match kube_schema(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.write_errors().into(),
    }
}

/// Declares a controller on its reconcile function, generates its `setup(manager, data)` and
/// registers its RBAC needs: `#[controller(for = Memcached, owns(Deployment),
/// watches(ConfigMap = caches_using), rbac(groups = [""], resources = ["secrets"], verbs = ["get"]))]`
/// on `async fn reconcile(obj: Arc<Memcached>, ctx: Context<Data>) -> Result<Action, E>`.
/// The reference, with an example, is `kubeforge::attributes`.
#[proc_macro_attribute]
pub fn controller(args: TokenStream, item: TokenStream) -> TokenStream {
    match controller::expand(args.into(), item.into()) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn shape_error(input: &DeriveInput, derive: &str) -> Option<darling::Error> {
    let hint = format!(
        "#[derive({derive})] goes on the spec struct with named fields, e.g. `struct MemcachedSpec {{ replicas: i32 }}`; \
         the root type (metadata, spec, status) is generated for you"
    );
    match &input.data {
        syn::Data::Struct(s) if matches!(s.fields, syn::Fields::Named(_)) => None,
        syn::Data::Struct(_) => Some(darling::Error::custom(format!("tuple and unit structs have no named fields: {hint}")).with_span(&input.ident)),
        syn::Data::Enum(e) => Some(darling::Error::custom(format!("enums cannot be custom resources: {hint} (an enum can be a field of the spec; derive KubeSchema on it)")).with_span(&e.enum_token)),
        syn::Data::Union(u) => Some(darling::Error::custom(format!("unions cannot be custom resources: {hint}")).with_span(&u.union_token)),
    }
}

fn custom_resource(input: &DeriveInput) -> darling::Result<proc_macro2::TokenStream> {
    if let Some(e) = shape_error(input, "CustomResource") {
        return Err(e);
    }
    if let Some(p) = input.generics.params.first() {
        return Err(darling::Error::custom(
            "a spec struct cannot be generic: the CRD has one schema; use concrete types",
        )
        .with_span(p));
    }
    let a = ResourceAttrs::from_derive_input(input)?;
    let mut errors = darling::Error::accumulator();
    let resource = model::resource(&a, &mut errors);
    let fields = a
        .data
        .as_ref()
        .take_struct()
        .map(|f| f.fields)
        .unwrap_or_default();
    let field_exts: Vec<Map<String, Value>> = fields
        .iter()
        .map(|f| model::field_extensions(f, &mut errors))
        .collect();
    let spec_validations: Vec<Value> = a
        .validation
        .iter()
        .map(|v| model::validation_json(v, &mut errors))
        .collect();
    let root_validations: Vec<Value> = a
        .root_validation
        .iter()
        .map(|v| model::validation_json(v, &mut errors))
        .collect();
    let manual = resource.as_ref().is_some_and(|r| r.manual_schema);
    if manual {
        for f in fields.iter().filter(|f| f.has_schema_attrs()) {
            errors.push(darling::Error::custom("field attributes need the generated schema: remove `schema = \"manual\"` or move these rules into your JsonSchema impl").with_span(&f.ident));
        }
    }
    check_scale_spec_path(&a, &fields, &mut errors);
    errors.finish()?;
    let Some(resource) = resource else {
        return Err(darling::Error::custom("invalid attributes"));
    };
    let krate = a
        .crate_path
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::kubeforge));
    let marker = quote::format_ident!("__KubeforgeSpecSchemaOf{}", a.ident);
    let schema_impl = if manual {
        proc_macro2::TokenStream::new()
    } else {
        let mut container_ext = Map::new();
        if !spec_validations.is_empty() {
            container_ext.insert(
                "x-kubernetes-validations".into(),
                Value::Array(spec_validations.clone()),
            );
        }
        let struct_fields = match &a.data {
            darling::ast::Data::Struct(f) => &f.fields[..],
            darling::ast::Data::Enum(_) => &[],
        };
        let schema = schema::emit(&schema::SchemaImpl {
            krate: &krate,
            ident: &a.ident,
            generics: &a.generics,
            attrs: &a.attrs,
            body: schema::Body::Struct(struct_fields),
            field_exts,
            container_ext,
            marker: Some(marker.clone()),
        });
        let check = json_schema_derived_too(&a.ident, &krate);
        quote!(#schema #check)
    };
    let schema_type = if manual {
        let spec = &a.ident;
        quote!(#spec)
    } else {
        quote!(#marker)
    };
    let resource_tokens = emit::resource(&a, &resource, &krate, &root_validations, &schema_type);
    let key_checks = fields.iter().map(|f| list_map::key_checks(&krate, f));
    Ok(quote! {
        #schema_impl
        #resource_tokens
        #(#key_checks)*
    })
}

/// A compile error, at the spec's name, when the spec also implements `JsonSchema` (usually a
/// `#[derive(JsonSchema)]` next to the derive): the derive generates the spec's schema itself, so
/// the user's would be silently ignored. The probe is the inherent-const-over-trait-const pattern:
/// `Probe::<Spec>::DERIVED` names the inherent `true` only when `Spec: JsonSchema`.
fn json_schema_derived_too(spec: &syn::Ident, krate: &syn::Path) -> proc_macro2::TokenStream {
    let message = format!(
        "`{spec}` implements JsonSchema as well as deriving CustomResource: the derive generates the spec's schema \
         (with the #[kubeforge(...)] rules), so yours would be ignored. Remove `JsonSchema` from `#[derive(...)]`, \
         or keep your JsonSchema and add `schema = \"manual\"` to `#[kubeforge(...)]` to use it for the CRD"
    );
    quote::quote_spanned! {spec.span()=>
        const _: () = {
            struct Probe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
            trait NotDerived {
                const DERIVED: bool = false;
            }
            impl<T: ?::core::marker::Sized> NotDerived for Probe<T> {}
            #[allow(dead_code)]
            impl<T: ?::core::marker::Sized + #krate::__private::schemars::JsonSchema> Probe<T> {
                const DERIVED: bool = true;
            }
            if Probe::<#spec>::DERIVED {
                ::core::panic!(#message);
            }
        };
    }
}

/// The spec replica path must name a field of the spec (checked here, where the fields are known);
/// status paths are checked against the generated schema by `kubeforge::crd::registry::crds()`.
fn check_scale_spec_path(
    a: &ResourceAttrs,
    fields: &[&attrs::SchemaField],
    errors: &mut darling::error::Accumulator,
) {
    let Some(scale) = &a.scale else { return };
    if fields.iter().any(|f| model::is_flattened(f)) {
        return;
    }
    let rename_all = model::serde_value(&a.attrs, "rename_all");
    let path = scale.spec_replicas_path.value();
    let Some(first) = path
        .strip_prefix(".spec.")
        .and_then(|p| p.split('.').next())
    else {
        return;
    };
    let names: Vec<String> = fields
        .iter()
        .filter_map(|f| model::json_name(f, rename_all.as_deref()))
        .collect();
    if !names.iter().any(|n| n == first) {
        errors.push(
            darling::Error::custom(format!(
                "spec_replicas_path `{path}`: the spec has no field `{first}` (its fields are: {}); point it at the replica count, e.g. `.spec.{}`",
                names.join(", "),
                names.first().map_or("replicas", String::as_str)
            ))
            .with_span(&scale.spec_replicas_path),
        );
    }
}

fn kube_schema(input: &DeriveInput) -> darling::Result<proc_macro2::TokenStream> {
    if let syn::Data::Union(u) = &input.data {
        return Err(darling::Error::custom(
            "#[derive(KubeSchema)] supports structs and enums, not unions",
        )
        .with_span(&u.union_token));
    }
    if let syn::Data::Struct(s) = &input.data {
        match &s.fields {
            syn::Fields::Named(_) => {}
            // A newtype serialises as its inner value, so its schema is the inner type's.
            syn::Fields::Unnamed(u) if u.unnamed.len() == 1 => {}
            syn::Fields::Unnamed(_) => {
                return Err(darling::Error::custom("#[derive(KubeSchema)] on a tuple struct of several fields: serde writes it as a JSON array of mixed types, which has no structural schema; use named fields (`struct Name { a: A, b: B }`), or a newtype `struct Name(T)`").with_span(&input.ident));
            }
            syn::Fields::Unit => {
                return Err(darling::Error::custom("#[derive(KubeSchema)] on a unit struct: serde writes it as null, which a CRD cannot describe; use a struct with fields or a newtype").with_span(&input.ident));
            }
        }
    }
    let a = SchemaAttrs::from_derive_input(input)?;
    let mut errors = darling::Error::accumulator();
    let mut container_ext = Map::new();
    let rules: Vec<Value> = a
        .validation
        .iter()
        .map(|v| model::validation_json(v, &mut errors))
        .collect();
    if !rules.is_empty() {
        container_ext.insert("x-kubernetes-validations".into(), Value::Array(rules));
    }
    if a.preserve_unknown_fields.is_present() {
        container_ext.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    if let Some(mt) = &a.map_type {
        if !["atomic", "granular"].contains(&mt.value().as_str()) {
            errors.push(
                darling::Error::custom(format!(
                    "unknown map_type `{}`: use atomic or granular",
                    mt.value()
                ))
                .with_span(mt),
            );
        }
        container_ext.insert("x-kubernetes-map-type".into(), mt.value().into());
    }
    let (body, field_exts) = match &a.data {
        darling::ast::Data::Struct(f) => {
            let exts = f
                .fields
                .iter()
                .map(|f| model::field_extensions(f, &mut errors))
                .collect();
            (schema::Body::Struct(&f.fields[..]), exts)
        }
        darling::ast::Data::Enum(vs) => {
            let exts = vs
                .iter()
                .flat_map(|v| v.fields.fields.iter())
                .map(|f| model::field_extensions(f, &mut errors))
                .collect();
            (schema::Body::Enum(&vs[..]), exts)
        }
    };
    errors.finish()?;
    let krate = a
        .crate_path
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::kubeforge));
    let list_map = match &a.data {
        darling::ast::Data::Struct(f) => {
            let checks = f.fields.iter().map(|f| list_map::key_checks(&krate, f));
            let item = (f.style == darling::ast::Style::Struct)
                .then(|| list_map::item_impl(&krate, &a.ident, &a.generics, &a.attrs, &f.fields));
            quote!(#item #(#checks)*)
        }
        darling::ast::Data::Enum(vs) => {
            let checks = vs
                .iter()
                .flat_map(|v| v.fields.fields.iter())
                .map(|f| list_map::key_checks(&krate, f));
            quote!(#(#checks)*)
        }
    };
    let schema = schema::emit(&schema::SchemaImpl {
        krate: &krate,
        ident: &a.ident,
        generics: &a.generics,
        attrs: &a.attrs,
        body,
        field_exts,
        container_ext,
        marker: None,
    });
    Ok(quote!(#schema #list_map))
}
