//! `#[kubeforge::controller(for = K, owns(A, B), watches(C = map_c), index("by-c" = c_refs),
//! reads(D), rbac(...), name = "...")]` on a reconcile function: registers a `ControllerEntry` whose RBAC rules are inferred from the
//! types (group and plural come from `kube::Resource` at run time), and generates the wiring —
//! a `setup(manager, data)` function that builds the same controller with the same watches — so
//! the watches are declared once and the RBAC cannot disagree with them.
//!
//! `setup` is generated when the function has the reconcile shape `(Arc<K>, Context<D>)` (the
//! data type `D` is read from the second parameter) and every `watches(..)` type names its
//! mapper (`watches(Secret = sites_for_secret)`, a `fn(&Secret, &Lister<K>) -> Vec<ObjectKey>`
//! that may look the primaries up in their cache). Its name is
//! `setup` unless `setup = other_name` is given (two controllers in one module need that).

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitStr, Path, Token, Type};

const KEYS: &[&str] = &[
    "for",
    "owns",
    "watches",
    "index",
    "reads",
    "rbac",
    "name",
    "setup",
    "crate_path",
];
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
    watches: Vec<Watched>,
    /// `index("name" = values_fn)`: indexes of the primary's cache.
    indexes: Vec<(LitStr, Path)>,
    /// `reads(T)`: types read through `Context::cache` (get/list/watch RBAC).
    reads: Vec<Type>,
    rules: Vec<Rule>,
    name: Option<LitStr>,
    setup: Option<Ident>,
    krate: Option<Path>,
}

/// A `watches(..)` entry: the watched type and, for the generated `setup`, the function that
/// maps one of its objects to the primary keys to reconcile.
pub struct Watched {
    ty: Type,
    mapper: Option<Path>,
}

impl Parse for Watched {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let ty = input.parse()?;
        let mapper = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Watched { ty, mapper })
    }
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

