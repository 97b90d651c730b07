//! The redb file store beyond the shared contract: durability across reopen, and clear errors
//! when the file cannot be used.

use osb_sacloud::store::file::FileStore;
use osb_sacloud::store::{Cond, Error, Item, Key, Store, WriteOp};

fn item(key: Key, version: u64, data: &str) -> Item {
    Item {
        key,
        version,
        expires_at: None,
        data: data.into(),
    }
}

fn backend_message(result: Result<FileStore, Error>) -> String {
    match result {
        Err(Error::Backend(msg)) => msg,
        Err(Error::Conflict) => panic!("expected a backend error, got a conflict"),
        Ok(_) => panic!("expected open to fail"),
    }
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/osb-sacloud.redb");
    let meta = item(Key::instance("i-1"), 1, r#"{"state":"ready"}"#);
    let bind = item(Key::binding("i-1", "b-1"), 1, r#"{"user":"u"}"#);
    {
        let store = FileStore::open(&path).unwrap();
        assert_eq!(store.path(), path.as_path());
        let batch = vec![
            WriteOp::Put {
                item: meta.clone(),
                cond: Cond::Absent,
            },
            WriteOp::Put {
                item: bind.clone(),
                cond: Cond::Absent,
            },
        ];
        store.write(batch).await.unwrap();
    }
    assert!(path.is_file(), "the store is one file at the given path");

    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.get(&meta.key).await.unwrap(), Some(meta.clone()));
    assert_eq!(
        store.query(&meta.key.pk).await.unwrap(),
        vec![bind, meta.clone()]
    );
    // Versions carried over: the old version is still the one a writer must name.
    let next = item(meta.key.clone(), 2, r#"{"state":"gone"}"#);
    let stale = WriteOp::Put {
        item: next.clone(),
        cond: Cond::Version(2),
    };
    assert!(matches!(
        store.write(vec![stale]).await,
        Err(Error::Conflict)
    ));
    store
        .write(vec![WriteOp::Put {
            item: next.clone(),
            cond: Cond::Version(1),
        }])
        .await
        .unwrap();
    drop(store);
    let store = FileStore::open(&path).unwrap();
    assert_eq!(store.get(&meta.key).await.unwrap(), Some(next));
}

/// redb locks the file with open-file-description locks, so a second open from this process is
/// refused exactly as one from another process would be.
#[tokio::test]
async fn a_file_in_use_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osb-sacloud.redb");
    let first = FileStore::open(&path).unwrap();
    let msg = backend_message(FileStore::open(&path));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("another process"), "{msg}");
    drop(first);
    FileStore::open(&path).expect("free again once the holder closed it");
}

#[tokio::test]
async fn a_path_that_is_not_a_store_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let msg = backend_message(FileStore::open(dir.path()));
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");

    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x5a; 64 * 1024]).unwrap();
    let msg = backend_message(FileStore::open(&junk));
    assert!(msg.contains(&junk.display().to_string()), "{msg}");
}

/// The store holds sealed credentials and every record: what `open` creates is owner-only, and
/// an existing file open to others is narrowed.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_0700_and_the_store_file_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.join("nested/osb-sacloud.redb");
    let store = FileStore::open(&path).unwrap();
    store
        .write(vec![WriteOp::Put {
            item: item(Key::instance("i-1"), 1, "{}"),
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    drop(store);
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("nested")), 0o700, "a nested directory");
    assert_eq!(mode(&path), 0o600, "the store file");

    // A file made readable by others (a copy, a restore) is narrowed when opened, and its
    // records are still there.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = FileStore::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600, "the reopened store file");
    assert!(store.get(&Key::instance("i-1")).await.unwrap().is_some());
    // A directory the operator made stays as it is.
    let own = dir.path().join("own");
    std::fs::create_dir(&own).unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o750)).unwrap();
    drop(FileStore::open(&own.join("osb-sacloud.redb")).unwrap());
    assert_eq!(mode(&own), 0o750);
    assert_eq!(mode(&own.join("osb-sacloud.redb")), 0o600);
}
