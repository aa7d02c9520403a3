//! Evidence a third party can check, against the real binary: a checkpoint forged by hand is
//! refused by `moat audit verify` and by a gateway resuming the chain; tail truncation and a
//! consistent rewrite (every hash recomputed) are reported with a witness file; `moat audit
//! pubkey` verifies what the gateway signs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{create_key, moat, spawn_serve, terminate};
use moat_audit::{AuditKeys, AuditRecord, Chain, Checkpoint, SignedHead};
use moat_testkit::SimUpstream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A gateway's config in `dir` (store `keys.db`, key file beside it), writing a signed head
/// after every record to `witness`.
fn write_config(dir: &Path, openai_url: &str, witness: &Path) -> PathBuf {
    let sections = format!(
        "[audit]\ndurability = \"sync\"\n[audit.witness]\nfile = \"{}\"\nevery_records = 1\nevery = \"1s\"\n",
        witness.display()
    );
    common::sim_config(dir, openai_url, "5s", "keys.db", "", &sections)
}

/// A store with `n` answered requests and a witness that has seen the last of them.
struct Logged {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
    witness: PathBuf,
}

async fn logged(n: usize) -> Logged {
    let sim = SimUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let witness_dir = dir.path().join("elsewhere");
    std::fs::create_dir_all(&witness_dir).unwrap();
    let witness = witness_dir.join("heads.jsonl");
    let config = write_config(dir.path(), &sim.openai_base_url(), &witness);
    let key = create_key("acme", &config);
    let (serve, addr) = spawn_serve(&config, &[]);
    let client = reqwest::Client::new();
    for i in 0..n {
        let r = client
            .post(format!("http://{addr}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(
                &serde_json::json!({"model": "gpt", "max_tokens": 3, "user": "jane@example.com",
                "messages": [{"role": "user", "content": format!("question {i}")}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Heads are written off the request path: wait (bounded) for the one of the last record.
    let deadline = Instant::now() + Duration::from_secs(20);
    while last_witnessed(&witness) != Some(n as u64) {
        assert!(Instant::now() < deadline, "the witness never saw seq {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    terminate(serve).await;
    Logged {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        config,
        witness,
    }
}

fn last_witnessed(witness: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(witness).ok()?;
    let line = text.lines().last()?;
    serde_json::from_str::<SignedHead>(line).ok().map(|h| h.seq)
}

/// Runs `moat audit verify` with `extra` args: (success, stdout + stderr).
fn verify(config: &Path, extra: &[&str]) -> (bool, String) {
    let out = moat()
        .args(["audit", "verify", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Applies `tamper` to the store with the triggers that stop moat's own bugs dropped (what
/// someone with the file does first).
fn tamper(logged: &Logged, tamper: impl FnOnce(&rusqlite::Connection)) {
    let db = rusqlite::Connection::open(logged.dir.join("keys.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_delete_behind_checkpoint;",
    )
    .unwrap();
    tamper(&db);
}

/// `moat serve` on `config` must exit on its own (refusing to start) within 20 s; its stderr.
async fn refused_to_serve(config: &Path) -> String {
    let mut child = moat()
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "{err}");
            return err;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("moat serve started on a tampered store");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stored_hash(logged: &Logged, seq: u64) -> String {
    let db = rusqlite::Connection::open(logged.dir.join("keys.db")).unwrap();
    db.query_row("SELECT hash FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_forged_by_hand_is_refused_by_verify_and_by_the_gateway() {
    let logged = logged(4).await;
    let witness = logged.witness.to_str().unwrap().to_string();
    let (ok, out) = verify(&logged.config, &["--witness", &witness]);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: 4 records verified, "), "{out}");
    assert!(
        out.contains(" witnessed heads matched, head seq 4"),
        "{out}"
    );

    // The attack: a checkpoint row at the head passes the delete trigger for every record.
    let head = stored_hash(&logged, 4);
    let forged = format!(r#"{{"seq":4,"hash":"{head}","ts_ms":0,"signature":""}}"#);
    let db = rusqlite::Connection::open(logged.dir.join("keys.db")).unwrap();
    db.execute(
        "INSERT INTO audit_checkpoints (seq, hash, ts_ms, json) VALUES (4, ?1, 0, ?2)",
        rusqlite::params![head, forged],
    )
    .unwrap();
    assert_eq!(db.execute("DELETE FROM audit", []).unwrap(), 4);
    drop(db);

    // Without a witness: the checkpoint is not the audit key's.
    let (ok, out) = verify(&logged.config, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("BROKEN: checkpoint at seq 4: bad signature"),
        "{out}"
    );
    let (ok, out) = verify(&logged.config, &["--witness", &witness]);
    assert!(!ok, "{out}");
    // The gateway does not make it the chain's new start.
    let err = refused_to_serve(&logged.config).await;
    assert!(
        err.contains("audit checkpoint 4") && err.contains("not signed by this store's audit key"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_signed_by_another_key_is_refused_too() {
    let logged = logged(3).await;
    // A well-formed Ed25519 checkpoint, from a key that is not the store's.
    let head = stored_hash(&logged, 2);
    let forged = Checkpoint::new(2, head.clone(), 0, &AuditKeys::from_seed([1; 32]));
    let db = rusqlite::Connection::open(logged.dir.join("keys.db")).unwrap();
    db.execute(
        "INSERT INTO audit_checkpoints (seq, hash, ts_ms, json) VALUES (2, ?1, 0, ?2)",
        rusqlite::params![head, serde_json::to_string(&forged).unwrap()],
    )
    .unwrap();
    db.execute("DELETE FROM audit WHERE seq <= 2", []).unwrap();
    drop(db);
    let (ok, out) = verify(&logged.config, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("checkpoint at seq 2: bad signature"), "{out}");
    let err = refused_to_serve(&logged.config).await;
    assert!(err.contains("audit checkpoint 2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_truncation_is_reported_with_a_witness_and_refused_by_the_gateway() {
    let logged = logged(6).await;
    let witness = logged.witness.to_str().unwrap().to_string();
    let head6 = format!("6:{}", stored_hash(&logged, 6));
    tamper(&logged, |db| {
        db.execute("DELETE FROM audit WHERE seq > 4", []).unwrap();
    });
    // The chain of what is left is whole: without a witness nothing shows.
    let (ok, out) = verify(&logged.config, &[]);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: 4 records verified"), "{out}");
    let (ok, out) = verify(&logged.config, &["--witness", &witness]);
    assert!(!ok, "{out}");
    // The first witnessed head past seq 4 is named (heads are written as often as records
    // commit, at most one per commit).
    assert!(
        out.contains("witnessed but missing: the log ends at seq 4"),
        "{out}"
    );
    let (ok, out) = verify(&logged.config, &["--expect-head", &head6]);
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN: record 6"), "{out}");
    let err = refused_to_serve(&logged.config).await;
    assert!(
        err.contains("the log ends at seq 4 but the witness saw seq 6"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_rewrite_is_reported_with_a_witness() {
    let logged = logged(5).await;
    let witness = logged.witness.to_str().unwrap().to_string();
    // Record 3 says 403 instead of 200; it and every later record re-sealed, so the chain holds.
    tamper(&logged, |db| {
        let prev: String = db
            .query_row("SELECT hash FROM audit WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        let mut chain = Chain::resume(2, prev);
        for seq in 3..=5u64 {
            let json: String = db
                .query_row("SELECT json FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
                .unwrap();
            let mut record: AuditRecord = serde_json::from_str(&json).unwrap();
            if seq == 3 {
                record.status = 403;
            }
            let sealed = chain.seal(record);
            db.execute(
                "UPDATE audit SET json = ?1, hash = ?2, prev_hash = ?3, status = ?4 WHERE seq = ?5",
                rusqlite::params![
                    serde_json::to_string(&sealed).unwrap(),
                    sealed.hash,
                    sealed.prev_hash,
                    sealed.status,
                    seq
                ],
            )
            .unwrap();
        }
    });
    let (ok, out) = verify(&logged.config, &[]);
    assert!(ok, "the rewrite is consistent: {out}");
    let (ok, out) = verify(&logged.config, &["--witness", &witness]);
    assert!(!ok, "{out}");
    assert!(out.contains("not the one witnessed"), "{out}");
    let err = refused_to_serve(&logged.config).await;
    assert!(err.contains("the log was rewritten"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubkey_verifies_what_the_gateway_signs_and_the_key_file_stays_private() {
    let logged = logged(2).await;
    let run = |args: &[&str]| {
        let out = moat()
            .args(args)
            .arg("--config")
            .arg(&logged.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let public = run(&["audit", "pubkey"]);
    let public = moat_audit::parse_public_key(public.trim()).unwrap();
    let pem = run(&["audit", "pubkey", "--pem"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(moat_audit::parse_public_key(&pem).unwrap(), public);

    // Every witnessed head the gateway wrote, and a head signed on demand, verify under it.
    let text = std::fs::read_to_string(&logged.witness).unwrap();
    for line in text.lines() {
        let head: SignedHead = serde_json::from_str(line).unwrap();
        assert!(head.verify(&public), "{line}");
        let mut tampered = head.clone();
        tampered.seq += 1;
        assert!(!tampered.verify(&public));
    }
    let head: SignedHead = serde_json::from_str(run(&["audit", "checkpoint"]).trim()).unwrap();
    assert_eq!(head.seq, 2);
    assert!(head.verify(&public));
    assert!(!head.verify(&AuditKeys::from_seed([1; 32]).verifying_key()));

    // A third party verifies with the public key alone (here: no key file at all).
    let key_file = logged.dir.join("keys.db.audit-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let private = std::fs::read_to_string(&key_file).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!text.contains(private.lines().nth(1).unwrap()));
    std::fs::remove_file(&key_file).unwrap();
    let hex = AuditKeys::from_pem(&private).unwrap().public_hex();
    let witness = logged.witness.to_str().unwrap().to_string();
    let (ok, out) = verify(&logged.config, &["--pubkey", &hex, "--witness", &witness]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&logged.config, &["--witness", &witness]);
    assert!(!ok && out.contains("give --pubkey"), "{out}");
}
