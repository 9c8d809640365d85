//! Compiling and running one rule: the Kubernetes CEL environment (the standard library, the
//! strings extension and [`crate::library`]), compiled programs cached by their source, and the
//! `self` / `oldSelf` bindings.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::objects::OptionalValue;
use cel::{Context, Env, Program};
use parking_lot::Mutex;

/// The environment every rule is compiled and run in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The strings extension is part of the Kubernetes CEL environment (charAt, indexOf, join,
    // lowerAscii, replace, split, substring, trim, upperAscii, format, …).
    cel::extensions::strings(&mut env).expect("the strings extension registers once");
    Arc::new(env)
});

/// A compiled rule: its program and whether it reads `oldSelf` (a transition rule).
pub struct Compiled {
    pub program: Program,
    pub uses_old_self: bool,
}

/// Compiles `source` once per process; the error is the parser's message.
pub fn compile(source: &str) -> Result<Arc<Compiled>, String> {
    type Cache = HashMap<String, Result<Arc<Compiled>, String>>;
    static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    if let Some(hit) = CACHE.lock().get(source) {
        return hit.clone();
    }
    let compiled = ENV
        .compile(source)
        .map(|program| {
            let uses_old_self = program.references().has_variable("oldSelf");
            Arc::new(Compiled {
                program,
                uses_old_self,
            })
        })
        .map_err(|e| e.to_string().trim().to_string());
    CACHE.lock().insert(source.to_string(), compiled.clone());
    compiled
}

/// What `oldSelf` is bound to.
pub enum OldSelf<'a> {
    /// No binding: the rule does not read it.
    Absent,
    /// The old value.
    Value(&'a serde_json::Value),
    /// `optionalOldSelf: true`: an optional, empty where there is no old value.
    Optional(Option<&'a serde_json::Value>),
}

/// Runs `program` with `self` (and `oldSelf`) bound.
pub fn run(
    program: &Program,
    this: &serde_json::Value,
    old: OldSelf<'_>,
) -> Result<cel::Value, String> {
    ROOT.with(|root| run_in(root, program, this, old))
}

thread_local! {
    /// The environment with the Kubernetes functions registered, once per thread: each rule runs
    /// in a child scope holding only its `self` and `oldSelf`.
    static ROOT: Context<'static, 'static> = {
        let mut ctx = Context::with_env(ENV.clone());
        crate::library::register(&mut ctx);
        ctx
    };
}

fn run_in(
    root: &Context<'static, 'static>,
    program: &Program,
    this: &serde_json::Value,
    old: OldSelf<'_>,
) -> Result<cel::Value, String> {
    let mut ctx = root.new_inner_scope();
    ctx.add_variable("self", to_cel(this)?)
        .map_err(|e| e.to_string())?;
    match old {
        OldSelf::Absent => {}
        OldSelf::Value(v) => ctx
            .add_variable("oldSelf", to_cel(v)?)
            .map_err(|e| e.to_string())?,
        OldSelf::Optional(v) => {
            let optional = match v {
                Some(v) => OptionalValue::of(to_cel(v)?),
                None => OptionalValue::none(),
            };
            ctx.add_variable("oldSelf", cel::Value::Opaque(Arc::new(optional)))
                .map_err(|e| e.to_string())?;
        }
    }
    program.execute(&ctx).map_err(|e| e.to_string())
}

/// JSON as CEL sees a Kubernetes object: integers are `int` (the schema's `integer` is int64),
/// other numbers `double`.
fn to_cel(v: &serde_json::Value) -> Result<cel::Value, String> {
    use serde_json::Value as Json;
    Ok(match v {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => cel::Value::String(Arc::new(s.clone())),
        Json::Array(items) => cel::Value::List(Arc::new(
            items.iter().map(to_cel).collect::<Result<_, _>>()?,
        )),
        Json::Object(fields) => {
            let map: HashMap<String, cel::Value> = fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_cel(v)?)))
                .collect::<Result<_, String>>()?;
            cel::Value::Map(cel::objects::Map::from(map))
        }
    })
}
