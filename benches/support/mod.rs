//! What the database benchmarks share: a throwaway managed PostgreSQL cluster in a temporary directory, with the
//! schema created, destroyed again afterwards whatever the benchmark's outcome.

use zava_mcp::config::DbSettings;
use zava_mcp::provision::Database;

/// Starts a fresh cluster, creates the roles and schema, runs `bench` on a new tokio runtime, then removes the
/// cluster and its directory.
pub fn with_throwaway_database<T>(bench: impl AsyncFnOnce(&Database) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let dir = tempfile::Builder::new().prefix("zava-bench-").tempdir()?;
    {
        // When run as root, the cluster runs as `postgres`, which must be able to enter the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let settings = DbSettings::resolve(dir.path().to_owned(), None, None)?;
    let db = Database::open(&settings)?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        db.init().await?;
        bench(&db).await
    });
    drop(rt);
    if let Some(cluster) = db.cluster().cloned() {
        drop(db);
        cluster.destroy()?;
    }
    result
}
