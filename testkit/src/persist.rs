//! State that survives a restart ([`ApiServerBuilder::data_dir`](crate::ApiServerBuilder::data_dir),
//! `kubeforge serve --data-dir`): every write to the store is also written to an embedded
//! database before it is answered, so an acknowledged write is never lost, even to `SIGKILL`.
//!
//! The database is [redb](https://crates.io/crates/redb): pure Rust, ACID, crash-safe by design
//! (copy-on-write B-trees, each commit durable when it returns). One table holds every object
//! (its resourceVersion and JSON), another the store's resourceVersion, which continues across
//! restarts. History is not kept: a watch from a resourceVersion before the restart gets 410 and
//! relists, as after an etcd compaction.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::resources::ResourceKey;
use crate::store::ObjKey;

/// `group \x1f plural \x1f namespace \x1f name` → resourceVersion (8 bytes, big-endian) + JSON.
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// `"rv"` → the store's last resourceVersion.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SEP: char = '\u{1f}';

/// One object read back at start: where it lives, its resourceVersion and its JSON.
pub(crate) struct Restored {
    pub resource: ResourceKey,
    pub key: ObjKey,
    pub rv: u64,
    pub json: Vec<u8>,
}

/// The open database of a data directory.
pub(crate) struct Persist {
    db: Database,
}

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the data directory {dir}: {reason}")]
pub struct DataDirError {
    dir: String,
    reason: String,
}

fn encode(res: &ResourceKey, key: &ObjKey) -> String {
    format!(
        "{}{SEP}{}{SEP}{}{SEP}{}",
        res.group, res.plural, key.0, key.1
    )
}

fn decode(k: &str) -> Option<(ResourceKey, ObjKey)> {
    let mut parts = k.split(SEP);
    let (group, plural, ns, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((
        ResourceKey {
            group: group.to_string(),
            plural: plural.to_string(),
        },
        (ns.to_string(), name.to_string()),
    ))
}

impl Persist {
    /// Opens (or creates) `dir/state.redb` and reads back every object and the last
    /// resourceVersion.
    pub(crate) fn open(dir: &Path) -> Result<(Persist, Vec<Restored>, u64), DataDirError> {
        let fail = |reason: String| DataDirError {
            dir: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let db = Database::create(dir.join("state.redb")).map_err(|e| {
            fail(format!(
                "{e} (is another kubeforge serve using it? each data directory serves one server)"
            ))
        })?;
        let setup = db.begin_write().map_err(|e| fail(e.to_string()))?;
        setup
            .open_table(OBJECTS)
            .and_then(|_| setup.open_table(META))
            .map_err(|e| fail(e.to_string()))?;
        setup.commit().map_err(|e| fail(e.to_string()))?;
        let read = db.begin_read().map_err(|e| fail(e.to_string()))?;
        let objects = read.open_table(OBJECTS).map_err(|e| fail(e.to_string()))?;
        let mut restored = Vec::new();
        for entry in objects.iter().map_err(|e| fail(e.to_string()))? {
            let (k, v) = entry.map_err(|e| fail(e.to_string()))?;
            let (Some((resource, key)), Some((rv, json))) =
                (decode(k.value()), v.value().split_at_checked(8))
            else {
                return Err(fail(format!("a damaged entry {:?}", k.value())));
            };
            let rv = u64::from_be_bytes(rv.try_into().unwrap_or_default());
            restored.push(Restored {
                resource,
                key,
                rv,
                json: json.to_vec(),
            });
        }
        let meta = read.open_table(META).map_err(|e| fail(e.to_string()))?;
        let rv = meta
            .get("rv")
            .map_err(|e| fail(e.to_string()))?
            .map_or(0, |v| v.value());
        drop((objects, meta, read));
        Ok((Persist { db }, restored, rv))
    }

    /// Writes one change durably: the object (or its removal) and the new resourceVersion.
    ///
    /// # Panics
    /// When the disk write fails: the change is then neither stored nor answered, and the
    /// server cannot go on promising durability.
    pub(crate) fn write(&self, res: &ResourceKey, key: &ObjKey, rv: u64, json: Option<&[u8]>) {
        let result = (|| -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            {
                let mut objects = txn.open_table(OBJECTS)?;
                let k = encode(res, key);
                match json {
                    Some(json) => {
                        let mut value = Vec::with_capacity(8 + json.len());
                        value.extend_from_slice(&rv.to_be_bytes());
                        value.extend_from_slice(json);
                        objects.insert(k.as_str(), value.as_slice())?;
                    }
                    None => {
                        objects.remove(k.as_str())?;
                    }
                }
                txn.open_table(META)?.insert("rv", rv)?;
            }
            txn.commit()?;
            Ok(())
        })();
        if let Err(e) = result {
            panic!("writing to the data directory failed, so the write was not made: {e}");
        }
    }
}
