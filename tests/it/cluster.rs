//! The managed cluster's lifecycle: init, reuse, recovery from a stale pid file, and several processes
//! sharing one data directory. These start their own clusters in their own temporary data directories.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zava_mcp::db::cluster::{ClusterState, ManagedCluster};

use crate::harness::data_dir;

fn running(c: &ManagedCluster) -> (i32, u16) {
    match c.state() {
        ClusterState::Running { pid, port } => (pid, port),
        other => panic!("cluster not running: {other:?}"),
    }
}

#[test]
fn a_cluster_is_created_once_reused_and_stopped_by_its_last_user() {
    let dir = data_dir();
    let c = ManagedCluster::new(dir.path()).unwrap();
    assert_eq!(c.state(), ClusterState::NotInitialized);
    let first = c.ensure_running().unwrap();
    assert!(first.started);
    let (pid, port) = running(&c);
    let second = c.ensure_running().unwrap();
    assert!(!second.started, "a running cluster must be reused");
    assert_eq!((second.port, running(&c)), (port, (pid, port)));
    first.release().unwrap();
    assert_eq!(running(&c), (pid, port), "stopped while still leased");
    second.release().unwrap();
    assert_eq!(c.state(), ClusterState::Stopped);
    // The next start reuses the same cluster (no second initdb) and prefers the same port.
    let again = c.ensure_running().unwrap();
    assert_eq!(again.port, port);
    c.destroy().unwrap();
}

#[test]
fn a_stale_pid_file_from_a_crash_does_not_block_the_next_start() {
    let dir = data_dir();
    let c = ManagedCluster::new(dir.path()).unwrap();
    let lease = c.ensure_running().unwrap();
    let pidfile = dir.path().join("pg").join("postmaster.pid");
    let text = std::fs::read_to_string(&pidfile).unwrap();
    lease.release().unwrap();
    assert_eq!(c.state(), ClusterState::Stopped);
    // What a crash leaves behind: the file, naming a process that no longer exists.
    let stale: String = std::iter::once("999999".to_owned())
        .chain(text.lines().skip(1).map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&pidfile, stale + "\n").unwrap();
    let lease = c.ensure_running().unwrap();
    assert!(lease.started);
    let (pid, _) = running(&c);
    assert_ne!(pid, 999_999);
    lease.release().unwrap();
    c.destroy().unwrap();
}

#[test]
fn a_killed_postmaster_is_recovered_on_the_next_start() {
    let dir = data_dir();
    let c = ManagedCluster::new(dir.path()).unwrap();
    let lease = c.ensure_running().unwrap();
    let (pid, _) = running(&c);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(lease);
    // Wait for the postmaster's children to notice and exit (they hold its shared memory).
    let pgdata = dir.path().canonicalize().unwrap().join("pg");
    let deadline = Instant::now() + Duration::from_secs(30);
    while backends_alive(&pgdata) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lease = c.ensure_running().unwrap();
    assert!(lease.started);
    assert_ne!(running(&c).0, pid);
    lease.release().unwrap();
    c.destroy().unwrap();
}

fn backends_alive(pgdata: &std::path::Path) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == pgdata))
}

fn zava(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(dir).args(args).env_remove("DATABASE_URL").env_remove("POSTGRES_DB_HOST");
    cmd
}

/// A running `zava-mcp serve`, killed if the test ends (or panics) before interrupting it.
struct Serve(Option<Child>);

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            crate::binary::terminate(&mut child);
        }
    }
}

/// Starts `zava-mcp serve` on a free port and waits until it says it is ready.
fn serve(dir: &std::path::Path) -> Serve {
    let mut child =
        zava(dir, &["serve", "--http", "127.0.0.1:0"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Serve(Some(child));
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("press Ctrl-C") => break,
            Some(Ok(_)) => continue,
            other => panic!("serve ended before it was ready: {other:?}"),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    server
}

fn interrupt(mut server: Serve) {
    let mut child = server.0.take().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn two_processes_share_one_cluster_and_a_tenant_url_sees_one_store() {
    let dir = data_dir();
    let a = serve(dir.path());
    let b = serve(dir.path());
    let c = ManagedCluster::new(dir.path()).unwrap();
    let (pid, _) = running(&c);
    interrupt(b);
    assert_eq!(running(&c).0, pid, "the second process stopped the cluster the first still uses");

    // The URL a person gives to psql: as Redmond's manager it sees Redmond's orders only.
    let out = zava(dir.path(), &["db", "url", "--role", "query", "--as", "redmond"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (seen, redmond, stores) = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url.trim(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let seen: i64 = client.query_one("SELECT count(*) FROM retail.orders", &[]).await.unwrap().get(0);
        let stores: i64 = client.query_one("SELECT count(DISTINCT store_id) FROM retail.orders", &[]).await.unwrap().get(0);
        let owner = zava(dir.path(), &["db", "url", "--role", "owner"]).output().unwrap();
        let (oc, oconn) = tokio_postgres::connect(String::from_utf8(owner.stdout).unwrap().trim(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(oconn);
        let redmond: i64 = oc
            .query_one("SELECT count(*) FROM retail.orders o JOIN retail.stores s USING (store_id) WHERE s.store_name = 'Zava Retail Redmond'", &[])
            .await
            .unwrap()
            .get(0);
        (seen, redmond, stores)
    });
    assert!(redmond > 1000, "full-scale data expected, Redmond has {redmond} orders");
    assert_eq!((seen, stores), (redmond, 1));

    interrupt(a);
    // `db url` pinned the cluster for the person's psql session; `db stop` ends it.
    assert_eq!(running(&c).0, pid);
    let stop = zava(dir.path(), &["db", "stop"]).output().unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    assert_eq!(c.state(), ClusterState::Stopped);
    c.destroy().unwrap();
}
