//! The Kubernetes CEL libraries on top of cel-rust's standard library and strings extension:
//! the functions kube-apiserver adds for validation rules (lists, regex, quantity, IP and CIDR),
//! and the table of what is and is not supported ([`FUNCTIONS`]).
//!
//! Quantities, IPs and CIDRs are values of their own in kube-apiserver; here they are maps with
//! one reserved key (`__quantity`, `__ip`, `__cidr`) holding the parsed text, so the member
//! functions can recognise them.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::Map;
use cel::{Context, ExecutionError, Value};

type Result<T> = std::result::Result<T, ExecutionError>;

/// One function of the Kubernetes CEL environment: the library it belongs to, its signature, and
/// whether it is supported here. Each supported one is exercised by a rule in the crate's tests.
pub struct Function {
    /// `standard`, `strings`, `lists`, `regex`, `quantity`, `ip`, `cidr`, `url`, `format`,
    /// `semver`, `optional`.
    pub library: &'static str,
    /// How a rule calls it.
    pub signature: &'static str,
    /// Whether the embedded server evaluates it.
    pub supported: bool,
    /// A rule using it that holds (`true`); for unsupported functions, why not.
    pub example: &'static str,
}

const fn ok(library: &'static str, signature: &'static str, example: &'static str) -> Function {
    Function {
        library,
        signature,
        supported: true,
        example,
    }
}

const fn missing(library: &'static str, signature: &'static str, why: &'static str) -> Function {
    Function {
        library,
        signature,
        supported: false,
        example: why,
    }
}

const NOT_YET: &str = "not implemented yet";

/// Every function a Kubernetes validation rule can call, supported or not.
pub const FUNCTIONS: &[Function] = &[
    ok(
        "standard",
        "size(x), x.size()",
        "size('abc') == 3 && [1, 2].size() == 2",
    ),
    ok(
        "standard",
        "has(x.f)",
        "has({'a': 1}.a) && !has({'a': 1}.b)",
    ),
    ok(
        "standard",
        "all / exists / exists_one",
        "[1, 2].all(x, x > 0) && [1, 2].exists(x, x == 2) && [1, 2].exists_one(x, x == 1)",
    ),
    ok(
        "standard",
        "map / filter",
        "[1, 2, 3].filter(x, x > 1).map(x, x * 2) == [4, 6]",
    ),
    ok("standard", "in", "2 in [1, 2] && 'a' in {'a': 1}"),
    ok(
        "standard",
        "contains / startsWith / endsWith",
        "'abc'.contains('b') && 'abc'.startsWith('a') && 'abc'.endsWith('c')",
    ),
    ok("standard", "matches", "'abc'.matches('^a.c$')"),
    ok(
        "standard",
        "int / uint / double / string / bool conversions",
        "int('12') == 12 && string(1) == '1' && double(1) == 1.0",
    ),
    ok(
        "standard",
        "duration / timestamp",
        "duration('1h') > duration('59m') && timestamp('2024-01-01T00:00:00Z') < timestamp('2025-01-01T00:00:00Z')",
    ),
    ok(
        "standard",
        "conditional and logic",
        "(1 < 2 ? 'y' : 'n') == 'y' && (true || false) && !false",
    ),
    ok(
        "optional",
        "x.?f, orValue, hasValue",
        "{'a': 1}.?b.orValue(5) == 5 && {'a': 1}.?a.hasValue()",
    ),
    ok("strings", "charAt", "'abc'.charAt(1) == 'b'"),
    ok(
        "strings",
        "indexOf / lastIndexOf (strings)",
        "'abcb'.indexOf('b') == 1 && 'abcb'.lastIndexOf('b') == 3",
    ),
    ok(
        "strings",
        "lowerAscii / upperAscii",
        "'AbC'.lowerAscii() == 'abc' && 'abc'.upperAscii() == 'ABC'",
    ),
    ok("strings", "replace", "'a-b-c'.replace('-', '_') == 'a_b_c'"),
    ok(
        "strings",
        "split / join",
        "'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'",
    ),
    ok(
        "strings",
        "substring / trim",
        "'abcd'.substring(1, 3) == 'bc' && '  a '.trim() == 'a'",
    ),
    ok("strings", "format", "'%s=%d'.format(['a', 1]) == 'a=1'"),
    ok(
        "lists",
        "isSorted",
        "[1, 2, 3].isSorted() && !['b', 'a'].isSorted()",
    ),
    ok(
        "lists",
        "sum",
        "[1, 2, 3].sum() == 6 && [1.5, 1.5].sum() == 3.0",
    ),
    ok(
        "lists",
        "min / max",
        "[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3",
    ),
    missing(
        "lists",
        "indexOf / lastIndexOf (lists)",
        "the names are taken by the strings extension's overloads in cel-rust",
    ),
    ok(
        "regex",
        "find / findAll",
        "'abc 123'.find('[0-9]+') == '123' && 'a1b2'.findAll('[0-9]') == ['1', '2']",
    ),
    ok(
        "quantity",
        "isQuantity / quantity",
        "isQuantity('1Gi') && !isQuantity('1GB')",
    ),
    ok(
        "quantity",
        "compareTo / isGreaterThan / isLessThan",
        "quantity('1Gi').isGreaterThan(quantity('1G')) && quantity('500m').compareTo(quantity('0.5')) == 0",
    ),
    ok(
        "quantity",
        "asInteger / asApproximateFloat / isInteger / sign",
        "quantity('2k').asInteger() == 2000 && quantity('500m').asApproximateFloat() == 0.5 && !quantity('500m').isInteger() && quantity('-1').sign() == -1",
    ),
    missing("quantity", "add / sub", NOT_YET),
    ok(
        "ip",
        "isIP / ip / family",
        "isIP('10.0.0.1') && !isIP('10.0.0.256') && ip('fd00::1').family() == 6",
    ),
    ok(
        "ip",
        "isLoopback / isUnspecified",
        "ip('127.0.0.1').isLoopback() && ip('0.0.0.0').isUnspecified()",
    ),
    ok(
        "cidr",
        "isCIDR / cidr / containsIP / prefixLength",
        "isCIDR('10.0.0.0/8') && cidr('10.0.0.0/8').containsIP(ip('10.1.2.3')) && cidr('10.0.0.0/8').containsIP('10.9.9.9') && cidr('10.0.0.0/8').prefixLength() == 8",
    ),
    missing(
        "ip",
        "isCanonical / isGlobalUnicast / isLinkLocal…",
        NOT_YET,
    ),
    missing("cidr", "containsCIDR / masked / ip()", NOT_YET),
    missing("url", "url / isURL / getHost / getScheme / …", NOT_YET),
    missing("format", "format.dns1123Label() … validate", NOT_YET),
    missing("semver", "semver / isSemver / compareTo …", NOT_YET),
    missing(
        "sets",
        "sets.contains / sets.equivalent / sets.intersects",
        NOT_YET,
    ),
    missing(
        "two-variable comprehensions",
        "all(i, v, …) / transformMap …",
        NOT_YET,
    ),
];

