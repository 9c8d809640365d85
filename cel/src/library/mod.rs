//! The Kubernetes CEL libraries on top of cel-rust's standard library and strings extension:
//! the functions kube-apiserver adds for validation rules (lists, regex, quantity, IP and CIDR,
//! URL, semver, sets, named formats), one module each, and the table of what is and is not
//! supported ([`FUNCTIONS`]).
//!
//! Quantities, IPs, CIDRs, URLs, semver versions and formats are values of their own in
//! kube-apiserver; here they are maps with one reserved key (`__quantity`, `__ip`, `__cidr`,
//! `__url`, `__semver`, `__format`) holding the parsed text, so the member functions can
//! recognise them.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::Map;
use cel::{Context, ExecutionError, Value};

type Result<T> = std::result::Result<T, ExecutionError>;

mod format;
mod lists;
mod net;
mod quantity;
mod semver;
mod sets;
mod url;

use lists::*;
use net::*;
use quantity::*;

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
    ok(
        "quantity",
        "add / sub",
        "quantity('1Gi').add(quantity('1Gi')).isGreaterThan(quantity('2G')) && quantity('1k').sub(1).asInteger() == 999",
    ),
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
    ok(
        "url",
        "isURL / url / getScheme / getHost / getHostname / getPort / getEscapedPath / getQuery",
        "isURL('https://example.com/x') && !isURL('not a url') && url('https://example.com:8443/a?b=c').getHostname() == 'example.com' && url('https://example.com:8443/a').getPort() == '8443' && url('https://example.com/a/b').getEscapedPath() == '/a/b' && url('http://h/?k=v').getQuery()['k'] == ['v'] && url('https://h').getScheme() == 'https'",
    ),
    ok(
        "format",
        "format.dns1123Label / dns1123Subdomain / dns1035Label / labelValue / uuid … validate",
        "!format.dns1123Label().validate('my-name').hasValue() && format.dns1123Label().validate('My_Name').hasValue() && !format.dns1123Subdomain().validate('a.b-c').hasValue() && format.dns1035Label().validate('1abc').hasValue()",
    ),
    missing(
        "format",
        "format.qualifiedName / dns1123LabelPrefix / uri / byte / date / datetime / named",
        NOT_YET,
    ),
    ok(
        "semver",
        "isSemver / semver / major / minor / patch / compareTo / isGreaterThan / isLessThan",
        "isSemver('1.2.3') && !isSemver('1.2') && semver('1.2.3').major() == 1 && semver('1.10.0').isGreaterThan(semver('1.9.9')) && semver('1.0.0-rc.1').isLessThan(semver('1.0.0')) && semver('2.0.0').compareTo(semver('2.0.0')) == 0",
    ),
    ok(
        "sets",
        "sets.contains / sets.equivalent / sets.intersects",
        "sets.contains([1, 2, 3], [2, 3]) && sets.equivalent([1, 2], [2, 1, 1]) && sets.intersects([1, 2], [2, 5]) && !sets.intersects([1], [2])",
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
    add!("add", |This(a): This<Value>, b: Value| arithmetic(
        &a, &b, 1.0
    ));
    add!("sub", |This(a): This<Value>, b: Value| arithmetic(
        &a, &b, -1.0
    ));
    add!("sets.contains", sets::contains);
    add!("sets.equivalent", sets::equivalent);
    add!("sets.intersects", sets::intersects);
    add!("isURL", url::is_url);
    add!("url", url::url);
    add!("getScheme", url::scheme);
    add!("getHost", url::host);
    add!("getHostname", url::hostname);
    add!("getPort", url::port);
    add!("getEscapedPath", url::escaped_path);
    add!("getQuery", url::query);
    add!("isSemver", semver::is_semver);
    add!("semver", semver::semver);
    add!("major", semver::part::<0>);
    add!("minor", semver::part::<1>);
    add!("patch", semver::part::<2>);
    for name in format::names() {
        let qualified: &'static str = Box::leak(format!("format.{name}").into_boxed_str());
        ctx.add_function(qualified, move || format::named(name))
            .expect("format functions are not standard functions");
    }
    add!("validate", format::validate);
}

fn error(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
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
