//! Embedded file store: one redb database file holding every item, for the local server.
//!
//! Items live in one table keyed by `(pk, sk)`; a partition is therefore a contiguous key range
//! and [`Store::query`] is one range scan in `sk` order. Each [`Store::write`] is one redb write
//! transaction: redb admits one writer at a time, so checking every condition and applying every
//! op inside that transaction makes the batch atomic and the compare-and-set exact.
//!
//! One process at a time: redb locks the file, so a second process (a second broker, or a tool
//! run while the broker is up) cannot open it; [`FileStore::open`] then fails with an error that
//! names the path. Run one local broker per file, or use DynamoDB to share state between
//! processes.
//!
//! redb calls block on disk I/O (and a commit waits for fsync), so every call runs on tokio's
//! blocking pool rather than on an async worker thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::memory::cond_holds;
use super::{Cond, Error, Item, Key, LocalCounters, Result, Store, WriteOp, is_expired, now_unix};

/// `(pk, sk) -> (version, expires_at, data)`. The type names are recorded in the file, so a
/// file written with another layout is refused on open instead of being misread.
const ITEMS: TableDefinition<(&str, &str), (u64, Option<i64>, &str)> =
    TableDefinition::new("items");

/// A [`Store`] in a single redb file.
pub struct FileStore {
    db: Arc<Database>,
    path: PathBuf,
    /// One process owns the file, so the shared SAKURA budget is this process's own.
    counters: LocalCounters,
}

impl FileStore {
    /// Opens the database file at `path` (e.g. `./data/osb-sacloud.redb`), creating it and its
    /// parent directories if needed. Fails if another process has the file open. Blocks on disk
    /// I/O: call it at start-up (or from a blocking context), not on a busy async worker.
    ///
    /// The file holds sealed credentials and every record: directories made here are created
    /// `0700` and the file `0600` (an existing file readable by others is narrowed to `0600`).
    pub fn open(path: &Path) -> Result<FileStore> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(|e| {
                Error::Backend(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        private_file(path)
            .map_err(|e| Error::Backend(format!("cannot open store file {shown}: {e}")))?;
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Backend(format!(
                "store file {shown} is locked: another process has it open \
                 (only one broker may use a file store at a time)"
            )),
            other => Error::Backend(format!("cannot open store file {shown}: {other}")),
        })?;
        // Create the table up front so that reads on a fresh file find it. Not durably: a
        // commit that writes an item persists it, and a file that lost it gets it here again.
        let exists = match db
            .begin_read()
            .map_err(|e| backend(path, e))?
            .open_table(ITEMS)
        {
            Ok(_) => true,
            Err(redb::TableError::TableDoesNotExist(_)) => false,
            Err(e) => return Err(backend(path, e)),
        };
        if !exists {
            let mut txn = db.begin_write().map_err(|e| backend(path, e))?;
            txn.set_durability(redb::Durability::None)
                .map_err(|e| backend(path, e))?;
            txn.open_table(ITEMS).map_err(|e| backend(path, e))?;
            txn.commit().map_err(|e| backend(path, e))?;
        }
        Ok(FileStore {
            counters: LocalCounters::default(),
            db: Arc::new(db),
            path: path.to_path_buf(),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a blocking redb call on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &Path) -> Result<T> + Send + 'static,
    {
        let db = self.db.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || f(&db, &path))
            .await
            .map_err(|e| Error::Backend(format!("file store task failed: {e}")))?
    }
}

/// Create `dir` and its missing parents, owner-only.
#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Create the store file owner-only before redb opens it (an empty file is a new database to
/// redb), so it is never readable by others, not even between creation and a later chmod; an
/// existing file that others may read or write is narrowed to `0600`.
#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the store file was open to other users; narrowing it to 0600");
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A redb failure as a backend error naming the file (never item data).
fn backend(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("store file {}: {e}", path.display()))
}

fn to_item(pk: &str, sk: &str, value: (u64, Option<i64>, &str)) -> Item {
    let (version, expires_at, data) = value;
    Item {
        key: Key {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
        },
        version,
        expires_at,
        data: data.to_owned(),
    }
}

fn op_target(op: &WriteOp) -> (&Key, Cond) {
    match op {
        WriteOp::Put { item, cond } => (&item.key, *cond),
        WriteOp::Delete { key, cond } | WriteOp::Check { key, cond } => (key, *cond),
    }
}

#[async_trait]
impl Store for FileStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        let key = key.clone();
        self.blocking(move |db, path| {
            let txn = db.begin_read().map_err(|e| backend(path, e))?;
            let table = txn.open_table(ITEMS).map_err(|e| backend(path, e))?;
            let found = table
                .get((key.pk.as_str(), key.sk.as_str()))
                .map_err(|e| backend(path, e))?;
            let now = now_unix();
            Ok(found
                .map(|v| to_item(&key.pk, &key.sk, v.value()))
                .filter(|i| !is_expired(i.expires_at, now)))
        })
        .await
    }

    async fn query(&self, pk: &str) -> Result<Vec<Item>> {
        let pk = pk.to_owned();
        self.blocking(move |db, path| {
            let txn = db.begin_read().map_err(|e| backend(path, e))?;
            let table = txn.open_table(ITEMS).map_err(|e| backend(path, e))?;
            let now = now_unix();
            let mut items = Vec::new();
            // The partition's keys are contiguous and start at (pk, ""), the smallest sk.
            for entry in table
                .range((pk.as_str(), "")..)
                .map_err(|e| backend(path, e))?
            {
                let (k, v) = entry.map_err(|e| backend(path, e))?;
                let (item_pk, sk) = k.value();
                if item_pk != pk {
                    break;
                }
                let item = to_item(item_pk, sk, v.value());
                if !is_expired(item.expires_at, now) {
                    items.push(item);
                }
            }
            Ok(items)
        })
        .await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        self.blocking(move |db, path| {
            let txn = db.begin_write().map_err(|e| backend(path, e))?;
            {
                let mut table = txn.open_table(ITEMS).map_err(|e| backend(path, e))?;
                let now = now_unix();
                for op in &ops {
                    let (key, cond) = op_target(op);
                    let current = table
                        .get((key.pk.as_str(), key.sk.as_str()))
                        .map_err(|e| backend(path, e))?
                        .map(|v| to_item(&key.pk, &key.sk, v.value()));
                    if !cond_holds(current.as_ref(), cond, now) {
                        // Dropping the uncommitted transaction would abort it too; this says so.
                        drop(table);
                        txn.abort().map_err(|e| backend(path, e))?;
                        return Err(Error::Conflict);
                    }
                }
                for op in &ops {
                    match op {
                        WriteOp::Put { item, .. } => {
                            let value = (item.version, item.expires_at, item.data.as_str());
                            table
                                .insert((item.key.pk.as_str(), item.key.sk.as_str()), value)
                                .map_err(|e| backend(path, e))?;
                        }
                        WriteOp::Delete { key, .. } => {
                            table
                                .remove((key.pk.as_str(), key.sk.as_str()))
                                .map_err(|e| backend(path, e))?;
                        }
                        WriteOp::Check { .. } => {}
                    }
                }
            }
            txn.commit().map_err(|e| backend(path, e))
        })
        .await
    }

    async fn count_up(&self, key: &Key, limit: u64, expires_at: i64) -> Result<bool> {
        self.counters.count_up(key, limit, expires_at)
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}
