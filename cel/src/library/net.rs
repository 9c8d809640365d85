//! The Kubernetes IP and CIDR libraries: `ip('10.0.0.1')`, `cidr('10.0.0.0/8')` and their members.

use std::net::IpAddr;
use std::sync::Arc;

use cel::Value;
use cel::extractors::This;

use super::{Result, error, tagged, untag};

pub(super) fn ip(s: Arc<String>) -> Result<Value> {
    match s.parse::<IpAddr>() {
        Ok(_) => Ok(tagged("__ip", &s)),
        Err(_) => Err(error("ip", format!("IP Address {s:?} parse error"))),
    }
}

pub(super) fn ip_of(v: &Value) -> Result<IpAddr> {
    untag(v, "__ip")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| error("ip", "not an IP address; use ip('…')"))
}

pub(super) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

pub(super) fn cidr(s: Arc<String>) -> Result<Value> {
    match parse_cidr(&s) {
        Some(_) => Ok(tagged("__cidr", &s)),
        None => Err(error("cidr", format!("network address {s:?} parse error"))),
    }
}

pub(super) fn cidr_of(v: &Value) -> Result<(IpAddr, u8)> {
    untag(v, "__cidr")
        .and_then(parse_cidr)
        .ok_or_else(|| error("cidr", "not a CIDR; use cidr('…')"))
}

/// The address as a 128-bit number and its width in bits.
pub(super) fn bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

pub(super) fn contains_ip(This(c): This<Value>, target: Value) -> Result<bool> {
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