/// Adds the Kubernetes functions to a rule's context.
pub fn register(ctx: &mut Context<'_, '_>) {
    macro_rules! add {
        ($name:literal, $f:expr) => {
            ctx.add_function($name, $f)
                .expect(concat!($name, " is not a standard function"));
        };
    }
    add!("isSorted", is_sorted);
    add!("sum", sum);
    add!("min", extreme::<true>);
    add!("max", extreme::<false>);
    add!("find", find);
    add!("findAll", find_all);
    add!("isQuantity", |s: Arc<String>| parse_quantity(&s).is_some());
    add!("quantity", quantity);
    add!("compareTo", compare_to);
    add!("isGreaterThan", |This(a): This<Value>, b: Value| Ok::<
        _,
        ExecutionError,
    >(
        compare(&a, &b)? == Ordering::Greater
    ));
    add!("isLessThan", |This(a): This<Value>, b: Value| Ok::<
        _,
        ExecutionError,
    >(
        compare(&a, &b)? == Ordering::Less
    ));
    add!("asInteger", as_integer);
    add!("asApproximateFloat", |This(q): This<Value>| quantity_of(&q));
    add!("isInteger", |This(q): This<Value>| Ok::<_, ExecutionError>(
        quantity_of(&q)?.fract() == 0.0
    ));
    add!("sign", |This(q): This<Value>| {
        let v = quantity_of(&q)?;
        Ok::<_, ExecutionError>(i64::from(v > 0.0) - i64::from(v < 0.0))
    });
    add!("isIP", |s: Arc<String>| s.parse::<IpAddr>().is_ok());
    add!("ip", ip);
    add!("family", |This(v): This<Value>| Ok::<_, ExecutionError>(
        if ip_of(&v)?.is_ipv4() { 4i64 } else { 6 }
    ));
    add!(
        "isLoopback",
        |This(v): This<Value>| Ok::<_, ExecutionError>(ip_of(&v)?.is_loopback())
    );
    add!("isUnspecified", |This(v): This<Value>| Ok::<
        _,
        ExecutionError,
    >(
        ip_of(&v)?.is_unspecified()
    ));
    add!("isCIDR", |s: Arc<String>| parse_cidr(&s).is_some());
    add!("cidr", cidr);
    add!("containsIP", contains_ip);
    add!(
        "prefixLength",
        |This(v): This<Value>| Ok::<_, ExecutionError>(i64::from(cidr_of(&v)?.1))
    );
}

fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn is_sorted(This(list): This<Arc<Vec<Value>>>) -> Result<bool> {
    for pair in list.windows(2) {
        match pair[0].partial_cmp(&pair[1]) {
            Some(Ordering::Greater) => return Ok(false),
            Some(_) => {}
            None => return Err(error("isSorted", "the list's items are not comparable")),
        }
    }
    Ok(true)
}

