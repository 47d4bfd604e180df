//! A real Prometheus (Debian's package, installed by `scripts/setup.sh prometheus`) on a free loopback port,
//! scraping one target every second, with its storage in a scratch directory; stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Prometheus {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) at `/metrics` every second.
    pub async fn scraping(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: zava-mcp\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus is missing: run scripts/setup.sh prometheus");
        let prometheus = Prometheus { child: Some(child), port, _dir: dir };
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("http://127.0.0.1:{port}/-/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return prometheus;
            }
            assert!(tokio::time::Instant::now() < deadline, "prometheus did not get ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Evaluates `query`; an error names Prometheus' complaint (a dashboard's broken PromQL).
    pub async fn evaluate(&self, query: &str) -> Result<Value, String> {
        let encoded = percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("http://127.0.0.1:{}/api/v1/query?query={encoded}", self.port);
        let body: Value = reqwest::Client::new().get(url).send().await.unwrap().json().await.unwrap();
        if body["status"] == "success" { Ok(body["data"]["result"].clone()) } else { Err(body.to_string()) }
    }

    /// The value of an instant query that yields one sample, once it satisfies `want` (Prometheus' first
    /// samples lag the scrape by a few seconds); the last value seen if it never does within 30 s.
    pub async fn value_when(&self, query: &str, want: impl Fn(f64) -> bool) -> Option<f64> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut last = None;
        loop {
            let encoded = percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
            let url = format!("http://127.0.0.1:{}/api/v1/query?query={encoded}", self.port);
            let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            assert_eq!(body["status"], "success", "{query}: {body}");
            last = body["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).or(last);
            if last.is_some_and(&want) || tokio::time::Instant::now() > deadline {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
