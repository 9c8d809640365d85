//! Compile-time checks of `list_map_key`: kube-apiserver refuses a CRD whose list map is keyed by
//! a field an item may leave out ("must have a default or be a required property") or set to
//! null ("cannot be nullable"). A `KubeSchema` struct declares which of its fields those are
//! ([`item_impl`]); each `list_map_key` on a list of such items checks its key against them in a
//! constant ([`key_checks`]), which fails the build at the key with the fix. Items whose type
//! derives plain `JsonSchema` are checked when the CRD is built (`kubeforge::crd`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Generics, Ident, Path, Type};

use crate::attrs::SchemaField;
use crate::model;

/// `impl ListMapItem` for a `KubeSchema` struct with named fields.
pub fn item_impl(
    krate: &Path,
    ident: &Ident,
    generics: &Generics,
    container_attrs: &[syn::Attribute],
    fields: &[SchemaField],
) -> TokenStream {
    let rename_all = model::serde_value(container_attrs, "rename_all");
    let container_default = model::serde_items(container_attrs)
        .iter()
        .any(|(k, _)| k == "default");
    let mut nullable = Vec::new();
    let mut defaulted = Vec::new();
    for f in fields {
        let serde = model::serde_items(&f.attrs);
        let has = |key: &str| serde.iter().any(|(k, _)| k == key);
        if has("skip") || has("skip_deserializing") || has("flatten") {
            continue;
        }
        let Some(name) = model::json_name(f, rename_all.as_deref()) else {
            continue;
        };
        if last_segment(&f.ty).is_some_and(|(id, _)| id == "Option") {
            nullable.push(name);
        } else if (container_default || has("default"))
            && f.default.is_none()
            && f.default_json.is_none()
        {
            defaulted.push(name);
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::__private::ListMapItem for #ident #ty_generics #where_clause {
            const NULLABLE: &'static [&'static str] = &[#(#nullable),*];
            const DEFAULTED: &'static [&'static str] = &[#(#defaulted),*];
        }
    }
}

/// One constant per `list_map_key` of `field` whose item type can be read from the field's type
/// (`Vec<T>`, `VecDeque<T>`, or either in an `Option`): it fails to evaluate, at the key, when
/// the item type is a `KubeSchema` struct that may leave the key out. Other item types implement
/// no `ListMapItem`, and the probe's fallback finds nothing.
pub fn key_checks(krate: &Path, field: &SchemaField) -> TokenStream {
    let Some(item) = list_item(&field.ty) else {
        return TokenStream::new();
    };
    let item_name = quote!(#item).to_string().replace(' ', "");
    let checks = field.list_map_key.iter().map(|key| {
        let k = key.value();
        let nullable = format!(
            "list_map_key `{k}`: `{k}` is an Option in `{item_name}`, and kube-apiserver refuses a list map key that \
             may be null (\"cannot be nullable\"). Make `{k}` a plain (non-Option) field of `{item_name}` without \
             #[serde(default)], so that every item carries it"
        );
        let defaulted = format!(
            "list_map_key `{k}`: `{k}` has a serde default in `{item_name}` but no schema default, and kube-apiserver \
             refuses a list map key an item may leave out (\"must have a default or be a required property\"). \
             Remove its #[serde(default)], or add #[kubeforge(default = ...)] so that the server fills it in"
        );
        quote_spanned! {key.span()=>
            const _: () = {
                struct Probe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
                trait NoItemFields {
                    const NULLABLE: &'static [&'static str] = &[];
                    const DEFAULTED: &'static [&'static str] = &[];
                }
                impl<T: ?::core::marker::Sized> NoItemFields for Probe<T> {}
                #[allow(dead_code)]
                impl<T: ?::core::marker::Sized + #krate::__private::ListMapItem> Probe<T> {
                    const NULLABLE: &'static [&'static str] = <T as #krate::__private::ListMapItem>::NULLABLE;
                    const DEFAULTED: &'static [&'static str] = <T as #krate::__private::ListMapItem>::DEFAULTED;
                }
                if #krate::__private::contains(Probe::<#item>::NULLABLE, #k) {
                    ::core::panic!(#nullable);
                }
                if #krate::__private::contains(Probe::<#item>::DEFAULTED, #k) {
                    ::core::panic!(#defaulted);
                }
            };
        }
    });
    quote!(#(#checks)*)
}

/// The item type of a list field: `T` of `Vec<T>` / `VecDeque<T>`, through an `Option`.
fn list_item(ty: &Type) -> Option<&Type> {
    let (id, arg) = last_segment(ty)?;
    match id.as_str() {
        "Option" => list_item(arg?),
        "Vec" | "VecDeque" => arg,
        _ => None,
    }
}

/// The last path segment's name and its first type argument.
fn last_segment(ty: &Type) -> Option<(String, Option<&Type>)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let arg = match &seg.arguments {
        syn::PathArguments::AngleBracketed(a) => a.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((seg.ident.to_string(), arg))
}