fn sum(This(list): This<Arc<Vec<Value>>>) -> Result<Value> {
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in list.iter() {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| error("sum", "integer overflow"))?,
            ),
            (Value::UInt(a), Value::UInt(b)) => Value::UInt(
                a.checked_add(*b)
                    .ok_or_else(|| error("sum", "integer overflow"))?,
            ),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(error("sum", "the list holds items of different types")),
        };
    }
    Ok(total)
}

/// `min()` when `MIN`, `max()` otherwise; an empty list is an error, as in Kubernetes.
fn extreme<const MIN: bool>(This(list): This<Arc<Vec<Value>>>) -> Result<Value> {
    let name = if MIN { "min" } else { "max" };
    let mut best = list
        .first()
        .ok_or_else(|| error(name, "the list is empty"))?;
    for item in list.iter().skip(1) {
        let order = item
            .partial_cmp(best)
            .ok_or_else(|| error(name, "the list's items are not comparable"))?;
        if (MIN && order == Ordering::Less) || (!MIN && order == Ordering::Greater) {
            best = item;
        }
    }
    Ok(best.clone())
}

fn regex(function: &str, pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| error(function, e))
}

fn find(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value> {
    let found = regex("find", &pattern)?
        .find(&text)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    Ok(Value::String(Arc::new(found)))
}

fn find_all(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value> {
    let found: Vec<Value> = regex("findAll", &pattern)?
        .find_iter(&text)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    Ok(Value::List(Arc::new(found)))
}

/// A value of one of this library's own types: a map with its reserved key.
fn tagged(tag: &str, text: &str) -> Value {
    let mut map = std::collections::HashMap::new();
    map.insert(tag.to_string(), Value::String(Arc::new(text.to_string())));
    Value::Map(Map::from(map))
}

fn untag<'a>(v: &'a Value, tag: &str) -> Option<&'a str> {
    let Value::Map(map) = v else {
        return None;
    };
    match map.get(&cel::objects::Key::from(tag.to_string())) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// A Kubernetes quantity (`500m`, `1Gi`, `2e3`) as a number.
fn parse_quantity(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number == "+" || number == "-" || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * factor)
}

fn quantity(s: Arc<String>) -> Result<Value> {
    match parse_quantity(&s) {
        Some(_) => Ok(tagged("__quantity", &s)),
        None => Err(error("quantity", format!("invalid quantity: {s:?}"))),
    }
}

fn quantity_of(v: &Value) -> Result<f64> {
    untag(v, "__quantity")
        .and_then(parse_quantity)
        .ok_or_else(|| error("quantity", "not a quantity; use quantity('…')"))
}

fn compare(a: &Value, b: &Value) -> Result<Ordering> {
    quantity_of(a)?
        .partial_cmp(&quantity_of(b)?)
        .ok_or_else(|| error("compareTo", "the quantities are not comparable"))
}

fn compare_to(This(a): This<Value>, b: Value) -> Result<i64> {
    Ok(match compare(&a, &b)? {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    })
}

fn as_integer(This(q): This<Value>) -> Result<i64> {
    let value = quantity_of(&q)?;
    if value.fract() != 0.0 || value.abs() > i64::MAX as f64 {
        return Err(error(
            "asInteger",
            "the quantity is not an integer that fits in int64",
        ));
    }
    Ok(value as i64)
}

fn ip(s: Arc<String>) -> Result<Value> {
    match s.parse::<IpAddr>() {
        Ok(_) => Ok(tagged("__ip", &s)),
        Err(_) => Err(error("ip", format!("IP Address {s:?} parse error"))),
    }
}

fn ip_of(v: &Value) -> Result<IpAddr> {
    untag(v, "__ip")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| error("ip", "not an IP address; use ip('…')"))
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn cidr(s: Arc<String>) -> Result<Value> {
    match parse_cidr(&s) {
        Some(_) => Ok(tagged("__cidr", &s)),
        None => Err(error("cidr", format!("network address {s:?} parse error"))),
    }
}

fn cidr_of(v: &Value) -> Result<(IpAddr, u8)> {
    untag(v, "__cidr")
        .and_then(parse_cidr)
        .ok_or_else(|| error("cidr", "not a CIDR; use cidr('…')"))
}

/// The address as a 128-bit number and its width in bits.
fn bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn contains_ip(This(c): This<Value>, target: Value) -> Result<bool> {
    let (net, len) = cidr_of(&c)?;
    let ip = match &target {
        Value::String(s) => s
            .parse::<IpAddr>()
            .map_err(|_| error("containsIP", format!("IP Address {s:?} parse error")))?,
        other => ip_of(other)?,
    };
    let ((net, width), (addr, addr_width)) = (bits(net), bits(ip));
    if width != addr_width {
        return Ok(false);
    }
    let host_bits = width - u32::from(len);
    let mask = if host_bits >= 128 {
        0
    } else {
        !0u128 << host_bits
    };
    Ok(net & mask == addr & mask)
}
