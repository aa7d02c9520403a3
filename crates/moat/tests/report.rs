//! `moat report` end to end: a synthetic month (and the month before) sealed into a real SQLite
//! audit log, the real binary writing HTML and Markdown, and the HTML rendered by headless
//! Chromium into a screenshot kept beside it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../moat-report/tests/fixture/mod.rs"]
mod fixture;

use std::path::{Path, PathBuf};
use std::process::Command;

use moat_audit::Chain;
use moat_store::{AuditStore, SqliteStore, StoredAudit};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 4000;

/// A temp dir holding the config and a store with the fixture's records; returns the dir and
/// the config's path.
async fn month_in_a_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("moat.db");
    let config = dir.path().join("moat.toml");
    std::fs::write(&config, fixture::config_toml(&db.display().to_string())).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let mut chain = Chain::start();
    let records = fixture::records();
    for batch in records.chunks(2_000) {
        let rows: Vec<StoredAudit> = batch
            .iter()
            .map(|r| StoredAudit::of(&chain.seal(r.clone())))
            .collect();
        store.append_audit(&rows).await.unwrap();
    }
    (dir, config)
}

fn moat_report(config: &Path, format: &str, out: Option<&Path>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moat"));
    c.args(["report", "--config"]).arg(config).args([
        "--from",
        "2026-10-01",
        "--to",
        "2026-11-01",
        "--format",
        format,
    ]);
    if let Some(out) = out {
        c.arg("--out").arg(out);
    }
    let output = c.output().unwrap();
    assert!(
        output.status.success(),
        "moat report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The Chromium binary, or a failure that says how to install it.
fn chromium() -> PathBuf {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "chromium is not installed: this test renders the HTML report in headless Chromium. \
         Install it with `sudo apt-get install -y --no-install-recommends chromium` \
         (scripts/test does this on Debian and Ubuntu)."
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_renders_in_a_browser() {
    let chromium = chromium();
    let (_store, config) = month_in_a_store().await;
    // Kept after the test, so the page and its screenshot can be looked at.
    let dir = tempfile::Builder::new()
        .prefix("moat-report-")
        .tempdir()
        .unwrap()
        .keep();
    let profile = tempfile::tempdir().unwrap();
    let html = dir.join("report.html");
    moat_report(&config, "html", Some(&html));
    let text = std::fs::read_to_string(&html).unwrap();
    for heading in ["1. Inventory", "4. Incidents", "6. Model drift"] {
        assert!(text.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
    let png = dir.join("report.png");
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(png_size(&bytes), (WIDTH, HEIGHT));
    // A blank page of this size compresses to a few kilobytes; charts and tables do not.
    assert!(
        bytes.len() > 100_000,
        "screenshot is only {} bytes",
        bytes.len()
    );
    println!("screenshot: {}", png.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_markdown_report_has_every_section_and_the_figures() {
    let (_dir, config) = month_in_a_store().await;
    let out = moat_report(&config, "md", None);
    let md = String::from_utf8(out.stdout).unwrap();
    for heading in [
        "## 1. Inventory",
        "## 2. Spend",
        "## 3. Anomalies and detection",
        "## 4. Incidents",
        "## 5. Near misses",
        "## 6. Model drift",
    ] {
        assert!(md.contains(heading), "{heading}\n{md}");
    }
    // Figures, recomputed from the fixture the store was filled with.
    let records = fixture::records();
    let p = fixture::period();
    let now: Vec<_> = records
        .iter()
        .filter(|r| r.kind == moat_audit::RecordKind::Request && p.contains(r.ts_ms))
        .collect();
    let requests = now.len();
    let spend: i64 = now.iter().map(|r| r.cost_micros).sum();
    let first_row = format!("| Requests | {} |", group(requests as u64));
    assert!(md.contains(&first_row), "{first_row}\n{md}");
    let cents = (spend + 5_000) / 10_000;
    let spend = format!(
        "| Spend | {}.{:02} |",
        group((cents / 100) as u64),
        cents % 100
    );
    assert!(md.contains(&spend), "{spend}\n{md}");
    assert!(md.contains("| 2026-10-14 13:00 | openai |"), "{md}");
    // Breaker transitions are incident records in the same log.
    assert!(
        md.contains("| openai / gpt-4o | 1 | 1 | 1 | 1 | 35 min 00 s |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| support-bot | team-support@example.com | high | confidential | no | gpt-4o |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| account | acme |"),
        "acme near its budget\n{md}"
    );
}

fn group(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|c| c.iter().collect())
        .collect();
    groups.join(",")
}
