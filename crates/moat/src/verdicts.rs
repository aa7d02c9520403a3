//! `moat detect verdicts`: a running gateway's verdicts, read from its admin API
//! (`GET /admin/v1/detect/verdicts`), as a table or as JSON lines.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cli::VerdictsArgs;

/// Fetches and prints the verdicts.
pub async fn run(args: VerdictsArgs) -> Result<ExitCode> {
    let url = format!(
        "{}/admin/v1/detect/verdicts",
        args.url.trim_end_matches('/')
    );
    let mut query: Vec<(&str, &str)> = Vec::new();
    if args.flagged {
        query.push(("flagged", "true"));
    }
    if let Some(account) = &args.account {
        query.push(("account", account));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let response = client
        .get(&url)
        .bearer_auth(&args.token)
        .query(&query)
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    match status.as_u16() {
        200 => {}
        401 => bail!(
            "{url} refused the admin token (401): check [admin] token in the gateway's config"
        ),
        404 => bail!(
            "{url} is not there (404): the gateway's admin API is off until [admin] token is set"
        ),
        s => bail!("{url} answered {s}: {}", text.trim()),
    }
    let body: Value = serde_json::from_str(&text)
        .with_context(|| format!("{url} did not answer JSON: {}", text.trim()))?;
    let rows = body
        .get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if args.json {
        for row in &rows {
            println!("{row}");
        }
    } else {
        print!("{}", table(&rows));
    }
    let flagged = rows.iter().filter(|r| r["flagged"] == true).count();
    eprintln!(
        "{} verdicts, {flagged} flagged (detection mode: {})",
        rows.len(),
        body.get("mode")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    );
    Ok(ExitCode::SUCCESS)
}

/// The verdicts as an aligned table, highest score first.
fn table(rows: &[Value]) -> String {
    const HEADER: [&str; 7] = [
        "ACCOUNT",
        "SCORE",
        "FLAGGED",
        "FIRST FLAGGED",
        "CLUSTER",
        "ACTION",
        "TOP REASON",
    ];
    let mut sorted: Vec<&Value> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        let score = |v: &Value| v["score"].as_f64().unwrap_or(0.0);
        score(b).total_cmp(&score(a))
    });
    let cells: Vec<[String; 7]> = sorted.into_iter().map(cells).collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: [&str; 7]| {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(HEADER);
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

/// One verdict's cells: an end user shows as `account/end_user`.
fn cells(v: &Value) -> [String; 7] {
    let text = |key: &str| v[key].as_str().unwrap_or("-").to_string();
    let account = match v["end_user"].as_str() {
        Some(user) => format!("{}/{user}", text("account")),
        None => text("account"),
    };
    let cluster = match (v["cluster"].as_str(), v["cluster_size"].as_u64()) {
        (Some(c), Some(n)) => format!("{c} ({n})"),
        (Some(c), None) => c.to_string(),
        _ => "-".to_string(),
    };
    let mut action = text("action");
    if v["allowlisted"] == true && action != "allow" {
        action.push_str(" (allowlisted)");
    }
    [
        account,
        format!("{:.4}", v["score"].as_f64().unwrap_or(0.0)),
        if v["flagged"] == true { "yes" } else { "no" }.to_string(),
        text("first_flagged_ts"),
        cluster,
        action,
        v["reasons"][0].as_str().unwrap_or("-").to_string(),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_is_aligned_and_sorted_by_score() {
        let rows = vec![
            json!({"account": "acct_chat", "score": 0.0, "flagged": false, "action": "allow",
                   "allowlisted": false, "reasons": []}),
            json!({"account": "acct_farm_1", "score": 0.7312, "flagged": true,
                   "first_flagged_ts": "2026-03-12T01:45:20.509Z", "cluster": "c3", "cluster_size": 6,
                   "action": "block", "allowlisted": false,
                   "reasons": ["rotates 4 different system prompts", "single turn"]}),
            json!({"account": "acct_lab", "end_user": "u1", "score": 0.55, "flagged": true,
                   "action": "throttle", "allowlisted": true, "reasons": ["x"]}),
        ];
        assert_eq!(
            table(&rows),
            "\
ACCOUNT      SCORE   FLAGGED  FIRST FLAGGED             CLUSTER  ACTION                  TOP REASON
acct_farm_1  0.7312  yes      2026-03-12T01:45:20.509Z  c3 (6)   block                   rotates 4 different system prompts
acct_lab/u1  0.5500  yes      -                         -        throttle (allowlisted)  x
acct_chat    0.0000  no       -                         -        allow                   -
"
        );
    }
}
