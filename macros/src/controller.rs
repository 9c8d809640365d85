//! `#[kubeforge::controller(for = K, owns(A, B), watches(C), rbac(...), name = "...")]` on a
//! reconcile function: registers a `ControllerEntry` whose RBAC rules are inferred from the
//! types (group and plural come from `kube::Resource` at run time).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitStr, Path, Token, Type};

const KEYS: &[&str] = &["for", "owns", "watches", "rbac", "name", "crate_path"];
const RBAC_KEYS: &[&str] = &["groups", "resources", "verbs", "resource_names"];
const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "*",
    "bind",
    "escalate",
    "impersonate",
    "use",
    "approve",
    "sign",
    "proxy",
];

/// An extra RBAC rule written by hand.
pub struct Rule {
    groups: Vec<LitStr>,
    resources: Vec<LitStr>,
    verbs: Vec<LitStr>,
    resource_names: Vec<LitStr>,
}

/// The parsed attribute arguments.
pub struct Args {
    primary: Option<Type>,
    owns: Vec<Type>,
    watches: Vec<Type>,
    rules: Vec<Rule>,
    name: Option<LitStr>,
    krate: Option<Path>,
}

fn suggest(word: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim_distance(word, k), *k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 3 => format!("; did you mean `{k}`?"),
        _ => format!("; expected one of: {}", known.join(", ")),
    }
}

/// Levenshtein distance (the attribute vocabulary is tiny, so the quadratic version is fine).
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_str_list(input: ParseStream<'_>) -> syn::Result<Vec<LitStr>> {
    let content;
    syn::bracketed!(content in input);
    Ok(Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect())
}

impl Parse for Rule {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut rule = Rule {
            groups: Vec::new(),
            resources: Vec::new(),
            verbs: Vec::new(),
            resource_names: Vec::new(),
        };
        let span = input.span();
        let mut seen_groups = false;
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            input.parse::<Token![=]>()?;
            let list = parse_str_list(input)?;
            match key.to_string().as_str() {
                "groups" => {
                    seen_groups = true;
                    rule.groups = list;
                }
                "resources" => rule.resources = list,
                "verbs" => {
                    for v in &list {
                        if !VERBS.contains(&v.value().as_str()) {
                            return Err(syn::Error::new(
                                v.span(),
                                format!(
                                    "unknown RBAC verb `{}`{}",
                                    v.value(),
                                    suggest(&v.value(), VERBS)
                                ),
                            ));
                        }
                    }
                    rule.verbs = list;
                }
                "resource_names" => rule.resource_names = list,
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown rbac key `{other}`{}", suggest(other, RBAC_KEYS)),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if !seen_groups {
            return Err(syn::Error::new(
                span,
                "rbac(...) needs `groups = [\"\"]` (\"\" is the core group)",
            ));
        }
        if rule.resources.is_empty() {
            return Err(syn::Error::new(
                span,
                "rbac(...) needs `resources = [\"...\"]`",
            ));
        }
        if rule.verbs.is_empty() {
            return Err(syn::Error::new(
                span,
                "rbac(...) needs `verbs = [\"get\", ...]`",
            ));
        }
        Ok(rule)
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args {
            primary: None,
            owns: Vec::new(),
            watches: Vec::new(),
            rules: Vec::new(),
            name: None,
            krate: None,
        };
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            match key.to_string().as_str() {
                "for" => {
                    input.parse::<Token![=]>()?;
                    if args.primary.is_some() {
                        return Err(syn::Error::new(
                            key.span(),
                            "`for` given twice: a controller reconciles one primary type; use `owns(...)` or `watches(...)` for the others",
                        ));
                    }
                    args.primary = Some(input.parse()?);
                }
                "owns" | "watches" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let types: Vec<Type> =
                        Punctuated::<Type, Token![,]>::parse_terminated(&content)?
                            .into_iter()
                            .collect();
                    if types.is_empty() {
                        return Err(syn::Error::new(
                            key.span(),
                            format!("`{key}()` is empty: list types, e.g. `{key}(Deployment)`"),
                        ));
                    }
                    if key == "owns" {
                        args.owns.extend(types)
                    } else {
                        args.watches.extend(types)
                    }
                }
                "rbac" => {
                    let content;
                    syn::parenthesized!(content in input);
                    args.rules.push(content.parse()?);
                }
                "name" => {
                    input.parse::<Token![=]>()?;
                    let name: LitStr = input.parse()?;
                    if name.value().is_empty() {
                        return Err(syn::Error::new(
                            name.span(),
                            "the controller name cannot be empty",
                        ));
                    }
                    args.name = Some(name);
                }
                "crate_path" => {
                    input.parse::<Token![=]>()?;
                    args.krate = Some(input.parse()?);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown controller argument `{other}`{}",
                            suggest(other, KEYS)
                        ),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// Expands the attribute: the function unchanged, plus its registration.
pub fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(args)?;
    let func: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(e.span(), "#[controller] goes on a free reconcile function (`async fn reconcile(obj: Arc<K>, ctx: Arc<Ctx>) -> ...`)")
    })?;
    if let Some(recv) = func.sig.receiver() {
        return Err(syn::Error::new(
            recv.span(),
            "#[controller] goes on a free function, not a method: registration needs an item at module level",
        ));
    }
    let Some(primary) = &args.primary else {
        return Err(syn::Error::new(
            Span::call_site(),
            "missing `for = Type`: name the primary type the controller reconciles, e.g. `#[controller(for = Memcached)]`",
        ));
    };
    let krate = args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::kubeforge));
    let name = args
        .name
        .as_ref()
        .map_or_else(|| func.sig.ident.to_string(), LitStr::value);
    let reg = quote!(#krate::registry);
    let primary_rules =
        quote_spanned!(primary.span()=> rules.extend(#reg::primary_rules::<#primary>()););
    let owned = args
        .owns
        .iter()
        .map(|t| quote_spanned!(t.span()=> rules.extend(#reg::owned_rules::<#t>());));
    let watched = args
        .watches
        .iter()
        .map(|t| quote_spanned!(t.span()=> rules.extend(#reg::watched_rules::<#t>());));
    let extra = args.rules.iter().map(|r| {
        let (g, res, v, n) = (&r.groups, &r.resources, &r.verbs, &r.resource_names);
        quote!(rules.push(#reg::rule(&[#(#g),*], &[#(#res),*], &[#(#v),*], &[#(#n),*]));)
    });
    Ok(quote! {
        #func

        #krate::__private::inventory::submit! {
            #reg::ControllerEntry {
                name: #name,
                rules: {
                    fn rules() -> ::std::vec::Vec<#krate::__private::k8s_openapi::api::rbac::v1::PolicyRule> {
                        let mut rules = ::std::vec::Vec::new();
                        #primary_rules
                        #(#owned)*
                        #(#watched)*
                        #(#extra)*
                        rules
                    }
                    rules
                },
            }
        }
    })
}
