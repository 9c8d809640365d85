//! An "external" machine for network-policy tests: a network namespace outside every pod CIDR,
//! on its own veth to the host and routed through it (no NAT), so a pod reaching it really leaves
//! the cluster network and `ipBlock` / "deny external egress" rules can be tested against a real
//! non-pod address. Pods reach it via their node's bridge and the host's forwarding; it reaches
//! pods the same way back.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::cmd;
use super::error::Result;
use super::names::{self, Kind};
use super::probe::{Listener, Probe, Reach};

/// Serializes "pick a free /24, then claim it" within this process.
static PICK: Mutex<()> = Mutex::new(());

/// A network namespace standing in for a host outside the cluster. Removed on drop.
#[derive(Debug)]
pub struct ExternalHost {
    netns: String,
    host_veth: String,
    subnet: Ipv4Net,
    ip: Ipv4Addr,
    host_ip: Ipv4Addr,
}

impl ExternalHost {
    /// Creates an external host in a free `192.168.X.0/24` (X in 100..=249, avoiding every network
    /// already routed or addressed on this host): the host end of its veth gets `.1`, the external
    /// host `.2`. Blocking.
    pub fn create_unique() -> Result<Self> {
        let _picking = PICK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let candidates = names::candidates([192, 168], 100..=249);
        names::claim_free(
            &candidates,
            "an external host",
            "192.168.100-249.0/24",
            |subnet| {
                let external = Self::create(subnet)?;
                let interface = external.host_veth.clone();
                Ok((external, interface))
            },
        )
    }

    /// Creates an external host in `subnet` (at least a /30): the host end of the veth gets the
    /// first address, the external host the second. The subnet must not overlap pod CIDRs or
    /// other host networks. Blocking.
    pub fn create(subnet: Ipv4Net) -> Result<Self> {
        let mut hosts = subnet.hosts();
        let (Some(host_ip), Some(ip), true) =
            (hosts.next(), hosts.next(), subnet.prefix_len() <= 30)
        else {
            return Err(super::NodeError::CidrTooSmall(subnet));
        };
        cmd::enable_forwarding()?;
        let external = Self {
            netns: names::unique_netns("external"),
            host_veth: names::unique(Kind::Veth),
            subnet,
            ip,
            host_ip,
        };
        // On failure, `external` is dropped here and removes whatever was created.
        external.set_up()?;
        tracing::debug!(netns = %external.netns, %ip, "external host created");
        Ok(external)
    }

    fn set_up(&self) -> Result<()> {
        let (netns, veth, prefix) = (
            self.netns.as_str(),
            self.host_veth.as_str(),
            self.subnet.prefix_len(),
        );
        let host_addr = format!("{}/{prefix}", self.host_ip);
        let addr = format!("{}/{prefix}", self.ip);
        let gateway = self.host_ip.to_string();
        cmd::ip(
            &["netns", "add", netns],
            &format!("creating network namespace {netns} for an external host"),
        )?;
        cmd::ip(
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
            ],
            &format!("creating veth {veth} for external host {netns}"),
        )?;
        cmd::ip(
            &["addr", "add", &host_addr, "dev", veth],
            &format!("addressing veth {veth}"),
        )?;
        cmd::ip(
            &["link", "set", veth, "up"],
            &format!("bringing up veth {veth}"),
        )?;
        let inside = |args: &[&str], what: &str| {
            let mut full = vec!["-n", netns];
            full.extend_from_slice(args);
            cmd::ip(&full, &format!("{what} in external host {netns}"))
        };
        inside(&["addr", "add", &addr, "dev", "eth0"], "addressing eth0")?;
        inside(&["link", "set", "eth0", "up"], "bringing up eth0")?;
        inside(&["link", "set", "lo", "up"], "bringing up lo")?;
        inside(
            &["route", "add", "default", "via", &gateway],
            "adding the default route",
        )?;
        Ok(())
    }

    /// The external host's address (e.g. 192.168.123.2).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its subnet.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The host's address on the external host's link (its default gateway).
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// Its network namespace's name.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The host end of its veth (the interface its traffic enters the host on; usable as
    /// `iifname`/`oifname` in nftables rules).
    pub fn host_veth(&self) -> &str {
        &self.host_veth
    }

    /// Probes from inside the external host.
    pub fn probe(&self) -> Probe {
        Probe::in_netns(self.netns.clone())
    }

    /// See [`Probe::listen_tcp`].
    pub fn listen_tcp(&self, port: u16) -> Result<Listener> {
        self.probe().listen_tcp(port)
    }

    /// See [`Probe::listen_udp`].
    pub fn listen_udp(&self, port: u16) -> Result<Listener> {
        self.probe().listen_udp(port)
    }

    /// See [`Probe::connect_tcp`].
    pub fn connect_tcp(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<Reach> {
        self.probe().connect_tcp(ip, port, timeout)
    }

    /// See [`Probe::udp_roundtrip`].
    pub fn udp_roundtrip(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<Reach> {
        self.probe().udp_roundtrip(ip, port, timeout)
    }
}

impl Drop for ExternalHost {
    fn drop(&mut self) {
        // Deleting the host end destroys the pair even if a socket still pins the namespace.
        let steps = [
            cmd::ip_gone_ok(
                &["link", "delete", &self.host_veth],
                &format!("deleting veth {}", self.host_veth),
            ),
            cmd::ip_gone_ok(
                &["netns", "delete", &self.netns],
                &format!("deleting network namespace {}", self.netns),
            ),
        ];
        for error in steps.into_iter().filter_map(Result::err) {
            tracing::warn!(%error, "external host teardown");
            eprintln!("kubeforge local node: external host teardown: {error}");
        }
    }
}
