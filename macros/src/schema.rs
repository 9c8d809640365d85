//! Emits a type's `JsonSchema` impl with the kubeforge field attributes applied.
//!
//! A derive cannot edit the struct it is attached to, so it emits a private *shadow* copy of
//! the type (same fields, same doc / serde / schemars attributes) that derives
//! `schemars::JsonSchema`, with each `#[kubeforge(...)]` field attribute turned into a
//! `#[schemars(transform = Extend("<json>"))]` that adds the keys to that field's schema.
//! The real type's `JsonSchema` delegates to the shadow (for a spec, a marker type's does: see
//! [`SchemaImpl::marker`]). The structural rewrite happens later,
//! at run time, in `kubeforge::crd::schema`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::{Map, Value};
use syn::{Attribute, Generics, Ident, Path};

use crate::attrs::{SchemaField, SchemaVariant};

/// The body of the type being shadowed.
pub enum Body<'a> {
    Struct(&'a [SchemaField]),
    Enum(&'a [SchemaVariant]),
}

/// Only these attributes mean something to `schemars`; others (e.g. another derive's helpers)
/// would not resolve on the shadow.
fn forwarded(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| {
        a.path().is_ident("doc") || a.path().is_ident("serde") || a.path().is_ident("schemars")
    })
}

/// `#[schemars(transform = ...)]` adding `ext` to a schema, or nothing when `ext` is empty.
fn extend_attr(krate: &Path, ext: &Map<String, Value>) -> TokenStream {
    if ext.is_empty() {
        return TokenStream::new();
    }
    let json = Value::Object(ext.clone()).to_string();
    quote!(#[schemars(transform = #krate::crd::schema::Extend(#json))])
}

fn field_tokens(krate: &Path, f: &SchemaField, ext: &Map<String, Value>) -> TokenStream {
    let attrs = forwarded(&f.attrs);
    let extend = extend_attr(krate, ext);
    let ty = &f.ty;
    match &f.ident {
        Some(ident) => quote!(#(#attrs)* #extend #ident: #ty),
        None => quote!(#(#attrs)* #extend #ty),
    }
}

/// Whether the container has `#[serde(default)]` without a path (schemars then calls `Self::default()`).
fn container_default_flag(attrs: &[Attribute]) -> bool {
    crate::model::serde_items(attrs)
        .iter()
        .any(|(k, v)| k == "default" && v.is_none())
}

/// Everything needed to emit the impl.
pub struct SchemaImpl<'a> {
    pub krate: &'a Path,
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    pub attrs: &'a [Attribute],
    pub body: Body<'a>,
    /// Per field (struct) or per variant field in order (enum): the keys its attributes add.
    pub field_exts: Vec<Map<String, Value>>,
    /// Keys the container attributes add to the type's own schema.
    pub container_ext: Map<String, Value>,
    /// A unit struct to implement `JsonSchema` on instead of the type itself (declared here): a
    /// spec's schema is the derive's business, so the spec stays free of a `JsonSchema` impl, and
    /// a `#[derive(JsonSchema)]` next to the derive can be reported with its fix instead of E0119.
    pub marker: Option<Ident>,
}

/// Emits the shadow type and the delegating `JsonSchema` impl.
pub fn emit(s: &SchemaImpl<'_>) -> TokenStream {
    let krate = s.krate;
    let ident = s.ident;
    let shadow = format_ident!("__KubeforgeSchemaOf{}", ident);
    let schemars_path = quote!(#krate::__private::schemars)
        .to_string()
        .replace(' ', "");
    let attrs = forwarded(s.attrs);
    let (_, ty_generics, _) = s.generics.split_for_impl();
    let (body, default_impl) = match &s.body {
        Body::Struct(fields) => shadow_struct(s, fields, &shadow),
        Body::Enum(variants) => (shadow_enum(s, variants, &shadow), TokenStream::new()),
    };
    let container_extend = container_extend(s);
    let (schema_name, schema_id) = schema_name_and_id(s);
    let (marker_decl, implementor, impl_generics, bounded_where) = impl_target(s);
    quote! {
        #marker_decl
        const _: () = {
            #[derive(#krate::__private::schemars::JsonSchema)]
            #[schemars(crate = #schemars_path)]
            #(#attrs)*
            #[allow(dead_code, non_camel_case_types, clippy::all)]
            #body

            #default_impl

            #[automatically_derived]
            impl #impl_generics #krate::__private::schemars::JsonSchema for #implementor #bounded_where {
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    #schema_name
                }
                fn schema_id() -> ::std::borrow::Cow<'static, str> {
                    #schema_id
                }
                fn inline_schema() -> bool {
                    <#shadow #ty_generics as #krate::__private::schemars::JsonSchema>::inline_schema()
                }
                fn json_schema(generator: &mut #krate::__private::schemars::SchemaGenerator) -> #krate::__private::schemars::Schema {
                    #[allow(unused_mut)]
                    let mut schema = <#shadow #ty_generics as #krate::__private::schemars::JsonSchema>::json_schema(generator);
                    #container_extend
                    schema
                }
            }
        };
    }
}

