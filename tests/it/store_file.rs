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
