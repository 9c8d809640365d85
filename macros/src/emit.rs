//! Emits the root type of a custom resource, its trait impls, its `crd()` and its registration.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use serde_json::Value;
use syn::Path;

use crate::attrs::ResourceAttrs;
use crate::model::Resource;

fn opt_str(s: Option<String>) -> TokenStream {
    match s {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

/// Emits everything for one derived version.
pub fn resource(
    a: &ResourceAttrs,
    r: &Resource,
    krate: &Path,
    root_validations: &[Value],
    schema_type: &TokenStream,
) -> TokenStream {
    let spec = &a.ident;
    let vis = &a.vis;
    let Resource {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        served,
        ..
    } = r;
    let root = format_ident!("{}", kind, span = r.kind_span);
    let api_version = format!("{group}/{version}");
    let pk = quote!(#krate::__private);
    let scope = if *namespaced {
        quote!(#pk::k8s_openapi::NamespaceResourceScope)
    } else {
        quote!(#pk::k8s_openapi::ClusterResourceScope)
    };

    // status: an Option field typed with the user's path, spanned on it so a missing type is
    // reported on the attribute.
    let status_field = a.status.as_ref().map(|st| {
        quote_spanned! {st.segments.last().map_or_else(proc_macro2::Span::call_site, |s| s.ident.span())=>
            /// The observed state, written by the controller through the status subresource.
            #[serde(default, skip_serializing_if = "::core::option::Option::is_none")]
            pub status: ::core::option::Option<#st>,
        }
    });
    let status_init = a
        .status
        .as_ref()
        .map(|_| quote!(status: ::core::option::Option::None,));
    let status_ser = a.status.as_ref().map(|_| {
        quote! {
            match &self.status {
                ::core::option::Option::Some(status) => st.serialize_field("status", status)?,
                ::core::option::Option::None => st.skip_field("status")?,
            }
        }
    });
    let status_schema = match &a.status {
        Some(st) => quote!(::core::option::Option::Some(generator.subschema_for::<#st>())),
        None => quote!(::core::option::Option::None),
    };
    let has_status_trait = a.status.as_ref().map(|st| {
        quote! {
            impl #pk::kube::core::object::HasStatus for #root {
                type Status = #st;
                fn status(&self) -> ::core::option::Option<&#st> { self.status.as_ref() }
                fn status_mut(&mut self) -> &mut ::core::option::Option<#st> { &mut self.status }
            }
        }
    });
    let n_fields = 4usize + usize::from(a.status.is_some());

    let extra_derives = &a.derive;
    let short_names: Vec<String> = a.short_name.iter().map(syn::LitStr::value).collect();
    let categories: Vec<String> = a.category.iter().map(syn::LitStr::value).collect();
    let storage = a.storage.is_present();
    let deprecated = a.deprecated.is_present();
    let deprecation_warning = opt_str(a.deprecation_warning.as_ref().map(syn::LitStr::value));
    let labels = a.label.iter().map(|kv| {
        let (k, v) = (kv.key.value(), kv.value.value());
        quote!((#k, #v))
    });
    let annotations = a.annotation.iter().map(|kv| {
        let (k, v) = (kv.key.value(), kv.value.value());
        quote!((#k, #v))
    });
    let columns = a.printer_column.iter().map(|c| {
        let name = c.name.value();
        let ty = c.type_.value();
        let path = c.json_path.value();
        let description = opt_str(c.description.as_ref().map(syn::LitStr::value));
        let format = opt_str(c.format.as_ref().map(syn::LitStr::value));
        let priority = c.priority.unwrap_or(0);
        quote!(#krate::crd::PrinterColumn { name: #name, type_: #ty, json_path: #path, description: #description, format: #format, priority: #priority })
    });
    let selectable: Vec<String> = a.selectable_field.iter().map(syn::LitStr::value).collect();
    let scale = match &a.scale {
        Some(s) => {
            let spec_path = s.spec_replicas_path.value();
            let status_path = s.status_replicas_path.value();
            let selector = opt_str(s.label_selector_path.as_ref().map(syn::LitStr::value));
            quote!(::core::option::Option::Some(#krate::crd::Scale { spec_replicas_path: #spec_path, status_replicas_path: #status_path, label_selector_path: #selector }))
        }
        None => quote!(::core::option::Option::None),
    };
    let has_status = a.status.is_some();
    let max_desc = match &a.max_description_len {
        Some(n) => {
            let n = **n;
            quote!(::core::option::Option::Some(#n))
        }
        None => quote!(::core::option::Option::None),
    };
    let root_validations = if root_validations.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        let json = Value::Array(root_validations.to_vec()).to_string();
        quote!(::core::option::Option::Some(#json))
    };
    // Two `storage` versions of one kind in a crate define the same crate-root macro name, which
    // rustc rejects (E0428) on both `storage` tokens; the name says what to do. Across crates and
    // for zero storage versions, `kubeforge::registry::crds()` reports the error at run time.
    let storage_guard = a.storage.is_present().then(|| {
        let sanitized: String = group
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format_ident!(
            "only_one_version_of_{}_in_{}_may_be_marked_storage",
            kind,
            sanitized,
            span = a.storage.span()
        );
        quote! {
            #[doc(hidden)]
            #[macro_export]
            macro_rules! #name { () => {}; }
        }
    });
    let serde_path = quote!(#pk::serde).to_string().replace(' ', "");
    let doc = format!(
        "The `{kind}` custom resource ({api_version}), generated by `#[derive(CustomResource)]` on [`{spec}`]."
    );

    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, #pk::serde::Deserialize #(, #extra_derives)*)]
        #[serde(crate = #serde_path)]
        #vis struct #root {
            /// Standard object metadata.
            #[serde(default)]
            pub metadata: #pk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            /// The desired state.
            pub spec: #spec,
            #status_field
        }

        impl #root {
            /// A new object with the given name and spec (and no status).
            pub fn new(name: &str, spec: #spec) -> Self {
                Self {
                    metadata: #pk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: ::core::option::Option::Some(::std::string::ToString::to_string(name)),
                        ..::core::default::Default::default()
                    },
                    spec,
                    #status_init
                }
            }

            /// What the resource attributes say, as data for `kubeforge::crd::build`.
            pub const DESCRIPTOR: #krate::crd::CrdDescriptor = #krate::crd::CrdDescriptor {
                group: #group,
                version: #version,
                kind: #kind,
                plural: #plural,
                singular: #singular,
                short_names: &[#(#short_names),*],
                categories: &[#(#categories),*],
                namespaced: #namespaced,
                served: #served,
                storage: #storage,
                deprecated: #deprecated,
                deprecation_warning: #deprecation_warning,
                labels: &[#(#labels),*],
                annotations: &[#(#annotations),*],
                printer_columns: &[#(#columns),*],
                selectable_fields: &[#(#selectable),*],
                scale: #scale,
                has_status: #has_status,
                max_description_len: #max_desc,
                root_validations: #root_validations,
            };

            /// The apiextensions.k8s.io/v1 CustomResourceDefinition of this version, with a
            /// structural schema. `kubeforge::registry::crds()` merges all versions of a kind.
            pub fn crd() -> #pk::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
                let mut generator = #krate::crd::schema_generator();
                let spec = generator.subschema_for::<#schema_type>();
                let status = #status_schema;
                #krate::crd::build(&Self::DESCRIPTOR, &mut generator, spec, status)
            }
        }

        impl #pk::kube::Resource for #root {
            type DynamicType = ();
            type Scope = #scope;
            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> { ::std::borrow::Cow::Borrowed(#kind) }
            fn group(_: &()) -> ::std::borrow::Cow<'_, str> { ::std::borrow::Cow::Borrowed(#group) }
            fn version(_: &()) -> ::std::borrow::Cow<'_, str> { ::std::borrow::Cow::Borrowed(#version) }
            fn api_version(_: &()) -> ::std::borrow::Cow<'_, str> { ::std::borrow::Cow::Borrowed(#api_version) }
            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> { ::std::borrow::Cow::Borrowed(#plural) }
            fn meta(&self) -> &#pk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta { &self.metadata }
            fn meta_mut(&mut self) -> &mut #pk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta { &mut self.metadata }
        }

        impl #pk::kube::core::object::HasSpec for #root {
            type Spec = #spec;
            fn spec(&self) -> &#spec { &self.spec }
            fn spec_mut(&mut self) -> &mut #spec { &mut self.spec }
        }

        #has_status_trait

        #storage_guard

        impl #pk::kube::core::CustomResourceExt for #root {
            fn crd() -> #pk::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
                #root::crd()
            }
            fn crd_name() -> &'static str { concat!(#plural, ".", #group) }
            fn api_resource() -> #pk::kube::core::ApiResource {
                #pk::kube::core::ApiResource::erase::<Self>(&())
            }
            fn shortnames() -> &'static [&'static str] { &[#(#short_names),*] }
        }

        impl #pk::serde::Serialize for #root {
            fn serialize<S: #pk::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                use #pk::serde::ser::SerializeStruct as _;
                let mut st = serializer.serialize_struct(#kind, #n_fields)?;
                st.serialize_field("apiVersion", #api_version)?;
                st.serialize_field("kind", #kind)?;
                st.serialize_field("metadata", &self.metadata)?;
                st.serialize_field("spec", &self.spec)?;
                #status_ser
                st.end()
            }
        }

        #pk::inventory::submit! {
            #krate::registry::CustomResourceEntry {
                type_name: concat!(module_path!(), "::", #kind),
                group: #group,
                kind: #kind,
                version: #version,
                storage: #storage,
                crd: #root::crd,
            }
        }
    }
}