/// The shadow of a struct, and its `Default` impl when schemars needs one for
/// `#[serde(default)]`.
fn shadow_struct(
    s: &SchemaImpl<'_>,
    fields: &[SchemaField],
    shadow: &Ident,
) -> (TokenStream, TokenStream) {
    let krate = s.krate;
    let generics = s.generics;
    let (_, _, where_clause) = s.generics.split_for_impl();
    let mut exts = s.field_exts.iter();
    let empty = Map::new();
    let fields: Vec<TokenStream> = fields
        .iter()
        .map(|f| field_tokens(krate, f, exts.next().unwrap_or(&empty)))
        .collect();
    // A newtype (`struct Port(u16)`) keeps its tuple shape, so schemars describes it as
    // its inner type, as serde writes it.
    let newtype =
        matches!(s.body, Body::Struct(fs) if fs.first().is_some_and(|f| f.ident.is_none()));
    let default_impl = if container_default_flag(s.attrs) {
        shadow_default_impl(s, shadow, newtype)
    } else {
        TokenStream::new()
    };
    let body = if newtype {
        quote!(struct #shadow #generics ( #(#fields),* ) #where_clause;)
    } else {
        quote!(struct #shadow #generics #where_clause { #(#fields),* })
    };
    (body, default_impl)
}

/// The shadow's `Default`, copied field by field from the real type's, so schemars' defaults
/// are the ones serde fills in.
fn shadow_default_impl(s: &SchemaImpl<'_>, shadow: &Ident, newtype: bool) -> TokenStream {
    let ident = s.ident;
    let (impl_generics, ty_generics, where_clause) = s.generics.split_for_impl();
    let names: Vec<&Ident> = match &s.body {
        Body::Struct(fs) => fs.iter().filter_map(|f| f.ident.as_ref()).collect(),
        Body::Enum(_) => Vec::new(),
    };
    let build = if newtype {
        quote!(#shadow(original.0))
    } else {
        quote!(#shadow { #(#names: original.#names),* })
    };
    quote! {
        impl #impl_generics ::core::default::Default for #shadow #ty_generics #where_clause {
            fn default() -> Self {
                let original = <#ident #ty_generics as ::core::default::Default>::default();
                #build
            }
        }
    }
}

/// The shadow of an enum: each variant with its fields' extensions applied.
fn shadow_enum(s: &SchemaImpl<'_>, variants: &[SchemaVariant], shadow: &Ident) -> TokenStream {
    let krate = s.krate;
    let generics = s.generics;
    let (_, _, where_clause) = s.generics.split_for_impl();
    let mut exts = s.field_exts.iter();
    let empty = Map::new();
    let variants: Vec<TokenStream> = variants
        .iter()
        .map(|v| {
            let vattrs = forwarded(&v.attrs);
            let vident = &v.ident;
            let fields: Vec<TokenStream> = v
                .fields
                .fields
                .iter()
                .map(|f| field_tokens(krate, f, exts.next().unwrap_or(&empty)))
                .collect();
            let disc = v.discriminant.as_ref().map(|d| quote!(= #d));
            match v.fields.style {
                darling::ast::Style::Struct => {
                    quote!(#(#vattrs)* #vident { #(#fields),* } #disc)
                }
                darling::ast::Style::Tuple => {
                    quote!(#(#vattrs)* #vident ( #(#fields),* ) #disc)
                }
                darling::ast::Style::Unit => quote!(#(#vattrs)* #vident #disc),
            }
        })
        .collect();
    quote!(enum #shadow #generics #where_clause { #(#variants),* })
}

/// The statement adding the container attributes' keys to the type's own schema, if any.
fn container_extend(s: &SchemaImpl<'_>) -> TokenStream {
    let krate = s.krate;
    if s.container_ext.is_empty() {
        TokenStream::new()
    } else {
        let json = Value::Object(s.container_ext.clone()).to_string();
        quote!(#krate::__private::schemars::transform::Transform::transform(&mut #krate::crd::schema::Extend(#json), &mut schema);)
    }
}

/// The bodies of `schema_name` and `schema_id`, which name a generic type per parameters.
fn schema_name_and_id(s: &SchemaImpl<'_>) -> (TokenStream, TokenStream) {
    let krate = s.krate;
    let ident = s.ident;
    // A generic type's schema depends on its parameters: `Bounds<Quantity>` and `Bounds<String>`
    // need two names, or the generator reuses the first one's schema for both.
    let params: Vec<&syn::Ident> = s.generics.type_params().map(|p| &p.ident).collect();
    if params.is_empty() {
        (
            quote!(::std::borrow::Cow::Borrowed(stringify!(#ident))),
            quote!(::std::borrow::Cow::Borrowed(concat!(
                module_path!(),
                "::",
                stringify!(#ident)
            ))),
        )
    } else {
        let js = quote!(#krate::__private::schemars::JsonSchema);
        (
            quote!(::std::borrow::Cow::Owned(::std::format!(
                "{}_for_{}",
                stringify!(#ident),
                [#(<#params as #js>::schema_name()),*].join("_and_")
            ))),
            quote!(::std::borrow::Cow::Owned(::std::format!(
                "{}::{}<{}>",
                module_path!(),
                stringify!(#ident),
                [#(<#params as #js>::schema_id()),*].join(", ")
            ))),
        )
    }
}

/// What the `JsonSchema` impl is for (the marker, declared here, or the type itself) as
/// `(marker declaration, implementor, impl generics, where clause)`.
fn impl_target(s: &SchemaImpl<'_>) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let krate = s.krate;
    let ident = s.ident;
    let (impl_generics, ty_generics, _) = s.generics.split_for_impl();
    // The real type's impl needs `T: JsonSchema` for each type parameter, as the shadow's does.
    let mut bounded = s.generics.clone();
    for p in s.generics.type_params() {
        let p = &p.ident;
        bounded
            .make_where_clause()
            .predicates
            .push(syn::parse_quote!(#p: #krate::__private::schemars::JsonSchema));
    }
    let (_, _, bounded_where) = bounded.split_for_impl();
    match &s.marker {
        Some(marker) => (
            quote! {
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                struct #marker;
            },
            quote!(#marker),
            TokenStream::new(),
            TokenStream::new(),
        ),
        None => (
            TokenStream::new(),
            quote!(#ident #ty_generics),
            quote!(#impl_generics),
            quote!(#bounded_where),
        ),
    }
}
