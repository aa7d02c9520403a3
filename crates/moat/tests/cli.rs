//! The real `moat` binary: config check, key management and `serve` with graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{audit_verify, create_key, created_key, moat, spawn_serve, terminate};
use moat_testkit::SimUpstream;
use serde_json::Value;
use std::path::Path;

fn write_config(dir: &Path, openai_url: &str) -> std::path::PathBuf {
    let path = dir.join("moat.toml");
    std::fs::write(
        &path,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
shutdown_grace = "5s"
[store]
path = "keys.db"
[[providers]]
name = "sim"
kind = "openai"
base_url = "{openai_url}"
api_key = "${{SIM_KEY:-unused}}"
[[models]]
name = "gpt"
targets = [{{ provider = "sim", model = "sim-gpt" }}]
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn config_check_accepts_the_example_and_lists_every_error_of_a_bad_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/moat.toml");
    let ok = moat()
        .args(["config", "check", "--config", example])
        .env("OPENAI_API_KEY", "sk-test")
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (2 providers, 2 models"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\n[store]\npath = \"x.db\"\n[[providers]]\nname = \"p\"\nkind = \"grpc\"\nbase_url = \"http://h\"\n[[models]]\nname = \"m\"\ntargets = [{ provider = \"q\", model = \"x\" }]\n",
    )
    .unwrap();
    let out = moat()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2: server.listen"), "{err}");
    assert!(err.contains("bad.toml:7: providers[0].kind"), "{err}");
    assert!(err.contains(":11: models[0].targets[0].provider"), "{err}");
}

#[test]
fn keys_are_created_listed_without_secrets_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9/v1");
    let out = moat()
        .args([
            "keys",
            "create",
            "--account",
            "acme",
            "--models",
            "gpt",
            "--cidr",
            "10.0.0.0/8",
            "--expires-in",
            "30d",
            "--json",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    assert!(key.starts_with(&format!("moat_{id}_")));

    let list = moat()
        .args(["keys", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(!text.contains(key), "the key itself is never listed");
    let row: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(row["account"], "acme");
    assert_eq!(row["models"], serde_json::json!(["gpt"]));
    assert_eq!(row["cidrs"], serde_json::json!(["10.0.0.0/8"]));
    assert_eq!(row["state"], "active");
    let db = std::fs::read(dir.path().join("keys.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "only the hash is stored"
    );

    assert!(moat()
        .args(["keys", "revoke", "--config"])
        .arg(&config)
        .arg(id)
        .status()
        .unwrap()
        .success());
    let list = moat()
        .args(["keys", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("\"state\":\"revoked\""));
    assert!(!moat()
        .args(["keys", "revoke", "--config"])
        .arg(&config)
        .arg("nope")
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_relays_and_stops_cleanly_on_sigterm() {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url());
    let key = create_key("a", &config);

    let (serve, addr) = spawn_serve(&config, &[]);

    let client = reqwest::Client::new();
    let body = serde_json::json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    let r = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["usage"]["completion_tokens"],
        3
    );

    terminate(serve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_verdicts_reads_a_running_gateway_with_its_admin_token() {
    const TOKEN: &str = "cli-admin-token-0123456789";
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[detection]\nmode = \"enforce\"\n[admin]\ntoken = \"${MOAT_ADMIN_TOKEN}\"\n");
    std::fs::write(&config, text).unwrap();
    let out = moat()
        .args([
            "keys",
            "create",
            "--account",
            "acct_cli",
            "--json",
            "--config",
        ])
        .arg(&config)
        .env("MOAT_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (serve, addr) = spawn_serve(&config, &[("MOAT_ADMIN_TOKEN", TOKEN)]);
    let body =
        serde_json::json!({"model": "gpt", "messages": [{"role": "user", "content": "hi there"}]});
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let url = format!("http://{addr}");
    let verdicts = |extra: &[&str]| {
        let mut c = moat();
        c.args(["detect", "verdicts", "--url", &url]).args(extra);
        c.output().unwrap()
    };
    let table = verdicts(&["--token", TOKEN]);
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let mut lines = stdout.lines();
    assert!(lines.next().unwrap().starts_with("ACCOUNT  "), "{stdout}");
    let row = lines.next().unwrap();
    assert!(row.starts_with("acct_cli "), "{stdout}");
    assert!(row.contains(" no ") && row.contains(" allow "), "{stdout}");
    assert!(String::from_utf8_lossy(&table.stderr)
        .contains("1 verdicts, 0 flagged (detection mode: enforce)"));

    let json = verdicts(&["--token", TOKEN, "--json"]);
    let line: Value = serde_json::from_str(String::from_utf8_lossy(&json.stdout).trim()).unwrap();
    assert_eq!(line["account"], "acct_cli");
    assert_eq!(line["evidence"]["requests"], 1);
    let flagged = verdicts(&["--token", TOKEN, "--json", "--flagged"]);
    assert!(flagged.status.success());
    assert!(flagged.stdout.is_empty());

    let mut from_env = moat();
    from_env
        .args(["detect", "verdicts", "--url", &url, "--json"])
        .env("MOAT_ADMIN_TOKEN", TOKEN);
    assert!(
        from_env.output().unwrap().status.success(),
        "the token may come from the environment"
    );
    let wrong = verdicts(&["--token", "not-the-admin-token"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("refused the admin token (401)"));

    drop(serve);
}

#[test]
fn config_check_names_unknown_detector_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9/v1");
    let mut text = std::fs::read_to_string(&config).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("[detection.model]\nthresold = 12\n");
    std::fs::write(&config, text).unwrap();
    let out = moat()
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "moat.toml:{line}: detection.model: unknown field `thresold`"
        )),
        "{err}"
    );
}

/// Runs moat with the governance example copied into `dir` (its store lands there too).
fn governance(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let config = dir.join("governance.toml");
    if !config.exists() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/governance.toml"
        );
        std::fs::copy(example, &config).unwrap();
    }
    let out = moat()
        .args(args)
        .arg("--config")
        .arg(&config)
        .env("OPENAI_API_KEY", "sk-test")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn workflows_list_and_route_explain_read_the_governance_example() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = governance(
        dir.path(),
        &[
            "keys",
            "create",
            "--account",
            "insurer-prod",
            "--workflow",
            "claims-triage",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let claims_key = created["id"].as_str().unwrap().to_string();
    let (ok, out, err) = governance(
        dir.path(),
        &["keys", "create", "--account", "insurer-prod", "--json"],
    );
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let loose_key = created["id"].as_str().unwrap().to_string();

    let (ok, out, err) = governance(dir.path(), &["workflows", "list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("WORKFLOW"), "{out}");
    let claims = lines
        .iter()
        .find(|l| l.starts_with("claims-triage"))
        .unwrap();
    for field in [
        "claims-platform@insurer.example",
        "high",
        "restricted",
        "yes",
        "$150.00",
        "qwen-local",
    ] {
        assert!(claims.contains(field), "{field} missing from {claims}");
    }
    assert!(lines.iter().any(|l| l.starts_with("marketing-drafts")));
    assert!(
        out.contains(&format!(
            "unregistered: 1 key(s) with no registered workflow (policy: deny): {loose_key}"
        )),
        "{out}"
    );

    // Restricted data: the first rule matches and only the approved provider is eligible.
    let (ok, out, err) = governance(
        dir.path(),
        &[
            "route",
            "explain",
            "--key",
            &claims_key,
            "--model",
            "qwen-local",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "restricted-data-stays-on-approved-providers MATCH  sensitivity is restricted"
        ),
        "{out}"
    );
    assert!(
        out.contains("target   qwen-local -> vllm/Qwen/Qwen2.5-72B-Instruct (weight 1)  eligible"),
        "{out}"
    );
    assert!(
        out.contains("result: served by the first eligible target that answers"),
        "{out}"
    );

    // The workflow is registered for qwen-local only.
    let (ok, out, _) = governance(
        dir.path(),
        &[
            "route",
            "explain",
            "--key",
            &claims_key,
            "--model",
            "gpt-4.1",
            "--json",
        ],
    );
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["matched_rule"],
        "restricted-data-stays-on-approved-providers"
    );
    assert_eq!(v["targets"][0]["allowed"], false, "{v}");
    assert_eq!(v["targets"][1]["provider"], "vllm");
    assert_eq!(
        v["refused"],
        "refused: workflow claims-triage is not registered for model gpt-4.1"
    );

    // A key without a workflow is refused under `unregistered = "deny"`, and the header rule is
    // explained rule by rule.
    let (ok, out, _) = governance(
        dir.path(),
        &[
            "route",
            "explain",
            "--key",
            &loose_key,
            "--model",
            "gpt-4.1",
            "--header",
            "x-job-class=bulk",
        ],
    );
    assert!(ok);
    assert!(out.contains("1. restricted-data-stays-on-approved-providers no     sensitivity is internal, the rule wants restricted"), "{out}");
    assert!(out.contains("3. no-bulk-jobs-on-the-large-model"), "{out}");
    assert!(out.contains("result: refused: the key has no registered workflow and unregistered traffic is denied"), "{out}");

    let (ok, _, err) = governance(
        dir.path(),
        &["route", "explain", "--key", "nope", "--model", "x"],
    );
    assert!(!ok);
    assert!(err.contains("no key with id nope in the store"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_budget_spend_across_a_restart() {
    const TOKEN: &str = "cli-admin-token-0123456789";
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url());
    let mut text = std::fs::read_to_string(&config).unwrap();
    // A monthly budget, so only a run across the turn of a month could see a new window.
    text.push_str(&format!(
        "[admin]\ntoken = \"{TOKEN}\"\n[[prices]]\nmodel = \"sim-gpt\"\ninput = 1.00\noutput = 2.00\n\
         [[workflows]]\nname = \"triage\"\nowner = \"claims\"\ncriticality = \"low\"\nsensitivity = \"internal\"\nbudget = {{ monthly = 5.00 }}\n"
    ));
    std::fs::write(&config, text).unwrap();
    let key = created_key(
        &["keys", "create", "--account", "a", "--workflow", "triage"],
        &config,
    );

    let client = reqwest::Client::new();
    let spend = |addr: String| {
        let client = client.clone();
        async move {
            let body: Value = client
                .get(format!("http://{addr}/admin/v1/spend"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"].clone()
        }
    };
    let (serve, addr) = spawn_serve(&config, &[]);
    send_chats(&addr, &key, 3, &["hi".to_string(), "hi".to_string()]).await;
    let before = spend(addr).await;
    let rows = before.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{before}");
    assert_eq!(rows[0]["id"], "triage");
    assert!(rows[0]["spent"]["micros"].as_i64().unwrap() > 0, "{before}");
    terminate(serve).await;

    let (serve, addr) = spawn_serve(&config, &[]);
    assert_eq!(spend(addr).await, before, "the restarted gateway remembers");
    terminate(serve).await;
}

#[test]
fn workflows_are_added_listed_explained_and_removed_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = governance(
        dir.path(),
        &[
            "workflows",
            "add",
            "--name",
            "fraud-review",
            "--owner",
            "risk@insurer.example",
            "--criticality",
            "high",
            "--sensitivity",
            "confidential",
            "--models",
            "gpt-4.1",
            "--rpm",
            "30",
            "--daily",
            "12.50",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "Registered workflow fraud-review (owner risk@insurer.example)."
    );
    let (ok, _, err) = governance(
        dir.path(),
        &[
            "workflows",
            "add",
            "--name",
            "claims-triage",
            "--owner",
            "x",
            "--criticality",
            "low",
            "--sensitivity",
            "public",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("workflow claims-triage is declared in the config file"),
        "{err}"
    );
    let (ok, _, err) = governance(
        dir.path(),
        &[
            "workflows",
            "add",
            "--name",
            "bad",
            "--owner",
            "x",
            "--criticality",
            "urgent",
            "--sensitivity",
            "public",
        ],
    );
    assert!(!ok);
    assert!(err.contains("unknown criticality \"urgent\""), "{err}");

    let (ok, out, err) = governance(dir.path(), &["workflows", "list"]);
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("fraud-review"))
        .unwrap_or_else(|| panic!("{out}"));
    for field in [
        "risk@insurer.example",
        "high",
        "confidential",
        "30",
        "$12.50",
        "store",
        "gpt-4.1",
    ] {
        assert!(row.contains(field), "{field} missing from {row}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("claims-triage") && l.contains("config")),
        "{out}"
    );

    // A key of the stored workflow is registered traffic for `route explain`.
    let (ok, out, err) = governance(
        dir.path(),
        &[
            "keys",
            "create",
            "--account",
            "insurer-prod",
            "--workflow",
            "fraud-review",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out, _) = governance(
        dir.path(),
        &["route", "explain", "--key", &id, "--model", "gpt-4.1"],
    );
    assert!(ok);
    assert!(
        out.contains("workflow fraud-review (high, confidential)"),
        "{out}"
    );
    assert!(
        out.contains("result: served by the first eligible target that answers"),
        "{out}"
    );

    let (ok, out, _) = governance(dir.path(), &["workflows", "remove", "fraud-review"]);
    assert!(ok);
    assert!(out.contains("Removed workflow fraud-review"));
    let (ok, _, err) = governance(dir.path(), &["workflows", "remove", "fraud-review"]);
    assert!(!ok);
    assert!(
        err.contains("no workflow fraud-review in the store"),
        "{err}"
    );
    let (_, out, _) = governance(
        dir.path(),
        &["route", "explain", "--key", &id, "--model", "gpt-4.1"],
    );
    assert!(
        out.contains("result: refused: the key has no registered workflow"),
        "{out}"
    );
}

/// A copy of the store (`keys.db`) under `dir/name/`, with a config pointing at it, tampered
/// with by `sql` the way someone with write access to the file would (triggers dropped first).
fn tampered(dir: &Path, config: &Path, name: &str, sql: &str) -> std::path::PathBuf {
    let copy = dir.join(name);
    std::fs::create_dir_all(&copy).unwrap();
    // Fold the WAL into the main file first, so copying the file copies everything.
    let src = rusqlite::Connection::open(dir.join("keys.db")).unwrap();
    src.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(src);
    std::fs::copy(dir.join("keys.db"), copy.join("keys.db")).unwrap();
    std::fs::copy(config, copy.join("moat.toml")).unwrap();
    if dir.join("keys.db.audit-key").exists() {
        std::fs::copy(
            dir.join("keys.db.audit-key"),
            copy.join("keys.db.audit-key"),
        )
        .unwrap();
    }
    let db = rusqlite::Connection::open(copy.join("keys.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_delete_behind_checkpoint;",
    )
    .unwrap();
    db.execute_batch(sql).unwrap();
    copy.join("moat.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_the_first_edited_deleted_inserted_or_reordered_record() {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url());
    let key = create_key("acme", &config);
    let (serve, addr) = spawn_serve(&config, &[]);
    let questions: Vec<String> = (0..6).map(|i| format!("question {i}")).collect();
    send_chats(&addr, &key, 4, &questions).await;
    terminate(serve).await;

    let (ok, out) = audit_verify(&config);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("ok: 6 records verified, head seq 6 hash "),
        "{out}"
    );

    // Each kind of tampering, on its own copy of the store, is found and named.
    let cases = [
        (
            "edited",
            "UPDATE audit SET json = replace(json, 'question 2', 'question X') WHERE seq = 3;",
            "BROKEN: record 3 (line 3): edited",
        ),
        (
            "deleted",
            "DELETE FROM audit WHERE seq = 4;",
            "BROKEN: record 5 (line 4): deleted: records from seq 4 are missing",
        ),
        (
            "inserted",
            // A copy of record 2 under a new seq between 2 and 3 cannot exist with integer
            // seqs; the forger shifts the tail up and re-inserts record 2 as seq 3.
            "UPDATE audit SET seq = seq + 100 WHERE seq >= 3; UPDATE audit SET seq = seq - 99 WHERE seq >= 103; \
             INSERT INTO audit SELECT 3, ts_ms, kind, request_id, key_id, account, workflow, status, decisions, prev_hash, hash, json FROM audit WHERE seq = 2;",
            "BROKEN: record 2 (line 3): inserted",
        ),
        (
            "reordered",
            "UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 5; UPDATE audit SET seq = 5 WHERE seq = 100;",
            "BROKEN: record 5 (line 2): reordered",
        ),
    ];
    for (name, sql, expected) in cases {
        let copy = tampered(dir.path(), &config, name, sql);
        let (ok, out) = audit_verify(&copy);
        assert!(!ok, "{name}: verify passed a tampered log: {out}");
        assert!(out.starts_with(expected), "{name}: {out}");
    }
    // The untouched log still verifies.
    assert!(audit_verify(&config).0);

    // Its export is a trace `moat detect replay` reads: all six requests replay.
    let out = moat()
        .args(["audit", "export", "--account", "acme", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = dir.path().join("export.jsonl");
    std::fs::write(&export, &out.stdout).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    let verdicts = dir.path().join("verdicts.jsonl");
    let out = moat()
        .args(["detect", "replay", "--quiet", "--trace"])
        .arg(&export)
        .arg("--out")
        .arg(&verdicts)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("replayed 6 events (0 skipped)"), "{said}");

    // By kind: the six are requests, the two exports of their bodies above (`--account` and
    // `--kind request`) each left a read record, there are no incidents, other kinds are
    // refused.
    let lines = |kind: &str| {
        let out = moat()
            .args(["audit", "export", "--kind", kind, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).lines().count())
    };
    assert_eq!(lines("request"), Some(6));
    assert_eq!(lines("read"), Some(2));
    assert_eq!(lines("incident"), Some(0));
    assert_eq!(lines("requests"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_records_behind_a_signed_checkpoint_and_verification_still_holds() {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.openai_base_url());
    let key = create_key("acme", &config);
    let (serve, addr) = spawn_serve(&config, &[]);
    let questions: Vec<String> = (0..5).map(|i| format!("q{i}")).collect();
    send_chats(&addr, &key, 2, &questions).await;
    terminate(serve).await;
    let run = |args: &[&str], config: &Path| {
        let out = moat()
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (ok, out, err) = run(&["audit", "prune", "--through-seq", "3"], &config);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("pruned 3 records through seq 3 (3 checked); checkpoint {\"seq\":3,"),
        "{out}"
    );
    let (ok, out, _) = run(&["audit", "verify"], &config);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("ok: 2 records verified, head seq 5"),
        "{out}"
    );
    let (ok, out, err) = run(&["audit", "export"], &config);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2);

    // The head, signed for a third party; with --all, the retention checkpoint first.
    let (ok, out, _) = run(&["audit", "checkpoint", "--all"], &config);
    assert!(ok);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The head is the export's read record (seq 6), after the five requests.
    assert_eq!(
        (lines[0]["seq"].as_u64(), lines[1]["seq"].as_u64()),
        (Some(3), Some(6))
    );
    // Ed25519: 64 bytes of signature.
    assert_eq!(lines[1]["signature"].as_str().map(str::len), Some(128));

    // Pruning everything is refused; a wrong key does not verify the checkpoint.
    let (ok, _, err) = run(&["audit", "prune", "--through-seq", "6"], &config);
    assert!(!ok);
    assert!(err.contains("keep at least the last one"), "{err}");
    let wrong = moat_audit::AuditKeys::from_seed([1; 32]).public_hex();
    let (ok, out, _) = run(&["audit", "verify", "--pubkey", &wrong], &config);
    assert!(!ok);
    assert!(out.contains("checkpoint at seq 3: bad signature"), "{out}");
    // Without the records' predecessor, a forged first record cannot continue the checkpoint.
    let copy = tampered(
        dir.path(),
        &config,
        "after-prune",
        "DELETE FROM audit WHERE seq = 4;",
    );
    let (ok, out) = audit_verify(&copy);
    assert!(!ok, "{out}");
}

/// Sends one chat request of model `gpt` per content through the gateway at `addr`, each
/// capped at `max_tokens`, and asserts each is answered 200.
async fn send_chats(addr: &str, key: &str, max_tokens: u32, contents: &[String]) {
    let client = reqwest::Client::new();
    for content in contents {
        let r = client
            .post(format!("http://{addr}/v1/chat/completions"))
            .bearer_auth(key)
            .json(
                &serde_json::json!({"model": "gpt", "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": content}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[test]
fn keys_rotate_prints_the_new_key_once_and_list_shows_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9/v1");
    let out = moat()
        .args(["keys", "create", "--account", "acme", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, old) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    let out = moat()
        .args(["keys", "rotate", id, "--grace", "2h", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = rotated["key"].as_str().unwrap();
    assert!(new.starts_with(&format!("moat_{id}_")), "same id");
    assert_ne!(new, old);
    let until = rotated["old_key_valid_until"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now + 7200 - until).abs() <= 5, "{until} vs {now}");

    let list = moat()
        .args(["keys", "list", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        !text.contains(new) && !text.contains(old),
        "no secret listed"
    );
    let row: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(row["grace_until"], until);
    let table = moat()
        .args(["keys", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("OLD SECRET UNTIL"), "{table}");
    assert!(table.lines().nth(1).unwrap().contains('T'), "{table}");

    // Plain output says when the old key stops; a revoked key does not rotate.
    let plain = moat()
        .args(["keys", "rotate", id, "--grace", "0s", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.contains("New key (shown once") && text.contains("The old key works until"),
        "{text}"
    );
    assert!(moat()
        .args(["keys", "revoke", "--config"])
        .arg(&config)
        .arg(id)
        .status()
        .unwrap()
        .success());
    let refused = moat()
        .args(["keys", "rotate", id, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("revoked"));
    assert!(!moat()
        .args(["keys", "rotate", "nosuchkey123", "--config"])
        .arg(&config)
        .status()
        .unwrap()
        .success());
}
