//! `db`: the cluster's lifecycle, schema, dataset, connection URLs and status.

use super::*;

pub(super) async fn db(settings: &DbSettings, cmd: DbCommand) -> Result<()> {
    let managed = matches!(settings.source, DatabaseSource::Managed);
    let cluster = || ManagedCluster::new(&settings.data_dir);
    match cmd {
        DbCommand::Init => {
            with_db(settings, async |db| {
                let _turn = db.provisioning_turn().await?;
                db.init().await
            })
            .await?;
            println!("database initialised (schema version {})", crate::db::migrate::latest_version());
        }
        DbCommand::Seed(args) => {
            let embedder = embedder(&args.embedding).await?;
            let report = with_db(settings, async |db| {
                let _turn = db.provisioning_turn().await?;
                db.init().await?;
                db.seed(GenOptions { seed: args.seed, customers: args.customers }, &embedder, true).await
            })
            .await?;
            print_seed(&report);
        }
        DbCommand::Start { ref embedding } | DbCommand::Restart { ref embedding } => {
            require_managed(managed)?;
            let embedder = embedder(embedding).await?;
            if matches!(cmd, DbCommand::Restart { .. }) {
                cluster()?.stop()?;
            }
            let c = cluster()?;
            c.pin()?;
            with_db(settings, async |db| {
                db.ensure_ready(&embedder, crate::provision::Vectors::Now, true).await.map(|_| ())
            })
            .await?;
            if let ClusterState::Running { port, pid } = c.state() {
                println!("PostgreSQL is running on 127.0.0.1:{port} (pid {pid}); stop it with `zava-mcp db stop`");
            }
        }
        DbCommand::Stop { force } => {
            require_managed(managed)?;
            let c = cluster()?;
            if !force && c.has_other_users()? {
                bail!("other zava-mcp processes are using this cluster; stop them first, or pass --force");
            }
            let was_running = c.stop()?;
            println!("{}", if was_running { "PostgreSQL stopped" } else { "PostgreSQL was not running" });
        }
        DbCommand::Status => status(settings, managed).await?,
        DbCommand::Url(args) => {
            if managed {
                // Pin before the lease is released, or the release would stop the cluster under the URL.
                cluster()?.pin()?;
            }
            let url = with_db(settings, async |db| url(db, &args)).await?;
            if managed {
                eprintln!("(the managed cluster stays running for this URL; stop it with `zava-mcp db stop`)");
            }
            println!("{url}");
        }
        DbCommand::Backup { output } => {
            let dir = output.unwrap_or_else(|| settings.data_dir.join("backups"));
            let made = with_db(settings, async |db| db.backup(&dir)).await?;
            eprintln!(
                "backed up {} tables ({:.1} MB), sha256 {}",
                made.tables,
                made.bytes as f64 / 1e6,
                &made.sha256[..16]
            );
            println!("{}", made.path.display());
        }
        DbCommand::Restore { file, yes } => {
            let checked = crate::db::backup::verify(&file)?;
            if !yes {
                bail!(
                    "this replaces every row of the served database with {} (sha256 {}); run again with --yes",
                    file.display(),
                    &checked.sha256[..16]
                );
            }
            with_db(settings, async |db| db.restore(&checked).await).await?;
            println!("restored {} tables from {}", checked.tables, file.display());
        }
        DbCommand::Reset { yes } => {
            require_managed(managed)?;
            if !yes {
                bail!(
                    "this deletes the cluster in {} and all its data; run again with --yes",
                    settings.data_dir.display()
                );
            }
            cluster()?.destroy()?;
            println!("deleted the managed cluster; the next command creates a fresh one");
        }
    }
    Ok(())
}

fn require_managed(managed: bool) -> Result<()> {
    if !managed {
        bail!(
            "this command manages the embedded cluster; with DATABASE_URL set, manage that server with its own tools"
        );
    }
    Ok(())
}

fn url(db: &Database, args: &UrlArgs) -> Result<String> {
    let mut endpoint = db.endpoint(args.role)?.clone();
    match (&args.tenant, args.role) {
        (Some(t), Role::Query) => {
            let pii = if args.personal_data { PersonalData::Clear } else { PersonalData::Masked };
            let access = Access::new(parse_tenant(t)?, pii);
            let ctx = SignedContext::sign(&access, db.context_key(), Duration::from_secs(args.valid_minutes * 60));
            endpoint.options = Some(ctx.as_connect_option());
        }
        (Some(_), Role::Owner) => bail!("--as applies to the query role; the owner sees every row"),
        (None, _) => {}
    }
    Ok(endpoint.url())
}

async fn status(settings: &DbSettings, managed: bool) -> Result<()> {
    println!("data directory: {}", settings.data_dir.display());
    if managed {
        let c = ManagedCluster::new(&settings.data_dir)?;
        match c.state() {
            ClusterState::NotInitialized => {
                println!("cluster: not created yet (run `zava-mcp db init` or `zava-mcp serve`)");
                return Ok(());
            }
            ClusterState::Stopped => {
                println!("cluster: stopped (start it with `zava-mcp db start`)");
                return Ok(());
            }
            ClusterState::Running { pid, port } => {
                println!(
                    "cluster: running on 127.0.0.1:{port} (pid {pid}){}",
                    if c.is_pinned() { ", pinned" } else { "" }
                );
            }
        }
    } else {
        println!("database: external");
    }
    let s = with_db(settings, async |db| db.status().await).await?;
    println!(
        "schema version: {} of {}{}",
        s.schema_version,
        s.latest_version,
        if s.is_current() { " (current)" } else { " (run `zava-mcp db init`)" }
    );
    match &s.dataset {
        Some((seed, customers, sum)) => {
            println!("dataset: seed {seed}, {customers} customers, checksum {}", &sum[..16])
        }
        None => println!("dataset: none loaded (run `zava-mcp db seed`)"),
    }
    let products = s.row_counts.iter().find(|(t, _)| t == "retail.products").map_or(0, |(_, n)| *n);
    if s.embeddings.is_empty() && products > 0 {
        println!("embeddings: none (run `zava-mcp embed`)");
    }
    for (model, dimension, n) in &s.embeddings {
        println!("embeddings: {n} of {products} products by {model} ({dimension} dimensions)");
    }
    for (table, n) in &s.row_counts {
        println!("  {table:<42} {n:>9}");
    }
    Ok(())
}

pub(super) fn print_seed(r: &SeedReport) {
    println!(
        "seeded {} rows ({} customers, seed {}) in {:.1}s (generate {:.1}s, load+index {:.1}s); checksum {}",
        r.rows,
        r.options.customers,
        r.options.seed,
        (r.generate + r.load).as_secs_f64(),
        r.generate.as_secs_f64(),
        r.load.as_secs_f64(),
        &r.checksum[..16]
    );
}
