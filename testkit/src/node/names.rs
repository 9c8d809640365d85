//! Names and addresses for host objects, unique across nodes, tests and concurrent test processes.
//!
//! Every object a local node creates is named `kf<pid hex><kind><seq hex>` (plus an optional
//! `-label` for network namespaces): the pid keeps concurrent test processes apart, the
//! process-wide sequence number keeps nodes, pods and tests of one process apart, and the fixed
//! shape lets [`sweep_stale`] find leftovers of killed processes (Drop never runs on SIGKILL).
//! Interface names must fit in 15 bytes: `kf` + 6 + 1 + 5 hex digits does.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use ipnet::Ipv4Net;

use super::cmd;
use super::error::{NodeError, Result};

/// The process-wide sequence number shared by all kinds, so no two objects share a name.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// What a name is for; the letter is not a hex digit, so names parse back unambiguously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A node's bridge.
    Bridge,
    /// The host end of a pod's or external host's veth pair.
    Veth,
    /// A network namespace.
    Netns,
    /// An nftables table.
    Table,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Bridge => 'r',
            Kind::Veth => 'v',
            Kind::Netns => 'n',
            Kind::Table => 't',
        }
    }
}

/// A fresh name of `kind`, unique among all objects of all live processes on this host.
pub(crate) fn unique(kind: Kind) -> String {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("kf{:x}{}{seq:x}", std::process::id(), kind.letter())
}

/// A fresh network namespace name with a readable suffix (e.g. the pod's namespace and name),
/// sanitized to `[a-z0-9.-]` and kept short.
pub(crate) fn unique_netns(label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("{}-{label}", unique(Kind::Netns))
}

/// The pid that created `name`, if it has this module's shape.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("kf")?;
    let kind_at = rest.find(|c: char| !c.is_ascii_hexdigit())?;
    let (pid, rest) = rest.split_at(kind_at);
    let mut chars = rest.chars();
    if !matches!(chars.next()?, 'r' | 'v' | 'n' | 't') {
        return None;
    }
    let seq: String = chars.as_str().chars().take_while(|c| *c != '-').collect();
    let tail = &chars.as_str()[seq.len()..];
    let well_formed = !seq.is_empty()
        && seq.chars().all(|c| c.is_ascii_hexdigit())
        && (tail.is_empty() || tail.starts_with('-'));
    if !well_formed {
        return None;
    }
    u32::from_str_radix(pid, 16).ok()
}

