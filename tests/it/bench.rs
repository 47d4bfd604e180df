//! `zava-mcp bench` as a person runs it against a server already up (`--url`): both the MCP phases and the floor
//! run, every call of the built-in mixes succeeds for the rotating identities, and `--json` ends with the figures.
//! No speed is asserted here: figures belong to the bench's own output on a quiet machine.

use serde_json::Value;

use crate::binary::{Serve, managed, output, zava};
use crate::harness::{TestDb, data_dir};

fn figures(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[tokio::test]
async fn the_bench_starts_its_own_server_and_measures_it() {
    let dir = data_dir();
    output({
        let mut c = managed(dir.path());
        c.args(["db", "seed", "--customers", "300"]);
        c
    });
    // Twice with --policies: the second run's comparison replaces `tenant_read` again, which it could not do had
    // the first left its plain policies behind instead of rolling them back.
    // The second with the started server's result cache on: its lookups are counted apart.
    for (run, cache) in [("first", "off"), ("second", "on")] {
        let mut bench = managed(dir.path());
        bench.args(["bench", "--bench-dir"]).arg(dir.path()).args(["--cache", cache]);
        bench.args(["--mix", "analytic", "-c", "2", "--duration", "1s", "--warmup", "0s", "--policies", "--json"]);
        let stdout = output(bench);
        let figures = figures(&stdout);
        assert_eq!(figures["errors"], 0, "{run}: {stdout}");
        let lookups = figures["cache_hits"].as_u64().unwrap() + figures["cache_misses"].as_u64().unwrap();
        match cache {
            "on" => assert!(lookups > 0 && stdout.contains("result cache, mcp (mix)"), "{stdout}"),
            _ => assert_eq!(lookups, 0, "the cache was off: {stdout}"),
        }
        assert!(figures["ready_s"].as_f64().unwrap() > 0.0, "{stdout}");
        assert!(
            figures["rss_mb"].as_f64().unwrap() > 1.0 && figures["peak_rss_mb"].as_f64().unwrap() > 1.0,
            "{stdout}"
        );
        assert!(figures["postgres_cpu"].as_f64().unwrap() > 0.0, "PostgreSQL did the work: {stdout}");
        assert!(stdout.contains("started by the bench"), "{stdout}");
        // Twelve queries for the smallest store, a middle one and head office, each timed under both designs.
        let policies = &figures["policies"];
        assert_eq!(policies["compared"], 36, "{run}: {stdout}");
        let queries = policies["queries"].as_array().unwrap();
        let identities: std::collections::BTreeSet<_> =
            queries.iter().map(|q| q["identity"].as_str().unwrap()).collect();
        assert_eq!(identities.len(), 3, "{identities:?}");
        assert!(identities.contains("head office"), "{identities:?}");
        for q in queries {
            assert!(q["ours_ms"].as_f64().unwrap() > 0.0 && q["plain_ms"].as_f64().unwrap() > 0.0, "{q}");
        }
        assert!(stdout.contains("at least as fast as plain"), "{stdout}");
    }
}

#[tokio::test]
async fn the_bench_loads_a_running_server_and_its_floor_without_errors() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::make_traversable(dir.path());
    let mut cmd = zava(dir.path(), &db);
    cmd.args(["serve", "--http", "127.0.0.1:0", "--rate-limit", "off", "--max-concurrent", "100"]);
    let server = Serve::start(dir.path(), cmd);
    for (mix, phases) in [("light", 3), ("analytic", 2)] {
        let mut bench = zava(dir.path(), &db);
        bench.args(["bench", "--url", &server.url, "--mix", mix, "-c", "3", "--duration", "1s", "--warmup", "0s"]);
        let out = bench.arg("--json").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mix}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let figures = figures(&stdout);
        assert_eq!(figures["mix"], mix);
        assert_eq!(figures["errors"], 0, "{stdout}");
        for key in ["mcp_rps", "floor_rps", "ratio", "p50_ms", "p99_ms"] {
            assert!(figures[key].as_f64().unwrap() > 0.0, "{mix} {key}: {stdout}");
        }
        let rows = stdout.lines().filter(|l| l.starts_with("mcp (") || l.starts_with("floor (")).count();
        assert_eq!(rows, phases, "{stdout}");
    }
    let bad = zava(dir.path(), &db).args(["bench", "--url", &server.url, "--mix", "heavy"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use one of light, analytic, search"));
}
