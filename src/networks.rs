//! The operator's network pools (`OSB_NETWORKS`): the SAKURA switches and subnets the broker may
//! put databases on, the addresses it may hand out there, and which platform context (Cloud
//! Foundry organization or space, Kubernetes namespace or cluster) gets which network.
//!
//! The file is JSON (a JSON document is also valid YAML 1.2, so tools that write YAML can emit
//! it with `yq -o json`). It is read and checked once at start; a mistake stops the broker with a
//! message naming the member. Leasing the addresses lives in `broker/leases.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;
use serde_json::Value;

/// The most addresses one network may hand out. The leases of a network are read in one query
/// when an address is allocated, so the range is kept to a size that query reads quickly.
pub const MAX_RANGE: u32 = 4096;

/// Whether users may still name a switch or an address of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserNetworks {
    /// Explicit `switchID`/`ipaddress` must fall inside the context's network and range.
    #[default]
    Pool,
    /// Explicit network parameters are taken as given (addresses on a pool's switch are still
    /// leased, so they cannot collide with allocated ones).
    Any,
}

/// One network: a switch in a zone, its subnet and gateway, the addresses the broker may hand
/// out and those it must never use.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub name: String,
    pub zone: String,
    /// The switch id, 12 digits.
    pub switch_id: String,
    /// The subnet, host bits cleared.
    pub cidr: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The inclusive ranges the broker may hand out (inside `cidr`).
    pub ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Inclusive ranges never handed out or accepted, even inside `ranges`.
    pub reserved: Vec<(Ipv4Addr, Ipv4Addr)>,
}

impl Network {
    /// Whether `ip` may be given to a database on this network at all: a host of the subnet,
    /// not the gateway, not reserved.
    pub fn usable(&self, ip: Ipv4Addr) -> bool {
        self.cidr.contains(&ip)
            && ip != self.cidr.network()
            && ip != self.cidr.broadcast()
            && ip != self.gateway
            && !in_ranges(&self.reserved, ip)
    }

    /// Whether the broker may hand `ip` out: usable and inside the range.
    pub fn in_pool(&self, ip: Ipv4Addr) -> bool {
        self.usable(ip) && in_ranges(&self.ranges, ip)
    }

    /// Every address the broker may hand out, in order.
    pub fn pool(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.ranges
            .iter()
            .flat_map(|(a, b)| (u32::from(*a)..=u32::from(*b)).map(Ipv4Addr::from))
            .filter(|ip| self.usable(*ip))
    }