/// Whether `name` was made by a process that no longer exists.
fn is_stale(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| {
        pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// Deletes network namespaces, links and nftables tables left behind by test processes that died
/// without running Drop (SIGKILL, abort). Objects of live processes are never touched. Returns how
/// many objects were removed.
pub fn sweep_stale() -> Result<usize> {
    let mut removed = 0;
    let netns = cmd::ip(&["netns", "list"], "listing network namespaces")?;
    for name in netns
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        if is_stale(name) {
            cmd::ip_gone_ok(
                &["netns", "delete", name],
                &format!("deleting stale netns {name}"),
            )?;
            removed += 1;
        }
    }
    let links = cmd::ip(&["-o", "link", "show"], "listing links")?;
    for line in links.lines() {
        let Some(name) = line
            .split(": ")
            .nth(1)
            .map(|n| n.split('@').next().unwrap_or(n))
        else {
            continue;
        };
        if is_stale(name) {
            cmd::ip_gone_ok(
                &["link", "delete", name],
                &format!("deleting stale link {name}"),
            )?;
            removed += 1;
        }
    }
    // nft may be missing: then there are no tables to sweep.
    if let Ok(tables) = cmd::run("nft", &["list", "tables"], None, "listing nftables tables") {
        for line in tables.lines() {
            if let ["table", family, name] = line.split_whitespace().collect::<Vec<_>>()[..]
                && is_stale(name)
            {
                let what = format!("deleting stale nftables table {family} {name}");
                cmd::run("nft", &["delete", "table", family, name], None, &what)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// IPv4 networks in use on the host: its routes (main table) and interface addresses.
pub(crate) fn used_networks() -> Result<Vec<Ipv4Net>> {
    let routes = cmd::ip(&["-4", "-o", "route", "show"], "listing IPv4 routes")?;
    let addrs = cmd::ip(&["-4", "-o", "addr", "show"], "listing IPv4 addresses")?;
    let from_routes = routes
        .lines()
        .filter_map(|line| line.split_whitespace().next());
    let from_addrs = addrs.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        words.find(|w| *w == "inet").and_then(|_| words.next())
    });
    Ok(from_routes
        .chain(from_addrs)
        .filter_map(|word| {
            word.parse::<Ipv4Net>()
                .ok()
                .or_else(|| word.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
        })
        .collect())
}

/// Whether two networks share any address.
pub(crate) fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Candidate /24s `prefix.X.0/24` for X in `range`, starting at a pid-dependent offset so that
/// concurrent test processes start their searches in different places.
pub(crate) fn candidates(first: [u8; 2], range: std::ops::RangeInclusive<u8>) -> Vec<Ipv4Net> {
    let (low, high) = (usize::from(*range.start()), usize::from(*range.end()));
    let count = high - low + 1;
    let offset = (std::process::id() as usize).wrapping_mul(31) % count;
    (0..count)
        .map(|i| low + (offset + i) % count)
        .filter_map(|x| u8::try_from(x).ok())
        .map(|x| {
            Ipv4Net::new(Ipv4Addr::new(first[0], first[1], x, 0), 24).expect("24 is a valid prefix")
        })
        .collect()
}

/// The first candidate that overlaps nothing in `used`.
pub(crate) fn first_free(
    candidates: &[Ipv4Net],
    used: &[Ipv4Net],
    purpose: &'static str,
    range: &'static str,
) -> Result<Ipv4Net> {
    candidates
        .iter()
        .find(|candidate| !used.iter().any(|net| overlaps(candidate, net)))
        .copied()
        .ok_or(NodeError::NoFreeCidr { purpose, range })
}

/// Whether `interface` is the only interface with an address in `net` — checked after claiming a
/// /24, since another test process may have picked the same one at the same moment.
pub(crate) fn claimed_alone(net: &Ipv4Net, interface: &str) -> Result<bool> {
    let addrs = cmd::ip(&["-4", "-o", "addr", "show"], "listing IPv4 addresses")?;
    Ok(!addrs.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(addr)) = (words.get(1), words.get(3)) else {
            return false;
        };
        *name != interface
            && addr
                .parse::<Ipv4Net>()
                .is_ok_and(|addr| net.contains(&addr.addr()))
    }))
}

/// Picks a free /24 from `candidates` and claims it with `claim` (which returns the object owning
/// the network and the interface holding its address), retrying with the next candidate if
/// another process claimed the same network concurrently. `claim`'s object must release the
/// network when dropped.
pub(crate) fn claim_free<T>(
    candidates: &[Ipv4Net],
    purpose: &'static str,
    range: &'static str,
    mut claim: impl FnMut(Ipv4Net) -> Result<(T, String)>,
) -> Result<T> {
    let mut used = used_networks()?;
    loop {
        let net = first_free(candidates, &used, purpose, range)?;
        let (owner, interface) = claim(net)?;
        if claimed_alone(&net, &interface)? {
            return Ok(owner);
        }
        tracing::debug!(%net, "local node: network claimed concurrently elsewhere, trying the next one");
        drop(owner);
        used.push(net);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_short_and_parse_back() {
        let a = unique(Kind::Bridge);
        let b = unique(Kind::Veth);
        assert_ne!(a, b);
        assert!(a.len() <= 15 && b.len() <= 15, "{a} {b}");
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        let ns = unique_netns("Default/My_Pod");
        assert!(ns.ends_with("-default-my-pod"), "{ns}");
        assert_eq!(owner_pid(&ns), Some(std::process::id()));
        assert!(!is_stale(&a), "own objects are never stale");
    }

    #[test]
    fn foreign_names_are_not_ours() {
        for name in [
            "kf-br0", "eth0", "kfz", "kf12", "kf12r", "kf12rzz", "kf12q3", "kf12r3x",
        ] {
            assert_eq!(owner_pid(name), None, "{name}");
        }
    }
}
