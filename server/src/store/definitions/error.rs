//! `StoreError`: what can go wrong opening, reading or writing the
//! definitions database.

use std::path::PathBuf;

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database has applied migrations this binary does not know: it was
    /// written by a newer Warren. It has not been modified.
    #[error(
        "the definitions database {path} has schema version {found} (unknown migrations: {unknown:?}), \
         but this Warren only knows schema versions up to {supported}: it was written by a newer Warren. \
         Refusing to open it; the file was left unmodified. Run the newer Warren, or restore a backup \
         made by this version."
    )]
    NewerSchema {
        path: PathBuf,
        /// The highest migration version applied to the database.
        found: i64,
        /// The highest migration version this binary embeds.
        supported: i64,
        /// The applied versions this binary does not know.
        unknown: Vec<i64>,
    },

    #[error("cannot migrate the definitions database {path}: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    #[error("definitions database error: {0}")]
    Sqlite(#[from] sqlx::Error),

    /// A stored value that cannot be decoded (a damaged or hand-edited file).
    #[error("the definitions database holds an invalid {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },

    /// A value that cannot be encoded for storage.
    #[error("cannot store {what}: {detail}")]
    Encode { what: &'static str, detail: String },
}

impl StoreError {
    pub(super) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        StoreError::Corrupt { what, detail: detail.to_string() }
    }

    pub(super) fn encode(what: &'static str, detail: impl ToString) -> Self {
        StoreError::Encode { what, detail: detail.to_string() }
    }
}
