//! The MCP conformance suite's generic server scenarios against the shared server.

use super::*;

/// A check of a conformance scenario that may end other than SUCCESS, with the status it has and why.
struct Tolerated {
    check: &'static str,
    status: &'static str,
    why: &'static str,
}

struct Scenario {
    name: &'static str,
    must_pass: &'static [&'static str],
    tolerated: &'static [Tolerated],
}

const STATELESS: &str = "the server is stateless by design (no Mcp-Session-Id), so the suite skips the stream tests";

/// The conformance suite's server scenarios that need no fixture tools, resources or prompts of the reference
/// "everything" server. Not here: logging-set-level and completion-complete (capabilities this server does not
/// offer; it answers -32601) and the scenarios calling fixture tools (test_simple_text, ...).
const SCENARIOS: &[Scenario] = &[
    Scenario { name: "server-initialize", must_pass: &["server-initialize"], tolerated: &[] },
    Scenario { name: "ping", must_pass: &["ping"], tolerated: &[] },
    Scenario { name: "tools-list", must_pass: &["tools-list"], tolerated: &[] },
    Scenario {
        name: "server-sse-polling",
        must_pass: &[],
        tolerated: &[Tolerated { check: "server-sse-polling-session", status: "WARNING", why: STATELESS }],
    },
    Scenario {
        name: "server-sse-multiple-streams",
        must_pass: &[],
        tolerated: &[Tolerated { check: "server-sse-multiple-streams-session", status: "WARNING", why: STATELESS }],
    },
    Scenario {
        name: "dns-rebinding-protection",
        must_pass: &["localhost-host-rebinding-rejected", "localhost-host-valid-accepted"],
        tolerated: &[],
    },
];

#[test]
fn conformance_suite_generic_server_scenarios() {
    installed("node/node_modules/.bin/conformance");
    let s = server();
    let mut problems = Vec::new();
    for scenario in SCENARIOS {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = node_command("conformance");
        cmd.args(["server", "--url", &s.url, "--scenario", scenario.name, "-o"]).arg(out.path());
        cmd.current_dir(out.path());
        let ran = run(format!("conformance server --scenario {}", scenario.name), cmd);
        let checks = match read_checks(out.path()) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{}: {e}\n{}", scenario.name, ran.report()));
                continue;
            }
        };
        let status_of = |id: &str| checks.iter().find(|(c, _)| c == id).map(|(_, s)| s.as_str());
        let mut found = Vec::new();
        for id in scenario.must_pass {
            if status_of(id) != Some("SUCCESS") {
                found.push(format!("check {id} is {:?}, expected SUCCESS", status_of(id)));
            }
        }
        for t in scenario.tolerated {
            if status_of(t.check) != Some(t.status) {
                found.push(format!(
                    "check {} is {:?}, expected {} ({}); if the server changed, update SCENARIOS",
                    t.check,
                    status_of(t.check),
                    t.status,
                    t.why
                ));
            }
        }
        for (id, status) in &checks {
            let tolerated = scenario.tolerated.iter().any(|t| t.check == id);
            if !matches!(status.as_str(), "SUCCESS" | "INFO") && !tolerated {
                found.push(format!("check {id} is {status}"));
            }
        }
        let failed = checks.iter().any(|(_, s)| s == "FAILURE");
        if ran.status.success() == failed {
            found.push(format!("exit status {} does not match the checks (a FAILURE: {failed})", ran.status));
        }
        let summary: Vec<String> = checks.iter().map(|(c, s)| format!("{c}={s}")).collect();
        eprintln!("conformance {}: {}", scenario.name, summary.join(", "));
        if !found.is_empty() {
            problems.push(format!("{}: {}\n{}", scenario.name, found.join("; "), ran.report()));
        }
    }
    assert!(problems.is_empty(), "conformance scenarios went wrong:\n{}", problems.join("\n\n"));
}

/// `(check id, status)` from the `checks.json` the suite writes under `-o DIR/<scenario>-<time>/`.
fn read_checks(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let file = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path().join("checks.json"))
        .find(|p| p.exists())
        .ok_or_else(|| format!("no checks.json under {}", dir.display()))?;
    let checks: Value = serde_json::from_str(&std::fs::read_to_string(&file).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    checks
        .as_array()
        .ok_or("checks.json is not an array")?
        .iter()
        .map(|c| match (c["id"].as_str(), c["status"].as_str()) {
            (Some(id), Some(status)) => Ok((id.to_owned(), status.to_owned())),
            _ => Err(format!("malformed check {c}")),
        })
        .collect()
}