    /// The range for people: `192.168.0.100-192.168.0.199`.
    pub fn range_text(&self) -> String {
        self.ranges
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn in_ranges(ranges: &[(Ipv4Addr, Ipv4Addr)], ip: Ipv4Addr) -> bool {
    ranges.iter().any(|(a, b)| *a <= ip && ip <= *b)
}

/// What a provision request says about where it comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformContext {
    /// `context.platform`: `cloudfoundry`, `kubernetes`, ...
    pub platform: Option<String>,
    pub organization_guid: Option<String>,
    pub space_guid: Option<String>,
    pub organization_name: Option<String>,
    pub space_name: Option<String>,
    pub namespace: Option<String>,
    pub cluster_id: Option<String>,
    pub instance_name: Option<String>,
}

impl PlatformContext {
    /// From the OSB `context` object; without one, the profile's top-level
    /// `organization_guid`/`space_guid` stand for a Cloud Foundry org and space.
    pub fn from_request(
        context: Option<&Value>,
        organization_guid: Option<&str>,
        space_guid: Option<&str>,
    ) -> PlatformContext {
        // The profile's keys, and the camelCase ones provider-osb sends (`clusterId`).
        let text = |keys: &[&str]| {
            keys.iter().find_map(|key| {
                context
                    .and_then(|c| c.get(*key))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
        };
        let mut ctx = PlatformContext {
            platform: text(&["platform"]),
            organization_guid: text(&["organization_guid", "organizationGuid"]),
            space_guid: text(&["space_guid", "spaceGuid"]),
            organization_name: text(&["organization_name", "organizationName"]),
            space_name: text(&["space_name", "spaceName"]),
            namespace: text(&["namespace"]),
            cluster_id: text(&["clusterid", "clusterId", "cluster_id"]),
            instance_name: text(&["instance_name", "instanceName"]),
        };
        if !context.is_some_and(Value::is_object) {
            ctx.organization_guid = organization_guid.map(str::to_owned);
            ctx.space_guid = space_guid.map(str::to_owned);
        }
        ctx
    }

    /// The platform's word for people, guessed from the fields when `platform` is missing.
    pub fn platform_word(&self) -> Option<&str> {
        self.platform.as_deref().or(if self.namespace.is_some() {
            Some("kubernetes")
        } else if self.space_guid.is_some() {
            Some("cloudfoundry")
        } else {
            None
        })
    }

    /// "space 1a2b…" / "namespace team-a": what chose the network, for messages.
    pub fn describe(&self) -> String {
        if let Some(ns) = &self.namespace {
            format!("Kubernetes namespace {ns:?}")
        } else if let Some(space) = &self.space_guid {
            format!("Cloud Foundry space {space}")
        } else {
            "this platform context".into()
        }
    }
}

/// All the networks and the rules that pick one for a context.
#[derive(Debug, Clone, PartialEq)]
pub struct Networks {
    pub networks: Vec<Network>,
    spaces: BTreeMap<String, usize>,
    organizations: BTreeMap<String, usize>,
    /// `namespace` or `clusterid/namespace`.
    namespaces: BTreeMap<String, usize>,
    clusters: BTreeMap<String, usize>,
    default: Option<usize>,
    pub user_networks: UserNetworks,
}

/// Why the network file cannot be used. Names the member to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network pools: {0}")]
pub struct NetworksError(pub String);

fn err(message: impl Into<String>) -> NetworksError {
    NetworksError(message.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    networks: Vec<NetworkDoc>,
    #[serde(default)]
    contexts: ContextsDoc,
    #[serde(default)]
    default: Option<String>,
    #[serde(default, rename = "userNetworks")]
    user_networks: UserNetworks,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkDoc {
    name: String,
    zone: String,
    #[serde(rename = "switchID")]
    switch_id: Value,
    cidr: String,
    gateway: String,
    range: OneOrMany,
    #[serde(default)]
    reserved: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ContextsDoc {
    #[serde(default)]
    cloudfoundry: CfDoc,
    #[serde(default)]
    kubernetes: K8sDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CfDoc {
    #[serde(default)]
    organizations: BTreeMap<String, String>,
    #[serde(default)]
    spaces: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct K8sDoc {
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    clusters: BTreeMap<String, String>,
}

/// `a`, `a-b` or `a.b.c.d/n` as an inclusive range.
fn parse_range(text: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let text = text.trim();
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (Ipv4Addr, Ipv4Addr) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        return (a <= b).then_some((a, b));
    }
    if text.contains('/') {
        let net: Ipv4Net = text.parse().ok()?;
        let net = net.trunc();
        return Some((net.network(), net.broadcast()));
    }
    let a: Ipv4Addr = text.parse().ok()?;
    Some((a, a))
}

/// A name usable in store keys, tags and messages.
fn valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Networks {
    /// Parse and check the file's text. `zones` are the zones the broker serves.
    pub fn parse(text: &str, zones: &[String]) -> Result<Networks, NetworksError> {
        let doc: FileDoc = serde_json::from_str(text).map_err(|e| {
            err(format!(
                "not the expected JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                // serde's messages name the member or the type expected; no values are secret here.
                e.to_string().split(" at line").next().unwrap_or_default()
            ))
        })?;
        if doc.networks.is_empty() {
            return Err(err("`networks` lists no network"));
        }
        let mut networks = Vec::with_capacity(doc.networks.len());
        for n in doc.networks {
            let net = Self::network(n, zones)?;
            if networks.iter().any(|o: &Network| o.name == net.name) {
                return Err(err(format!("network {:?} is declared twice", net.name)));
            }
            networks.push(net);
        }
        let index = |name: &str, what: &str| {
            networks.iter().position(|n| n.name == name).ok_or_else(|| {
                err(format!(
                    "{what} names network {name:?}, which is not declared"
                ))
            })
        };
        let map = |m: BTreeMap<String, String>, what: &str| {
            m.into_iter()
                .map(|(k, v)| {
                    if k.is_empty() {
                        return Err(err(format!("{what} has an empty key")));
                    }
                    Ok((k.clone(), index(&v, &format!("{what} {k:?}"))?))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
        };
        let c = doc.contexts;
        Ok(Networks {
            spaces: map(c.cloudfoundry.spaces, "contexts.cloudfoundry.spaces")?,
            organizations: map(
                c.cloudfoundry.organizations,
                "contexts.cloudfoundry.organizations",
            )?,
            namespaces: map(c.kubernetes.namespaces, "contexts.kubernetes.namespaces")?,
            clusters: map(c.kubernetes.clusters, "contexts.kubernetes.clusters")?,
            default: doc
                .default
                .as_deref()
                .map(|d| index(d, "`default`"))
                .transpose()?,
            user_networks: doc.user_networks,
            networks,
        })
    }

    fn network(n: NetworkDoc, zones: &[String]) -> Result<Network, NetworksError> {
        let name = n.name;
        if !valid_name(&name) {
            return Err(err(format!(
                "network name {name:?} must be 1 to 40 letters, digits, `-`, `_` or `.`"
            )));
        }
        let at = |what: &str| format!("network {name:?}: {what}");
        if !zones.contains(&n.zone) {
            return Err(err(at(&format!(
                "zone {:?} is not one this broker serves ({})",
                n.zone,
                zones.join(", ")
            ))));
        }
        let switch_id = match &n.switch_id {
            Value::String(s) => s.clone(),
            Value::Number(v) => v.to_string(),
            _ => String::new(),
        };
        if !(switch_id.len() == 12
            && switch_id.bytes().all(|b| b.is_ascii_digit())
            && !switch_id.starts_with('0'))
        {
            return Err(err(at("switchID must be the 12-digit id of a switch")));
        }
        let cidr: Ipv4Net = n
            .cidr
            .parse()
            .map_err(|_| err(at("cidr must be an IPv4 subnet such as 192.168.0.0/24")))?;
        if !(8..=29).contains(&cidr.prefix_len()) {
            return Err(err(at(
                "cidr's prefix length must be 8 to 29 (what SAKURA accepts)",
            )));
        }
        let cidr = cidr.trunc();
        let gateway: Ipv4Addr = n
            .gateway
            .parse()
            .map_err(|_| err(at("gateway must be an IPv4 address")))?;
        if !cidr.contains(&gateway) || gateway == cidr.network() || gateway == cidr.broadcast() {
            return Err(err(at(&format!(
                "gateway {gateway} must be a host address of {cidr}"
            ))));
        }
        let texts = match n.range {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        let mut ranges = Vec::new();
        for t in &texts {
            let (a, b) = parse_range(t).ok_or_else(|| {
                err(at(&format!(
                    "range {t:?} must be an address, `first-last` or a CIDR"
                )))
            })?;
            if !cidr.contains(&a) || !cidr.contains(&b) {
                return Err(err(at(&format!("range {t:?} is not inside {cidr}"))));
            }
            ranges.push((a, b));
        }
        let mut reserved = Vec::new();
        for t in &n.reserved {
            reserved.push(parse_range(t).ok_or_else(|| {
                err(at(&format!(
                    "reserved {t:?} must be an address, `first-last` or a CIDR"
                )))
            })?);
        }
        let net = Network {
            name: name.clone(),
            zone: n.zone,
            switch_id,
            cidr,
            gateway,
            ranges,
            reserved,
        };
        let size = net.pool().take(MAX_RANGE as usize + 1).count() as u32;
        if size == 0 {
            return Err(err(at(
                "the range leaves no address to hand out (after the gateway and `reserved`)",
            )));
        }
        if size > MAX_RANGE {
            return Err(err(at(&format!(
                "the range holds more than {MAX_RANGE} addresses; narrow it"
            ))));
        }
        Ok(net)
    }

    /// Read `OSB_NETWORKS`: the JSON itself when it starts with `{`, else the path of a file.
    pub fn load(value: &str, zones: &[String]) -> Result<Networks, NetworksError> {
        let trimmed = value.trim();
        if trimmed.starts_with('{') {
            return Self::parse(trimmed, zones);
        }
        let text = std::fs::read_to_string(trimmed)
            .map_err(|e| err(format!("cannot read OSB_NETWORKS file {trimmed:?}: {e}")))?;
        Self::parse(&text, zones)
    }

    /// Fake mode's own pool: one network in `zone` on a switch of its own, so a provision
    /// without parameters works out of the box while explicit parameters still do.
    pub fn fake(zone: &str) -> Networks {
        let net = Network {
            name: "fake".into(),
            zone: zone.into(),
            switch_id: "100000000001".into(),
            cidr: "192.168.100.0/24".parse().expect("constant subnet"),
            gateway: Ipv4Addr::new(192, 168, 100, 1),
            ranges: vec![(
                Ipv4Addr::new(192, 168, 100, 10),
                Ipv4Addr::new(192, 168, 100, 250),
            )],
            reserved: Vec::new(),
        };
        Networks {
            networks: vec![net],
            spaces: BTreeMap::new(),
            organizations: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            clusters: BTreeMap::new(),
            default: Some(0),
            user_networks: UserNetworks::Any,
        }
    }

    /// The network that serves `ctx`: a Cloud Foundry space, then its organization; a
    /// Kubernetes `clusterid/namespace`, then the namespace, then the cluster; then the default.
    pub fn select(&self, ctx: &PlatformContext) -> Option<&Network> {
        let by = |map: &BTreeMap<String, usize>, key: Option<&String>| {
            key.and_then(|k| map.get(k)).copied()
        };
        let cluster_ns = match (&ctx.cluster_id, &ctx.namespace) {
            (Some(c), Some(n)) => Some(format!("{c}/{n}")),
            _ => None,
        };
        by(&self.spaces, ctx.space_guid.as_ref())
            .or_else(|| by(&self.organizations, ctx.organization_guid.as_ref()))
            .or_else(|| by(&self.namespaces, cluster_ns.as_ref()))
            .or_else(|| by(&self.namespaces, ctx.namespace.as_ref()))
            .or_else(|| by(&self.clusters, ctx.cluster_id.as_ref()))
            .or(self.default)
            .map(|i| &self.networks[i])
    }

    /// The declared network on `switch_id` whose subnet holds `ip` (or the first on that switch).
    pub fn on_switch(&self, switch_id: &str, ip: Option<Ipv4Addr>) -> Option<&Network> {
        let mut on = self.networks.iter().filter(|n| n.switch_id == switch_id);
        match ip {
            Some(ip) => on.find(|n| n.cidr.contains(&ip)),
            None => on.next(),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Vec<String> {
        vec!["is1a".into(), "tk1a".into()]
    }

    const FILE: &str = r#"{
      "networks": [
        {"name": "shared", "zone": "is1a", "switchID": "112233445566",
         "cidr": "192.168.0.0/24", "gateway": "192.168.0.1",
         "range": "192.168.0.100-192.168.0.110", "reserved": ["192.168.0.105", "192.168.0.108/31"]},
        {"name": "team-a", "zone": "tk1a", "switchID": 223344556677,
         "cidr": "10.0.0.0/28", "gateway": "10.0.0.1", "range": ["10.0.0.0/28"]}
      ],
      "contexts": {
        "cloudfoundry": {"spaces": {"space-a": "team-a"}, "organizations": {"org-a": "team-a"}},
        "kubernetes": {"namespaces": {"team-a": "team-a", "c2/shared-ns": "shared"}, "clusters": {"c2": "team-a"}}
      },
      "default": "shared"
    }"#;

    #[test]
    fn a_file_parses_and_its_pool_skips_gateway_network_broadcast_and_reserved() {
        let n = Networks::parse(FILE, &zones()).unwrap();
        assert_eq!(n.user_networks, UserNetworks::Pool);
        let shared = n.by_name("shared").unwrap();
        let pool: Vec<String> = shared.pool().map(|a| a.to_string()).collect();
        assert_eq!(
            pool,
            [100, 101, 102, 103, 104, 106, 107, 110].map(|i| format!("192.168.0.{i}"))
        );
        let team = n.by_name("team-a").unwrap();
        assert_eq!(team.switch_id, "223344556677");
        // 10.0.0.0/28: .0 network, .1 gateway, .15 broadcast left out.
        assert_eq!(team.pool().count(), 13);
        assert!(!team.in_pool("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn contexts_pick_the_most_specific_network_then_the_default() {
        let n = Networks::parse(FILE, &zones()).unwrap();
        let pick = |ctx: PlatformContext| n.select(&ctx).map(|n| n.name.clone());
        let cf = |org: &str, space: &str| PlatformContext {
            organization_guid: Some(org.into()),
            space_guid: Some(space.into()),
            ..Default::default()
        };
        let k8s = |cluster: Option<&str>, ns: &str| PlatformContext {
            namespace: Some(ns.into()),
            cluster_id: cluster.map(Into::into),
            ..Default::default()
        };
        assert_eq!(pick(cf("org-a", "x")).as_deref(), Some("team-a"));
        assert_eq!(pick(cf("x", "space-a")).as_deref(), Some("team-a"));
        assert_eq!(pick(cf("x", "y")).as_deref(), Some("shared"));
        assert_eq!(pick(k8s(None, "team-a")).as_deref(), Some("team-a"));
        assert_eq!(
            pick(k8s(Some("c2"), "shared-ns")).as_deref(),
            Some("shared")
        );
        assert_eq!(pick(k8s(Some("c2"), "other")).as_deref(), Some("team-a"));
        assert_eq!(pick(k8s(Some("c9"), "other")).as_deref(), Some("shared"));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (r#"{"networks": []}"#, "lists no network"),
            (
                r#"{"networks": [{"name": "a", "zone": "xx1", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.0.10-192.168.0.20"}]}"#,
                "zone",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "12", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.0.10-192.168.0.20"}]}"#,
                "switchID",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.1.1", "range": "192.168.0.10-192.168.0.20"}]}"#,
                "gateway",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.1.10-192.168.1.20"}]}"#,
                "not inside",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.0.1"}]}"#,
                "no address",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "10.0.0.0/8", "gateway": "10.0.0.1", "range": "10.0.0.0/16"}]}"#,
                "more than",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.0.10"}], "default": "b"}"#,
                "not declared",
            ),
            (
                r#"{"networks": [{"name": "a", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.0.10", "colour": 1}]}"#,
                "colour",
            ),
            (
                r#"{"networks": [{"name": "a b", "zone": "is1a", "switchID": "112233445566", "cidr": "192.168.0.0/24", "gateway": "192.168.0.1", "range": "192.168.0.10"}]}"#,
                "network name",
            ),
        ];
        for (text, expected) in cases {
            let e = Networks::parse(text, &zones()).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn the_context_comes_from_context_or_the_profile_fields() {
        let ctx = PlatformContext::from_request(
            Some(
                &serde_json::json!({"platform": "kubernetes", "namespace": "ns", "clusterid": "c"}),
            ),
            Some("ignored"),
            Some("ignored"),
        );
        assert_eq!(ctx.namespace.as_deref(), Some("ns"));
        assert_eq!(ctx.cluster_id.as_deref(), Some("c"));
        assert_eq!(ctx.space_guid, None);
        let ctx = PlatformContext::from_request(
            Some(
                &serde_json::json!({"platform": "kubernetes", "namespace": "ns", "clusterId": "c2", "instanceName": "db"}),
            ),
            None,
            None,
        );
        assert_eq!(ctx.cluster_id.as_deref(), Some("c2"));
        assert_eq!(ctx.instance_name.as_deref(), Some("db"));
        let ctx = PlatformContext::from_request(None, Some("o"), Some("s"));
        assert_eq!(ctx.space_guid.as_deref(), Some("s"));
        assert_eq!(ctx.platform_word(), Some("cloudfoundry"));
    }
}