/// `(A, B, ...)` after `key`; an empty list is an error saying `if_empty`.
fn parenthesized_list<T: Parse>(
    input: ParseStream<'_>,
    key: &Ident,
    if_empty: &str,
) -> syn::Result<Vec<T>> {
    let content;
    syn::parenthesized!(content in input);
    let items: Vec<T> = Punctuated::<T, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect();
    if items.is_empty() {
        return Err(syn::Error::new(key.span(), if_empty));
    }
    Ok(items)
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args {
            primary: None,
            owns: Vec::new(),
            watches: Vec::new(),
            indexes: Vec::new(),
            reads: Vec::new(),
            rules: Vec::new(),
            name: None,
            setup: None,
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
                "owns" => args.owns.extend(parenthesized_list::<Type>(
                    input,
                    &key,
                    "`owns()` is empty: list types, e.g. `owns(Deployment)`",
                )?),
                "watches" => args.watches.extend(parenthesized_list::<Watched>(
                    input,
                    &key,
                    "`watches()` is empty: list types with their mappers, e.g. `watches(Secret = sites_for_secret)`",
                )?),
                "index" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let name: LitStr = content.parse()?;
                    content.parse::<Token![=]>().map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "`index` names its function: `index(\"by-secret\" = secret_refs)` with \
                             `fn secret_refs(obj: &Primary) -> Vec<String>`",
                        )
                    })?;
                    args.indexes.push((name, content.parse()?));
                }
                "reads" => args.reads.extend(parenthesized_list::<Type>(
                    input,
                    &key,
                    "`reads()` is empty: list the types read through `ctx.cache`, e.g. `reads(Secret)`",
                )?),
                "setup" => {
                    input.parse::<Token![=]>()?;
                    args.setup = Some(input.parse()?);
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
        syn::Error::new(e.span(), "#[controller] goes on a free reconcile function (`async fn reconcile(obj: Arc<K>, ctx: Context<Data>) -> Result<Action, E>`)")
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
    let reg = quote!(#krate::crd::registry);
    let primary_rules =
        quote_spanned!(primary.span()=> rules.extend(#reg::primary_rules::<#primary>()););
    let owned = args
        .owns
        .iter()
        .map(|t| quote_spanned!(t.span()=> rules.extend(#reg::owned_rules::<#t>());));
    let watched = args.watches.iter().map(|w| {
        let t = &w.ty;
        quote_spanned!(t.span()=> rules.extend(#reg::watched_rules::<#t>());)
    });
    let read = args
        .reads
        .iter()
        .map(|t| quote_spanned!(t.span()=> rules.extend(#reg::watched_rules::<#t>());));
    let extra = args.rules.iter().map(|r| {
        let (g, res, v, n) = (&r.groups, &r.resources, &r.verbs, &r.resource_names);
        quote!(rules.push(#reg::rule(&[#(#g),*], &[#(#res),*], &[#(#v),*], &[#(#n),*]));)
    });
    let setup = setup_fn(&args, &func, primary, &krate, &name)?;
    Ok(quote! {
        #func

        #setup

        #krate::__private::inventory::submit! {
            #reg::ControllerEntry {
                name: #name,
                rules: {
                    fn rules() -> ::std::vec::Vec<#krate::__private::k8s_openapi::api::rbac::v1::PolicyRule> {
                        let mut rules = ::std::vec::Vec::new();
                        #primary_rules
                        #(#owned)*
                        #(#watched)*
                        #(#read)*
                        #(#extra)*
                        rules
                    }
                    rules
                },
            }
        }
    })
}

/// The data type `D` of a reconcile function's `Context<D>` parameter, if it has the reconcile
/// shape `(obj, ctx)`.
fn context_data(func: &ItemFn) -> Option<Type> {
    if func.sig.inputs.len() != 2 {
        return None;
    }
    let syn::FnArg::Typed(ctx) = func.sig.inputs.iter().nth(1)? else {
        return None;
    };
    let Type::Path(path) = ctx.ty.as_ref() else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Context" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(generics) = &last.arguments else {
        return None;
    };
    generics.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

/// The generated `setup(manager, data)`: the controller builder with exactly the declared
/// watches. Nothing when the function is not a two-parameter reconcile function.
fn setup_fn(
    args: &Args,
    func: &ItemFn,
    primary: &Type,
    krate: &Path,
    name: &str,
) -> syn::Result<TokenStream> {
    if func.sig.inputs.len() != 2 {
        if let Some(setup) = &args.setup {
            return Err(syn::Error::new(
                setup.span(),
                "`setup` needs a reconcile function `(obj: Arc<K>, ctx: Context<D>)`",
            ));
        }
        return Ok(TokenStream::new());
    }
    let Some(data) = context_data(func) else {
        return Err(syn::Error::new(
            func.sig.inputs.span(),
            "#[controller] reads the context data type from the second parameter: write it as \
             `ctx: Context<YourData>` (`Context<()>` for none)",
        ));
    };
    let mut watches = Vec::new();
    for w in &args.watches {
        let t = &w.ty;
        let Some(mapper) = &w.mapper else {
            return Err(syn::Error::new(
                t.span(),
                format!(
                    "`watches({})` needs the function that maps a changed object to the primaries \
                     to reconcile: `watches({} = my_mapper)` with `fn my_mapper(obj: &{}, \
                     primaries: &kubeforge::informer::Lister<{}>) -> Vec<kubeforge::informer::ObjectKey>`",
                    quote!(#t),
                    quote!(#t),
                    quote!(#t),
                    quote!(#primary)
                ),
            ));
        };
        watches.push(quote_spanned!(t.span()=>
            let builder = {
                let primaries = primaries.clone();
                builder.watches::<#t>(
                    #krate::controller::Watch::new(),
                    move |changed: &#t| #mapper(changed, &primaries),
                )
            };
        ));
    }
    let owns = args
        .owns
        .iter()
        .map(|t| quote_spanned!(t.span()=> .owns::<#t>(#krate::controller::Watch::new())));
    let indexes = args
        .indexes
        .iter()
        .map(|(name, f)| quote_spanned!(f.span()=> .index(#name, #f)));
    let reads = args
        .reads
        .iter()
        .map(|t| quote_spanned!(t.span()=> .reads::<#t>()));
    let vis = &func.vis;
    let reconcile = &func.sig.ident;
    let setup = args
        .setup
        .clone()
        .unwrap_or_else(|| Ident::new("setup", Span::call_site()));
    let doc = format!(
        "Adds the `{name}` controller to `manager`: `{reconcile}` with the watches declared in \
         its `#[controller]` attribute (generated)."
    );
    Ok(quote! {
        #[doc = #doc]
        #[allow(dead_code)]
        #vis fn #setup(
            manager: &mut #krate::manager::Manager,
            data: #data,
        ) -> ::std::result::Result<(), #krate::controller::BuildError> {
            let builder = #krate::controller::Controller::managed_by(manager)
                .for_::<#primary>(#krate::controller::Watch::new()#(#indexes)*)
                #(#owns)*
                #(#reads)*
                .named(#name);
            let primaries = builder.primary_lister();
            #(#watches)*
            let _ = &primaries;
            builder.complete(#reconcile, data)
        }
    })
}
