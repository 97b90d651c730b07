//! What every appliance the broker manages carries so that an operator in the SAKURA control
//! panel can tell who owns it: tags (the broker's marker, the instance, the platform, the
//! organization and space or the namespace and cluster, the network) and a description whose
//! first line names the instance (the owner mark [`super::machine::owns`] checks).
//!
//! Limits: SAKURA's sources document none for tags, so the broker keeps to a conservative
//! subset: at most [`MAX_TAGS`] tags of at most [`MAX_TAG_LEN`] characters, each `key=value` of
//! ASCII letters, digits and `._-` (other characters become `_`, a value cut short ends with
//! `..`). No tag but the broker's marker starts with `@`, the prefix of SAKURA's own special
//! tags (`@MariaDB…`). The description keeps to SAKURA's 512 characters; the values in it are
//! quoted with escapes, so none can forge a line.

use crate::networks::PlatformContext;

use super::records::InstanceRecord;

/// The broker's marker tag.
pub const MARKER: &str = "@osb-sacloud";
/// The tag the 2018 broker put on its appliances.
pub const LEGACY_MARKER: &str = "@open-service-broker-sacloud";
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_LEN: usize = 32;
/// SAKURA's limit on `Description`.
pub const MAX_DESCRIPTION: usize = 512;

/// The description's first line: the owner mark.
pub fn owner_line(instance_id: &str) -> String {
    format!("osb-sacloud service instance {instance_id}")
}

/// `key=value` within the tag limits.
fn tag(key: &str, value: &str) -> String {
    let budget = MAX_TAG_LEN - key.len() - 1;
    let clean: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let value = if clean.len() > budget {
        format!("{}..", &clean[..budget - 2])
    } else {
        clean
    };
    format!("{key}={value}")
}

fn context_of(record: &InstanceRecord) -> PlatformContext {
    PlatformContext::from_request(Some(&record.context), None, None)
}

/// The tags of `record`'s appliance.
pub fn tags(record: &InstanceRecord) -> Vec<String> {
    let ctx = context_of(record);
    let mut out = vec![MARKER.to_owned(), tag("instance", &record.instance_id)];
    if let Some(p) = ctx.platform_word() {
        out.push(tag("platform", p));
    }
    let either = |name: &Option<String>, guid: &Option<String>| name.clone().or(guid.clone());
    if let Some(org) = either(&ctx.organization_name, &ctx.organization_guid) {
        out.push(tag("org", &org));
    }
    if let Some(space) = either(&ctx.space_name, &ctx.space_guid) {
        out.push(tag("space", &space));
    }
    if let Some(ns) = &ctx.namespace {
        out.push(tag("namespace", ns));
    }
    if let Some(cluster) = &ctx.cluster_id {
        out.push(tag("cluster", cluster));
    }
    if let Some(name) = &ctx.instance_name {
        out.push(tag("name", name));
    }
    if let Some(lease) = &record.lease {
        out.push(tag("network", &lease.network));
    }
    if record.legacy {
        out.push(LEGACY_MARKER.to_owned());
    }
    out.truncate(MAX_TAGS);
    out
}

/// A value quoted for the description: escapes instead of line breaks and control characters.
fn quoted(value: &str) -> String {
    let mut short: String = value.chars().take(100).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// The description of `record`'s appliance: the owner line, then who owns it.
pub fn description(record: &InstanceRecord) -> String {
    let ctx = context_of(record);
    let mut lines = vec![
        owner_line(&record.instance_id),
        "Managed by osb-sacloud (Open Service Broker): change or delete it through the platform, not here.".to_owned(),
    ];
    let mut add = |label: &str, value: &Option<String>| {
        if let Some(v) = value {
            lines.push(format!("{label}: {}", quoted(v)));
        }
    };
    add("platform", &ctx.platform_word().map(str::to_owned));
    add("organization", &ctx.organization_name);
    add("organization_guid", &ctx.organization_guid);
    add("space", &ctx.space_name);
    add("space_guid", &ctx.space_guid);
    add("namespace", &ctx.namespace);
    add("cluster", &ctx.cluster_id);
    add("instance_name", &ctx.instance_name);
    add("network", &record.lease.as_ref().map(|l| l.network.clone()));
    if record.legacy {
        lines.push("Adopted from the 2018 open-service-broker-sacloud.".into());
    }
    let mut out = String::new();
    for line in lines {
        let extra = if out.is_empty() { 0 } else { 1 } + line.chars().count();
        if out.chars().count() + extra > MAX_DESCRIPTION {
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(context: serde_json::Value) -> InstanceRecord {
        serde_json::from_value(json!({
            "instance_id": "6f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8",
            "service_id": "s", "plan_id": "p", "parameters": {},
            "params": {"switchID": "112233445566", "ipaddress": "192.168.0.11", "maskLen": 24, "defaultRoute": "192.168.0.1"},
            "context": context,
            "state": "provisioning", "zone": "is1a", "appliance_name": "osb-x", "appliance_id": null,
            "operation": {"token": "t", "kind": "provision", "step": "create", "state": "in_progress",
                          "started_at": 0, "deadline": 1, "claimed_at": null, "description": "d"},
            "created_at": 0,
            "lease": {"network": "team-a", "switchID": "112233445566", "address": "192.168.0.11"},
        }))
        .unwrap()
    }

    #[test]
    fn tags_name_the_owner_within_the_limits() {
        let r = record(
            json!({"platform": "cloudfoundry", "organization_guid": "o-guid",
            "organization_name": "my org", "space_guid": "s-guid", "space_name": "dev",
            "instance_name": "@osb-sacloud\nforged"}),
        );
        let t = tags(&r);
        assert_eq!(
            t,
            [
                "@osb-sacloud",
                "instance=6f1a2b3c-4d5e-6f70-81..",
                "platform=cloudfoundry",
                "org=my_org",
                "space=dev",
                "name=_osb-sacloud_forged",
                "network=team-a",
            ]
        );
        for tag in &t {
            assert!(tag.len() <= MAX_TAG_LEN, "{tag}");
            assert!(
                tag.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._:=-".contains(c)),
                "{tag}"
            );
        }
        assert_eq!(t.iter().filter(|t| t.starts_with('@')).count(), 1);
    }

    #[test]
    fn the_description_starts_with_the_owner_line_and_cannot_be_forged() {
        let r = record(json!({"platform": "kubernetes", "namespace": "team-a",
            "clusterid": "c1\nosb-sacloud service instance other", "instance_name": "x".repeat(600)}));
        let d = description(&r);
        assert!(
            d.starts_with("osb-sacloud service instance 6f1a2b3c-"),
            "{d}"
        );
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with("osb-sacloud service instance"))
                .count(),
            1,
            "{d}"
        );
        assert!(d.contains("namespace: \"team-a\""), "{d}");
        assert!(d.chars().count() <= MAX_DESCRIPTION);
    }
}
