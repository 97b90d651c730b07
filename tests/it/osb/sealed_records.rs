//! A dedicated binding's sealed password is bound to its record: the sealed value copied into
//! another binding's record, of the same instance or of another, does not open there (the
//! platform gets a 500, never the other binding's password), while the original still opens,
//! and so does a value sealed before values were bound to their record.

use axum::http::{Method, StatusCode};
use osb_sacloud::store::{Cond, Item, Key, WriteOp};
use serde_json::{Value, json};

use crate::support::dedicated::*;
use crate::support::*;

/// Sealed under the test key (`ENCRYPTION_KEY`) by the previous format (`v1`, no record).
const LEGACY_SEALED: &str =
    "v1:3eb1bd43:v80ywKe3WPUjODNU9IaGArMTbzy6X8YUyoldpVNP7M2jdDdARG+bbedyV027bG73+VH2y+sZ/XBJxTFF";
const LEGACY_PASSWORD: &str = "LegacyPw0123456789abcdefABCDEF01";

/// Store `record` as the binding `binding` of `instance`.
async fn put_copy(h: &Harness, record: &Value, instance: &str, binding: &str) {
    let mut copy = record.clone();
    copy["instance_id"] = json!(instance);
    copy["binding_id"] = json!(binding);
    let item = Item {
        key: Key::binding(instance, binding),
        version: 1,
        expires_at: None,
        data: copy.to_string(),
    };
    h.store
        .write(vec![WriteOp::Put {
            item,
            cond: Cond::Absent,
        }])
        .await
        .expect("record written");
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs MariaDB and PostgreSQL on 127.0.0.1: run scripts/test.sh"
)]
#[tokio::test]
async fn a_sealed_password_copied_to_another_record_does_not_open() {
    run("dedicated", |h| async move {
        let id = new_id("sealed");
        let other = new_id("sealed-other");
        provision(&h, &id, MARIADB_KIND).await;
        provision(&h, &other, MARIADB_KIND).await;
        let origin = binding_id();
        let credentials = bind_ok(&h, &id, &origin, MARIADB_KIND, Value::Null).await;
        let password = text(&credentials, "password");
        let item = h
            .store
            .get(&Key::binding(&id, &origin))
            .await
            .expect("store read")
            .expect("the binding is stored");
        let record: Value = serde_json::from_str(&item.data).expect("a JSON record");
        assert!(
            record["sealed_password"]
                .as_str()
                .is_some_and(|s| !s.contains(&password)),
            "the stored password is sealed"
        );

        // The same instance under another binding id, and another instance under the same one.
        for (instance, binding) in [(id.clone(), binding_id()), (other.clone(), origin.clone())] {
            put_copy(&h, &record, &instance, &binding).await;
            let (status, _, body) = h
                .call(Method::GET, &binding_path(&instance, &binding), None)
                .await;
            assert_eq!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "a copied sealed value opened for {instance}/{binding}: {body}"
            );
            assert_eq!(body["error"], "InternalError", "{body}");
            assert!(!body.to_string().contains(&password), "{body}");
        }

        // The original still opens, and a value sealed before record binding opens anywhere.
        let (status, _, body) = h.call(Method::GET, &binding_path(&id, &origin), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["credentials"]["password"], password.as_str());
        let mut legacy = record.clone();
        legacy["sealed_password"] = json!(LEGACY_SEALED);
        let old = binding_id();
        put_copy(&h, &legacy, &id, &old).await;
        let (status, _, body) = h.call(Method::GET, &binding_path(&id, &old), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["credentials"]["password"], LEGACY_PASSWORD);

        let (status, body) = unbind(&h, &id, &origin, MARIADB_KIND).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    })
    .await;
}
